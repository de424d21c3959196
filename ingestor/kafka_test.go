package ingestor

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"

	"github.com/inlet-dev/inlet/internal/kafka"
	"github.com/inlet-dev/inlet/internal/testenv"
	"github.com/inlet-dev/inlet/internal/wire"
)

// Integration tests against the real Kafka of the local stack: what the edge answered is checked against
// what a consumer reads back from the topic.

// realProducer is a franz-go client built as the ingestor process builds it, on this test's topics.
func realProducer(t testing.TB, cfg Config) (kafka.Config, *kgo.Client) {
	t.Helper()
	kcfg, _ := testenv.Kafka(t)
	cl, err := kafka.NewClient(kcfg, "ingestor-test", ProducerOpts(cfg)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kcfg, cl
}

// consumeAll reads every record of topic up to its current end offsets, in offset order per partition.
func consumeAll(t testing.TB, kcfg kafka.Config, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kafka.NewClient(kcfg, "test-consumer", kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets: %v", err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consuming %s: %v (still waiting for %v)", topic, ctx.Err(), want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset < end {
				out = append(out, r)
				if r.Offset+1 >= end {
					delete(want, r.Partition)
				}
			}
		})
	}
	return out
}

func byKey(recs []*kgo.Record) map[string][]*kgo.Record {
	m := map[string][]*kgo.Record{}
	for _, r := range recs {
		m[string(r.Key)] = append(m[string(r.Key)], r)
	}
	return m
}

// Every row of the status table through the real producer: the answer, and the record read back from
// Kafka with its exact body and headers (or no record at all).
func TestKafkaStatusTable(t *testing.T) {
	cfg := tableConfig()
	kcfg, cl := realProducer(t, cfg)
	e := startEdgeOn(t, cfg, tableHooks(), cl, kcfg.RequestsTopic)
	type sent struct {
		r             row
		rid           string
		before, after time.Time
	}
	var expected []sent
	for _, r := range statusRows() {
		before := time.Now()
		a := e.do(t, r.req)
		after := time.Now()
		t.Run(r.name, func(t *testing.T) {
			rid := checkAnswer(t, r, a)
			if r.record != nil {
				expected = append(expected, sent{r, rid, before, after})
			}
		})
	}
	if err := e.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	got := byKey(consumeAll(t, kcfg, kcfg.RequestsTopic))
	// One key is one partition, so a webhook's records are in the order they were sent.
	next := map[string]int{}
	for _, s := range expected {
		id := strings.TrimPrefix(s.r.req.path, "/hooks/")
		recs := got[id]
		i := next[id]
		next[id]++
		if i >= len(recs) {
			t.Errorf("%s: no record in Kafka", s.r.name)
			continue
		}
		t.Run(s.r.name+"/record", func(t *testing.T) {
			checkRecord(t, kcfg.RequestsTopic, s.r.record, id, s.rid, s.r.status, recs[i], s.before, s.after)
			checkDetail(t, s.r, recs[i])
		})
	}
	for id, recs := range got {
		if len(recs) != next[id] {
			t.Errorf("webhook %s: %d records in Kafka; want %d", id, len(recs), next[id])
		}
	}
}

// loadResult is what a load of concurrent senders saw.
type loadResult struct {
	mu       sync.Mutex
	accepted []string // request ids of the 202s
	statuses map[int]int
}

func (l *loadResult) add(status int, body []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statuses[status]++
	if status == 202 {
		var ok struct {
			RequestID string `json:"request_id"`
		}
		_ = json.Unmarshal(body, &ok)
		l.accepted = append(l.accepted, ok.RequestID)
	}
}

