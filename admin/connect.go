package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/webhook"
)

// The connection of a webhook to its sender, as the API and the console's Connect step show it: the
// catalog of senders, and the credentials a sender needs — with a ready request for each mode.

// senderView is a catalog entry as the API shows it.
type senderView struct {
	webhook.Sender
	// Provider is false for Inlet's own modes (Bearer secret, Basic, token, custom HMAC), which any
	// service can use, and true for a named provider's scheme.
	Provider bool `json:"provider"`
	// Signature is what an HMAC preset checks (its header, algorithm, encoding, signed content and
	// tolerance), so that a caller need not know the preset by heart; absent otherwise.
	Signature *verify.HMAC `json:"signature,omitempty"`
}

// IsProvider reports whether s is a named provider's entry rather than one of Inlet's own modes (whose
// name is the mode's: "basic", "token", "hmac", or "inlet" for the Bearer secret). README's "Connect a
// sender" table lists the providers.
func IsProvider(s webhook.Sender) bool {
	return s.Name != webhook.SenderInlet && s.Name != string(s.Verification.Mode)
}

func (a *api) listSenders(_ http.ResponseWriter, _ *http.Request) (int, any, error) {
	cat := webhook.Senders()
	out := make([]senderView, len(cat))
	for i, s := range cat {
		out[i] = senderView{Sender: s, Provider: IsProvider(s)}
		if p := s.Verification.HMAC.Preset; p != "" {
			if h, ok := verify.Preset(p); ok {
				out[i].Signature = &h
			}
		}
	}
	return http.StatusOK, map[string]any{"senders": out}, nil
}

// credentials is what a sender needs to reach a webhook, as the console's "Webhook URL" window shows
// it. Only the credentials and rotate-secret endpoints answer it, and a create when Inlet made the
// secret; nothing else carries a secret.
type credentials struct {
	// URL is the address to paste into the sender; in token mode it carries the token in its query.
	URL    string      `json:"url"`
	Sender string      `json:"sender"`
	Mode   verify.Mode `json:"mode"`
	// Secret is, in bearer mode, the whole Authorization value exactly as the sender must send it
	// ("Bearer whsec_…", as the window has always shown it); otherwise the secret itself: the Basic
	// password, the URL token, or the provider's signing secret.
	Secret string `json:"secret"`
	// Authorization is the header value of bearer and basic modes.
	Authorization string `json:"authorization,omitempty"`
	// Username is the Basic user; QueryParam the token's query parameter.
	Username   string `json:"username,omitempty"`
	QueryParam string `json:"query_param,omitempty"`
	// HandshakeToken is Meta's verify token, pasted beside the URL in Meta's app settings.
	HandshakeToken string `json:"handshake_token,omitempty"`
	// ExampleRequest is one command line that sends the sample payload as the sender would, accepted
	// as it is: curl in bearer, basic and token modes; in HMAC modes TestCommand, since a signature
	// must be computed per request (and, with a timestamp, expires).
	ExampleRequest string `json:"example_request"`
	// TestCommand is `inlet webhook test`, which sends the sample signed or authenticated as the
	// sender does, for every mode.
	TestCommand string `json:"test_command"`
}

func (a *api) credentialsFor(c *webhook.Credentials) credentials {
	hook := a.publicBaseURL + "/hooks/" + c.ID
	out := credentials{
		URL: hook, Sender: c.Sender, Mode: c.Mode, Secret: c.Secret, Authorization: c.Authorization,
		Username: c.Username, QueryParam: c.QueryParam, HandshakeToken: c.HandshakeToken,
		TestCommand: TestCommand(a.publicBaseURL, c.ID, c.Sender, c.Secret, c.SamplePayload),
	}
	switch c.Mode {
	case verify.ModeBearer:
		out.Secret = c.Authorization
	case verify.ModeToken:
		out.URL = hook + "?" + url.QueryEscape(c.QueryParam) + "=" + url.QueryEscape(c.Secret)
	}
	if c.Mode == verify.ModeHMAC {
		out.ExampleRequest = out.TestCommand
	} else {
		out.ExampleRequest = ExampleCurl(out.URL, c.Authorization, c.SamplePayload)
	}
	return out
}

// ExampleCurl is a one-line curl command sending sample (compacted when it is JSON; {} when empty) to
// url, with the Authorization header when authorization is not empty.
func ExampleCurl(url, authorization, sample string) string {
	cmd := "curl -sS -X POST " + shellQuote(url)
	if authorization != "" {
		cmd += " -H " + shellQuote("Authorization: "+authorization)
	}
	return cmd + " -H 'Content-Type: application/json' --data-raw " + shellQuote(compactSample(sample, "{}"))
}

// TestCommand is the `inlet webhook test` command line that sends sample (or the command's own body
// when there is none) to webhook id at the public base URL, signed or authenticated as sender does it
// with secret.
func TestCommand(base, id, sender, secret, sample string) string {
	cmd := "inlet webhook test --url " + shellArg(base) + " --webhook " + shellArg(id) +
		" --sender " + shellArg(sender) + " --secret " + shellArg(secret)
	if body := compactSample(sample, ""); body != "" {
		cmd += " --body " + shellQuote(body)
	}
	return cmd
}

// compactSample is sample without its insignificant whitespace when it is JSON, as sent; def when it
// is empty.
func compactSample(sample, def string) string {
	body := strings.TrimSpace(sample)
	var buf bytes.Buffer
	if body != "" && json.Compact(&buf, []byte(body)) == nil {
		body = buf.String()
	}
	if body == "" {
		return def
	}
	return body
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// shellArg is s as one shell word: as it is when it has nothing the shell reads, else quoted.
func shellArg(s string) string {
	if s == "" {
		return "''"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_-./:@=+,%", c) >= 0) {
			return shellQuote(s)
		}
	}
	return s
}
