package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDryRunIsWhatThePipelineDoes sends requests through the real edge and pipeline, then asks the
// dry run about the same bodies: its status, reason, detail and attributes are the activity log's.
// A backtest of the saved config changes nothing; one of a draft that fixes the price mapping turns
// the recorded attribute_type_mismatch failures into successes.
func TestDryRunIsWhatThePipelineDoes(t *testing.T) {
	s := newStack(t)
	s.want("POST", "/api/v1/events", s.keyA, map[string]any{"name": "CheckoutSuccess", "attributes": []map[string]string{
		{"name": "email", "type": "string"}, {"name": "total", "type": "price"},
		{"name": "order_id", "type": "string"}, {"name": "purchase_date", "type": "date"}}}, 201)
	var wh struct {
		ID          string
		Credentials struct{ Secret string }
	}
	sample := `{"user_id":"12345","email_address":"jane@example.com","purchase_date":"2024-03-15","order_number":"ORD-001","price":99.99}`
	if err := json.Unmarshal(s.want("POST", "/api/v1/webhooks", s.keyA, map[string]any{
		"name": "Shop checkout", "event": "CheckoutSuccess",
		"identify": map[string]string{"kind": "user_id", "field": "user_id"},
		"mappings": []map[string]string{
			{"attribute": "email", "field": "email_address"}, {"attribute": "total", "field": "price"},
			{"attribute": "order_id", "field": "order_number"}, {"attribute": "purchase_date", "field": "purchase_date", "on_error": "drop"}},
		"sample_payload": sample,
	}, 201), &wh); err != nil {
		t.Fatal(err)
	}
	s.want("POST", "/api/v1/webhooks/"+wh.ID+"/enable", s.keyA, nil, 200)
	s.want("PUT", "/api/v1/users/12345", s.keyA, map[string]any{"email": "jane@example.com"}, 201)

	bodies := []string{
		sample,
		`{"email_address":"jane@example.com","price":1}`,
		`{"user_id":"nobody","price":2}`,
		`{"user_id":"12345","price":"cheap","purchase_date":"someday"}`,
		`{"user_id":"12345","order_number":"ORD-2","price":{"amount":"12.50","currency":"EUR"}}`,
		`{"user_id":12345,"email_address":null,"order_number":"ORD-3","price":"7"}`,
	}
	url := s.ingestURL + "/hooks/" + wh.ID
	for _, b := range bodies {
		sendUntil(t, 202, url, wh.Credentials.Secret, b)
	}
	type entry struct {
		RequestID  string `json:"request_id"`
		Status     string
		Reason     string
		Detail     string
		Attributes string
		Payload    string
	}
	var page struct{ Entries []entry }
	deadline := time.Now().Add(patience)
	for {
		if err := json.Unmarshal(s.want("GET", "/api/v1/webhooks/"+wh.ID+"/activity", s.keyA, nil, 200), &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) >= len(bodies) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d activity entries after %s; want %d", len(page.Entries), patience, len(bodies))
		}
		time.Sleep(100 * time.Millisecond) // pacing only
	}
	reasons := map[string]int{}
	for _, en := range page.Entries {
		var full entry
		if err := json.Unmarshal(s.want("GET", "/api/v1/webhooks/"+wh.ID+"/activity/"+en.RequestID, s.keyA, nil, 200), &full); err != nil {
			t.Fatal(err)
		}
		var ev struct {
			Status, Reason, Detail string
			Event                  struct{ Attributes json.RawMessage }
		}
		if err := json.Unmarshal(s.want("POST", "/api/v1/webhooks/"+wh.ID+"/test", s.keyA, map[string]any{"body": full.Payload}, 200), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Status != full.Status || ev.Reason != full.Reason || ev.Detail != full.Detail {
			t.Errorf("%s: dry run %s/%s %q; the pipeline logged %s/%s %q", full.Payload, ev.Status, ev.Reason, ev.Detail, full.Status, full.Reason, full.Detail)
		}
		if got := string(ev.Event.Attributes); full.Status == "success" && got != full.Attributes {
			t.Errorf("%s: dry run attributes %s; the pipeline fired %s", full.Payload, got, full.Attributes)
		}
		reasons[full.Status+"/"+full.Reason]++
	}
	if want := map[string]int{"success/": 2, "failed/identifier_missing": 1, "failed/user_not_found": 1, "failed/attribute_type_mismatch": 2}; fmt.Sprint(reasons) != fmt.Sprint(want) {
		t.Errorf("the pipeline's outcomes %v; want %v (the test's bodies)", reasons, want)
	}

	type counts struct {
		Success, Failed int
		ByReason        map[string]int `json:"failed_by_reason"`
	}
	type backtest struct {
		Evaluated, Changed int
		Actual, Result     counts
		Examples           []struct {
			RequestID     string `json:"request_id"`
			Before, After struct{ Status, Reason string }
		}
	}
	var bt backtest
	path := "/api/v1/webhooks/" + wh.ID + "/backtest"
	if err := json.Unmarshal(s.want("POST", path, s.keyA, nil, 200), &bt); err != nil {
		t.Fatal(err)
	}
	if bt.Evaluated != len(bodies) || bt.Changed != 0 || fmt.Sprint(bt.Actual) != fmt.Sprint(bt.Result) {
		t.Errorf("backtest of the saved config: %+v; want %d evaluated, the same outcomes as logged", bt, len(bodies))
	}
	fix := map[string]any{"mappings": []map[string]string{
		{"attribute": "order_id", "field": "order_number"}, {"attribute": "total", "field": "price.amount"}},
		"sample_payload": `{"user_id":"12345","order_number":"ORD-2","price":{"amount":"12.50","currency":"EUR"}}`}
	bt = backtest{} // json.Unmarshal would add to the maps of the first answer
	if err := json.Unmarshal(s.want("POST", path, s.keyA, map[string]any{"draft": fix}, 200), &bt); err != nil {
		t.Fatal(err)
	}
	if bt.Changed != 2 || bt.Actual.ByReason["attribute_type_mismatch"] != 2 || bt.Result.ByReason["attribute_type_mismatch"] != 0 ||
		bt.Result.Success != 4 || len(bt.Examples) != 2 {
		t.Errorf("backtest of the fix: %+v; want the 2 attribute_type_mismatch turned into successes (4 in all)", bt)
	}
	for _, x := range bt.Examples {
		if x.Before.Reason != "attribute_type_mismatch" || x.After.Status != "success" || !strings.Contains(x.RequestID, "-") {
			t.Errorf("example %+v; want attribute_type_mismatch → success", x)
		}
	}
}
