package proxy

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzPathStaysUnderUpstream: whatever the request path, a request the
// route accepts goes to the upstream base path or below it, with no dot
// segment left.
func FuzzPathStaysUnderUpstream(f *testing.F) {
	for _, s := range []string{"/graph/me", "/graph/../admin", "/graph/%2e%2e/x", "/graph/..%2f..%2fetc", "/graph/..;/x", "/graph//x/", "/graph/a/./b/../../c"} {
		f.Add(s)
	}
	up, _ := url.Parse("https://graph.example/v1.0")
	rt := &route{prefix: "/graph", upstream: up, basePath: "/v1.0"}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.ParseRequestURI(raw)
		if err != nil {
			return
		}
		p, err := cleanPath(u.Path)
		if err != nil || !rt.matches(p) {
			return
		}
		out := rt.outPath(p)
		if out != "/v1.0" && !strings.HasPrefix(out, "/v1.0/") {
			t.Fatalf("%q -> %q left the upstream base path", raw, out)
		}
		for seg := range strings.SplitSeq(out, "/") {
			name, _, _ := strings.Cut(seg, ";")
			if strings.Trim(strings.TrimRight(name, " "), ".") == "" && name != "" {
				t.Fatalf("%q -> %q keeps a dot segment %q", raw, out, seg)
			}
		}
	})
}

// FuzzCleanPathShortcut: a path isClean lets through unchanged is one the
// full cleaning would also accept unchanged.
func FuzzCleanPathShortcut(f *testing.F) {
	for _, s := range []string{"/graph/me", "/graph/me/", "/", "/a/.b", "/a/b.", "/a//b", "/a/..;/b", "/a/%2e", "/a/b;c", "/a/ b", "/a/\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !isClean(p) {
			return
		}
		if got, err := cleanSlow(p); err != nil || got != p {
			t.Fatalf("isClean(%q), but the full cleaning gives %q, %v", p, got, err)
		}
	})
}
