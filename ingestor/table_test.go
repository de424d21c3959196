package ingestor

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inlet-dev/inlet/internal/domainerr"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// The status table of DESIGN.md as test rows, shared by the unit test (fake producer) and the
// integration test (real Kafka). Rows that need a particular load or producer state (429, 503 for Kafka)
// have tests of their own.

const tableMaxBody = 2048

// Public ids of the test webhooks (22 base62 characters, as secret.NewPublicID makes).
const (
	idOk          = "whOk000000000000000000"
	idOther       = "whOther000000000000000"
	idDisabled    = "whDisabled000000000000"
	idUnavailable = "whUnavailable000000000"
	idBroken      = "whBroken00000000000000"
	idNope        = "whNope0000000000000000"
	idRot         = "whRot00000000000000000"
	idNoprev      = "whNoprev00000000000000"
)

// tableConfig has a body limit small enough to cross cheaply.
func tableConfig() Config {
	c := testConfig()
	c.MaxBodyBytes = tableMaxBody
	c.AuthPreviewBytes = 16
	return c
}

// tableHooks are the webhooks the rows talk to.
func tableHooks() *fakeHooks {
	f := &fakeHooks{hooks: map[string]*webhook.Hook{}, errs: map[string]error{
		idUnavailable: domainerr.ErrUnavailable,
		idBroken:      errors.New("pool closed"),
	}}
	f.set(testHook(idOk))
	f.set(testHook(idOther))
	d := testHook(idDisabled)
	d.Enabled = false
	f.set(d)
	return f
}

type wantRecord struct {
	outcome   wire.Outcome
	value     []byte
	bodyBytes int
}

type row struct {
	name   string
	req    req
	status int
	code   string // error code; "" for 202
	retry  bool
	record *wantRecord // nil: nothing appended
	detail string      // the record's wire.HeaderEdgeDetail
}

var (
	goodBody  = []byte(`{"user_id":"12345","email_address":"jane@example.com","price":99.99,"tags":["a","b"]}`)
	bigBody   = []byte(`{"pad":"` + strings.Repeat("x", tableMaxBody) + `"}`)
	deepBody  = []byte(strings.Repeat("[", 65) + strings.Repeat("]", 65))
	okayDeep  = []byte(strings.Repeat("[", 64) + strings.Repeat("]", 64))
	notJSON   = []byte(`{"user_id": 12345,`)
	longWrong = []byte(`{"user_id":"12345","note":"a body longer than the sixteen-byte preview"}`)
	// What JSON parsers read differently (package jsonvalid's rule): the edge refuses them all.
	controlChar   = []byte("{\"user_id\":\"12345\",\"note\":\"line one\nline two\"}")
	invalidUTF8   = []byte("{\"user_id\":\"12345\",\"name\":\"Jos\xe9\"}")
	loneSurrogate = []byte(`{"user_id":"\ud800"}`)
	duplicateKey  = []byte(`{"user_id":"evil","user_id":"12345"}`)
)

