package expr_test

import (
	"encoding/json"
	"testing"

	"github.com/inlet-dev/inlet/internal/expr"
	"github.com/inlet-dev/inlet/internal/jsonvalid"
)

// FuzzAppendJSON: whatever the expression and the body, compiling and evaluating never panics, and a
// result is always one valid JSON value within MaxResultBytes.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range []struct{ src, body string }{
		{`body.total_cents / 100.0`, `{"total_cents":1999}`},
		{`body.first + " " + body.last`, `{"first":"a","last":"b"}`},
		{`body.?x.orValue("none")`, `{}`},
		{`body.line_items.map(i, i.sku)`, `{"line_items":[{"sku":"A"},{"sku":"B"}]}`},
		{`item.sku + string(index)`, `{"sku":"x"}`},
		{`headers["x-topic"] == "a" && body.paid`, `{"paid":true}`},
		{`timestamp(body.at)`, `{"at":"2026-11-26T10:12:31Z"}`},
		{`body.map(a, body.map(b, [a, b]))`, `[1,2,3,"x",null,{"k":[]}]`},
		{`{"k": body, "l": [body, b"\xff", duration("1s")]}`, `"\u2028\ud800"`},
		{`body.s.split(",").map(x, x.trim().upperAscii())`, `{"s":"a, b ,c"}`},
		{`math.round(body.n * 100.0) / 1e-300`, `{"n":1e308}`},
		{`body.n / 0.0`, `{"n":0}`},
		{`body.s.replace("", body.s).replace("", body.s)`, `{"s":"abcdefghijklmnopqrstuvwxyz0123456789"}`},
		{`"%s %d".format([body.items, size(body.items)]) + body.items.join(body.s)`, `{"s":"-","items":["a"]}`},
	} {
		f.Add(s.src, []byte(s.body))
	}
	headers := map[string]string{"X-Topic": "a"}
	f.Fuzz(func(t *testing.T, src string, body []byte) {
		if !json.Valid(body) {
			return
		}
		v, err := expr.Decode(body)
		if err != nil {
			return // a number beyond a double's range (2e700): valid JSON, refused by Decode as documented
		}
		in := &expr.Input{Body: v, Headers: headers, Item: v, Index: 3}
		// Bodies as the pipeline sees them (jsonvalid: no duplicate keys, bounded depth) read lazily
		// give what the decoded tree gives.
		lazy := jsonvalid.Validate(body, jsonvalid.MaxDepth) == nil
		lin := &expr.Input{Body: expr.Lazy(body), Headers: headers, Item: expr.Lazy(body), Index: 3}
		if p, err := expr.Compile(src, expr.Options{Kind: expr.Value, FanOut: true}); err == nil {
			out, err := p.AppendJSON(nil, in)
			if err == nil {
				if !json.Valid(out) {
					t.Fatalf("AppendJSON(%q) on %s = %q: not JSON", src, body, out)
				}
				if len(out) > expr.MaxResultBytes {
					t.Fatalf("AppendJSON(%q) gave %d bytes; limit %d", src, len(out), expr.MaxResultBytes)
				}
			}
			if lazy {
				lout, lerr := p.AppendJSON(nil, lin)
				if (err == nil) != (lerr == nil) || string(out) != string(lout) {
					t.Fatalf("AppendJSON(%q) on %s: decoded %s (%v), lazy %s (%v); want the same", src, body, out, err, lout, lerr)
				}
			}
		}
		if p, err := expr.Compile(src, expr.Options{Kind: expr.Condition}); err == nil {
			_, _ = p.Bool(in)
		}
	})
}
