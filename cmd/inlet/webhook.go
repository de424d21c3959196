package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/inlet-dev/inlet/config"
	"github.com/inlet-dev/inlet/internal/seed"
	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// Environment variables of `inlet webhook test`: secrets are read from the environment rather than the
// command line, where they would reach the shell's history and ps.
const (
	envSenderSecret = "INLET_SENDER_SECRET"
	envAPIKey       = "INLET_API_KEY"
)

// Bounds of what `inlet webhook test` reads and prints.
const (
	// maxShownBody is how much of a body is printed; the rest is counted.
	maxShownBody = 4 << 10
	// maxAnswer bounds the edge's answer read (its bodies are a few hundred bytes).
	maxAnswer = 64 << 10
	// maxAdminAnswer bounds an admin API answer (a webhook with its sample payload).
	maxAdminAnswer = 1 << 20
)

// testOptions are the flags of `inlet webhook test`.
type testOptions struct {
	url, webhook, sender          string
	mode, preset, username, param string
	verification                  string
	secret                        string
	adminURL                      string
	body, contentType             string
	headers                       headerList
	id                            string
	timeout                       time.Duration
}

// headerList is a repeatable "Name: value" flag.
type headerList []verify.Field

func (h *headerList) String() string { return "" }

func (h *headerList) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("%q: want \"Name: value\"", s)
	}
	*h = append(*h, verify.Field{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)})
	return nil
}

func webhookTestFlags(o *testOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("webhook test", flag.ContinueOnError)
	fs.StringVar(&o.webhook, "webhook", "", "the webhook's public id, the {id} of /hooks/{id} (required)")
	fs.StringVar(&o.url, "url", "", "the edge's base URL, as the sender calls it (default: the webhook URL the admin API gives with -admin-url, else http://<ingestor.listen_addr> of the settings); a URL with /hooks/ in it is used as is")
	fs.StringVar(&o.sender, "sender", "", "the sender the webhook is connected as, from the catalog: "+strings.Join(senderNames(), ", ")+"; sets the verification and the delivery-id header")
	fs.StringVar(&o.mode, "mode", "", "verification mode instead of the sender's: bearer, basic, token or hmac (hmac needs -preset or -verification)")
	fs.StringVar(&o.preset, "preset", "", "HMAC preset (mode hmac): "+strings.Join(verify.PresetNames(), ", "))
	fs.StringVar(&o.username, "username", "", "the Basic user (mode basic)")
	fs.StringVar(&o.param, "query-param", "", "the token's query parameter (mode token; default token)")
	fs.StringVar(&o.verification, "verification", "", `the verification as the API writes it, JSON, e.g. '{"mode":"hmac","hmac":{"header":"X-Sig","algorithm":"sha256","encoding":"hex"}}'`)
	fs.StringVar(&o.secret, "secret", "", "the webhook's secret: whsec_… (bearer; \"Bearer whsec_…\" is taken too), the password (basic), the token (token) or the provider's signing secret (hmac); default $"+envSenderSecret+", else read from the admin API")
	fs.StringVar(&o.adminURL, "admin-url", "", "the admin API's base URL (e.g. http://127.0.0.1:8081): the webhook's sender, verification, sample payload and secret are read from it, with the API key in $"+envAPIKey)
	fs.StringVar(&o.body, "body", "", "the body: text, or @FILE (default: the webhook's sample payload from the admin API, else the seed's checkout sample)")
	fs.StringVar(&o.contentType, "content-type", "application/json", "the Content-Type header")
	fs.Var(&o.headers, "header", `an extra header "Name: value", repeatable; set last, so it replaces a header the signature set (to send a wrong one on purpose)`)
	fs.Var(&o.headers, "H", "short for -header")
	fs.StringVar(&o.id, "id", "", "the delivery id: signed by Standard Webhooks (webhook-id) and sent in the sender's delivery-id header (default: a new UUID)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to wait for the edge's answer")
	return fs
}

// webhookTestHelp is the flag reference of `inlet webhook test`, printed by `inlet help webhook` and
// `inlet webhook test --help`.
func webhookTestHelp() string {
	var b strings.Builder
	fs := webhookTestFlags(&testOptions{})
	fs.SetOutput(&b)
	b.WriteString("\nusage: inlet webhook test -webhook ID [-sender NAME | -mode MODE | -preset NAME | -verification JSON]\n" +
		"                         [-secret SECRET | -admin-url URL] [-url URL] [-body JSON|@FILE] [flags]\n\n" +
		"Sends one request to the edge signed exactly as the sender would, prints it (secrets redacted) and the\n" +
		"edge's answer; exits 0 on a 2xx answer, 1 otherwise.\n\nflags:\n")
	fs.PrintDefaults()
	return b.String()
}

