package pipeline_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/inlet-dev/inlet/internal/directory"
	"github.com/inlet-dev/inlet/internal/identify"
	"github.com/inlet-dev/inlet/internal/pgdb"
	"github.com/inlet-dev/inlet/internal/project"
	"github.com/inlet-dev/inlet/internal/secret"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/webhook"
	"github.com/inlet-dev/inlet/internal/wire"
)

// configPlane is a fresh PostgreSQL database with one project, "shop", and a webhook store sealing
// secrets with the local profile's key (the one the inlet binary uses without settings).
func configPlane(t *testing.T) (pgdb.Config, *pgxpool.Pool, project.Project, *webhook.Store) {
	t.Helper()
	pgcfg, pool := testenv.Postgres(t)
	p, _, err := project.NewStore(pool).Create(context.Background(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := base64.StdEncoding.DecodeString("aW5sZXQtbG9jYWwtZGV2LW1hc3Rlci1rZXktMzJieXQ=")
	sealer, err := secret.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return pgcfg, pool, p, webhook.NewStore(pool, sealer)
}

// addUser puts u in the directory of projectID, for requests to be identified as u.
func addUser(t *testing.T, pool *pgxpool.Pool, projectID int64, u directory.User) {
	t.Helper()
	dir, err := directory.NewStore(pool, project.NewStore(pool), directory.Defaults(), nil, testenv.Logger())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := dir.UpsertUser(context.Background(), projectID, u); err != nil {
		t.Fatal(err)
	}
}

// inletEnv is the settings that point an inlet process at the config plane pg and at the env's
// ClickHouse database and topics.
func (e *env) inletEnv(pg pgdb.Config) []string {
	return []string{"INLET_POSTGRES_DSN=" + pg.DSN, "INLET_CLICKHOUSE_DATABASE=" + e.chcfg.Database,
		"INLET_KAFKA_REQUESTS_TOPIC=" + e.kcfg.RequestsTopic, "INLET_KAFKA_EVENTS_TOPIC=" + e.kcfg.EventsTopic}
}

// TestHostileRequestsThroughTheStack is the adversarial test of the whole path: the real `inlet
// ingestor` and `inlet pipeline` processes on the real PostgreSQL, Kafka and ClickHouse. Senders post
// hostile requests the edge accepts (a body at the size limit, huge strings and numbers in mapped
// fields, many mappings of one field, nesting at the depth limit, arrays where scalars are mapped,
// every attribute type) amid normal traffic. Every 202 gets exactly one activity row with the reason
// its case predicts, every normal request succeeds and fires one event, and the pipeline stays ready.
func TestHostileRequestsThroughTheStack(t *testing.T) {
	pgcfg, pool, p, ws := configPlane(t)
	e := newEnv(t)
	ctx := context.Background()
	attrs := []webhook.Attribute{{Name: "email", Type: webhook.TypeString}, {Name: "total", Type: webhook.TypePrice},
		{Name: "qty", Type: webhook.TypeInteger}, {Name: "day", Type: webhook.TypeDate}, {Name: "tags", Type: webhook.TypeList},
		{Name: "gift", Type: webhook.TypeBoolean}}
	var many []webhook.Attribute
	for i := range 20 {
		many = append(many, webhook.Attribute{Name: fmt.Sprintf("note%d", i), Type: webhook.TypeString})
	}
	hook := func(name string, attrs []webhook.Attribute, field func(webhook.Attribute) string) (string, string) {
		ev, err := ws.CreateEvent(ctx, p.ID, webhook.EventInput{Name: name, Attributes: attrs})
		if err != nil {
			t.Fatal(err)
		}
		var ms []webhook.Mapping
		for _, a := range attrs {
			ms = append(ms, webhook.Mapping{Attribute: a.Name, Field: field(a)})
		}
		wh, sec, err := ws.Create(ctx, p.ID, webhook.WebhookInput{Name: name, EventID: ev.ID,
			Identify: webhook.Identify{Kind: identify.ByUserID, Field: "user_id"}, Mappings: ms})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ws.SetEnabled(ctx, p.ID, wh.ID, wh.Version, true); err != nil {
			t.Fatal(err)
		}
		return wh.ID, secret.Authorization(sec)
	}
	fields := map[string]string{"email": "email_address", "total": "price", "qty": "qty", "day": "purchase_date", "tags": "tags", "gift": "gift"}
	shopID, shopAuth := hook("Checkout", attrs, func(a webhook.Attribute) string { return fields[a.Name] })
	manyID, manyAuth := hook("Notes", many, func(webhook.Attribute) string { return "note" })
	addUser(t, pool, p.ID, directory.User{UserID: "12345"})

	bin := testenv.BuildInlet(t)
	edge, pipelineAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	common := e.inletEnv(pgcfg)
	testenv.StartInlet(t, bin, "ingestor", append(common, "INLET_INGESTOR_LISTEN_ADDR="+edge, "INLET_INGESTOR_INTERNAL_ADDR=127.0.0.1:0")...)
	testenv.StartInlet(t, bin, "pipeline", append(common, "INLET_PIPELINE_GROUP="+e.group, "INLET_PIPELINE_INTERNAL_ADDR="+pipelineAddr,
		"INLET_PIPELINE_FLUSH_INTERVAL=200ms")...)

	const maxBody = 1 << 20 // ingestor.max_body_bytes
	atLimit := `{"user_id":"12345","email_address":"`
	atLimit += strings.Repeat("é", (maxBody-len(atLimit)-2)/2)
	atLimit += strings.Repeat("x", maxBody-len(atLimit)-2) + `"}`
	seed := `{"user_id":"12345","email_address":"jane@example.com","price":99.99,"qty":"3","purchase_date":"2024-03-15","tags":"a, b","gift":"yes"}`
	type send struct{ webhook, auth, body, reason string }
	cases := []send{
		{shopID, shopAuth, atLimit, wire.ReasonAttributeTooLarge},
		{shopID, shopAuth, `{"user_id":"12345","price":1e10000}`, wire.ReasonNumberOutOfRange},
		{shopID, shopAuth, `{"user_id":"12345","qty":1e999999999}`, wire.ReasonNumberOutOfRange},
		{shopID, shopAuth, `{"user_id":"12345","purchase_date":-1e9999}`, wire.ReasonNumberOutOfRange},
		{shopID, shopAuth, `{"user_id":"12345","email_address":["a","b"]}`, wire.ReasonAttributeTypeMismatch},
		{shopID, shopAuth, `{"user_id":"12345","gift":{"a":1}}`, wire.ReasonAttributeTypeMismatch},
		{shopID, shopAuth, `{"user_id":"12345","deep":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}`, ""},
		{shopID, shopAuth, `{"user_id":"` + strings.Repeat("9", 4000) + `"}`, wire.ReasonIdentifierInvalid},
		{shopID, shopAuth, `{"user_id":12345,"email_address":12.5,"price":"0.10","qty":1e3,"purchase_date":1710460800000,"tags":[1,true,"x"],"gift":0}`, ""},
		{manyID, manyAuth, `{"user_id":"12345","note":"` + strings.Repeat("n", 60_000) + `"}`, wire.ReasonEventTooLarge},
	}
	var all []send
	for range 5 {
		for _, c := range cases {
			all = append(all, c, send{shopID, shopAuth, seed, ""}, send{shopID, shopAuth, seed, ""})
		}
	}

	client := &http.Client{Timeout: 30 * time.Second}
	post := func(s send) (string, int) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+edge+"/hooks/"+s.webhook, strings.NewReader(s.body))
		req.Header.Set("Authorization", s.auth)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err.Error(), 0
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var ok struct {
			RequestID string `json:"request_id"`
		}
		_ = json.Unmarshal(b, &ok)
		if resp.StatusCode != http.StatusAccepted {
			return string(b), resp.StatusCode
		}
		return ok.RequestID, resp.StatusCode
	}
	testenv.WaitFor(t, "the edge to answer", 60*time.Second, func() bool {
		_, code := post(send{shopID, shopAuth, seed, ""})
		return code == http.StatusAccepted
	})
	want := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan send)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range next {
				id, code := post(s)
				mu.Lock()
				if code != http.StatusAccepted {
					t.Errorf("%.60s: %d %s; want 202", s.body, code, id)
				} else {
					want[id] = s.reason
				}
				mu.Unlock()
			}
		}()
	}
	for _, s := range all {
		next <- s
	}
	close(next)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	total := uint64(len(want) + 1) // and the first request, which waited for the edge
	e.waitCount(t, "SELECT count() FROM activity_log", total, 120*time.Second)
	got := e.reasons(t)
	for id, reason := range want {
		if g, ok := got[id]; !ok || g != reason {
			t.Errorf("request %s: reason %q (logged: %v); want %q", id, g, ok, reason)
		}
	}
	successes := uint64(0)
	for _, r := range got {
		if r == "" {
			successes++
		}
	}
	e.waitCount(t, "SELECT count() FROM events", successes, 60*time.Second)
	if ev := e.allEvents(t); uint64(len(ev)) != successes {
		t.Errorf("the events topic has %d events; want %d (one per success)", len(ev), successes)
	}
	resp, err := client.Get("http://" + pipelineAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || bytes.Contains(body, []byte("stalled")) {
		t.Errorf("pipeline /readyz: %d %s; want 200", resp.StatusCode, body)
	}
}
