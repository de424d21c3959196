package wire

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Event is a webhooks.events value as its consumers read it (JSON): DecodeEvent fills it. The pipeline
// writes it with AppendEvent. Attributes are typed as in the pipeline's coercion rules; price is a string
// to stay exact; "__webhook" is always present.
type Event struct {
	EventID      string         `json:"event_id"` // = the request id; stable across redeliveries
	Event        string         `json:"event"`
	ProjectID    int64          `json:"project_id"`
	WebhookID    string         `json:"webhook_id"`
	SubjectKind  string         `json:"subject_kind"`  // "user" or "device"
	IdentifiedBy string         `json:"identified_by"` // user_id, email, phone or hwid
	UserID       string         `json:"user_id"`
	HWID         string         `json:"hwid"`
	HWIDs        []string       `json:"hwids"`
	Attributes   map[string]any `json:"attributes"`
	OccurredAt   time.Time      `json:"occurred_at"`
	ReceivedAt   time.Time      `json:"received_at"`
}

// EventFields are what AppendEvent writes: an Event with its attributes already encoded as one JSON
// object, and its times in Unix milliseconds.
type EventFields struct {
	ID           uuid.UUID
	Name         string
	ProjectID    int64
	WebhookID    string
	SubjectKind  string
	IdentifiedBy string
	UserID       string
	HWID         string
	HWIDs        []string
	Attributes   []byte // a JSON object
	ReceivedMs   int64  // also the occurred-at time
}

// AppendEvent appends the webhooks.events value of e to dst, allocating nothing.
func AppendEvent(dst []byte, e *EventFields) []byte {
	dst = append(dst, `{"event_id":"`...)
	dst = AppendUUID(dst, e.ID)
	dst = append(dst, `","event":`...)
	dst = AppendJSONString(dst, e.Name)
	dst = append(dst, `,"project_id":`...)
	dst = strconv.AppendInt(dst, e.ProjectID, 10)
	dst = append(dst, `,"webhook_id":`...)
	dst = AppendJSONString(dst, e.WebhookID)
	dst = append(dst, `,"subject_kind":`...)
	dst = AppendJSONString(dst, e.SubjectKind)
	dst = append(dst, `,"identified_by":`...)
	dst = AppendJSONString(dst, e.IdentifiedBy)
	dst = append(dst, `,"user_id":`...)
	dst = AppendJSONString(dst, e.UserID)
	dst = append(dst, `,"hwid":`...)
	dst = AppendJSONString(dst, e.HWID)
	dst = append(dst, `,"hwids":[`...)
	for i, hw := range e.HWIDs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, hw)
	}
	dst = append(dst, `],"attributes":`...)
	dst = append(dst, e.Attributes...)
	ts := time.UnixMilli(e.ReceivedMs).UTC()
	dst = append(dst, `,"occurred_at":"`...)
	dst = ts.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","received_at":"`...)
	dst = ts.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, `"}`...)
}

// DecodeEvent reads a webhooks.events record: its value, checked against its headers (the event id and
// name must agree).
func DecodeEvent(rec *kgo.Record) (Event, error) {
	var e Event
	if err := json.Unmarshal(rec.Value, &e); err != nil {
		return e, fmt.Errorf("event at offset %d of partition %d: %w", rec.Offset, rec.Partition, err)
	}
	for _, h := range rec.Headers {
		switch {
		case h.Key == HeaderEventID && string(h.Value) != e.EventID:
			return e, fmt.Errorf("event %s: header %s is %q", e.EventID, HeaderEventID, h.Value)
		case h.Key == HeaderEventName && string(h.Value) != e.Event:
			return e, fmt.Errorf("event %s: header %s is %q; the value says %q", e.EventID, HeaderEventName, h.Value, e.Event)
		}
	}
	return e, nil
}

// AppendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD so the output is always
// valid JSON for ClickHouse readers and event consumers.
func AppendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