// sendLoad posts from n goroutines to addr until stop is closed.
func sendLoad(addr string, n int, stop <-chan struct{}, l *loadResult) *sync.WaitGroup {
	client := &fasthttp.HostClient{Addr: addr, MaxConns: n, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(q)
			defer fasthttp.ReleaseResponse(resp)
			for {
				select {
				case <-stop:
					return
				default:
				}
				q.Reset()
				q.SetRequestURI("http://" + addr + "/hooks/" + idOk)
				q.Header.SetMethod("POST")
				q.Header.Set("Authorization", secretOf(idOk))
				q.Header.SetContentType("application/json")
				q.SetBody(goodBody)
				if err := client.Do(q, resp); err != nil {
					l.add(0, nil) // connection refused/closed once the edge stops accepting
					time.Sleep(time.Millisecond)
					continue
				}
				l.add(resp.StatusCode(), resp.Body())
			}
		}()
	}
	return &wg
}

// SIGTERM under load: the context is cancelled while requests are in flight; every request answered 202
// is in the topic afterwards.
func TestKafkaGracefulShutdownUnderLoad(t *testing.T) {
	cfg := testConfig()
	kcfg, cl := realProducer(t, cfg)
	s, err := New(cfg, Deps{Hooks: tableHooks(), Producer: cl, Topic: kcfg.RequestsTopic, Registry: newReg(), Logger: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	l := &loadResult{statuses: map[int]int{}}
	stop := make(chan struct{})
	wg := sendLoad(ln.Addr().String(), 16, stop, l)
	deadline := time.Now().Add(30 * time.Second)
	for {
		l.mu.Lock()
		n := len(l.accepted)
		l.mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel() // SIGTERM
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	close(stop)
	wg.Wait()
	t.Logf("answers during the run: %v", l.statuses)
	if len(l.accepted) < 300 {
		t.Fatalf("only %d requests accepted before shutdown", len(l.accepted))
	}
	inTopic := map[string]bool{}
	for _, r := range consumeAll(t, kcfg, kcfg.RequestsTopic) {
		id, _ := header(r, wire.HeaderRequestID)
		inTopic[id] = true
		if !bytes.Equal(r.Value, goodBody) {
			t.Fatalf("record %s value %q; want the body sent", id, r.Value)
		}
	}
	for _, id := range l.accepted {
		if !inTopic[id] {
			t.Errorf("request %s was answered 202 but is not in the topic", id)
		}
	}
}

// A chunked body over the limit through the real producer: 413 with the same body as a Content-Length
// one, its payload_too_large record in the topic with every header and no payload, and the edge still
// serving: the next request is acknowledged and follows it in the webhook's partition.
func TestKafkaChunkedBodyOverLimit(t *testing.T) {
	cfg := tableConfig()
	kcfg, cl := realProducer(t, cfg)
	e := startEdgeOn(t, cfg, tableHooks(), cl, kcfg.RequestsTopic)
	before := time.Now()
	resp := sendRaw(t, e, chunkedOverLimit("/hooks/"+idOk, secretOf(idOk)))
	after := time.Now()
	if resp.StatusCode() != 413 || string(resp.Body()) != string(results[resPayloadTooLarge].body) {
		t.Fatalf("answer %d %s; want 413 %s", resp.StatusCode(), resp.Body(), results[resPayloadTooLarge].body)
	}
	next := row{name: "next", req: req{path: "/hooks/" + idOk, auth: secretOf(idOk), body: goodBody}, status: 202,
		record: &wantRecord{wire.OutcomeAccepted, goodBody, len(goodBody)}}
	nextBefore := time.Now()
	rid := checkAnswer(t, next, e.do(t, next.req))
	nextAfter := time.Now()
	if err := e.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	recs := byKey(consumeAll(t, kcfg, kcfg.RequestsTopic))[idOk]
	if len(recs) != 2 {
		t.Fatalf("%d records for %s in Kafka; want the rejection and the next request", len(recs), idOk)
	}
	checkRecord(t, kcfg.RequestsTopic, &wantRecord{wire.OutcomePayloadTooLarge, nil, tableMaxBody + 1}, idOk, "", 413,
		recs[0], before, after)
	checkRecord(t, kcfg.RequestsTopic, next.record, idOk, rid, 202, recs[1], nextBefore, nextAfter)
}
