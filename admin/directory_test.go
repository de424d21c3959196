package admin

import (
	"strings"
	"testing"
)

func TestDirectoryEndpoints(t *testing.T) {
	e := newEnv(t)
	e.want("PUT", "/api/v1/users/12345", e.keyA, `{"email":"Jane@Example.com","phone":"+1 (555) 123-4567"}`, 201)
	out := e.want("PUT", "/api/v1/users/12345", e.keyA, `{"email":"Jane@Example.com","phone":"+15551234567"}`, 200)
	if !strings.Contains(string(out), `"phone":"+15551234567"`) {
		t.Errorf("phone not normalised to E.164: %s", out)
	}
	out = e.want("PUT", "/api/v1/users/other", e.keyA, `{"email":"jane@example.com"}`, 409)
	if !strings.Contains(string(out), `"field":"email"`) {
		t.Errorf("conflict does not name the field: %s", out)
	}
	out = e.want("PUT", "/api/v1/users/bad", e.keyA, `{"email":"not-an-email","phone":"12"}`, 400)
	if !strings.Contains(string(out), `"field":"email"`) || !strings.Contains(string(out), `"field":"phone"`) {
		t.Errorf("validation lists %s; want email and phone", out)
	}
	e.want("PUT", "/api/v1/devices/hw-1", e.keyA, `{"user_id":"12345","platform":"ios"}`, 201)
	out = e.want("GET", "/api/v1/users/12345", e.keyA, nil, 200)
	if !strings.Contains(string(out), `"hwid":"hw-1"`) {
		t.Errorf("user view lacks its device: %s", out)
	}
	for _, q := range []string{"kind=email&value=JANE@example.COM", "kind=phone&value=%2B1-555-123-4567", "kind=user_id&value=12345", "kind=hwid&value=hw-1"} {
		out := e.want("GET", "/api/v1/lookup?"+q, e.keyA, nil, 200)
		if !strings.Contains(string(out), `"user_id":"12345"`) || !strings.Contains(string(out), "hw-1") {
			t.Errorf("lookup %s = %s", q, out)
		}
	}
	e.want("GET", "/api/v1/lookup?kind=fax&value=1", e.keyA, nil, 400)
	e.want("GET", "/api/v1/lookup?kind=email&value=nobody@example.com", e.keyA, nil, 404)

	ndjson := strings.Join([]string{
		`{"type":"user","user_id":"u1","email":"u1@example.com"}`,
		`{"type":"user","user_id":"u2","email":"u1@EXAMPLE.com"}`, // conflict with u1
		`not json`,
		`{"type":"device","hwid":"hw-u1","user_id":"u1","platform":"android"}`,
		`{"type":"car","id":"x"}`,
	}, "\n")
	code, body := e.doHeader("POST", "/api/v1/directory/import", e.keyA, ndjson, "Content-Type", "application/x-ndjson")
	if code != 200 {
		t.Fatalf("import = %d %s", code, body)
	}
	for _, want := range []string{`"users":1`, `"devices":1`, `"failed":3`, `"line":2`, `"line":3`, `"line":5`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("import result %s lacks %s", body, want)
		}
	}
	e.want("GET", "/api/v1/users/u2", e.keyA, nil, 404)
	e.want("DELETE", "/api/v1/devices/hw-u1", e.keyA, nil, 202)
	e.want("DELETE", "/api/v1/users/u1", e.keyA, nil, 202)
	e.want("GET", "/api/v1/users/u1", e.keyA, nil, 404)
}
