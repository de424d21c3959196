package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// guidePath is the mapping guide whose worked examples TestMappingGuide runs.
var guidePath = filepath.Join("..", "docs", "mapping.md")

// guideExample is one worked example of the guide: a "###" heading under "## Worked examples" and its
// fenced blocks (see the guide's "How the examples are tested").
type guideExample struct {
	name     string
	events   []json.RawMessage
	users    []guideUser
	webhook  json.RawMessage
	requests []*guideRequest
	// refused are webhooks the guide shows refused when saved, each with the errors of the 400.
	refused []*guideRefusal
}

// guideRefusal is a "refused webhook" block and the "errors" block that follows it.
type guideRefusal struct {
	webhook json.RawMessage
	errors  []guideFieldError
}

// guideFieldError is one entry of a 400's errors.
type guideFieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

type guideUser struct {
	UserID string `json:"user_id"`
	Email  string `json:"email,omitempty"`
	Phone  string `json:"phone,omitempty"`
}

// guideRequest is a request block: the request as the sender sends it, without the headers it makes
// per request (written "…" in the guide), and the expect block that follows it.
type guideRequest struct {
	name   string
	method string
	path   string
	header []verify.Field
	body   string
	expect *guideExpect
}

// guideExpect is an expect block: what the request's activity entry says and the events it fired, in
// the order of the elements.
type guideExpect struct {
	Status string `json:"status"`
	Reason string `json:"reason"`
	Route  string `json:"route"`
	// Detail, when given, is the entry's detail, exactly.
	Detail      string `json:"detail"`
	EventsFired int    `json:"events_fired"`
	Events      []struct {
		Event      string         `json:"event"`
		UserID     string         `json:"user_id"`
		Attributes map[string]any `json:"attributes"`
	} `json:"events"`
}

var (
	// fenceTitle is the title of a fenced block's info string: ```json title="webhook".
	fenceTitle = regexp.MustCompile(`^` + "```" + `\w*\s+title="([^"]*)"`)
	// requestLine is a request block's first line.
	requestLine = regexp.MustCompile(`^([A-Z]+) (/\S*)$`)
)

// madeBySender is how the guide writes a header the sender makes per request (its signature).
const madeBySender = "…"

// parseGuide reads the worked examples of the guide.
func parseGuide(doc string) ([]*guideExample, error) {
	var (
		out       []*guideExample
		cur       *guideExample
		inWorked  bool
		title     string
		block     []string
		inBlock   bool
		lastReq   *guideRequest
		blockLine int
	)
	for i, line := range strings.Split(doc, "\n") {
		if inBlock {
			if strings.HasPrefix(line, "```") {
				inBlock = false
				if title == "" {
					continue
				}
				if cur == nil {
					return nil, fmt.Errorf("line %d: block %q outside a worked example", blockLine, title)
				}
				text := strings.Join(block, "\n")
				var err error
				switch {
				case title == "events":
					err = strictJSON(text, &cur.events)
				case title == "users":
					err = strictJSON(text, &cur.users)
				case title == "webhook":
					cur.webhook = json.RawMessage(text)
					if !json.Valid(cur.webhook) {
						err = fmt.Errorf("not JSON")
					}
				case strings.HasPrefix(title, "request: "):
					lastReq, err = parseGuideRequest(strings.TrimPrefix(title, "request: "), block)
					if err == nil {
						cur.requests = append(cur.requests, lastReq)
					}
				case title == "refused webhook":
					if !json.Valid([]byte(text)) {
						err = fmt.Errorf("not JSON")
						break
					}
					cur.refused = append(cur.refused, &guideRefusal{webhook: json.RawMessage(text)})
				case title == "errors":
					if len(cur.refused) == 0 || cur.refused[len(cur.refused)-1].errors != nil {
						err = fmt.Errorf("an errors block follows no refused webhook without one")
						break
					}
					rf := cur.refused[len(cur.refused)-1]
					if err = strictJSON(text, &rf.errors); err == nil && len(rf.errors) == 0 {
						err = fmt.Errorf("no errors listed")
					}
				case title == "expect":
					if lastReq == nil || lastReq.expect != nil {
						err = fmt.Errorf("an expect block follows no request without one")
						break
					}
					lastReq.expect = new(guideExpect)
					err = strictJSON(text, lastReq.expect)
				default:
					err = fmt.Errorf("unknown block title")
				}
				if err != nil {
					return nil, fmt.Errorf("line %d: %s block of %q: %w", blockLine, title, cur.name, err)
				}
				continue
			}
			block = append(block, line)
			continue
		}
		switch {
		case strings.HasPrefix(line, "```"):
			inBlock, block, title, blockLine = true, nil, "", i+1
			if m := fenceTitle.FindStringSubmatch(line); m != nil && inWorked {
				title = m[1]
			}
		case strings.HasPrefix(line, "## "):
			inWorked, cur = line == "## Worked examples", nil
		case strings.HasPrefix(line, "### ") && inWorked:
			cur, lastReq = &guideExample{name: strings.TrimPrefix(line, "### ")}, nil
			out = append(out, cur)
		}
	}
	for _, ex := range out {
		if ex.webhook == nil || len(ex.requests) == 0 {
			return nil, fmt.Errorf("%q: want a webhook block and at least one request", ex.name)
		}
		for _, rf := range ex.refused {
			if rf.errors == nil {
				return nil, fmt.Errorf("%q: a refused webhook without its errors block", ex.name)
			}
		}
		for _, r := range ex.requests {
			if r.expect == nil {
				return nil, fmt.Errorf("%q, request %q: no expect block", ex.name, r.name)
			}
			if len(r.expect.Events) != r.expect.EventsFired {
				return nil, fmt.Errorf("%q, request %q: %d events listed, events_fired %d", ex.name, r.name, len(r.expect.Events), r.expect.EventsFired)
			}
		}
	}
	return out, nil
}

