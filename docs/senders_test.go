package docs

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/inlet-dev/inlet/admin"
	"github.com/inlet-dev/inlet/internal/verify"
	"github.com/inlet-dev/inlet/internal/webhook"
)

var update = flag.Bool("update", false, "rewrite the generated sender tables of README.md and docs/senders.md from the catalog")

// pending are providers whose README row is written before they join the catalog (webhook.Senders),
// each to be dropped from here by the change that adds it there, which then regenerates the tables with
// the catalog's own words (TestSendersPending says so).
var pending []webhook.Sender

// generated is one generated block of a page: the text between its begin and end markers.
type generated struct {
	page, name string
	render     func([]webhook.Sender) string
}

var blocks = []generated{
	{"README.md", "readme", readmeTable},
	{"docs/senders.md", "catalog", catalogTable},
}

// providers are the catalog's providers and the pending ones, by title as the catalog orders them.
func providers(catalog []webhook.Sender) []webhook.Sender {
	var out []webhook.Sender
	for _, s := range catalog {
		if admin.IsProvider(s) {
			out = append(out, s)
		}
	}
	out = append(out, pending...)
	slices.SortStableFunc(out, func(a, b webhook.Sender) int { return strings.Compare(a.Title, b.Title) })
	return out
}

// cell is s fit for a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// readmeTable is README's "Connect a sender": per provider, where its URL goes and where its secret is.
func readmeTable(catalog []webhook.Sender) string {
	var b strings.Builder
	b.WriteString("| sender | where to paste the webhook URL | where to find the secret |\n|---|---|---|\n")
	for _, s := range providers(catalog) {
		fmt.Fprintf(&b, "| %s — `%s` | %s | %s |\n", cell(s.Title), s.Name, cell(s.URLHelp), cell(s.SecretHelp))
	}
	return b.String()
}

// catalogTable is docs/senders.md's table of every sender: what is checked, kept, deduplicated and
// answered.
func catalogTable(catalog []webhook.Sender) string {
	all := slices.Clone(catalog)
	for _, s := range providers(catalog) {
		if !slices.ContainsFunc(all, func(c webhook.Sender) bool { return c.Name == s.Name }) {
			all = append(all, s)
		}
	}
	var b strings.Builder
	b.WriteString("| sender | verification | headers kept | delivery id (dedup) | handshake |\n|---|---|---|---|---|\n")
	for _, s := range all {
		headers := "—"
		if len(s.Headers) > 0 {
			headers = "`" + strings.Join(s.Headers, "`, `") + "`"
		}
		dedup := "—"
		if s.Dedup.Key != "" {
			dedup = fmt.Sprintf("`%s`, %s", s.Dedup.Key, shortDuration(s.Dedup.EffectiveWindow().String()))
		}
		hs := map[webhook.Handshake]string{
			webhook.HandshakeNone:  "—",
			webhook.HandshakeSlack: "Slack's `url_verification` challenge",
			webhook.HandshakeMeta:  "Meta's `hub.challenge` with the verify token",
			webhook.HandshakeZoom:  "Zoom's `endpoint.url_validation`",
		}[s.Handshake]
		if hs == "" {
			hs = "`" + string(s.Handshake) + "`"
		}
		fmt.Fprintf(&b, "| %s — `%s` | %s | %s | %s | %s |\n", cell(s.Title), s.Name, cell(verification(s)), headers, dedup, hs)
	}
	return b.String()
}

