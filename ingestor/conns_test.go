package ingestor

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// dialFrom opens a connection to addr from the loopback address from (Linux routes all of 127.0.0.0/8
// to lo), closed when the test ends.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// readAnswer reads one response from c and then the end of the connection.
func readAnswer(t *testing.T, c net.Conn) (*fasthttp.Response, error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	resp := &fasthttp.Response{}
	if err := resp.Read(br); err != nil {
		return nil, err
	}
	if n, err := io.Copy(io.Discard, br); err != nil || n != 0 {
		return resp, fmt.Errorf("after the answer: %d more bytes, %v; want EOF", n, err)
	}
	return resp, nil
}

// waitOpenConns waits until the edge counts want open connections.
func waitOpenConns(t *testing.T, e *edge, want float64) {
	t.Helper()
	waitMetric(t, e, want, "inlet_ingestor_open_connections")
}

// The issue this guards against: 10,000 connections opened from one address and left idle took every
// place under MaxConns for ReadTimeout, and every sender got fasthttp's plain-text 503. Here one address
// (127.0.0.2) opens as many idle connections as the edge has places: it gets MaxConnsPerIP of them, the
// others are answered the edge's 503 at once, and a sender from another address (127.0.0.1) is served
// while the idle ones are still open.
func TestIdleFloodFromOneAddressLeavesOthersServed(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConns = 64
	cfg.MaxConnsPerIP = 16
	cfg.FirstByteTimeout = time.Minute // the idle connections stay for the whole test
	e, addr := startTCPEdge(t, cfg, tableHooks(), &fakeProducer{})

	flood := make([]net.Conn, cfg.MaxConns)
	for i := range flood {
		flood[i] = dialFrom(t, "127.0.0.2", addr)
	}
	refused := cfg.MaxConns - cfg.MaxConnsPerIP
	waitMetric(t, e, float64(refused), "inlet_ingestor_connections_refused_total", "reason", "max_conns_per_ip")
	waitOpenConns(t, e, float64(cfg.MaxConnsPerIP))
	// The listener accepts in the order of the dials: the first MaxConnsPerIP were admitted.
	for i, c := range flood[cfg.MaxConnsPerIP:] {
		resp, err := readAnswer(t, c)
		if err != nil {
			t.Fatalf("refused connection %d: %v", i, err)
		}
		checkRefusal(t, resp, connsPerIPBody)
	}

	if a := e.do(t, req{path: "/hooks/" + idOk, auth: secretOf(idOk), body: goodBody}); a.status != 202 {
		t.Fatalf("sender from 127.0.0.1 during the flood: %d %s; want 202", a.status, a.body)
	}
	if got := e.metric(t, "inlet_ingestor_open_connections"); got != float64(cfg.MaxConnsPerIP+1) {
		t.Errorf("open_connections %v; want %d (the flood's idle ones and the sender's)", got, cfg.MaxConnsPerIP+1)
	}
	if got := e.metric(t, "inlet_ingestor_connections_refused_total", "reason", "max_conns"); got != 0 {
		t.Errorf("connections_refused_total{reason=max_conns} %v; want 0", got)
	}

	// Closing the flood gives its places back.
	for _, c := range flood {
		_ = c.Close()
	}
	waitOpenConns(t, e, 1)
	e.client.CloseIdleConnections()
	waitOpenConns(t, e, 0)
	if n := len(e.s.conns.byAddr); n != 0 {
		t.Errorf("%d addresses still counted; want 0", n)
	}
}

// When the idle connections come from enough addresses to fill MaxConns, the next connection from
// anywhere is answered the edge's 503 (reason max_conns) rather than fasthttp's plain text.
func TestIdleConnectionsFillingMaxConnsAnswered(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConns = 8
	cfg.MaxConnsPerIP = 4
	cfg.FirstByteTimeout = time.Minute
	e, addr := startTCPEdge(t, cfg, tableHooks(), &fakeProducer{})
	for _, from := range []string{"127.0.0.2", "127.0.0.3"} {
		for i := 0; i < cfg.MaxConnsPerIP; i++ {
			dialFrom(t, from, addr)
		}
	}
	waitOpenConns(t, e, float64(cfg.MaxConns))
	c := dialFrom(t, "127.0.0.1", addr)
	// A sender writes its request at once: it is unread when the edge refuses the connection, and still
	// the sender reads the answer and then the end of the stream, not a reset (the refusal lingers).
	fmt.Fprintf(c, "%sContent-Length: 2\r\n\r\n{}", requestHead(idOk, ""))
	resp, err := readAnswer(t, c)
	if err != nil {
		t.Fatal(err)
	}
	checkRefusal(t, resp, results[resOverloaded].body)
	if got := e.metric(t, "inlet_ingestor_connections_refused_total", "reason", "max_conns"); got != 1 {
		t.Errorf("connections_refused_total{reason=max_conns} %v; want 1", got)
	}
	_ = c.Close()
	waitMetric(t, e, 1, "inlet_ingestor_linger_closes_total", "outcome", "eof")
}

