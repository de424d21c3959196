package pipeline

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/chstore"
	"github.com/inlet-dev/inlet/internal/wire"
)

// formRecord is unitRecord for a form body with its Content-Type.
func formRecord(off int64, contentType, body string) *kgo.Record {
	h := new(wire.RequestHeaders)
	return &kgo.Record{Topic: "requests", Partition: 0, Offset: off, Key: []byte("wh_1"), Value: []byte(body),
		Headers: h.Encode(&wire.Request{ID: uuid.Must(uuid.NewV7()), WebhookID: "wh_1", ProjectID: 1,
			ReceivedMs: time.Now().UnixMilli(), ConfigVersion: 1, Outcome: wire.OutcomeAccepted, EdgeStatus: 202,
			BodyBytes: len(body), ContentType: []byte(contentType)})}
}

// TestFormBodiesMapLikeJSON: a urlencoded or multipart body maps through its JSON view exactly as the
// same fields sent as JSON do (repeated keys are arrays); the raw body is what the activity log keeps.
// A form record the edge would have refused fails as invalid_form.
func TestFormBodiesMapLikeJSON(t *testing.T) {
	p, _ := unitProcessor(t)
	const urlencoded = "user_id=12345&email_address=jane%40example.com&price=99.99&purchase_date=2024-03-15"
	const boundary = "XyZ"
	multipart := "--XyZ\r\nContent-Disposition: form-data; name=\"user_id\"\r\n\r\n12345\r\n" +
		"--XyZ\r\nContent-Disposition: form-data; name=\"email_address\"\r\n\r\njane@example.com\r\n" +
		"--XyZ\r\nContent-Disposition: form-data; name=\"price\"\r\n\r\n99.99\r\n--XyZ--\r\n"
	recs := []*kgo.Record{
		unitRecord(0, wire.OutcomeAccepted, `{"user_id":"12345","email_address":"jane@example.com","price":"99.99","purchase_date":"2024-03-15"}`, time.Now().UnixMilli()),
		formRecord(1, "application/x-www-form-urlencoded", urlencoded),
		formRecord(2, "multipart/form-data; boundary="+boundary, multipart),
		formRecord(3, "application/x-www-form-urlencoded", "user_id=12345&email_address=a&email_address=b"),
		formRecord(4, "application/x-www-form-urlencoded", "user_id=%zz"),
	}
	if err := p.handle(context.Background(), fetches(recs...)); err != nil {
		t.Fatal(err)
	}
	rows := p.b.activity
	if len(rows) != 5 {
		t.Fatalf("%d rows; want 5", len(rows))
	}
	for i := range 3 {
		if rows[i].Status != chstore.StatusSuccess {
			t.Fatalf("row %d: %s/%s %q; want success", i, rows[i].Status, rows[i].Reason, rows[i].Detail)
		}
	}
	if rows[1].Attributes != rows[0].Attributes {
		t.Errorf("urlencoded attributes %s; want those of the JSON body, %s", rows[1].Attributes, rows[0].Attributes)
	}
	if rows[1].Payload != urlencoded {
		t.Errorf("payload %q; want the raw form body", rows[1].Payload)
	}
	if want := `"email":"jane@example.com"`; !strings.Contains(rows[2].Attributes, want) {
		t.Errorf("multipart attributes %s; want %s", rows[2].Attributes, want)
	}
	if rows[3].Status != chstore.StatusFailed || rows[3].Reason != wire.ReasonAttributeTypeMismatch {
		t.Errorf("repeated email (an array mapped to a string): %s/%s; want failed/%s", rows[3].Status, rows[3].Reason, wire.ReasonAttributeTypeMismatch)
	}
	if rows[4].Status != chstore.StatusFailed || rows[4].Reason != string(wire.OutcomeInvalidForm) {
		t.Errorf("bad escape: %s/%s; want failed/invalid_form", rows[4].Status, rows[4].Reason)
	}
}