// strictJSON decodes text into v, refusing fields v has not, so that a misspelled expectation fails
// rather than pass unchecked.
func strictJSON(text string, v any) error {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// parseGuideRequest reads a request block: the request line, headers, a blank line and the body.
func parseGuideRequest(name string, lines []string) (*guideRequest, error) {
	if len(lines) == 0 {
		return nil, fmt.Errorf("empty request")
	}
	m := requestLine.FindStringSubmatch(lines[0])
	if m == nil {
		return nil, fmt.Errorf("first line %q; want METHOD /path", lines[0])
	}
	r := &guideRequest{name: name, method: m[1], path: m[2]}
	i := 1
	for ; i < len(lines) && lines[i] != ""; i++ {
		k, v, ok := strings.Cut(lines[i], ":")
		if !ok {
			return nil, fmt.Errorf("header line %q", lines[i])
		}
		if v = strings.TrimSpace(v); v != madeBySender {
			r.header = append(r.header, verify.Field{Name: strings.TrimSpace(k), Value: v})
		}
	}
	if i == len(lines) {
		return nil, fmt.Errorf("no blank line before the body")
	}
	r.body = strings.Join(lines[i+1:], "\n")
	return r, nil
}

// TestMappingGuideParses: the guide's examples are all read, so that an example cannot drop out of
// TestMappingGuide by a typo in its blocks. It needs no services.
func TestMappingGuideParses(t *testing.T) {
	doc, err := os.ReadFile(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	exs, err := parseGuide(string(doc))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ex := range exs {
		names = append(names, ex.name)
	}
	if want := []string{"A Shopify store", "A Stripe account", "A HubSpot subscription batch", "A form-body sender: Twilio SMS"}; !reflect.DeepEqual(names, want) {
		t.Errorf("examples %q; want %q", names, want)
	}
}

// TestMappingGuide runs every worked example of docs/mapping.md against the real edge, pipeline and
// admin API: it creates the example's events, users and webhook, sends each request signed as its
// sender signs it, and compares the activity entry, the events in the users' histories and the dry
// run with the example's expect block.
func TestMappingGuide(t *testing.T) {
	doc, err := os.ReadFile(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	exs, err := parseGuide(string(doc))
	if err != nil {
		t.Fatal(err)
	}
	s := newStack(t)
	outer := s.t
	for _, ex := range exs {
		t.Run(ex.name, func(t *testing.T) {
			s.t = t // s.want fails the example, not the whole test
			defer func() { s.t = outer }()
			runGuideExample(t, s, ex)
		})
	}
}

func runGuideExample(t *testing.T, s *system, ex *guideExample) {
	for _, e := range ex.events {
		s.want("POST", "/api/v1/events", s.keyA, e, 201)
	}
	for _, u := range ex.users {
		if code, b := s.do("PUT", "/api/v1/users/"+url.PathEscape(u.UserID), s.keyA, map[string]string{"email": u.Email, "phone": u.Phone}); code != 200 && code != 201 {
			t.Fatalf("user %s: %d %s", u.UserID, code, b)
		}
	}
	var cfg struct {
		Sender, Secret string
	}
	if err := json.Unmarshal(ex.webhook, &cfg); err != nil {
		t.Fatal(err)
	}
	var wh struct {
		ID          string
		Credentials struct{ Secret string }
	}
	if err := json.Unmarshal(s.want("POST", "/api/v1/webhooks", s.keyA, ex.webhook, 201), &wh); err != nil {
		t.Fatal(err)
	}
	s.want("POST", "/api/v1/webhooks/"+wh.ID+"/enable", s.keyA, nil, 200)
	for i, rf := range ex.refused {
		var problem struct{ Errors []guideFieldError }
		if err := json.Unmarshal(s.want("POST", "/api/v1/webhooks", s.keyA, rf.webhook, 400), &problem); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(problem.Errors, rf.errors) {
			t.Errorf("refused webhook %d: errors %+v; want %+v", i, problem.Errors, rf.errors)
		}
	}
	if cfg.Sender == "" {
		cfg.Sender = webhook.SenderInlet
	}
	snd, ok := webhook.LookupSender(cfg.Sender)
	if !ok {
		t.Fatalf("sender %q is not in the catalog", cfg.Sender)
	}
	sec := cfg.Secret
	if sec == "" {
		sec = wh.Credentials.Secret // Inlet made it
	}
	signer, err := verify.NewSigner(snd.Verification, []byte(sec))
	if err != nil {
		t.Fatal(err)
	}

	parent := s.t
	for _, r := range ex.requests {
		t.Run(r.name, func(t *testing.T) {
			s.t = t
			defer func() { s.t = parent }()
			rid := sendGuideRequest(t, s.ingestURL, wh.ID, signer, r)
			checkGuideRequest(t, s, wh.ID, rid, r)
		})
	}
	checkGuideSummary(t, s, wh.ID, ex)
}

// checkGuideSummary waits for the webhook's 24-hour summary to count the example's requests, skipped
// apart from failed, as the expect blocks say. A request the edge refused while it did not yet know
// the webhook was enabled is a failure of another reason, not compared.
func checkGuideSummary(t *testing.T, s *system, webhookID string, ex *guideExample) {
	t.Helper()
	type counts struct {
		Success, Skipped int
		Failed           map[string]int
		SkippedBy        map[string]int
	}
	want := counts{Failed: map[string]int{}, SkippedBy: map[string]int{}}
	for _, r := range ex.requests {
		switch r.expect.Status {
		case "success":
			want.Success++
		case "skipped":
			want.Skipped++
			want.SkippedBy[r.expect.Reason]++
		case "failed":
			want.Failed[r.expect.Reason]++
		}
	}
	var got counts
	deadline := time.Now().Add(patience)
	for {
		var ans struct {
			Summary struct {
				Success, Skipped int
				FailedByReason   map[string]int `json:"failed_by_reason"`
				SkippedByReason  map[string]int `json:"skipped_by_reason"`
			}
		}
		if err := json.Unmarshal(s.want("GET", "/api/v1/webhooks/"+webhookID+"/summary", s.keyA, nil, 200), &ans); err != nil {
			t.Fatal(err)
		}
		got = counts{ans.Summary.Success, ans.Summary.Skipped, map[string]int{}, ans.Summary.SkippedByReason}
		if got.SkippedBy == nil {
			got.SkippedBy = map[string]int{}
		}
		for reason := range want.Failed {
			got.Failed[reason] = ans.Summary.FailedByReason[reason]
		}
		if reflect.DeepEqual(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("summary %+v after %s; want %+v", got, patience, want)
		}
		time.Sleep(100 * time.Millisecond) // pacing only
	}
}

// sendGuideRequest signs r as its sender does and sends it to the edge until it is taken in (the
// edge learns of the webhook's enabling within moments), and returns its request id.
func sendGuideRequest(t *testing.T, edge, webhookID string, signer *verify.Signer, r *guideRequest) uuid.UUID {
	t.Helper()
	u := edge + strings.ReplaceAll(r.path, "{id}", webhookID)
	deadline := time.Now().Add(patience)
	for {
		signed, err := signer.Sign(verify.Message{Method: r.method, URL: u, Body: []byte(r.body), ID: uuid.NewString()})
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(r.method, signed.URL, strings.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range append(append([]verify.Field(nil), r.header...), signed.Header...) {
			req.Header[h.Name] = []string{h.Value}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, u, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusAccepted {
			var ans struct {
				RequestID uuid.UUID `json:"request_id"`
			}
			if err := json.Unmarshal(b, &ans); err != nil {
				t.Fatalf("the edge's 202 %s: %v", b, err)
			}
			return ans.RequestID
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge still answered %d %s after %s; want 202", resp.StatusCode, b, patience)
		}
		time.Sleep(50 * time.Millisecond) // pacing only
	}
}

// checkGuideRequest waits for the request's activity entry and the events it fired, and compares
// them and the dry run of the same request with r.expect.
func checkGuideRequest(t *testing.T, s *system, webhookID string, rid uuid.UUID, r *guideRequest) {
	want := r.expect
	var entry struct {
		Status      string
		Reason      string
		Detail      string
		Route       string
		EventsFired int `json:"events_fired"`
		Outcomes    []struct {
			Index   int
			EventID uuid.UUID `json:"event_id"`
			Status  string
		}
	}
	path := "/api/v1/webhooks/" + webhookID + "/activity/" + rid.String()
	deadline := time.Now().Add(patience)
	for {
		code, b := s.do("GET", path, s.keyA, nil)
		if code == 200 {
			if err := json.Unmarshal(b, &entry); err != nil {
				t.Fatal(err)
			}
			break
		}
		if code != 404 || time.Now().After(deadline) {
			t.Fatalf("GET %s = %d %s; want the activity entry within %s", path, code, b, patience)
		}
		time.Sleep(100 * time.Millisecond) // pacing only
	}
	if entry.Status != want.Status || entry.Reason != want.Reason || entry.Route != want.Route || entry.EventsFired != want.EventsFired {
		t.Errorf("activity: %s/%s route %q, %d events fired; want %s/%s route %q, %d (detail %q)",
			entry.Status, entry.Reason, entry.Route, entry.EventsFired, want.Status, want.Reason, want.Route, want.EventsFired, entry.Detail)
	}
	if want.Detail != "" && entry.Detail != want.Detail {
		t.Errorf("activity detail %q; want %q", entry.Detail, want.Detail)
	}

	// The events' ids: the request's for a single event, each fired element's for a fan-out.
	var ids []uuid.UUID
	if len(entry.Outcomes) == 0 {
		if entry.EventsFired == 1 {
			ids = append(ids, rid)
		}
	} else {
		for _, o := range entry.Outcomes {
			if o.EventID != wire.ElementEventID(rid, o.Index) {
				t.Errorf("element %d: event id %s; want UUIDv5(request %s, %q), %s", o.Index, o.EventID, rid, fmt.Sprint(o.Index), wire.ElementEventID(rid, o.Index))
			}
			if o.Status == "success" {
				ids = append(ids, o.EventID)
			}
		}
	}
	if len(ids) != len(want.Events) {
		t.Errorf("%d events fired; want %d", len(ids), len(want.Events))
	} else {
		for i, ev := range want.Events {
			got := waitHistoryEvent(t, s, ev.UserID, ids[i])
			var attrs map[string]any
			if err := json.Unmarshal([]byte(got.Attributes), &attrs); err != nil {
				t.Fatalf("event %s attributes %q: %v", ids[i], got.Attributes, err)
			}
			if attrs["__webhook"] != webhookID {
				t.Errorf("event %d: __webhook %v; want %s", i, attrs["__webhook"], webhookID)
			}
			delete(attrs, "__webhook")
			if got.EventName != ev.Event || !reflect.DeepEqual(attrs, ev.Attributes) {
				gotAttrs, _ := json.Marshal(attrs)
				wantAttrs, _ := json.Marshal(ev.Attributes)
				t.Errorf("event %d (%s) of user %s: %s %s; want %s %s", i, ids[i], ev.UserID, got.EventName, gotAttrs, ev.Event, wantAttrs)
			}
		}
	}

	// The dry run of the same request says the same.
	headers := map[string]string{}
	contentType := ""
	for _, h := range r.header {
		if strings.EqualFold(h.Name, "Content-Type") {
			contentType = h.Value
			continue
		}
		headers[h.Name] = h.Value
	}
	var ev struct {
		Status, Reason, Detail string
		RouteName              string `json:"route_name"`
		EventsFired            int    `json:"events_fired"`
	}
	if err := json.Unmarshal(s.want("POST", "/api/v1/webhooks/"+webhookID+"/test", s.keyA,
		map[string]any{"body": r.body, "content_type": contentType, "headers": headers}, 200), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Status != want.Status || ev.Reason != want.Reason || ev.RouteName != want.Route || ev.EventsFired != want.EventsFired {
		t.Errorf("dry run: %s/%s route %q, %d events; want %s/%s route %q, %d", ev.Status, ev.Reason, ev.RouteName, ev.EventsFired,
			want.Status, want.Reason, want.Route, want.EventsFired)
	}
	if ev.Detail != entry.Detail {
		t.Errorf("dry run detail %q; the activity entry's %q", ev.Detail, entry.Detail)
	}
}

// historyEvent is an event of a user's history (GET /api/v1/users/{user_id}/events).
type historyEvent struct {
	EventID    uuid.UUID `json:"event_id"`
	EventName  string    `json:"event_name"`
	Attributes string    `json:"attributes"`
}

// waitHistoryEvent waits for the event id in the user's history and returns it.
func waitHistoryEvent(t *testing.T, s *system, userID string, id uuid.UUID) historyEvent {
	t.Helper()
	path := "/api/v1/users/" + url.PathEscape(userID) + "/events?limit=500"
	deadline := time.Now().Add(patience)
	for {
		var page struct{ Events []historyEvent }
		if err := json.Unmarshal(s.want("GET", path, s.keyA, nil, 200), &page); err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			if e.EventID == id {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %s not in user %s's history after %s", id, userID, patience)
		}
		time.Sleep(100 * time.Millisecond) // pacing only
	}
}

// TestMappingGuideParseErrors: a block the convention does not know, or one out of place, is an error
// rather than an example quietly left untested.
func TestMappingGuideParseErrors(t *testing.T) {
	const webhookBlock = "```json title=\"webhook\"\n{}\n```\n"
	const request = "```http title=\"request: r\"\nPOST /hooks/{id}\nContent-Type: application/json\n\n{}\n```\n"
	const expect = "```json title=\"expect\"\n{\"status\": \"success\", \"events_fired\": 0, \"events\": []}\n```\n"
	for _, c := range []struct{ name, doc, want string }{
		{"unknown title", "## Worked examples\n### E\n```json title=\"expected\"\n{}\n```\n", "unknown block title"},
		{"expect without request", "## Worked examples\n### E\n" + webhookBlock + expect, "follows no request"},
		{"request without expect", "## Worked examples\n### E\n" + webhookBlock + request, "no expect block"},
		{"no webhook", "## Worked examples\n### E\n" + request + expect, "want a webhook block"},
		{"misspelled expectation", "## Worked examples\n### E\n" + webhookBlock + request + "```json title=\"expect\"\n{\"satus\": \"success\"}\n```\n", "unknown field"},
		{"events and events_fired disagree", "## Worked examples\n### E\n" + webhookBlock + request + "```json title=\"expect\"\n{\"status\": \"success\", \"events_fired\": 1, \"events\": []}\n```\n", "0 events listed"},
		{"bad request line", "## Worked examples\n### E\n" + webhookBlock + "```http title=\"request: r\"\nPOST hooks\n\n{}\n```\n", "want METHOD /path"},
		{"errors without a refused webhook", "## Worked examples\n### E\n" + webhookBlock + "```json title=\"errors\"\n[]\n```\n", "follows no refused webhook"},
	} {
		_, err := parseGuide(c.doc)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: parseGuide = %v; want an error containing %q", c.name, err, c.want)
		}
	}
	exs, err := parseGuide("## Worked examples\n### E\n" + webhookBlock + request + expect + "## After\n```json title=\"webhook\"\n{}\n```\n")
	if err != nil || len(exs) != 1 || len(exs[0].requests) != 1 || exs[0].requests[0].header[0].Value != "application/json" {
		t.Errorf("parseGuide of one example = %+v, %v; want it, its request and its Content-Type (blocks after the section are not read)", exs, err)
	}
}
