package ingestor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"

	"github.com/inlet-dev/inlet/internal/wire"
)

// statuses the request handler may answer (DESIGN.md's table, plus 405/404 for other methods and paths).
var handlerStatuses = map[int]bool{200: true, 202: true, 400: true, 401: true, 403: true, 404: true, 405: true, 413: true, 415: true, 429: true, 503: true}

// FuzzHandler drives random methods, paths, Authorization values, content types and bodies through the
// handler (and the too-large path of the error handler), to Bearer webhooks and to webhooks connected
// to Slack, Zoom (handshakes on POST), Meta (on GET) and Twilio (forms, the URL signed): it must never
// panic, and always answer a status of the table with a JSON body (a handshake's own answer aside).
func FuzzHandler(f *testing.F) {
	f.Add("POST", "/hooks/"+idOk, secretOf(idOk), "", []byte(`{"a":1}`), false)
	f.Add("POST", "/hooks/"+idOk, "", "application/json", []byte(`{"a":"\"[[["}`), false)
	f.Add("POST", "/hooks/"+idDisabled, secretOf(idDisabled), "", []byte(`[`), true)
	f.Add("GET", "/hooks/"+idOk, "Bearer x", "", []byte(nil), false)
	f.Add("POST", "/hooks/"+idUnavailable, secretOf(idOk), "", []byte(`{}`), false)
	f.Add("POST", "/hooks/%2e%2e/"+idOk, secretOf(idOk), "", []byte(strings.Repeat("[", 100)), false)
	f.Add("DELETE", "/", "", "", []byte("\x00\xff"), true)
	f.Add("POST", "/hooks/"+idOk, secretOf(idOk), "application/x-www-form-urlencoded", []byte("a=1&b=%zz"), false)
	f.Add("POST", "/hooks/"+idOk, secretOf(idOk), "multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--"), false)
	f.Add("POST", "/hooks/"+idOf("slack"), "", "", []byte(`{"type":"url_verification","challenge":"c"}`), false)
	f.Add("POST", "/hooks/"+idOf("zoom"), "", "", []byte(`{"event":"endpoint.url_validation","payload":{"plainToken":"p"}}`), false)
	f.Add("GET", "/hooks/"+idOf("meta")+"?hub.mode=subscribe&hub.verify_token=t&hub.challenge=1", "", "", []byte(nil), false)
	f.Add("POST", "/hooks/"+idOf("twilio")+"?x=%3A", "", "application/x-www-form-urlencoded", []byte(twilioForm), false)
	cfg := testConfig()
	cfg.RateBurst = 50
	cfg.RatePerWebhook = 10
	hooks := tableHooks()
	for _, name := range []string{"slack", "zoom", "meta", "twilio"} {
		h := hookFor(f, modeNamed(f, name), "")
		h.HandshakeToken = "t"
		hooks.set(h)
	}
	s, err := New(cfg, Deps{Hooks: hooks, Producer: &fakeProducer{}, Topic: "requests", Registry: newReg(), Logger: testLog()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, auth, contentType string, body []byte, tooLarge bool) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI(path)
		if auth != "" {
			ctx.Request.Header.Set("Authorization", auth)
		}
		if contentType != "" {
			ctx.Request.Header.SetContentType(contentType)
		}
		ctx.Request.SetBody(body)
		if tooLarge {
			s.handleError(&ctx, fasthttp.ErrBodyTooLarge)
		} else {
			s.handle(&ctx)
		}
		if st := ctx.Response.StatusCode(); !handlerStatuses[st] {
			t.Fatalf("%s %q: status %d is not in the table", method, path, st)
		}
		if b := ctx.Response.Body(); ctx.Response.StatusCode() >= 300 && !strings.HasPrefix(string(b), `{"error":{"code":"`) {
			t.Fatalf("%s %q: error body %q", method, path, b)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	d := Defaults()
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, u := range []string{"https://hooks.example.com", "http://127.0.0.1:8080", "https://example.com/inlet/", "https://hooks.example.com:8443/edge"} {
		c := Defaults()
		c.PublicURL = u
		if err := c.Validate(); err != nil {
			t.Errorf("public_url %q: %v; want valid", u, err)
		}
	}
	for _, c := range []struct {
		field string
		mut   func(*Config)
	}{
		{"listen_addr", func(c *Config) { c.ListenAddr = "nope" }},
		{"max_body_bytes", func(c *Config) { c.MaxBodyBytes = 10 }},
		{"max_header_bytes", func(c *Config) { c.MaxHeaderBytes = 0 }},
		{"read_timeout", func(c *Config) { c.ReadTimeout = 0 }},
		{"write_timeout", func(c *Config) { c.WriteTimeout = -1 }},
		{"first_byte_timeout", func(c *Config) { c.FirstByteTimeout = 0 }},
		{"idle_timeout", func(c *Config) { c.IdleTimeout = 0 }},
		{"max_conns", func(c *Config) { c.MaxConns = 0 }},
		{"max_conns_per_ip", func(c *Config) { c.MaxConnsPerIP = -1 }},
		{"linger_close_timeout", func(c *Config) { c.LingerCloseTimeout = -time.Second }},
		{"linger_close_timeout", func(c *Config) { c.LingerCloseTimeout = time.Minute }},
		{"linger_close_bytes", func(c *Config) { c.LingerCloseBytes = 1000 }},
		{"linger_close_bytes", func(c *Config) { c.LingerCloseBytes = 2 << 30 }},
		{"linger_close_max_conns", func(c *Config) { c.LingerCloseMaxConns = -1 }},
		{"max_in_flight", func(c *Config) { c.MaxInFlight = 0 }},
		{"max_json_depth", func(c *Config) { c.MaxJSONDepth = 0 }},
		{"ack_timeout", func(c *Config) { c.AckTimeout = time.Minute }},
		{"retry_after", func(c *Config) { c.RetryAfter = 0 }},
		{"rate_per_webhook", func(c *Config) { c.RatePerWebhook = 0 }},
		{"rate_burst", func(c *Config) { c.RateBurst = 0 }},
		{"rejected_log_rate", func(c *Config) { c.RejectedLogRate = -1 }},
		{"rejected_log_burst", func(c *Config) { c.RejectedLogBurst = 0 }},
		{"max_rejected_pending", func(c *Config) { c.MaxRejectedPending = 0 }},
		{"auth_preview_bytes", func(c *Config) { c.AuthPreviewBytes = -1 }},
		{"max_tracked_webhooks", func(c *Config) { c.MaxTrackedWebhooks = 0 }},
		{"linger", func(c *Config) { c.Linger = 2 * time.Second }},
		{"compression", func(c *Config) { c.Compression = "brotli" }},
		{"max_buffered_records", func(c *Config) { c.MaxBufferedRecords = 0 }},
		{"max_buffered_bytes", func(c *Config) { c.MaxBufferedBytes = 2 << 20; c.MaxBodyBytes = 4 << 20 }},
		{"delivery_timeout", func(c *Config) { c.DeliveryTimeout = time.Second }},
		{"public_url", func(c *Config) { c.PublicURL = "hooks.example.com" }},
		{"public_url", func(c *Config) { c.PublicURL = "ftp://hooks.example.com" }},
		{"public_url", func(c *Config) { c.PublicURL = "https://" }},
		{"public_url", func(c *Config) { c.PublicURL = "https://hooks.example.com/?x=1" }},
		{"public_url", func(c *Config) { c.PublicURL = "https://user:pw@hooks.example.com" }},
		{"public_url", func(c *Config) { c.PublicURL = "https://hooks.example.com/#f" }},
		{"public_url", func(c *Config) { c.PublicURL = "https://hooks.example.com/" + strings.Repeat("p", 1024) }},
	} {
		cfg := Defaults()
		c.mut(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.field+":") {
			t.Errorf("%s: Validate() = %v; want an error naming %s", c.field, err, c.field)
		}
	}
}

// The producer options work with a real franz-go client (kfake stands in for the broker): the record
// read back has the body and every header.
func TestProducerOptsWithKfake(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "requests"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(append(ProducerOpts(testConfig()), kgo.SeedBrokers(cluster.ListenAddrs()...))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	e := startEdge(t, testConfig(), tableHooks(), cl)
	before := time.Now()
	a := e.do(t, req{path: "/hooks/" + idOk, auth: secretOf(idOk), body: goodBody})
	after := time.Now()
	rid := checkAnswer(t, statusRows()[0], a)
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("requests"))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		fs := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("record not consumed")
		}
		if recs := fs.Records(); len(recs) > 0 {
			checkRecord(t, "requests", &wantRecord{wire.OutcomeAccepted, goodBody, len(goodBody)}, idOk, rid, 202, recs[0], before, after)
			return
		}
	}
}
