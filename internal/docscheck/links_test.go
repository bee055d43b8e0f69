package docscheck

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	referenceLink = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:[ \t]*<?([^>\s]+)>?`)
	hasScheme     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
)

// link is a link target found in a document.
type link struct {
	line   int
	target string
}

// links returns the targets of the inline and reference links of doc,
// outside code blocks and code spans.
func links(doc string) []link {
	var out []link
	for _, l := range prose(doc) {
		text := withoutCode(l.text)
		if m := referenceLink.FindStringSubmatch(text); m != nil {
			out = append(out, link{l.n, m[1]})
			continue
		}
		for _, m := range inlineLink.FindAllStringSubmatch(text, -1) {
			target := strings.TrimSpace(m[2])
			// A title may follow the target: [x](target "title").
			if i := strings.IndexAny(target, " \t"); i >= 0 {
				target = target[:i]
			}
			out = append(out, link{l.n, strings.Trim(target, "<>")})
		}
	}
	return out
}

// checkLink returns what is wrong with target, a link in the document at
// from (relative to root), or "" when it resolves: to a file or folder
// inside the repository, and, when it has a #anchor into a Markdown file,
// to one of that file's headings.
func checkLink(root, from, target string) string {
	if target == "" || hasScheme.MatchString(target) {
		return ""
	}
	file, anchor, _ := strings.Cut(target, "#")
	file, err := url.PathUnescape(file)
	if err != nil {
		return fmt.Sprintf("cannot unescape: %v", err)
	}
	rel := from
	if file != "" {
		if strings.HasPrefix(file, "/") {
			return "an absolute path: write it relative to the document"
		}
		rel = path.Clean(path.Join(path.Dir(from), file))
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return "leads outside the repository"
		}
	}
	info, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return "no such file or folder: " + rel
	}
	if anchor == "" || info.IsDir() || !strings.HasSuffix(rel, ".md") {
		return ""
	}
	doc, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return err.Error()
	}
	if !anchors(string(doc))[anchor] {
		return fmt.Sprintf("no heading in %s has the anchor #%s", rel, anchor)
	}
	return ""
}

func TestRelativeLinksResolve(t *testing.T) {
	root := repoRoot(t)
	checked := 0
	for _, doc := range checkedDocuments(t, root) {
		for _, l := range links(readDoc(t, root, doc)) {
			if hasScheme.MatchString(l.target) {
				continue
			}
			checked++
			if problem := checkLink(root, doc, l.target); problem != "" {
				t.Errorf("%s:%d: link %q: %s", doc, l.line, l.target, problem)
			}
		}
	}
	// The README alone links every document of docs/.
	if checked < 20 {
		t.Errorf("only %d relative links found: is the link parser broken?", checked)
	}
}

func TestCheckLinkRefusesBrokenLinks(t *testing.T) {
	root := t.TempDir()
	for name, text := range map[string]string{
		"README.md":      "# Title\n\n## Quick start\n",
		"docs/guide.md":  "# Guide\n",
		"charts/c/x.txt": "",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		from, target string
		ok           bool
	}{
		{"docs/guide.md", "../README.md", true},
		{"docs/guide.md", "../README.md#quick-start", true},
		{"docs/guide.md", "#guide", true},
		{"docs/guide.md", "../charts/c/", true},
		{"docs/guide.md", "../charts/c/x.txt#L1", true},
		{"docs/guide.md", "https://example.com/nowhere", true},
		{"docs/guide.md", "README.md", false},
		{"docs/guide.md", "../README.md#quick-stat", false},
		{"docs/guide.md", "#nowhere", false},
		{"docs/guide.md", "../../outside.md", false},
		{"README.md", "/docs/guide.md", false},
	} {
		problem := checkLink(root, tc.from, tc.target)
		if (problem == "") != tc.ok {
			t.Errorf("checkLink(%s, %q) = %q, want ok %v", tc.from, tc.target, problem, tc.ok)
		}
	}
}

func TestLinksSkipsCode(t *testing.T) {
	doc := "see [a](a.md) and [`b`](b.md#x \"title\")\n" +
		"`[c](c.md)`\n```\n[d](d.md)\n```\n[e]: e.md\n![img](img.png)\n"
	var got []string
	for _, l := range links(doc) {
		got = append(got, l.target)
	}
	want := []string{"a.md", "b.md#x", "e.md", "img.png"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("links = %q, want %q", got, want)
	}
}
