package ingestor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/inlet-dev/inlet/internal/testenv"
)

// startTCPEdge is startEdge on a real 127.0.0.1 socket: what the kernel does when the edge closes a
// connection with request bytes unread (a RST) only shows over TCP.
func startTCPEdge(t testing.TB, cfg Config, hooks Hooks, prod Producer) (*edge, string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(cfg, Deps{Hooks: hooks, Producer: prod, Topic: "requests", Registry: reg, Logger: testenv.Logger()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	e := &edge{s: s, reg: reg}
	e.client = &fasthttp.HostClient{Addr: addr, MaxConns: 64, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	e.serve(t, ln)
	return e, addr
}

// bodyWriter writes a request body on w until it is done, stop is closed or a write fails.
type bodyWriter func(w io.Writer, stop <-chan struct{}) error

// contentLengthBody writes n bytes of a body announced with Content-Length: n, in 64 KiB writes.
func contentLengthBody(n int) bodyWriter {
	return func(w io.Writer, stop <-chan struct{}) error {
		buf := []byte(strings.Repeat("x", 64<<10))
		for sent := 0; sent < n; sent += len(buf) {
			select {
			case <-stop:
				return nil
			default:
			}
			if _, err := w.Write(buf[:min(len(buf), n-sent)]); err != nil {
				return err
			}
		}
		return nil
	}
}

// chunkedBody writes n bytes of a chunked body in 64 KiB chunks, then the last chunk.
func chunkedBody(n int) bodyWriter {
	return func(w io.Writer, stop <-chan struct{}) error {
		chunk := []byte(fmt.Sprintf("%x\r\n%s\r\n", 64<<10, strings.Repeat("x", 64<<10)))
		for sent := 0; sent < n; sent += 64 << 10 {
			select {
			case <-stop:
				return nil
			default:
			}
			if _, err := w.Write(chunk); err != nil {
				return err
			}
		}
		_, err := io.WriteString(w, "0\r\n\r\n")
		return err
	}
}

// sent is what a sender met on one upload.
type sent struct {
	resp    *fasthttp.Response
	readErr error // reading the answer
	after   error // reading on after the answer: io.EOF when the edge ended the stream in order
	wrote   error // writing the body, until the answer was read
}

// upload sends head on a fresh TCP connection, then the body from another goroutine while it reads the
// answer, as a sender streaming a large body does. Once it has the answer it stops writing and reads on
// to the end of the stream, then closes.
func upload(t *testing.T, addr, head string, body bodyWriter) sent {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wrote := make(chan error, 1)
	go func() { wrote <- body(c, stop) }()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var r sent
	r.resp = &fasthttp.Response{}
	br := bufio.NewReader(c)
	r.readErr = r.resp.Read(br)
	close(stop)
	if r.readErr == nil {
		_, r.after = br.ReadByte()
	}
	_ = c.SetWriteDeadline(time.Now()) // a write blocked on a full window gives up
	r.wrote = <-wrote
	if errors.Is(r.wrote, os.ErrDeadlineExceeded) {
		r.wrote = nil // our own doing
	}
	return r
}

// A sender still uploading a body over the limit reads the whole 413 and its JSON body, then the
// edge's FIN, and is not reset while it keeps sending until it has the answer: the edge answers before
// reading the body and closes the connection, and a close with unread bytes in the socket's receive
// buffer (or bytes arriving after the close) makes the kernel send a RST instead, which fails the
// sender's upload and can overtake the answer on the network.
//
// Before the lingering close, 184 of 200 runs of these subtests failed on Linux 6.18 over loopback
// ("write: connection reset by peer" or "broken pipe" while the body was still being sent, and in 17
// of them also "read: connection reset by peer" right after the answer). The answer itself was read
// every time: Linux keeps what a socket received before a RST readable, which neither the network nor
// every sender's system guarantees.
func TestTooLargeAnswerReachesUploadingSender(t *testing.T) {
	const bodyLen = 8 << 20
	head := "POST /hooks/" + idOk + " HTTP/1.1\r\nHost: edge\r\nAuthorization: " + secretOf(idOk) +
		"\r\nContent-Type: application/json\r\n"
	want := results[resPayloadTooLarge]
	for _, perIP := range []int{0, 4} { // with a per-IP limit, handlers see fasthttp's wrapper of the conn
		for _, c := range []struct {
			name string
			head string
			body bodyWriter
		}{
			{"content-length", head + fmt.Sprintf("Content-Length: %d\r\n\r\n", bodyLen), contentLengthBody(bodyLen)},
			{"chunked", head + "Transfer-Encoding: chunked\r\n\r\n", chunkedBody(bodyLen)},
		} {
			t.Run(fmt.Sprintf("%s/max_conns_per_ip=%d", c.name, perIP), func(t *testing.T) {
				cfg := testConfig()
				cfg.MaxConnsPerIP = perIP
				e, addr := startTCPEdge(t, cfg, tableHooks(), &fakeProducer{})
				r := upload(t, addr, c.head, c.body)
				if r.readErr != nil {
					t.Fatalf("reading the answer: %v (writing the body: %v); want 413 %s", r.readErr, r.wrote, want.body)
				}
				resp := r.resp
				if resp.StatusCode() != want.status || string(resp.Body()) != string(want.body) {
					t.Fatalf("answer %d %s; want %d %s", resp.StatusCode(), resp.Body(), want.status, want.body)
				}
				if r.after != io.EOF {
					t.Errorf("after the answer: %v; want EOF (the edge's FIN, not a reset)", r.after)
				}
				if r.wrote != nil {
					t.Errorf("writing the body until the answer was read: %v; want no error (the edge reads it while it closes)", r.wrote)
				}
				if !resp.ConnectionClose() {
					t.Errorf("answer without Connection: close")
				}
				if got := e.metric(t, "inlet_ingestor_requests_total", "outcome", want.label); got != 1 {
					t.Errorf("requests_total{outcome=%s} %v; want 1", want.label, got)
				}
				waitMetric(t, e, 1, "inlet_ingestor_linger_closes_total", "outcome", "eof")
			})
		}
	}
}

// The same through Go's net/http client, a common sender's stack: it writes the body while it waits
// for the answer, and when a write fails it returns the error, not the answer. With lingering off, 82
// of 100 runs of these subtests failed over loopback with "write: connection reset by peer".
func TestTooLargeAnswerReachesNetHTTPSender(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 8<<20)
	for _, c := range []struct {
		name string
		body func() io.Reader
	}{
		{"content-length", func() io.Reader { return bytes.NewReader(body) }},
		{"chunked", func() io.Reader { return io.MultiReader(bytes.NewReader(body)) }}, // length unknown
	} {
		t.Run(c.name, func(t *testing.T) {
			e, addr := startTCPEdge(t, testConfig(), tableHooks(), &fakeProducer{})
			req, err := http.NewRequest("POST", "http://"+addr+"/hooks/"+idOk, c.body())
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", secretOf(idOk))
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("POST %s of 8 MiB: %v; want 413", c.name, err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			want := results[resPayloadTooLarge]
			if err != nil || resp.StatusCode != want.status || string(got) != string(want.body) {
				t.Fatalf("answer %d %s (%v); want %d %s", resp.StatusCode, got, err, want.status, want.body)
			}
			waitMetric(t, e, 1, "inlet_ingestor_linger_closes_total", "outcome", "eof")
		})
	}
}

// waitMetric waits up to 5 s for a counter or gauge of the edge to read want.
func waitMetric(t *testing.T, e *edge, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := e.metric(t, name, labels...)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v after 5s; want %v", name, labels, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// overLimitHead is the head of a request whose Content-Length is over tableMaxBody.
func overLimitHead() string {
	return requestHead(idOk, "Content-Length: 1073741824\r\n\r\n")
}

// A sender that never stops sending after the answer is cut off by LingerCloseBytes or
// LingerCloseTimeout, whichever comes first: its writes start failing (the edge closed with bytes
// unread, so they are reset).
func TestLingerBoundsSenderThatNeverStops(t *testing.T) {
	for _, c := range []struct {
		name    string
		timeout time.Duration
		bytes   int
		pace    time.Duration // between 16 KiB writes
		outcome string
		within  time.Duration // after the answer
	}{
		{"bytes", 30 * time.Second, 256 << 10, 0, "max_bytes", 5 * time.Second},
		{"time", 300 * time.Millisecond, 1 << 30, 10 * time.Millisecond, "timeout", 5 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := tableConfig()
			cfg.LingerCloseTimeout = c.timeout
			cfg.LingerCloseBytes = c.bytes
			e, addr := startTCPEdge(t, cfg, tableHooks(), &fakeProducer{})
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, overLimitHead()); err != nil {
				t.Fatal(err)
			}
			resp, err := rawResponse(t, conn)
			if err != nil || resp.StatusCode() != 413 {
				t.Fatalf("answer %v %v; want 413", resp, err)
			}
			answered := time.Now()
			buf := make([]byte, 16<<10)
			_ = conn.SetWriteDeadline(answered.Add(c.within))
			for {
				if _, err = conn.Write(buf); err != nil {
					break
				}
				time.Sleep(c.pace)
			}
			took := time.Since(answered)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("still sending %s after the answer; want the edge to close after %s or %d bytes", took, c.timeout, c.bytes)
			}
			if took < c.timeout && c.outcome == "timeout" {
				t.Errorf("cut off after %s; want no sooner than linger_close_timeout %s", took, c.timeout)
			}
			waitMetric(t, e, 1, "inlet_ingestor_linger_closes_total", "outcome", c.outcome)
			discarded := e.metric(t, "inlet_ingestor_linger_discarded_bytes_total")
			if discarded > float64(c.bytes) || (c.outcome == "max_bytes" && discarded != float64(c.bytes)) {
				t.Errorf("discarded %v bytes; want at most linger_close_bytes %d (exactly, when that ended it)", discarded, c.bytes)
			}
			waitMetric(t, e, 0, "inlet_ingestor_lingering_connections")
		})
	}
}

// At most LingerCloseMaxConns connections linger at once; a refused request's connection beyond them is
// closed at once, as without lingering, and a slot freed by a sender closing is used again.
func TestLingerCap(t *testing.T) {
	cfg := tableConfig()
	cfg.LingerCloseMaxConns = 2
	cfg.LingerCloseTimeout = 30 * time.Second // the held connections must outlast the test
	e, addr := startTCPEdge(t, cfg, tableHooks(), &fakeProducer{})
	// refused opens a connection whose request is refused from its head, reads the answer and holds
	// the connection open without sending more.
	refused := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if _, err := io.WriteString(c, overLimitHead()); err != nil {
			t.Fatal(err)
		}
		if resp, err := rawResponse(t, c); err != nil || resp.StatusCode() != 413 {
			t.Fatalf("answer %v %v; want 413", resp, err)
		}
		return c
	}
	first := refused()
	refused()
	waitMetric(t, e, 2, "inlet_ingestor_lingering_connections")
	third := refused()
	waitMetric(t, e, 1, "inlet_ingestor_linger_closes_total", "outcome", "over_cap")
	if got := e.metric(t, "inlet_ingestor_lingering_connections"); got != 2 {
		t.Errorf("lingering connections %v after one over the cap; want 2", got)
	}
	// The third was closed outright: what it sends now is answered with a RST.
	if err := writeUntilFails(third, 5*time.Second); err != nil {
		t.Errorf("connection over the cap: %v; want it closed", err)
	}
	// The first sender closes: its slot is free for the next refused request.
	_ = first.Close()
	waitMetric(t, e, 1, "inlet_ingestor_linger_closes_total", "outcome", "eof")
	refused()
	waitMetric(t, e, 2, "inlet_ingestor_lingering_connections")
	if got := e.metric(t, "inlet_ingestor_linger_closes_total", "outcome", "over_cap"); got != 1 {
		t.Errorf("over_cap %v; want still 1", got)
	}
}