func statusRows() []row {
	ok := secretOf(idOk)
	return []row{
		{name: "accepted", req: req{path: "/hooks/" + idOk, auth: ok, body: goodBody}, status: 202,
			record: &wantRecord{wire.OutcomeAccepted, goodBody, len(goodBody)}},
		{name: "accepted at max depth", req: req{path: "/hooks/" + idOk, auth: ok, body: okayDeep}, status: 202,
			record: &wantRecord{wire.OutcomeAccepted, okayDeep, len(okayDeep)}},
		{name: "unknown webhook", req: req{path: "/hooks/" + idNope, auth: ok, body: goodBody}, status: 404, code: "webhook_not_found"},
		{name: "disabled", req: req{path: "/hooks/" + idDisabled, auth: secretOf(idDisabled), body: goodBody}, status: 403, code: "webhook_disabled",
			record: &wantRecord{wire.OutcomeWebhookDisabled, goodBody, len(goodBody)}},
		{name: "auth missing", req: req{path: "/hooks/" + idOk, body: goodBody}, status: 401, code: "auth_rejected",
			record: &wantRecord{wire.OutcomeAuthRejected, goodBody[:16], len(goodBody)}, detail: "credentials_missing"},
		{name: "auth wrong, preview truncated", req: req{path: "/hooks/" + idOk, auth: "Bearer whsec_wrong", body: longWrong}, status: 401, code: "auth_rejected",
			record: &wantRecord{wire.OutcomeAuthRejected, longWrong[:16], len(longWrong)}, detail: "credentials_mismatch"},
		{name: "auth of another webhook", req: req{path: "/hooks/" + idOk, auth: secretOf(idOther), body: []byte(`{}`)}, status: 401, code: "auth_rejected",
			record: &wantRecord{wire.OutcomeAuthRejected, []byte(`{}`), 2}, detail: "credentials_mismatch"},
		{name: "auth without Bearer", req: req{path: "/hooks/" + idOk, auth: strings.TrimPrefix(ok, "Bearer "), body: []byte(`{}`)}, status: 401, code: "auth_rejected",
			record: &wantRecord{wire.OutcomeAuthRejected, []byte(`{}`), 2}, detail: "credentials_mismatch"},
		{name: "body over limit", req: req{path: "/hooks/" + idOk, auth: ok, body: bigBody}, status: 413, code: "payload_too_large",
			record: &wantRecord{wire.OutcomePayloadTooLarge, nil, len(bigBody)}},
		{name: "body over limit, wrong auth", req: req{path: "/hooks/" + idOk, auth: "Bearer x", body: bigBody}, status: 401, code: "auth_rejected",
			record: &wantRecord{wire.OutcomeAuthRejected, nil, len(bigBody)}, detail: "credentials_mismatch"},
		{name: "not json", req: req{path: "/hooks/" + idOk, auth: ok, body: notJSON}, status: 400, code: "invalid_json",
			record: &wantRecord{wire.OutcomeInvalidJSON, notJSON, len(notJSON)}, detail: "unexpected end of JSON input at byte 18"},
		{name: "empty body", req: req{path: "/hooks/" + idOk, auth: ok}, status: 400, code: "invalid_json",
			record: &wantRecord{wire.OutcomeInvalidJSON, nil, 0}, detail: "empty body"},
		{name: "too deep", req: req{path: "/hooks/" + idOk, auth: ok, body: deepBody}, status: 400, code: "invalid_json",
			record: &wantRecord{wire.OutcomeInvalidJSON, deepBody, len(deepBody)}, detail: "nested deeper than 64 at byte 64"},
		{name: "control character in a string", req: req{path: "/hooks/" + idOk, auth: ok, body: controlChar}, status: 400, code: "invalid_json",
			record: &wantRecord{wire.OutcomeInvalidJSON, controlChar, len(controlChar)}, detail: "control character U+000A in string at byte 35"},
		{name: "invalid UTF-8", req: req{path: "/hooks/" + idOk, auth: ok, body: invalidUTF8}, status: 400, code: "invalid_json",
			record: &wantRecord{wire.OutcomeInvalidJSON, invalidUTF8, len(invalidUTF8)}, detail: "invalid UTF-8 at byte 30"},
		{name: "lone surrogate", req: req{path: "/hooks/" + idOk, auth: ok, body: loneSurrogate}, status: 400, code: "invalid_json",
			record: &wantRecord{wire.OutcomeInvalidJSON, loneSurrogate, len(loneSurrogate)}, detail: `lone surrogate \ud800 at byte 12`},
		{name: "duplicate key", req: req{path: "/hooks/" + idOk, auth: ok, body: duplicateKey}, status: 400, code: "invalid_json",
			record: &wantRecord{wire.OutcomeInvalidJSON, duplicateKey, len(duplicateKey)}, detail: `duplicate key "user_id" at byte 18`},
		{name: "config unavailable", req: req{path: "/hooks/" + idUnavailable, auth: ok, body: goodBody}, status: 503, code: "unavailable", retry: true},
		{name: "config lookup broken", req: req{path: "/hooks/" + idBroken, auth: ok, body: goodBody}, status: 503, code: "unavailable", retry: true},
		{name: "GET", req: req{method: "GET", path: "/hooks/" + idOk, auth: ok}, status: 405, code: "method_not_allowed"},
		{name: "PUT", req: req{method: "PUT", path: "/hooks/" + idOk, auth: ok, body: goodBody}, status: 405, code: "method_not_allowed"},
		{name: "other path", req: req{path: "/hooks", auth: ok, body: goodBody}, status: 404, code: "not_found"},
		{name: "nested path", req: req{path: "/hooks/" + idOk + "/x", auth: ok, body: goodBody}, status: 404, code: "not_found"},
		{name: "root GET", req: req{method: "GET", path: "/"}, status: 404, code: "not_found"},
	}
}