// A connection that sends nothing is closed after FirstByteTimeout, long before ReadTimeout, and its
// place is given back.
func TestFirstByteTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.FirstByteTimeout = 200 * time.Millisecond
	cfg.ReadTimeout = time.Minute
	e, addr := startTCPEdge(t, cfg, tableHooks(), &fakeProducer{})
	c := dialFrom(t, "127.0.0.1", addr)
	if err := closedWithin(c, 20*time.Second); err != nil {
		t.Fatalf("idle connection: %v; want closed after first_byte_timeout", err)
	}
	waitOpenConns(t, e, 0)
	if got := e.metric(t, "inlet_ingestor_requests_total", "outcome", "request_timeout"); got != 1 {
		t.Errorf("requests_total{outcome=request_timeout} %v; want 1", got)
	}
}

// Once its first byte is in, a request has ReadTimeout, not FirstByteTimeout, to arrive whole.
func TestFirstByteLiftsTheCap(t *testing.T) {
	cfg := testConfig()
	cfg.FirstByteTimeout = 300 * time.Millisecond
	cfg.ReadTimeout = time.Minute
	_, addr := startTCPEdge(t, cfg, tableHooks(), &fakeProducer{})
	slow := dialFrom(t, "127.0.0.1", addr)
	head := requestHead(idOk, "Content-Length: 2\r\n\r\n")
	if _, err := io.WriteString(slow, head[:1]); err != nil {
		t.Fatal(err)
	}
	// A connection accepted after slow reaches its own FirstByteTimeout after slow's has passed: once the
	// edge has closed it, slow would have been closed too, were its cap still on.
	idle := dialFrom(t, "127.0.0.1", addr)
	if err := closedWithin(idle, 20*time.Second); err != nil {
		t.Fatalf("idle connection: %v", err)
	}
	if _, err := io.WriteString(slow, head[1:]+"{}"); err != nil {
		t.Fatalf("rest of the request after first_byte_timeout: %v", err)
	}
	resp, err := rawResponse(t, slow)
	if err != nil || resp.StatusCode() != 202 {
		t.Fatalf("request whose first byte came in time: %v %v; want 202", resp, err)
	}
}

// Connections without an IP peer (in-memory ones) are bounded by MaxConns only; TCP peers are counted by
// address, IPv6 ones by /64.
func TestClientAddr(t *testing.T) {
	if a := clientAddr(fakeConn{remote: &net.UnixAddr{Name: "@edge", Net: "unix"}}); a.IsValid() {
		t.Errorf("connection without an IP peer: %v; want no address", a)
	}
	for _, c := range []struct{ ip, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::"},
	} {
		got := clientAddr(fakeConn{remote: &net.TCPAddr{IP: net.ParseIP(c.ip), Port: 1234}})
		if got != netip.MustParseAddr(c.want) {
			t.Errorf("clientAddr(%s) = %v; want %s", c.ip, got, c.want)
		}
	}
}

type fakeConn struct {
	net.Conn
	remote net.Addr
}

func (c fakeConn) RemoteAddr() net.Addr { return c.remote }

// clientConn is a raw keep-alive connection to the edge with the reader its answers are read from.
type clientConn struct {
	net.Conn
	br *bufio.Reader
}

// keepAlive opens a connection from the loopback address from that makes one request, answered 202, and
// stays open; it returns once the edge counts it idle (idleBefore+1 idle connections).
func keepAlive(t *testing.T, e *edge, from, addr string, idleBefore int) *clientConn {
	t.Helper()
	c := &clientConn{Conn: dialFrom(t, from, addr)}
	c.br = bufio.NewReader(c)
	c.request(t)
	waitMetric(t, e, float64(idleBefore+1), "inlet_ingestor_idle_connections")
	return c
}

// request sends a request on c and checks its 202.
func (c *clientConn) request(t *testing.T) {
	t.Helper()
	fmt.Fprintf(c, "%sContent-Length: %d\r\n\r\n%s", requestHead(idOk, ""), len(goodBody), goodBody)
	c.check202(t)
}

func (c *clientConn) check202(t *testing.T) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp := &fasthttp.Response{}
	if err := resp.Read(c.br); err != nil {
		t.Fatalf("answer from %s: %v", c.LocalAddr(), err)
	}
	if resp.StatusCode() != 202 || resp.ConnectionClose() {
		t.Fatalf("answer from %s: %d %s (close %v); want 202, kept alive", c.LocalAddr(), resp.StatusCode(), resp.Body(), resp.ConnectionClose())
	}
}

// checkClosed checks that the edge closed c: its next read sees the end of the stream.
func (c *clientConn) checkClosed(t *testing.T) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read on the connection closed for another: %d bytes, %v; want EOF", n, err)
	}
}

// slowRequest sends the head of a request and half its body on c, leaving it in the middle of it.
func (c *clientConn) slowRequest(t *testing.T) {
	t.Helper()
	fmt.Fprintf(c, "%sContent-Length: %d\r\n\r\n%s", requestHead(idOk, ""), len(goodBody), goodBody[:len(goodBody)/2])
}