// writeUntilFails writes to c until a write fails, which it does once the peer has closed.
func writeUntilFails(c net.Conn, within time.Duration) error {
	_ = c.SetWriteDeadline(time.Now().Add(within))
	buf := make([]byte, 1024)
	for {
		if _, err := c.Write(buf); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("writes still accepted after %s", within)
			}
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Shutdown does not wait for a lingering connection beyond ShutdownTimeout: it is closed, and connections
// refused from then on close at once.
func TestLingerEndsAtShutdown(t *testing.T) {
	cfg := tableConfig()
	cfg.LingerCloseTimeout = 30 * time.Second
	cfg.ShutdownTimeout = 300 * time.Millisecond
	e, addr := startTCPEdge(t, cfg, tableHooks(), &fakeProducer{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, overLimitHead()); err != nil {
		t.Fatal(err)
	}
	if resp, err := rawResponse(t, c); err != nil || resp.StatusCode() != 413 {
		t.Fatalf("answer %v %v; want 413", resp, err)
	}
	waitMetric(t, e, 1, "inlet_ingestor_lingering_connections")
	start := time.Now()
	if err := e.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %s with a connection lingering; want about shutdown_timeout", took)
	}
	if got := e.metric(t, "inlet_ingestor_linger_closes_total", "outcome", "shutdown"); got != 1 {
		t.Errorf("linger_closes_total{outcome=shutdown} %v; want 1", got)
	}
	if err := writeUntilFails(c, 5*time.Second); err != nil {
		t.Errorf("lingering connection after shutdown: %v; want it closed", err)
	}
}

// Only connections closed after a refused request linger; keep-alive connections, whether the client or
// IdleTimeout ends them, and a request that timed out close as before.
func TestLingerOnlyAfterRefusal(t *testing.T) {
	cfg := tableConfig()
	cfg.IdleTimeout = 200 * time.Millisecond
	cfg.ReadTimeout = 200 * time.Millisecond
	e, addr := startTCPEdge(t, cfg, tableHooks(), &fakeProducer{})
	dialTCP := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	// Keep-alive requests, then the client closes.
	c := dialTCP()
	for i := 0; i < 3; i++ {
		fmt.Fprintf(c, "%sContent-Length: 2\r\n\r\n{}", requestHead(idOk, ""))
		if resp, err := rawResponse(t, c); err != nil || resp.StatusCode() != 202 {
			t.Fatalf("keep-alive request %d: %v %v; want 202", i, resp, err)
		}
	}
	_ = c.Close()
	// A keep-alive connection left idle is closed by the edge.
	c = dialTCP()
	fmt.Fprintf(c, "%sContent-Length: 2\r\n\r\n{}", requestHead(idOk, ""))
	if resp, err := rawResponse(t, c); err != nil || resp.StatusCode() != 202 {
		t.Fatalf("request: %v %v; want 202", resp, err)
	}
	if err := closedWithin(c, 5*time.Second); err != nil {
		t.Fatalf("idle connection: %v", err)
	}
	// A request whose body does not arrive within ReadTimeout.
	c = dialTCP()
	fmt.Fprintf(c, "%sContent-Length: 20\r\n\r\n{}", requestHead(idOk, ""))
	if resp, err := rawResponse(t, c); err != nil || resp.StatusCode() != 408 {
		t.Fatalf("slow body: %v %v; want 408", resp, err)
	}
	if err := closedWithin(c, 5*time.Second); err != nil {
		t.Fatalf("timed out connection: %v", err)
	}
	waitMetric(t, e, 4, "inlet_ingestor_requests_total", "outcome", "accepted")
	for _, o := range lingerLabels {
		if got := e.metric(t, "inlet_ingestor_linger_closes_total", "outcome", o); got != 0 {
			t.Errorf("linger_closes_total{outcome=%s} %v; want 0", o, got)
		}
	}
	// Headers over the limit leave the rest of the request unread: that connection lingers.
	c = dialTCP()
	fmt.Fprintf(c, "%sX-Pad: %s\r\nContent-Length: 2\r\n\r\n{}", requestHead(idOk, ""), strings.Repeat("p", 2*cfg.MaxHeaderBytes))
	if resp, err := rawResponse(t, c); err != nil || resp.StatusCode() != 431 {
		t.Fatalf("large headers: %v %v; want 431", resp, err)
	}
	waitMetric(t, e, 1, "inlet_ingestor_lingering_connections")
	_ = c.Close()
	waitMetric(t, e, 1, "inlet_ingestor_linger_closes_total", "outcome", "eof")
}

// Lingering is off with either linger_close_timeout or linger_close_max_conns at 0: the listener is
// served unwrapped and nothing is marked.
func TestLingerOff(t *testing.T) {
	for _, off := range []func(*Config){
		func(c *Config) { c.LingerCloseTimeout = 0 },
		func(c *Config) { c.LingerCloseMaxConns = 0 },
	} {
		cfg := Defaults()
		off(&cfg)
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Validate: %v; want 0 accepted (off)", err)
		}
		l := newLingerer(cfg, nil)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if got := l.listen(ln); got != ln {
			t.Errorf("listener wrapped (%T) with lingering off", got)
		}
		_ = ln.Close()
		l.mark(addrConn{tcpAddr("127.0.0.1:8080"), tcpAddr("127.0.0.1:5000")}, time.Now().UnixNano())
		if n := l.marks.Load(); n != 0 {
			t.Errorf("%d marks with lingering off; want 0", n)
		}
	}
}