// checkAnswer compares an answer with its row and returns the request id of a 202.
func checkAnswer(t *testing.T, r row, a answer) string {
	t.Helper()
	if a.status != r.status {
		t.Fatalf("status %d (body %s); want %d", a.status, a.body, r.status)
	}
	if got := a.retryAfter != ""; got != r.retry {
		t.Errorf("Retry-After %q; want present=%v", a.retryAfter, r.retry)
	}
	if r.status == 405 && a.allow != "POST" {
		t.Errorf("Allow %q; want POST", a.allow)
	}
	if r.status == 202 {
		var ok struct {
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal([]byte(a.body), &ok); err != nil || ok.RequestID == "" {
			t.Fatalf("202 body %q; want {\"request_id\":…}", a.body)
		}
		return ok.RequestID
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(a.body), &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", a.body, err)
	}
	if e.Error.Code != r.code || e.Error.Message == "" {
		t.Errorf("error code %q message %q; want code %q and a message", e.Error.Code, e.Error.Message, r.code)
	}
	return ""
}

// checkRecord compares a record with what the row expects, every header exactly.
func checkRecord(t *testing.T, topic string, w *wantRecord, webhookID, requestID string, status int, rec *kgo.Record, before, after time.Time) {
	t.Helper()
	checkRecordOf(t, topic, w, testHook(webhookID), requestID, status, rec, before, after)
}

// checkRecordOf is checkRecord for the webhook config h.
func checkRecordOf(t *testing.T, topic string, w *wantRecord, h *webhook.Hook, requestID string, status int, rec *kgo.Record, before, after time.Time) {
	t.Helper()
	webhookID := h.PublicID
	if rec.Topic != topic {
		t.Errorf("topic %q; want %q", rec.Topic, topic)
	}
	if string(rec.Key) != webhookID {
		t.Errorf("key %q; want %q", rec.Key, webhookID)
	}
	if !bytes.Equal(rec.Value, w.value) {
		t.Errorf("value %q; want %q", rec.Value, w.value)
	}
	// Nine headers always; the detail, a form's content type and the kept sender headers when there
	// are some. A refusal in words says why; auth_rejected which way verification failed;
	// payload_too_large only when a signature could not be checked.
	wantHeaders := 9
	for _, h := range rec.Headers {
		if h.Key == wire.HeaderEdgeDetail || h.Key == wire.HeaderContentType || strings.HasPrefix(h.Key, wire.HeaderSenderPrefix) {
			wantHeaders++
		}
	}
	if len(rec.Headers) != wantHeaders {
		t.Errorf("%d headers; want %d: %v", len(rec.Headers), wantHeaders, rec.Headers)
	}
	d, ok := header(rec, wire.HeaderEdgeDetail)
	switch w.outcome {
	case wire.OutcomeInvalidJSON, wire.OutcomeAuthRejected, wire.OutcomeInvalidForm, wire.OutcomeUnsupportedMediaType:
		if !ok || d == "" {
			t.Errorf("no detail header on a %s record", w.outcome)
		}
	case wire.OutcomePayloadTooLarge:
		if ok && !strings.HasPrefix(d, "signature_not_verified") {
			t.Errorf("detail %q on a payload_too_large record", d)
		}
	default:
		if ok {
			t.Errorf("detail %q on a %s record; want none", d, w.outcome)
		}
	}
	rid, _ := header(rec, wire.HeaderRequestID)
	u, err := uuid.Parse(rid)
	if err != nil || u.Version() != 7 || len(rid) != 36 {
		t.Errorf("request id %q is not a UUIDv7 (%v)", rid, err)
	}
	if requestID != "" && rid != requestID {
		t.Errorf("request id %q; want the 202's %q", rid, requestID)
	}
	truncated := "0"
	if len(w.value) < w.bodyBytes {
		truncated = "1"
	}
	want := map[string]string{
		wire.HeaderWebhookID:     webhookID,
		wire.HeaderProjectID:     strconv.FormatInt(h.ProjectID, 10),
		wire.HeaderConfigVersion: strconv.FormatInt(h.Version, 10),
		wire.HeaderEdgeOutcome:   string(w.outcome),
		wire.HeaderEdgeStatus:    strconv.Itoa(status),
		wire.HeaderBodyBytes:     strconv.Itoa(w.bodyBytes),
		wire.HeaderTruncated:     truncated,
	}
	for k, v := range want {
		if got, ok := header(rec, k); !ok || got != v {
			t.Errorf("header %s = %q; want %q", k, got, v)
		}
	}
	at, _ := header(rec, wire.HeaderReceivedAt)
	ms, err := strconv.ParseInt(at, 10, 64)
	if err != nil || ms < before.UnixMilli() || ms > after.UnixMilli() {
		t.Errorf("received-at %q not within [%d, %d]", at, before.UnixMilli(), after.UnixMilli())
	}
	if rec.Timestamp.UnixMilli() != ms {
		t.Errorf("record timestamp %d; want received-at %d", rec.Timestamp.UnixMilli(), ms)
	}
}

// checkDetail compares a record's detail header with the row's.
func checkDetail(t *testing.T, r row, rec *kgo.Record) {
	t.Helper()
	if got, _ := header(rec, wire.HeaderEdgeDetail); got != r.detail {
		t.Errorf("detail %q; want %q", got, r.detail)
	}
}

func TestStatusTable(t *testing.T) {
	for _, r := range statusRows() {
		t.Run(r.name, func(t *testing.T) {
			prod := &fakeProducer{}
			e := startEdge(t, tableConfig(), tableHooks(), prod)
			before := time.Now()
			a := e.do(t, r.req)
			after := time.Now()
			rid := checkAnswer(t, r, a)
			if err := e.stop(); err != nil { // flushes: async records are in
				t.Fatalf("stop: %v", err)
			}
			recs := prod.got()
			if r.record == nil {
				if len(recs) != 0 {
					t.Fatalf("%d records appended; want none", len(recs))
				}
				return
			}
			if len(recs) != 1 {
				t.Fatalf("%d records appended; want 1", len(recs))
			}
			id := strings.TrimPrefix(r.req.path, "/hooks/")
			checkRecord(t, "requests", r.record, id, rid, r.status, recs[0], before, after)
			checkDetail(t, r, recs[0])
		})
	}
}

// The ways of failing authentication answer byte-for-byte the same.
func TestAuthRejectionsIdentical(t *testing.T) {
	e := startEdge(t, testConfig(), tableHooks(), &fakeProducer{})
	cred := strings.TrimPrefix(secretOf(idOk), "Bearer ")
	var first answer
	for i, auth := range []string{"", "garbage", "Bearer whsec_wrong", "bearer whsec_wrong", secretOf(idOther),
		strings.ToLower(secretOf(idOk)), "Basic " + cred, "Bearer" + cred, "Bearer\t" + cred, "Bearer " + cred + "x"} {
		a := e.do(t, req{path: "/hooks/" + idOk, auth: auth, body: goodBody})
		if i == 0 {
			first = a
			if a.status != 401 {
				t.Fatalf("status %d; want 401", a.status)
			}
			continue
		}
		if a != first {
			t.Errorf("auth %d answered %+v; want the same as missing auth %+v", i, a, first)
		}
	}
}

// The scheme is case-insensitive (RFC 9110 §11.1) and may be followed by several spaces (§11.4); the
// credential is compared as it is, in constant time.
func TestAuthSchemeCaseInsensitive(t *testing.T) {
	e := startEdge(t, testConfig(), tableHooks(), &fakeProducer{})
	cred := strings.TrimPrefix(secretOf(idOk), "Bearer ")
	wrong := "whsec_wrong-secret"
	for _, scheme := range []string{"Bearer ", "bearer ", "BEARER ", "bEaReR ", "Bearer   "} {
		if a := e.do(t, req{path: "/hooks/" + idOk, auth: scheme + cred, body: goodBody}); a.status != 202 {
			t.Errorf("%q + the secret: %d %s; want 202", scheme, a.status, a.body)
		}
		if a := e.do(t, req{path: "/hooks/" + idOk, auth: scheme + wrong, body: goodBody}); a.status != 401 {
			t.Errorf("%q + a wrong secret: %d %s; want 401", scheme, a.status, a.body)
		}
		if a := e.do(t, req{path: "/hooks/" + idOk, auth: scheme + strings.ToUpper(cred), body: goodBody}); a.status != 401 {
			t.Errorf("%q + the secret in upper case: %d %s; want 401 (only the scheme is case-insensitive)", scheme, a.status, a.body)
		}
	}
	// During a rotation's grace the previous secret is read the same way.
	h := testHook(idRot)
	h.SecretDigest = secret.Digest([]byte("Bearer whsec_new"))
	h.PrevSecretDigest = secret.Digest([]byte("Bearer whsec_old"))
	h.PrevSecretUntil = time.Now().Add(time.Hour)
	authorized := func(auth string, now time.Time) bool { return h.Verify(authOnly(auth), now) == verify.OK }
	if !authorized("BEARER whsec_old", time.Now()) || !authorized("bearer whsec_new", time.Now()) {
		t.Error("previous or current secret under a lower/upper-case scheme refused during the grace")
	}
	if authorized("bearer whsec_old", h.PrevSecretUntil.Add(time.Second)) {
		t.Error("previous secret accepted after the grace")
	}
}

// authOnly is a verify.Request with an Authorization header and nothing else.
type authOnly string

func (a authOnly) Method() []byte      { return []byte("POST") }
func (a authOnly) URI() []byte         { return nil }
func (a authOnly) Body() []byte        { return nil }
func (a authOnly) Query(string) []byte { return nil }
func (a authOnly) Header(name string) []byte {
	if strings.EqualFold(name, "Authorization") && a != "" {
		return []byte(a)
	}
	return nil
}

func TestRotationGrace(t *testing.T) {
	hooks := tableHooks()
	h := testHook(idRot)
	h.SecretDigest = secret.Digest([]byte("Bearer whsec_new"))
	h.PrevSecretDigest = secret.Digest([]byte("Bearer whsec_old"))
	h.PrevSecretUntil = time.Now().Add(time.Hour)
	hooks.set(h)
	e := startEdge(t, testConfig(), hooks, &fakeProducer{})
	for _, c := range []struct {
		auth string
		want int
	}{{"Bearer whsec_new", 202}, {"Bearer whsec_old", 202}, {"Bearer whsec_other", 401}} {
		if a := e.do(t, req{path: "/hooks/" + idRot, auth: c.auth, body: goodBody}); a.status != c.want {
			t.Errorf("during grace, %s: status %d; want %d", c.auth, a.status, c.want)
		}
	}
	expired := *h
	expired.PrevSecretUntil = time.Now().Add(-time.Second)
	hooks.set(&expired)
	for _, c := range []struct {
		auth string
		want int
	}{{"Bearer whsec_new", 202}, {"Bearer whsec_old", 401}} {
		if a := e.do(t, req{path: "/hooks/" + idRot, auth: c.auth, body: goodBody}); a.status != c.want {
			t.Errorf("after grace, %s: status %d; want %d", c.auth, a.status, c.want)
		}
	}
	// A zero previous digest must not let an empty/absent previous secret through.
	none := testHook(idNoprev)
	none.PrevSecretUntil = time.Now().Add(time.Hour)
	hooks.set(none)
	if a := e.do(t, req{path: "/hooks/" + idNoprev, auth: "", body: goodBody}); a.status != 401 {
		t.Errorf("no previous secret, no auth: status %d; want 401", a.status)
	}
}

func TestErrorCodesStable(t *testing.T) {
	seen := map[string]int{}
	for i, r := range results {
		if r.status == 0 || r.label == "" {
			t.Errorf("result %d has no status or label", i)
		}
		if r.status >= 300 && !json.Valid(r.body) {
			t.Errorf("result %s body %q is not JSON", r.label, r.body)
		}
		if s, ok := seen[r.code]; ok && r.code != "" && s != r.status {
			t.Errorf("code %s used with statuses %d and %d", r.code, s, r.status)
		}
		seen[r.code] = r.status
	}
}
