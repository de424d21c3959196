package admin

import (
	"fmt"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/internal/chstore"
)

// BenchmarkBacktest10k is a backtest of 10,000 recorded requests (the most one reads) against the real
// PostgreSQL and ClickHouse, through the API: the read of the activity log, one directory query for
// 1,200 distinct user ids (1,000 known), the evaluation of every request with a draft that fixes the
// price mapping of one request in ten, and the answer. ns/op is the wall time of one backtest.
func BenchmarkBacktest10k(b *testing.B) {
	const n = chstore.MaxRecorded
	e := newEnv(b)
	id := e.seeded()
	var ndjson strings.Builder
	for u := range 1000 {
		fmt.Fprintf(&ndjson, `{"type":"user","user_id":"user-%d"}`+"\n", u)
	}
	if code, out := e.doHeader("POST", "/api/v1/directory/import", e.keyA, ndjson.String(), "Content-Type", "application/x-ndjson"); code != 200 {
		b.Fatalf("import: %d %s", code, out)
	}
	rows := make([]chstore.ActivityRow, n)
	bytes, fixed := 0, 0
	for i := range rows {
		r := &rows[i]
		user := fmt.Sprintf("user-%d", i%1200)
		r.Status = chstore.StatusSuccess
		price := `99.99`
		switch {
		case i%1200 >= 1000:
			r.Status, r.Reason = chstore.StatusFailed, "user_not_found"
		case i%10 == 0: // the sender's new price object, which the saved mapping cannot read
			price = fmt.Sprintf(`{"amount":"%d.50","currency":"EUR"}`, i%100)
			r.Status, r.Reason = chstore.StatusFailed, "attribute_type_mismatch"
			fixed++
		}
		r.Payload = fmt.Sprintf(`{"user_id":%q,"email_address":"jane@example.com","mobile":"+15551234567","purchase_date":"2024-03-15","order_number":"ORD-%d","price":%s,"payment_state":"success"}`, user, i, price)
		bytes += len(r.Payload)
	}
	e.insertRecorded(id, rows...)
	draft := map[string]any{"draft": map[string]any{"mappings": []map[string]string{
		{"attribute": "email", "field": "email_address"}, {"attribute": "total", "field": "price", "on_error": "drop"},
		{"attribute": "order_id", "field": "order_number"}}}, "limit": n}
	b.SetBytes(int64(bytes))
	b.ReportAllocs()
	for b.Loop() {
		var bt backtestAnswer
		decodeInto(b, e.want("POST", "/api/v1/webhooks/"+id+"/backtest", e.keyA, draft, 200), &bt)
		if bt.Evaluated != n || bt.Changed != fixed {
			b.Fatalf("backtest: %d evaluated, %d changed; want %d and %d (the mismatches the draft fixes)", bt.Evaluated, bt.Changed, n, fixed)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}
