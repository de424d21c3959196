package admin

import (
	"bytes"
	"context"
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

// credentials reads the credentials of webhook id with the verification its test command signs by.
// webhook.Credentials has a Basic user and a token's parameter but no HMAC scheme; in HMAC modes the
// scheme is read from the webhook. The two reads are not one snapshot: an edit between them that
// changes the verification also replaces the secret, so either answer is as stale as the other.
func (a *api) credentials(ctx context.Context, projectID int64, id string) (credentials, error) {
	c, err := a.webhooks.Credentials(ctx, projectID, id)
	if err != nil {
		return credentials{}, err
	}
	v := verify.Config{Mode: c.Mode, Username: c.Username, QueryParam: c.QueryParam}
	if c.Mode == verify.ModeHMAC {
		wh, err := a.webhooks.Get(ctx, projectID, id)
		if err != nil {
			return credentials{}, err
		}
		v = wh.Verification
	}
	return a.credentialsFor(c, v), nil
}

// credentialsFor is c as the API shows it; v is the webhook's verification, for its test command.
func (a *api) credentialsFor(c *webhook.Credentials, v verify.Config) credentials {
	hook := a.publicBaseURL + "/hooks/" + c.ID
	out := credentials{
		URL: hook, Sender: c.Sender, Mode: c.Mode, Secret: c.Secret, Authorization: c.Authorization,
		Username: c.Username, QueryParam: c.QueryParam, HandshakeToken: c.HandshakeToken,
		TestCommand: TestCommand(a.publicBaseURL, c.ID, c.Sender, v, c.Secret, c.SamplePayload),
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
// when there is none) to webhook id at the public base URL, authenticated with secret (in bearer mode
// the whsec_ value) as verification v says, v being that of a webhook connected as sender. Its flags
// are spelled as the command defines them; docs/cli.md describes them.
func TestCommand(base, id, sender string, v verify.Config, secret, sample string) string {
	cmd := "inlet webhook test -url " + shellArg(base) + " -webhook " + shellArg(id) +
		" -sender " + shellArg(sender) + verificationFlags(sender, v) + " -secret " + shellArg(secret)
	if body := compactSample(sample, ""); body != "" {
		cmd += " -body " + shellQuote(body)
	}
	return cmd
}

// verificationFlags are the flags, each after a space, that make `inlet webhook test -sender sender`
// sign as v: none when v is the sender's verification in the catalog (-sender sets that); -mode,
// -username and -query-param for a mode, Basic user or token parameter of the user's; -verification
// with v as JSON for an HMAC scheme other than the sender's. An HMAC's tolerance is not compared: a
// request is signed when it is sent, whatever the tolerance.
func verificationFlags(sender string, v verify.Config) string {
	want := normalVerification(v)
	var def verify.Config
	if snd, ok := webhook.LookupSender(sender); ok {
		def = normalVerification(snd.Verification)
	}
	if want == def {
		return ""
	}
	if want.Mode == verify.ModeHMAC {
		js, _ := json.Marshal(v) // strings and a duration: it cannot fail
		return " -verification " + shellQuote(string(js))
	}
	var flags string
	if want.Mode != def.Mode {
		// -mode alone gives the mode's defaults: no user, the "token" parameter.
		flags = " -mode " + string(want.Mode)
		def = normalVerification(verify.Config{Mode: want.Mode})
	}
	if want.Username != def.Username {
		flags += " -username " + shellArg(want.Username)
	}
	if want.QueryParam != def.QueryParam {
		flags += " -query-param " + shellArg(want.QueryParam)
	}
	return flags
}

// normalVerification is v with its defaults spelled out and its tolerance dropped, for verificationFlags.
func normalVerification(v verify.Config) verify.Config {
	if v.Mode == "" {
		v.Mode = verify.ModeBearer
	}
	if v.Mode == verify.ModeToken && v.QueryParam == "" {
		v.QueryParam = verify.DefaultQueryParam
	}
	v.HMAC.Tolerance = 0
	return v
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