func senderNames() []string {
	var names []string
	for _, s := range webhook.Senders() {
		names = append(names, s.Name)
	}
	return names
}

// webhookCmd runs `inlet webhook SUBCOMMAND`.
func webhookCmd(ctx context.Context, cfg *config.Config, args, environ []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "test" {
		return usageError{"usage: inlet webhook test -webhook ID [flags] (inlet help webhook lists them)"}
	}
	var o testOptions
	fs := webhookTestFlags(&o)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{"webhook test: " + err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("webhook test: unexpected argument %q", fs.Arg(0))}
	}
	if o.secret == "" {
		o.secret = envOr(environ, envSenderSecret, "")
	}
	return webhookTest(ctx, cfg, o, envOr(environ, envAPIKey, ""), stdout)
}

// testRequest is what `inlet webhook test` resolved from its flags, the admin API and the settings.
type testRequest struct {
	webhookURL   string
	sender       webhook.Sender
	verification verify.Config
	secret       string
	body         []byte
}

func webhookTest(ctx context.Context, cfg *config.Config, o testOptions, apiKey string, stdout io.Writer) error {
	tr, err := resolveTest(ctx, cfg, o, apiKey)
	if err != nil {
		return err
	}
	signer, err := verify.NewSigner(tr.verification, []byte(tr.secret))
	if err != nil {
		return usageError{fmt.Sprintf("webhook test: the secret does not fit the verification: %v", err)}
	}
	id := o.id
	if id == "" {
		id = uuid.NewString()
	}
	signed, err := signer.Sign(verify.Message{Method: http.MethodPost, URL: tr.webhookURL, Body: tr.body, Time: time.Now(), ID: id})
	if err != nil {
		return err
	}

	// Content type, the signature's headers, the sender's delivery id, then the user's.
	header := []verify.Field{{Name: "Content-Type", Value: o.contentType}}
	header = append(header, signed.Header...)
	if kind, name := tr.sender.Dedup.Source(); kind == "header" && signed.Get(name) == "" {
		header = append(header, verify.Field{Name: name, Value: id})
	}
	for _, h := range o.headers {
		header = slices.DeleteFunc(header, func(f verify.Field) bool { return strings.EqualFold(f.Name, h.Name) })
		header = append(header, h)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, signed.URL, bytes.NewReader(tr.body))
	if err != nil {
		return usageError{fmt.Sprintf("webhook test: %v", err)}
	}
	req.Header.Set("User-Agent", "inlet-webhook-test")
	for _, h := range header {
		req.Header[h.Name] = []string{h.Value} // as spelled: a header name is case-insensitive anyway
	}

	fmt.Fprintf(stdout, "> POST %s\n", redactURL(signed.URL, tr.verification))
	for _, h := range header {
		fmt.Fprintf(stdout, "> %s: %s\n", h.Name, redactHeader(h))
	}
	fmt.Fprintf(stdout, ">\n%s\n", shown(tr.body, "> "))

	client := &http.Client{Timeout: o.timeout}
	resp, err := client.Do(req)
	if err != nil {
		// url.Error repeats the URL, token included: keep only its cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("send to %s: %w", redactURL(signed.URL, tr.verification), err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("read the edge's answer: %w", err)
	}
	fmt.Fprintf(stdout, "< %s\n", resp.Status)
	for _, name := range []string{"Content-Type", "Retry-After"} {
		if v := resp.Header.Get(name); v != "" {
			fmt.Fprintf(stdout, "< %s: %s\n", name, v)
		}
	}
	fmt.Fprintf(stdout, "<\n%s\n", shown(answer, "< "))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the edge answered %s", resp.Status)
	}
	return nil
}