func (c *clientConn) finishRequest(t *testing.T) {
	t.Helper()
	if _, err := c.Write(goodBody[len(goodBody)/2:]); err != nil {
		t.Fatal(err)
	}
	c.check202(t)
}

// The issue this guards against: keep-alive connections that each made one cheap request kept their
// places for IdleTimeout, so that enough of them filled MaxConns and new senders were refused. At
// MaxConns, a new connection takes the place of the longest-idle one.
func TestIdleConnectionGivesPlaceAtMaxConns(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConns = 8
	cfg.MaxConnsPerIP = 0
	e, addr := startTCPEdge(t, cfg, tableHooks(), &fakeProducer{})
	idle := make([]*clientConn, cfg.MaxConns)
	for i := range idle {
		idle[i] = keepAlive(t, e, "127.0.0.1", addr, i)
	}

	c := dialFrom(t, "127.0.0.1", addr)
	fmt.Fprintf(c, "%sContent-Length: %d\r\n\r\n%s", requestHead(idOk, ""), len(goodBody), goodBody)
	resp, err := rawResponse(t, c)
	if err != nil || resp.StatusCode() != 202 {
		t.Fatalf("new connection at max_conns, %d idle: %v %v; want 202", cfg.MaxConns, resp, err)
	}
	idle[0].checkClosed(t)
	if got := e.metric(t, "inlet_ingestor_idle_connections_closed_total", "reason", "max_conns"); got != 1 {
		t.Errorf("idle_connections_closed_total{reason=max_conns} %v; want 1", got)
	}
	if got := e.metric(t, "inlet_ingestor_connections_refused_total", "reason", "max_conns"); got != 0 {
		t.Errorf("connections_refused_total{reason=max_conns} %v; want 0", got)
	}
	waitOpenConns(t, e, float64(cfg.MaxConns))
	// The others were left alone: the next longest-idle one still serves.
	idle[1].request(t)
}

// A connection in the middle of a request is never closed for another: with every place taken by one,
// a new connection is refused as before, and the requests complete.
func TestBusyConnectionsKeepTheirPlaces(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConns = 8
	cfg.MaxConnsPerIP = 0
	e, addr := startTCPEdge(t, cfg, tableHooks(), &fakeProducer{})
	busy := make([]*clientConn, cfg.MaxConns)
	for i := range busy {
		busy[i] = keepAlive(t, e, "127.0.0.1", addr, i)
	}
	// Each was idle; the first bytes of its next request make it busy.
	for _, c := range busy {
		c.slowRequest(t)
	}
	waitMetric(t, e, 0, "inlet_ingestor_idle_connections")

	c := dialFrom(t, "127.0.0.1", addr)
	resp, err := readAnswer(t, c)
	if err != nil {
		t.Fatal(err)
	}
	checkRefusal(t, resp, results[resOverloaded].body)
	if got := e.metric(t, "inlet_ingestor_idle_connections_closed_total", "reason", "max_conns"); got != 0 {
		t.Errorf("idle_connections_closed_total{reason=max_conns} %v; want 0", got)
	}
	for _, c := range busy {
		c.finishRequest(t)
	}
}

// At MaxConnsPerIP, a new connection takes the place of its own address's longest-idle connection, not
// of another address's, and is refused as before when none of its address's is idle.
func TestIdleConnectionGivesPlaceAtMaxConnsPerIP(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConns = 64
	cfg.MaxConnsPerIP = 4
	e, addr := startTCPEdge(t, cfg, tableHooks(), &fakeProducer{})
	other := keepAlive(t, e, "127.0.0.1", addr, 0) // the longest idle, of another address
	flood := make([]*clientConn, cfg.MaxConnsPerIP)
	for i := range flood {
		flood[i] = keepAlive(t, e, "127.0.0.2", addr, i+1)
	}

	c := &clientConn{Conn: dialFrom(t, "127.0.0.2", addr)}
	c.br = bufio.NewReader(c)
	c.request(t)
	flood[0].checkClosed(t)
	if got := e.metric(t, "inlet_ingestor_idle_connections_closed_total", "reason", "max_conns_per_ip"); got != 1 {
		t.Errorf("idle_connections_closed_total{reason=max_conns_per_ip} %v; want 1", got)
	}
	waitOpenConns(t, e, float64(1+cfg.MaxConnsPerIP))
	other.request(t)

	// Now every connection of 127.0.0.2 is in the middle of a request; 127.0.0.1's is idle.
	flood = append(flood[1:], c)
	for _, c := range flood {
		c.slowRequest(t)
	}
	waitMetric(t, e, 1, "inlet_ingestor_idle_connections")
	refused := dialFrom(t, "127.0.0.2", addr)
	resp, err := readAnswer(t, refused)
	if err != nil {
		t.Fatal(err)
	}
	checkRefusal(t, resp, connsPerIPBody)
	if got := e.metric(t, "inlet_ingestor_idle_connections_closed_total", "reason", "max_conns_per_ip"); got != 1 {
		t.Errorf("idle_connections_closed_total{reason=max_conns_per_ip} %v; want still 1", got)
	}
	for _, c := range flood {
		c.finishRequest(t)
	}
	other.request(t)
}
