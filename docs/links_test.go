package docs

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// repoRoot is the repository's root as seen from this package's directory.
const repoRoot = ".."

var (
	// inlineLink is [text](target) and ![alt](target), with an optional title; the text holds no
	// brackets (code spans, which may, are blanked before matching).
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	// refDef is a reference definition, "[name]: target".
	refDef = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?`)
	// autolink is <scheme:…>.
	autolink = regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9+.-]*:[^<>\s]*)>`)
	// codeSpan is an inline code span on one line.
	codeSpan = regexp.MustCompile("`[^`]*`")
	// atxHeading is a "# …" heading line; its text is the first group.
	atxHeading = regexp.MustCompile(`^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$`)
	// scheme starts an absolute URL (https:, mailto:, …).
	scheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// link is one link target of a page and the line it is on.
type link struct {
	line   int
	target string
}

// proseLines returns the page's lines with fenced code blocks emptied, so that neither a link nor a
// heading is read from code.
func proseLines(doc string) []string {
	lines := strings.Split(doc, "\n")
	fence := ""
	for i, l := range lines {
		trimmed := strings.TrimLeft(l, " ")
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			lines[i] = ""
			continue
		}
		for _, f := range []string{"```", "~~~"} {
			if strings.HasPrefix(trimmed, f) && len(l)-len(trimmed) <= 3 {
				fence = f
				lines[i] = ""
			}
		}
	}
	return lines
}

// links returns every link target of a Markdown page outside code.
func links(doc string) []link {
	var out []link
	for i, l := range proseLines(doc) {
		l = codeSpan.ReplaceAllStringFunc(l, func(s string) string { return strings.Repeat(" ", len(s)) })
		for _, m := range inlineLink.FindAllStringSubmatch(l, -1) {
			out = append(out, link{i + 1, m[1]})
		}
		for _, m := range autolink.FindAllStringSubmatch(l, -1) {
			out = append(out, link{i + 1, m[1]})
		}
		if m := refDef.FindStringSubmatch(l); m != nil {
			out = append(out, link{i + 1, m[1]})
		}
	}
	return out
}

// slug is the anchor GitHub gives a heading: its text lower-cased, with spaces turned into hyphens and
// everything but letters, digits, '_' and '-' left out (code spans and links keep their text).
func slug(heading string) string {
	heading = inlineLink.ReplaceAllStringFunc(heading, func(s string) string {
		return s[strings.IndexByte(s, '[')+1 : strings.LastIndex(s, "](")]
	})
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '_', r == '-':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// anchors returns the anchors of a page's headings; a repeated heading's anchor gets -1, -2, … as on
// GitHub.
func anchors(doc string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	for _, l := range proseLines(doc) {
		m := atxHeading.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		s := slug(m[1])
		if n := seen[s]; n > 0 {
			out[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}

var errOutside = errors.New("a URL: README.md links only files of the repository, which a plain clone carries")

// resolve checks one link of page (a slash path from the repository root) and returns the file it
// reaches, as a slash path from the root ("" for a URL). Links must stay in the repository and reach an
// existing file or directory, and a heading when they name one of a Markdown page; README.md may link no
// URL at all.
func resolve(root, page, target string) (string, error) {
	switch {
	case target == "":
		return "", errors.New("empty link")
	case scheme.MatchString(target):
		if page == "README.md" {
			return "", errOutside
		}
		return "", nil
	case strings.HasPrefix(target, "/"):
		return "", errors.New("absolute path: link relative to the page")
	}
	p, frag, _ := strings.Cut(target, "#")
	p, err := url.PathUnescape(p)
	if err != nil {
		return "", err
	}
	file := page
	if p != "" {
		file = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(page), p)))
	}
	if file == ".." || strings.HasPrefix(file, "../") {
		return "", fmt.Errorf("reaches %s, outside the repository: a plain clone must carry its own documents", file)
	}
	if _, err := os.Stat(filepath.Join(root, file)); err != nil {
		return "", fmt.Errorf("no such file in the repository: %s", file)
	}
	if frag != "" && strings.HasSuffix(file, ".md") {
		doc, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			return "", err
		}
		if !anchors(string(doc))[frag] {
			return "", fmt.Errorf("%s has no heading #%s", file, frag)
		}
	}
	return file, nil
}

// pages are the Markdown pages whose links are checked: README.md and every page of docs/.
func pages(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := []string{"README.md"}
	for _, d := range docs {
		out = append(out, "docs/"+filepath.Base(d))
	}
	return out
}