// resolveTest decides the URL, verification, secret and body: the flags first, then what the admin
// API says of the webhook, then the settings and defaults.
func resolveTest(ctx context.Context, cfg *config.Config, o testOptions, apiKey string) (testRequest, error) {
	var tr testRequest
	if o.webhook == "" {
		return tr, usageError{"webhook test: -webhook ID is required"}
	}
	if (o.mode != "" || o.preset != "") && o.verification != "" {
		return tr, usageError{"webhook test: give -mode/-preset or -verification, not both"}
	}

	var admin adminView
	if o.adminURL != "" {
		if apiKey == "" {
			return tr, usageError{"webhook test: -admin-url needs the API key in $" + envAPIKey}
		}
		var err error
		if admin, err = fetchWebhook(ctx, o.adminURL, apiKey, o.webhook); err != nil {
			return tr, err
		}
	}

	senderName := o.sender
	if senderName == "" {
		senderName = admin.Sender
	}
	if senderName == "" {
		senderName = webhook.SenderInlet
	}
	snd, ok := webhook.LookupSender(senderName)
	if !ok {
		return tr, usageError{fmt.Sprintf("webhook test: unknown sender %q: want one of %s", senderName, strings.Join(senderNames(), ", "))}
	}
	tr.sender = snd

	switch {
	case o.verification != "":
		if err := json.Unmarshal([]byte(o.verification), &tr.verification); err != nil {
			return tr, usageError{fmt.Sprintf("webhook test: -verification: %v", err)}
		}
	case o.preset != "":
		if o.mode != "" && o.mode != string(verify.ModeHMAC) {
			return tr, usageError{"webhook test: -preset is for mode hmac"}
		}
		tr.verification = verify.Config{Mode: verify.ModeHMAC, HMAC: verify.HMAC{Preset: o.preset}}
	case o.mode != "":
		tr.verification = verify.Config{Mode: verify.Mode(o.mode), Username: o.username, QueryParam: o.param}
	case o.sender == "" && admin.Verification != nil:
		tr.verification = *admin.Verification
	default:
		tr.verification = snd.Verification
	}
	if o.username != "" && tr.verification.Mode == verify.ModeBasic {
		tr.verification.Username = o.username
	}
	if o.param != "" && tr.verification.Mode == verify.ModeToken {
		tr.verification.QueryParam = o.param
	}
	if err := tr.verification.Validate(); err != nil {
		return tr, usageError{fmt.Sprintf("webhook test: verification: %v", err)}
	}

	tr.secret = o.secret
	if tr.secret == "" {
		tr.secret = admin.Secret
	}
	if tr.secret == "" {
		if o.adminURL != "" {
			return tr, usageError{fmt.Sprintf("webhook test: the admin API gives no secret for webhook %s (mode %s): pass -secret or $%s", o.webhook, modeName(tr.verification), envSenderSecret)}
		}
		return tr, usageError{"webhook test: no secret: pass -secret, $" + envSenderSecret + ", or -admin-url with $" + envAPIKey}
	}
	tr.secret = plainSecret(tr.secret, tr.verification)

	switch {
	case o.url != "" && strings.Contains(o.url, "/hooks/"):
		tr.webhookURL = o.url
	case o.url != "":
		tr.webhookURL = strings.TrimRight(o.url, "/") + "/hooks/" + url.PathEscape(o.webhook)
	case admin.URL != "":
		tr.webhookURL = admin.URL
	default:
		tr.webhookURL = edgeBaseURL(cfg) + "/hooks/" + url.PathEscape(o.webhook)
	}

	switch {
	case strings.HasPrefix(o.body, "@"):
		b, err := os.ReadFile(o.body[1:])
		if err != nil {
			return tr, usageError{fmt.Sprintf("webhook test: -body: %v", err)}
		}
		tr.body = b
	case o.body != "":
		tr.body = []byte(o.body)
	case strings.TrimSpace(admin.SamplePayload) != "":
		// As the console's example request sends it: compact when it is JSON.
		var buf bytes.Buffer
		if json.Compact(&buf, []byte(admin.SamplePayload)) == nil {
			tr.body = buf.Bytes()
		} else {
			tr.body = []byte(admin.SamplePayload)
		}
	default:
		tr.body = []byte(seed.Sample)
	}
	return tr, nil
}

