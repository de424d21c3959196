package admin

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/bytedance/sonic"
)

const seedSample = `{"user_id":"12345","email_address":"jane@example.com","mobile":"+15551234567","purchase_date":"2024-03-15","order_number":"ORD-001","price":99.99,"payment_state":"success"}`

func checkoutEvent() map[string]any {
	return map[string]any{"name": "CheckoutSuccess", "attributes": []map[string]string{
		{"name": "email", "type": "string"}, {"name": "total", "type": "price"},
		{"name": "order_id", "type": "string"}, {"name": "purchase_date", "type": "date"},
	}}
}

func seedWebhook(event string) map[string]any {
	return map[string]any{
		"name": "Shop checkout", "event": event,
		"identify": map[string]string{"kind": "user_id", "field": "user_id"},
		"mappings": []map[string]string{
			{"attribute": "email", "field": "email_address"}, {"attribute": "total", "field": "price"},
			{"attribute": "order_id", "field": "order_number"},
		},
		"sample_payload": seedSample,
	}
}

func decodeInto(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := sonic.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func TestWebhookLifecycle(t *testing.T) {
	e := newEnv(t)
	var ev struct{ ID int64 }
	decodeInto(t, e.want("POST", "/api/v1/events", e.keyA, checkoutEvent(), 201), &ev)
	e.want("POST", "/api/v1/events", e.keyA, checkoutEvent(), 409) // duplicate name

	var created struct {
		ID          string `json:"id"`
		Enabled     bool   `json:"enabled"`
		Version     int64  `json:"version"`
		Credentials struct {
			URL, Secret    string
			ExampleRequest string `json:"example_request"`
		} `json:"credentials"`
	}
	decodeInto(t, e.want("POST", "/api/v1/webhooks", e.keyA, seedWebhook("CheckoutSuccess"), 201), &created)
	if created.Enabled {
		t.Errorf("new webhook is enabled; want disabled")
	}
	if want := "http://127.0.0.1:8080/hooks/" + created.ID; created.Credentials.URL != want {
		t.Errorf("url = %q; want %q", created.Credentials.URL, want)
	}
	if !strings.HasPrefix(created.Credentials.Secret, "Bearer whsec_") {
		t.Errorf("secret = %.14q…; want the Authorization value 'Bearer whsec_…'", created.Credentials.Secret)
	}
	ex := created.Credentials.ExampleRequest
	if !strings.HasPrefix(ex, "curl ") || !strings.Contains(ex, created.Credentials.Secret) || !strings.Contains(ex, `"order_number":"ORD-001"`) || strings.Contains(ex, "\n") {
		t.Errorf("example request %q: want a one-line curl with the secret and the sample", ex)
	}

	// Credentials show the same secret again; enable/disable bump the version.
	var creds struct{ Secret string }
	decodeInto(t, e.want("GET", "/api/v1/webhooks/"+created.ID+"/credentials", e.keyA, nil, 200), &creds)
	if creds.Secret != created.Credentials.Secret {
		t.Errorf("credentials secret differs from the one shown at create")
	}
	var wh struct {
		Enabled bool
		Version int64
	}
	decodeInto(t, e.want("POST", "/api/v1/webhooks/"+created.ID+"/enable", e.keyA, nil, 200), &wh)
	if !wh.Enabled || wh.Version != created.Version+1 {
		t.Errorf("after enable: enabled=%v version=%d; want true, %d", wh.Enabled, wh.Version, created.Version+1)
	}

	// Concurrent edits: a stale If-Match loses with 412, the current one wins.
	stale := fmt.Sprintf(`"%d"`, created.Version)
	if code, body := e.doHeader("PATCH", "/api/v1/webhooks/"+created.ID, e.keyA, `{"name":"Renamed"}`, "If-Match", stale); code != http.StatusPreconditionFailed {
		t.Fatalf("PATCH with stale If-Match = %d %s; want 412", code, body)
	}
	if code, body := e.doHeader("PATCH", "/api/v1/webhooks/"+created.ID, e.keyA, `{"name":"Renamed"}`, "If-Match", fmt.Sprintf(`"%d"`, wh.Version)); code != 200 || !strings.Contains(string(body), `"name":"Renamed"`) {
		t.Fatalf("PATCH with current If-Match = %d %s; want 200", code, body)
	}

	// Rotation returns a new secret; the event in use cannot be deleted.
	var rotated struct{ Secret string }
	decodeInto(t, e.want("POST", "/api/v1/webhooks/"+created.ID+"/rotate-secret", e.keyA, `{"grace_seconds":60}`, 200), &rotated)
	if rotated.Secret == created.Credentials.Secret || !strings.HasPrefix(rotated.Secret, "Bearer whsec_") {
		t.Errorf("rotated secret not new")
	}
	e.want("POST", "/api/v1/webhooks/"+created.ID+"/rotate-secret", e.keyA, `{"grace_seconds":-1}`, 400)
	e.want("DELETE", fmt.Sprintf("/api/v1/events/%d", ev.ID), e.keyA, nil, 409)

	// List with search, status and the received column.
	out := e.want("GET", "/api/v1/webhooks?q=renam&status=enabled", e.keyA, nil, 200)
	if !strings.Contains(string(out), `"total":1`) || !strings.Contains(string(out), `"received":0`) {
		t.Errorf("list = %s; want the one webhook with received 0", out)
	}
	if out := e.want("GET", "/api/v1/webhooks?status=disabled", e.keyA, nil, 200); !strings.Contains(string(out), `"total":0`) {
		t.Errorf("disabled list = %s; want none", out)
	}
	e.want("GET", "/api/v1/webhooks?limit=x", e.keyA, nil, 400)

	// Delete: gone from the API, event deletable afterwards.
	e.want("DELETE", "/api/v1/webhooks/"+created.ID, e.keyA, nil, 204)
	e.want("GET", "/api/v1/webhooks/"+created.ID, e.keyA, nil, 404)
	e.want("DELETE", fmt.Sprintf("/api/v1/events/%d", ev.ID), e.keyA, nil, 204)
}

// TestEventRetypeMappedAttribute: PUT /events/{id} changing the type of an attribute a webhook maps is
// a 400 on attributes[i].type naming the webhook, as the OpenAPI spec says, and changes nothing; once the
// mapping is removed the retype goes through, and an unmapped attribute is retyped freely.
func TestEventRetypeMappedAttribute(t *testing.T) {
	e := newEnv(t)
	var ev struct {
		ID         int64
		Attributes []struct{ Name, Type string }
	}
	decodeInto(t, e.want("POST", "/api/v1/events", e.keyA, checkoutEvent(), 201), &ev)
	var wh struct{ ID string }
	decodeInto(t, e.want("POST", "/api/v1/webhooks", e.keyA, seedWebhook("CheckoutSuccess"), 201), &wh)
	eventPath := fmt.Sprintf("/api/v1/events/%d", ev.ID)
	retyped := func(attr, typ string) map[string]any {
		in := checkoutEvent()
		for _, a := range in["attributes"].([]map[string]string) {
			if a["name"] == attr {
				a["type"] = typ
			}
		}
		return in
	}

	out := e.want("PUT", eventPath, e.keyA, retyped("total", "integer"), 400)
	var problem struct {
		Errors []struct{ Field, Message string }
	}
	decodeInto(t, out, &problem)
	if len(problem.Errors) != 1 || problem.Errors[0].Field != "attributes[1].type" || !strings.Contains(problem.Errors[0].Message, wh.ID) {
		t.Fatalf("retyping mapped total = %s; want one error on attributes[1].type naming webhook %s", out, wh.ID)
	}
	decodeInto(t, e.want("GET", eventPath, e.keyA, nil, 200), &ev)
	if ev.Attributes[1].Type != "price" {
		t.Fatalf("total after a refused retype is %s; want price", ev.Attributes[1].Type)
	}

	// purchase_date is not mapped: retyped freely. total, once unmapped, too.
	e.want("PUT", eventPath, e.keyA, retyped("purchase_date", "string"), 200)
	e.want("PATCH", "/api/v1/webhooks/"+wh.ID, e.keyA, map[string]any{"mappings": []map[string]string{{"attribute": "email", "field": "email_address"}}}, 200)
	in := retyped("total", "integer")
	in["attributes"].([]map[string]string)[3]["type"] = "string" // purchase_date as it is now
	e.want("PUT", eventPath, e.keyA, in, 200)
}

func TestWebhookValidationListsEveryField(t *testing.T) {
	e := newEnv(t)
	e.want("POST", "/api/v1/events", e.keyA, checkoutEvent(), 201)
	bad := map[string]any{
		"name": "", "event": "CheckoutSuccess",
		"identify": map[string]string{"kind": "fax", "field": "a..b"},
		"mappings": []map[string]string{
			{"attribute": "nope", "field": "x"}, {"attribute": "email", "field": "a"}, {"attribute": "email", "field": "b"},
		},
	}
	out := e.want("POST", "/api/v1/webhooks", e.keyA, bad, 400)
	for _, field := range []string{`"field":"name"`, `"field":"identify.kind"`, `"field":"identify.field"`, `"field":"mappings[0].attribute"`, `"field":"mappings[2].attribute"`} {
		if !strings.Contains(string(out), field) {
			t.Errorf("problem %s does not list %s", out, field)
		}
	}
	if code, _ := e.do("POST", "/api/v1/webhooks", e.keyA, `{"name":"x","unknown":1}`); code != 400 {
		t.Errorf("unknown field = %d; want 400", code)
	}
	if out := e.want("GET", "/api/v1/webhooks", e.keyA, nil, 200); !strings.Contains(string(out), `"total":0`) {
		t.Errorf("a rejected create left something behind: %s", out)
	}
}

// TestWebhookValuesAsSent: the time zone and on_error round-trip through the API; a bad zone, a bad
// on_error and a mapping the sample does not have are 400s naming the field.
func TestWebhookValuesAsSent(t *testing.T) {
	e := newEnv(t)
	e.want("POST", "/api/v1/events", e.keyA, checkoutEvent(), 201)
	in := seedWebhook("CheckoutSuccess")
	in["time_zone"] = "Europe/Berlin"
	in["mappings"] = []map[string]string{
		{"attribute": "email", "field": "email_address"}, {"attribute": "total", "field": "price", "on_error": "drop"},
	}
	var w struct {
		ID       string
		TimeZone string `json:"time_zone"`
		Mappings []struct {
			OnError string `json:"on_error"`
		}
	}
	decodeInto(t, e.want("POST", "/api/v1/webhooks", e.keyA, in, 201), &w)
	if w.TimeZone != "Europe/Berlin" || len(w.Mappings) != 2 || w.Mappings[1].OnError != "drop" {
		t.Errorf("created %+v; want time zone Europe/Berlin and on_error drop", w)
	}
	for _, tt := range []struct{ body, field, says string }{
		{`{"time_zone":"Berlin"}`, "time_zone", "IANA"},
		{`{"mappings":[{"attribute":"total","field":"price","on_error":"skip"}]}`, "mappings[0].on_error", "fail, drop"},
		{`{"mappings":[{"attribute":"total","field":"items[3]"}]}`, "mappings[0].field", "not in the sample payload"},
	} {
		out := e.want("PATCH", "/api/v1/webhooks/"+w.ID, e.keyA, tt.body, 400)
		if !strings.Contains(string(out), `"field":"`+tt.field+`"`) || !strings.Contains(string(out), tt.says) {
			t.Errorf("PATCH %s = %s; want a problem on %s saying %q", tt.body, out, tt.field, tt.says)
		}
	}
	decodeInto(t, e.want("PATCH", "/api/v1/webhooks/"+w.ID, e.keyA, `{"time_zone":"America/New_York"}`, 200), &w)
	if w.TimeZone != "America/New_York" {
		t.Errorf("patched time zone %q; want America/New_York", w.TimeZone)
	}
}

// TestTenantIsolation: every route that names an object answers 404 for another project's object, and
// lists never show it.
func TestTenantIsolation(t *testing.T) {
	e := newEnv(t)
	var ev struct{ ID int64 }
	decodeInto(t, e.want("POST", "/api/v1/events", e.keyB, checkoutEvent(), 201), &ev)
	var wh struct{ ID string }
	decodeInto(t, e.want("POST", "/api/v1/webhooks", e.keyB, seedWebhook("CheckoutSuccess"), 201), &wh)
	e.want("PUT", "/api/v1/users/u-b", e.keyB, `{"email":"b@example.com"}`, 201)
	e.want("PUT", "/api/v1/devices/hw-b", e.keyB, `{"user_id":"u-b","platform":"ios"}`, 201)
	e.want("PUT", "/api/v1/users/u-b2", e.keyB, `{}`, 201)
	var erased struct{ ID int64 }
	decodeInto(t, e.want("DELETE", "/api/v1/users/u-b2", e.keyB, nil, 202), &erased)
	bKey, err := e.srv.api.projects.Authenticate(context.Background(), e.keyB)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{"{id}": wh.ID}
	for _, r := range e.srv.routes {
		if !strings.Contains(r.path, "{") {
			continue
		}
		path := r.path
		if strings.HasPrefix(path, "/api/v1/events/") {
			path = strings.ReplaceAll(path, "{id}", fmt.Sprint(ev.ID))
		}
		if strings.HasPrefix(path, "/api/v1/api-keys/") {
			path = strings.ReplaceAll(path, "{id}", fmt.Sprint(bKey.KeyID))
		}
		if strings.HasPrefix(path, "/api/v1/erasures/") {
			path = strings.ReplaceAll(path, "{id}", fmt.Sprint(erased.ID))
		}
		for k, v := range ids {
			path = strings.ReplaceAll(path, k, v)
		}
		path = strings.NewReplacer("{user_id}", "u-b", "{hwid}", "hw-b", "{request_id}", "00000000-0000-0000-0000-000000000000").Replace(path)
		var body any
		if r.method == "PUT" && strings.HasPrefix(r.path, "/api/v1/events/") {
			body = checkoutEvent()
		} else if r.method == "PATCH" || r.method == "POST" {
			body = `{}`
		}
		if r.method == "PUT" && !strings.HasPrefix(r.path, "/api/v1/events/") {
			continue // upserts create in the caller's own project; checked below
		}
		if code, out := e.do(r.method, path, e.keyA, body); code != http.StatusNotFound {
			t.Errorf("%s %s as project A = %d %s; want 404", r.method, path, code, out)
		}
	}
	for _, list := range []string{"/api/v1/webhooks", "/api/v1/events"} {
		if out := e.want("GET", list, e.keyA, nil, 200); strings.Contains(string(out), "CheckoutSuccess") {
			t.Errorf("%s as A shows B's objects: %s", list, out)
		}
	}
	if out := e.want("GET", "/api/v1/api-keys", e.keyA, nil, 200); strings.Contains(string(out), e.keyB[:12]) ||
		strings.Contains(string(out), fmt.Sprintf(`"id":%d,`, bKey.KeyID)) {
		t.Errorf("A's key list shows B's key: %s", out)
	}
	if code, out := e.do("GET", "/api/v1/lookup?kind=email&value=b@example.com", e.keyA, nil); code != 404 {
		t.Errorf("lookup of B's email as A = %d %s; want 404", code, out)
	}
	// An upsert by A of the same user id makes A's own user and leaves B's alone.
	e.want("PUT", "/api/v1/users/u-b", e.keyA, `{"email":"a@example.com"}`, 201)
	// B still sees and owns its objects, unchanged; its key still works.
	e.want("GET", "/api/v1/webhooks/"+wh.ID, e.keyB, nil, 200)
	e.want("GET", fmt.Sprintf("/api/v1/api-keys/%d", bKey.KeyID), e.keyB, nil, 200)
	if out := e.want("GET", "/api/v1/users/u-b", e.keyB, nil, 200); !strings.Contains(string(out), "b@example.com") || !strings.Contains(string(out), "hw-b") {
		t.Errorf("B's user after A's upsert = %s", out)
	}
}

// TestNoSecretsInLogs: whatever the admin API does, no webhook secret, Authorization value or API key
// reaches a log line, including the error paths that do log.
func TestNoSecretsInLogs(t *testing.T) {
	e := newEnv(t)
	e.want("POST", "/api/v1/events", e.keyA, checkoutEvent(), 201)
	var created struct {
		ID          string
		Credentials struct{ Secret string }
	}
	decodeInto(t, e.want("POST", "/api/v1/webhooks", e.keyA, seedWebhook("CheckoutSuccess"), 201), &created)
	e.want("GET", "/api/v1/webhooks/"+created.ID+"/credentials", e.keyA, nil, 200)
	e.want("POST", "/api/v1/webhooks/"+created.ID+"/rotate-secret", e.keyA, nil, 200)
	e.want("GET", "/api/v1/webhooks", e.keyA+"tampered", nil, 401)
	// An internal error is logged: cancel the ClickHouse connection under the activity reader.
	_ = e.ch.Close()
	e.do("GET", "/api/v1/webhooks/"+created.ID+"/summary", e.keyA, nil)
	logs := e.logs.String()
	if !strings.Contains(logs, "admin request failed") {
		t.Fatalf("the forced error was not logged; the test would prove nothing. logs:\n%s", logs)
	}
	secret := strings.TrimPrefix(created.Credentials.Secret, "Bearer ")
	for _, s := range []string{"whsec_", secret, e.keyA, e.keyA[:20], "Bearer "} {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain %.12q…:\n%s", s, logs)
		}
	}
}