// addrConn is a net.Conn that only has addresses: marks are keyed by them.
type addrConn struct{ local, remote net.Addr }

func (c addrConn) LocalAddr() net.Addr            { return c.local }
func (c addrConn) RemoteAddr() net.Addr           { return c.remote }
func (addrConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (addrConn) Write(b []byte) (int, error)      { return len(b), nil }
func (addrConn) Close() error                     { return nil }
func (addrConn) SetDeadline(time.Time) error      { return nil }
func (addrConn) SetReadDeadline(time.Time) error  { return nil }
func (addrConn) SetWriteDeadline(time.Time) error { return nil }

func tcpAddr(s string) *net.TCPAddr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

// Marks no close takes (a connection the listener did not wrap) neither grow without bound nor stay:
// there are never more than MaxConns, and they go once they are older than any answer's write.
func TestLingerMarksBounded(t *testing.T) {
	cfg := Defaults()
	cfg.MaxConns = 2
	cfg.WriteTimeout = time.Second
	l := newLingerer(cfg, nil)
	local := tcpAddr("127.0.0.1:8080")
	conn := func(port int) addrConn {
		return addrConn{local, tcpAddr(fmt.Sprintf("127.0.0.1:%d", port))}
	}
	now := time.Now().UnixNano()
	l.mark(conn(1), now)
	l.mark(conn(2), now)
	l.mark(conn(3), now+int64(time.Second)) // full of fresh marks: not kept
	if n := l.marks.Load(); n != 2 {
		t.Fatalf("%d marks; want the bound of 2", n)
	}
	later := now + l.maxAge + 1
	l.mark(conn(4), later) // the stale ones are swept
	if n := l.marks.Load(); n != 1 {
		t.Fatalf("%d marks after they went stale; want 1 (the new one)", n)
	}
	if _, ok := l.marked[connKey{local.AddrPort(), conn(4).remote.(*net.TCPAddr).AddrPort()}]; !ok {
		t.Errorf("the fresh mark was swept")
	}
}