// edgeBaseURL is the edge the settings describe: http://<ingestor.listen_addr>, a wildcard host
// replaced by the loopback address.
func edgeBaseURL(cfg *config.Config) string {
	host, port, err := net.SplitHostPort(cfg.Ingestor.ListenAddr)
	if err != nil {
		return "http://127.0.0.1:8080"
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// plainSecret undoes the Authorization form the console shows: "Bearer whsec_…" is whsec_…; "Basic
// base64(user:password)" is the password.
func plainSecret(s string, v verify.Config) string {
	switch v.Mode {
	case "", verify.ModeBearer:
		if cred, ok := cutScheme(s, "Bearer "); ok {
			return cred
		}
	case verify.ModeBasic:
		if cred, ok := cutScheme(s, "Basic "); ok {
			if b, err := base64.StdEncoding.DecodeString(cred); err == nil {
				if _, pass, ok := strings.Cut(string(b), ":"); ok {
					return pass
				}
			}
		}
	}
	return s
}

func cutScheme(s, scheme string) (string, bool) {
	if len(s) > len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
		return strings.TrimSpace(s[len(scheme):]), true
	}
	return "", false
}

func modeName(v verify.Config) string {
	if v.Mode == "" {
		return string(verify.ModeBearer)
	}
	return string(v.Mode)
}

// redactHeader shows a header's value, the credential of Authorization cut to its scheme and prefix.
func redactHeader(f verify.Field) string {
	if !strings.EqualFold(f.Name, "Authorization") {
		return f.Value
	}
	scheme, cred, _ := strings.Cut(f.Value, " ")
	shown := ""
	if strings.HasPrefix(cred, "whsec_") {
		shown = "whsec_"
	}
	return scheme + " " + shown + "… (redacted)"
}

// redactURL hides the token of ModeToken in a URL.
func redactURL(raw string, v verify.Config) string {
	if v.Mode != verify.ModeToken {
		return raw
	}
	param := v.QueryParam
	if param == "" {
		param = verify.DefaultQueryParam
	}
	base, query, ok := strings.Cut(raw, "?")
	if !ok {
		return raw
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		if k, _, _ := strings.Cut(p, "="); k == url.QueryEscape(param) {
			parts[i] = k + "=REDACTED"
		}
	}
	return base + "?" + strings.Join(parts, "&")
}

// shown is a body as printed: each line after prefix, at most maxShownBody bytes.
func shown(b []byte, prefix string) string {
	more := ""
	if len(b) > maxShownBody {
		more = fmt.Sprintf("\n%s… %d more bytes", prefix, len(b)-maxShownBody)
		b = b[:maxShownBody]
	}
	if len(b) == 0 {
		return prefix + "(empty)"
	}
	return prefix + strings.ReplaceAll(strings.TrimRight(string(b), "\n"), "\n", "\n"+prefix) + more
}

// adminView is what the admin API says of a webhook: its sender, verification and sample payload
// (GET /api/v1/webhooks/{id}) and its URL and secret (GET /api/v1/webhooks/{id}/credentials).
type adminView struct {
	Sender        string         `json:"sender"`
	Verification  *verify.Config `json:"verification"`
	SamplePayload string         `json:"sample_payload"`
	URL           string         `json:"-"`
	Secret        string         `json:"-"`
}

// credentialsView reads both shapes of the credentials answer: "secret" as the Authorization value
// ("Bearer whsec_…", what the console shows), or the plain secret beside "authorization".
type credentialsView struct {
	URL           string `json:"url"`
	Secret        string `json:"secret"`
	Authorization string `json:"authorization"`
}

func fetchWebhook(ctx context.Context, base, apiKey, id string) (adminView, error) {
	var v adminView
	base = strings.TrimRight(base, "/") + "/api/v1/webhooks/" + url.PathEscape(id)
	if err := adminGet(ctx, base, apiKey, &v); err != nil {
		return v, err
	}
	var c credentialsView
	if err := adminGet(ctx, base+"/credentials", apiKey, &c); err != nil {
		return v, err
	}
	// A webhook URL has no query of its own; in token mode the admin API's carries the token, which
	// the Signer adds itself.
	v.URL, _, _ = strings.Cut(c.URL, "?")
	v.Secret = c.Secret
	if v.Secret == "" {
		v.Secret = c.Authorization
	}
	return v, nil
}

func adminGet(ctx context.Context, u, apiKey string, into any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return usageError{fmt.Sprintf("webhook test: -admin-url: %v", err)}
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
	if err != nil {
		return fmt.Errorf("admin API GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin API GET %s: %s: %s", u, resp.Status, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("admin API GET %s: %w", u, err)
	}
	return nil
}