// verification says in words how a sender's requests are checked.
func verification(s webhook.Sender) string {
	v := s.Verification
	var out string
	switch v.Mode {
	case "", verify.ModeBearer:
		out = "`Authorization: Bearer whsec_…`"
	case verify.ModeBasic:
		out = fmt.Sprintf("HTTP Basic, user `%s`", v.Username)
	case verify.ModeToken:
		p := v.QueryParam
		if p == "" {
			p = verify.DefaultQueryParam
		}
		out = fmt.Sprintf("a token in the query, `?%s=…`", p)
	case verify.ModeHMAC:
		h, ok := v.HMAC, true
		if h.Preset != "" {
			h, ok = verify.Preset(h.Preset)
		}
		if !ok {
			out = fmt.Sprintf("HMAC, preset `%s`", v.HMAC.Preset)
			break
		}
		alg := map[verify.Algorithm]string{verify.SHA1: "SHA-1", verify.SHA256: "SHA-256", verify.SHA512: "SHA-512"}[h.Algorithm]
		header := h.Header
		switch {
		case h.Format == verify.FormatStripe:
			header += ": t=…,v1=…"
		case h.Format == verify.FormatStandard:
			header += ": v1,…"
		case h.Prefix != "":
			header += ": " + h.Prefix + "…"
		}
		out = fmt.Sprintf("`%s`, %s HMAC-%s", header, h.Encoding, alg)
		if h.Signed != "" && h.Signed != verify.PartBody {
			out += fmt.Sprintf(" of `%s`", h.Signed)
		} else {
			out += " of the body"
		}
		if h.TimestampHeader != "" {
			out += fmt.Sprintf("; timestamp in `%s`", h.TimestampHeader)
		}
		if h.TimestampHeader != "" || h.Format == verify.FormatStripe {
			out += ", within " + shortDuration(h.Tolerance.String())
		}
	}
	if s.FormBody {
		out += "; form-encoded bodies"
	}
	return out
}

// shortDuration is "24h" for "24h0m0s", "5m" for "5m0s".
func shortDuration(d string) string {
	d = strings.TrimSuffix(d, "0s")
	if strings.HasSuffix(d, "h0m") {
		d = strings.TrimSuffix(d, "0m")
	}
	return d
}

// TestSendersTables: the sender tables of README.md and docs/senders.md are what the catalog says;
// -update rewrites them.
func TestSendersTables(t *testing.T) {
	catalog := webhook.Senders()
	for _, g := range blocks {
		path := filepath.Join(repoRoot, g.page)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(b)
		begin, end := "<!-- senders:"+g.name+":begin", "<!-- senders:"+g.name+":end -->"
		i, j := strings.Index(doc, begin), strings.Index(doc, end)
		if i < 0 || j < i {
			t.Fatalf("%s has no %s … %s block", g.page, begin, end)
		}
		i += strings.Index(doc[i:], "-->\n") + len("-->\n")
		want := g.render(catalog)
		if doc[i:j] == want {
			continue
		}
		if *update {
			if err := os.WriteFile(path, []byte(doc[:i]+want+doc[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s's sender table is not the catalog's; run go test ./docs -run TestSendersTables -update.\nhave:\n%s\nwant:\n%s", g.page, doc[i:j], want)
	}
}

// TestSendersPending: a pending provider is not in the catalog yet, else its row would not be the
// catalog's words.
func TestSendersPending(t *testing.T) {
	for _, p := range pending {
		if _, ok := webhook.LookupSender(p.Name); ok {
			t.Errorf("%s is in the catalog now: delete it from pending and run go test ./docs -run TestSendersTables -update", p.Name)
		}
		if p.Title == "" || p.URLHelp == "" || p.SecretHelp == "" {
			t.Errorf("pending %s: title, url help or secret help missing", p.Name)
		}
	}
}

// TestSendersTablesRender: the README table has one row per provider and none for Inlet's own modes.
func TestSendersTablesRender(t *testing.T) {
	table := readmeTable(webhook.Senders())
	for _, name := range []string{"shopify", "stripe", "github", "woocommerce", "hubspot", "slack", "standard_webhooks", "meta", "zoom", "twilio"} {
		if strings.Count(table, " — `"+name+"` |") != 1 {
			t.Errorf("README table has no row, or several, for %s:\n%s", name, table)
		}
	}
	for _, name := range []string{"inlet", "basic", "token", "hmac"} {
		if strings.Contains(table, " — `"+name+"` |") {
			t.Errorf("README table has a row for Inlet's own mode %s", name)
		}
	}
	if got := verification(webhook.Sender{Verification: verify.Config{Mode: verify.ModeHMAC, HMAC: verify.HMAC{Preset: "stripe"}}}); got != "`Stripe-Signature: t=…,v1=…`, hex HMAC-SHA-256 of `{timestamp}.{body}`, within 5m" {
		t.Errorf("Stripe's verification in words = %q", got)
	}
}