// TestDocLinks checks every link of README.md and docs/*.md: see resolve.
func TestDocLinks(t *testing.T) {
	for _, page := range pages(t) {
		t.Run(page, func(t *testing.T) {
			doc, err := os.ReadFile(filepath.Join(repoRoot, page))
			if err != nil {
				t.Fatal(err)
			}
			ls := links(string(doc))
			if len(ls) == 0 && page == "README.md" {
				t.Fatal("README.md has no links; want at least the docs/ pages")
			}
			for _, l := range ls {
				if _, err := resolve(repoRoot, page, l.target); err != nil {
					t.Errorf("%s:%d: (%s): %v", page, l.line, l.target, err)
				}
			}
		})
	}
}

// TestDocLinksReachEveryPage: every page of docs/ is linked from README.md, so that none is found only
// by listing the directory.
func TestDocLinksReachEveryPage(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var linked []string
	for _, l := range links(string(doc)) {
		if f, err := resolve(repoRoot, "README.md", l.target); err == nil {
			linked = append(linked, f)
		}
	}
	for _, page := range pages(t)[1:] {
		if !slices.Contains(linked, page) {
			t.Errorf("%s is not linked from README.md; want a row in its table of documents", page)
		}
	}
}

// TestDocLinksChecker: the checker itself finds what it must, so that a broken link cannot pass
// because the parsing missed it.
func TestDocLinksChecker(t *testing.T) {
	page := "# Title\n" +
		"See [the edge](docs/a.md#status-table), ![pic](docs/screenshots/x.png \"title\") and <https://example.com/>.\n" +
		"Not a link: `[x](nowhere.md)`.\n" +
		"```sh\n" +
		"[y](nowhere-either.md)\n" +
		"```\n" +
		"[ref]: ../shared/DESIGN.md\n"
	var got []string
	for _, l := range links(page) {
		got = append(got, fmt.Sprintf("%d:%s", l.line, l.target))
	}
	want := []string{"2:docs/a.md#status-table", "2:docs/screenshots/x.png", "2:https://example.com/", "7:../shared/DESIGN.md"}
	if !slices.Equal(got, want) {
		t.Errorf("links = %q; want %q", got, want)
	}

	for _, c := range []struct{ heading, want string }{
		{"The two commands", "the-two-commands"},
		{"The local stack (`deploy/local`)", "the-local-stack-deploylocal"},
		{"`activity_log` — one row per logged request", "activity_log--one-row-per-logged-request"},
		{"A 503 after an ack timeout does not mean \"not taken in\"", "a-503-after-an-ack-timeout-does-not-mean-not-taken-in"},
		{"See [the edge](edge.md)", "see-the-edge"},
	} {
		if got := slug(c.heading); got != c.want {
			t.Errorf("slug(%q) = %q; want %q", c.heading, got, c.want)
		}
	}
	if a := anchors("# A\n## A\n```\n# B\n```\n"); !a["a"] || !a["a-1"] || a["b"] {
		t.Errorf("anchors = %v; want a and a-1, not b (in code)", a)
	}

	for _, c := range []struct {
		page, target string
		ok           bool
	}{
		{"README.md", "docs/clickhouse.md", true},
		{"README.md", "docs/clickhouse.md#exactly-once", true},
		{"README.md", "docs/clickhouse.md#no-such-heading", false},
		{"README.md", "docs/screenshots/01-sign-in.png", true},
		{"README.md", "internal/jsonvalid", true},
		{"README.md", "docs/no-such-page.md", false},
		{"README.md", "../shared/DESIGN.md", false}, // exists beside a checkout, not in a clone
		{"README.md", "https://example.com/", false},
		{"README.md", "/docs/clickhouse.md", false},
		{"docs/clickhouse.md", "https://example.com/", true},
		{"docs/clickhouse.md", "#tables", true},
		{"docs/clickhouse.md", "screenshots/01-sign-in.png", true},
		{"docs/clickhouse.md", "docs/screenshots/01-sign-in.png", false},
		{"docs/clickhouse.md", "../deploy/inlet.example.yaml", true},
		{"docs/clickhouse.md", "../../shared/STYLE.md", false},
	} {
		_, err := resolve(repoRoot, c.page, c.target)
		if (err == nil) != c.ok {
			t.Errorf("resolve(%s, %s) = %v; want ok %v", c.page, c.target, err, c.ok)
		}
	}
}
