package expr_test

import (
	"testing"

	"github.com/inlet-dev/inlet/internal/expr"
)

// seed is the payload of the seed webhook, 172 bytes.
var seed = []byte(`{"user_id":"u-1","order_id":"ord-1","total":19.99,"currency":"EUR","created_at":"2026-11-26T10:12:31Z","items":["a","b"],"paid":true,"meta":{"source":"shop"}}`)

func BenchmarkDecodeSeed(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(seed)))
	for b.Loop() {
		if _, err := expr.Decode(seed); err != nil {
			b.Fatal(err)
		}
	}
}

func benchAppendJSON(b *testing.B, src string, body []byte) {
	b.Helper()
	p := mustCompile(b, src, expr.Options{Kind: expr.Value})
	in := &expr.Input{Body: mustDecode(b, string(body)), Headers: map[string]string{"X-Topic": "orders/paid"}}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = p.AppendJSON(buf[:0], in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvalPrice(b *testing.B) {
	benchAppendJSON(b, `body.total * 100.0`, seed)
}

func BenchmarkEvalConcat(b *testing.B) {
	benchAppendJSON(b, `body.order_id + "/" + body.user_id`, seed)
}

func BenchmarkEvalCondition(b *testing.B) {
	p := mustCompile(b, `body.paid && headers["X-Topic"] == "orders/paid"`, expr.Options{Kind: expr.Condition})
	in := &expr.Input{Body: mustDecode(b, string(seed)), Headers: map[string]string{"X-Topic": "orders/paid"}}
	b.ReportAllocs()
	for b.Loop() {
		ok, err := p.Bool(in)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkEvalMapSkus(b *testing.B) {
	benchAppendJSON(b, `body.line_items.map(i, i.sku)`,
		[]byte(`{"line_items":[{"sku":"A","qty":1},{"sku":"B","qty":2},{"sku":"C","qty":1},{"sku":"D","qty":5}]}`))
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := expr.Compile(`body.line_items.map(i, i.sku)`, expr.Options{Kind: expr.Value}); err != nil {
			b.Fatal(err)
		}
	}
}
