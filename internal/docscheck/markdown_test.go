package docscheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// documents are the Markdown files the checks read, relative to the
// repository root; docs/*.md is added by checkedDocuments.
var documents = []string{"README.md", "CONTRIBUTING.md", "charts/obo-gateway/README.md"}

// repoRoot returns the directory holding go.mod, above the test's working
// directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// checkedDocuments returns the paths, relative to root, of every document
// the checks read.
func checkedDocuments(t *testing.T, root string) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no docs/*.md")
	}
	out := append([]string(nil), documents...)
	for _, d := range docs {
		rel, err := filepath.Rel(root, d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, filepath.ToSlash(rel))
	}
	return out
}

func readDoc(t *testing.T, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// line is one line of a Markdown document outside fenced code blocks.
type line struct {
	n    int // 1-based
	text string
}

var fence = regexp.MustCompile("^ {0,3}(```|~~~)")

// prose returns the lines of doc that lie outside fenced code blocks.
func prose(doc string) []line {
	var (
		out    []line
		inside string
	)
	for i, l := range strings.Split(doc, "\n") {
		if m := fence.FindStringSubmatch(l); m != nil {
			switch inside {
			case "":
				inside = m[1]
			case m[1]:
				inside = ""
			}
			continue
		}
		if inside == "" {
			out = append(out, line{i + 1, l})
		}
	}
	return out
}

var codeSpan = regexp.MustCompile("`+[^`]*`+")

// withoutCode returns s with its code spans removed.
func withoutCode(s string) string {
	return codeSpan.ReplaceAllString(s, "")
}

var (
	atxHeading = regexp.MustCompile(`^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$`)
	htmlAnchor = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"`)
	inlineLink = regexp.MustCompile(`\[((?:[^\[\]]|\[[^\]]*\])*)\]\(([^)]*)\)`)
)

// anchors returns the anchors of doc: the slugs GitHub gives its headings
// (a repeated slug gets -1, -2, ...) and the names of HTML anchors.
func anchors(doc string) map[string]bool {
	out := make(map[string]bool)
	seen := make(map[string]int)
	for _, l := range prose(doc) {
		for _, m := range htmlAnchor.FindAllStringSubmatch(l.text, -1) {
			out[m[1]] = true
		}
		m := atxHeading.FindStringSubmatch(l.text)
		if m == nil {
			continue
		}
		s := slug(m[1])
		if n := seen[s]; n > 0 {
			out[s+"-"+strconv.Itoa(n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}

// slug is GitHub's anchor for a heading: the text as rendered (code spans
// keep their content, links their text), lower-cased, with every character
// but letters, digits, marks, '_' and '-' dropped and each space turned
// into '-'.
func slug(heading string) string {
	text := inlineLink.ReplaceAllString(heading, "$1")
	text = strings.ReplaceAll(text, "`", "")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestSlug(t *testing.T) {
	for _, tc := range []struct{ heading, want string }{
		{"Quick start with Entra ID", "quick-start-with-entra-id"},
		{"Credentials (`gateway.credential.type`)", "credentials-gatewaycredentialtype"},
		{"Requests Go's HTTP server refuses", "requests-gos-http-server-refuses"},
		{"Client (API A's identity and credential)", "client-api-as-identity-and-credential"},
		{"Many replicas: the Redis second level", "many-replicas-the-redis-second-level"},
		{"RFC 8693 token exchange (Keycloak, Okta, …)", "rfc-8693-token-exchange-keycloak-okta-"},
		{"See [the chart](charts/README.md) first", "see-the-chart-first"},
		{"max_bytes and cache.key", "max_bytes-and-cachekey"},
	} {
		if got := slug(tc.heading); got != tc.want {
			t.Errorf("slug(%q) = %q, want %q", tc.heading, got, tc.want)
		}
	}
}

func TestAnchorsNumberRepeatedHeadings(t *testing.T) {
	got := anchors("# A\n## Tests\n```\n# not a heading\n```\n## Tests\n## Tests ##\n<a name=\"x\"></a>\n")
	for _, want := range []string{"a", "tests", "tests-1", "tests-2", "x"} {
		if !got[want] {
			t.Errorf("anchor %q missing from %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("a line in a code block counted as a heading")
	}
}
