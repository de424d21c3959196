package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// ErrRefusedTarget: the notification URL resolved to an address notifications may not go to
// (private, loopback, link-local…), and alerts.allow_private_targets is off. It is permanent: the
// notification is marked failed without further attempts.
var ErrRefusedTarget = errors.New("notification target refused")

// nonPublic are the ranges, beyond what netip.Addr's predicates name, that are not globally routable.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast (deprecated)
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
}

// publicAddr reports whether notifications may go to a: a globally routable unicast address. An
// IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// dialControl refuses a connection to a non-public address. It runs after the name has been resolved,
// on the address actually dialled, so neither a name that resolves to 127.0.0.1 nor a DNS answer that
// changes between a check and the connection (rebinding) gets through.
func dialControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read the address %q", ErrRefusedTarget, address)
	}
	if !publicAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s is not a public address (private, loopback, link-local or reserved); an operator may allow such targets with alerts.allow_private_targets", ErrRefusedTarget, ap.Addr())
	}
	return nil
}

// Sender POSTs signed notifications.
type Sender struct {
	client *http.Client
}

// maxAnswerBytes bounds how much of a receiver's answer is read (and then discarded).
const maxAnswerBytes = 64 << 10

// NewSender returns a sender whose connections obey allowPrivate (see Config.AllowPrivateTargets)
// and whose every POST ends within timeout. Redirects are not followed: a receiver answers where it
// was configured, and a redirect to an internal address is the classic way around a target check.
func NewSender(timeout time.Duration, allowPrivate bool) *Sender {
	d := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		d.Control = dialControl
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would dial in our place, unchecked
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	return &Sender{client: &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Signature is the webhook-signature value of body under key, as Standard Webhooks defines it:
// "v1," + base64(HMAC-SHA256(key, id + "." + unix seconds + "." + body)).
func Signature(key []byte, id string, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, ts.Unix(), 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Body is what a notification POSTs in format: the payload as it is, or Slack's {"text": …}.
func Body(format string, payload []byte) ([]byte, error) {
	if format != FormatSlack {
		return payload, nil
	}
	var p Payload
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("read notification payload: %w", err)
	}
	prefix := ":rotating_light: "
	if p.Type == EventResolved {
		prefix = ":white_check_mark: resolved: "
	}
	return json.Marshal(struct {
		Text string `json:"text"`
	}{prefix + p.Message})
}

// Result is what one POST came to.
type Result struct {
	StatusCode int
	Err        error
	Duration   time.Duration
}

// Send POSTs body to url, signed with key under id at now. A non-2xx answer is an error.
func (s *Sender) Send(ctx context.Context, url, id string, key []byte, now time.Time, body []byte) Result {
	start := time.Now()
	res := Result{}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		res.Err = fmt.Errorf("notification request: %w", err)
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Inlet-Notifications/1")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", Signature(key, id, now, body))
	resp, err := s.client.Do(req)
	res.Duration = time.Since(start)
	if err != nil {
		res.Err = err
		return res
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBytes))
	resp.Body.Close()
	res.StatusCode = resp.StatusCode
	res.Duration = time.Since(start)
	if resp.StatusCode/100 != 2 {
		res.Err = fmt.Errorf("the receiver answered %d", resp.StatusCode)
	}
	return res
}
