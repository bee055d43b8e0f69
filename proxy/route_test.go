package proxy

import (
	"net/url"
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{"/graph/me", "/graph/me", false},
		{"/graph/me/", "/graph/me/", false},
		{"/graph//me", "/graph/me", false},
		{"/graph/../admin", "/admin", false},
		{"/graph/a/../../../../etc/passwd", "/etc/passwd", false},
		{"graph", "/graph", false},
		{"/graph/./x", "/graph/x", false},
		{"/graph/%2e%2e/x", "", true}, // arrives decoded once: a remaining %2e is double encoding
		{"/graph/%2F", "", true},
		{"/graph/%5c", "", true},
		{"/graph\\..\\x", "", true},
		{"/graph/\x00", "", true},
		{"/graph/100%", "/graph/100%", false},
		{"/graph/%41", "/graph/%41", false},
		{"/graph/..;/secret", "", true},
		{"/graph/.;x/secret", "", true},
		{"/graph/a/..;/..;/secret", "", true},
		{"/graph/.. /secret", "", true},
		{"/graph/...;", "", true},
		{"/graph/.../x", "", true},
		{"/graph/a;b/c", "/graph/a;b/c", false},
		{"/graph/..a;b", "/graph/..a;b", false},
	}
	for _, tc := range tests {
		got, err := cleanPath(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("cleanPath(%q) = %q, %v; want %q, bad=%v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestOutPathStaysUnderBase(t *testing.T) {
	up, _ := url.Parse("https://graph.microsoft.com/v1.0/")
	rt := &route{prefix: "/graph", upstream: up, basePath: strings.TrimSuffix(up.Path, "/")}
	tests := []struct{ raw, want string }{
		{"/graph", "/v1.0"},
		{"/graph/", "/v1.0/"},
		{"/graph/me", "/v1.0/me"},
		{"/graph/me/../../../admin", ""},          // climbs out of the route: cleaned to /admin, which the route does not match
		{"/graph/users/..%2F..%2F..%2Fadmin", ""}, // encoded slashes are separators once decoded
		{"/graph/%2e%2e/%2e%2e/x", ""},
		{"/graph/a/b/%2e%2e%2f%2e%2e%2fc", "/v1.0/c"},
		{"/graph/a/..%2Fb", "/v1.0/b"},
	}
	for _, tc := range tests {
		// The server hands the handler the once-decoded path.
		u, err := url.Parse("http://gw" + tc.raw)
		if err != nil {
			t.Fatal(err)
		}
		p, err := cleanPath(u.Path)
		if err != nil {
			t.Fatalf("cleanPath(%q): %v", u.Path, err)
		}
		if !rt.matches(p) {
			if tc.want != "" {
				t.Errorf("%s: cleaned to %q, which the route does not match", tc.raw, p)
			}
			continue
		}
		got := rt.outPath(p)
		if got != tc.want {
			t.Errorf("%s -> %q, want %q", tc.raw, got, tc.want)
		}
		if got != "/v1.0" && !strings.HasPrefix(got, "/v1.0/") {
			t.Errorf("%s escaped the base path: %q", tc.raw, got)
		}
	}
}

func TestRouterLongestPrefix(t *testing.T) {
	r := router{{name: "a", prefix: "/api"}, {name: "b", prefix: "/api/v2"}, {name: "c", prefix: "/apix"}}
	tests := map[string]string{"/api": "a", "/api/x": "a", "/api/v2": "b", "/api/v2/x": "b", "/api/v20": "a", "/apix/1": "c", "/ap": ""}
	for p, want := range tests {
		got := ""
		if rt := r.match(p); rt != nil {
			got = rt.name
		}
		if got != want {
			t.Errorf("match(%q) = %q, want %q", p, got, want)
		}
	}
}

func TestHasClaimsChallenge(t *testing.T) {
	yes := []string{
		`Bearer realm="", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnt9fQ=="`,
		`Bearer error="insufficient_claims"`,
	}
	no := []string{`Bearer realm="x"`, `Bearer error="invalid_token"`}
	for _, v := range yes {
		if !hasClaimsChallenge(map[string][]string{"Www-Authenticate": {v}}) {
			t.Errorf("%q not detected", v)
		}
	}
	for _, v := range no {
		if hasClaimsChallenge(map[string][]string{"Www-Authenticate": {v}}) {
			t.Errorf("%q detected", v)
		}
	}
}

func TestIsClean(t *testing.T) {
	tests := []struct {
		p    string
		want bool
	}{
		{"/graph/me", true},
		{"/graph/me/", true},
		{"/graph/v1.0/users/a.b", true},
		{"/graph/a;b/c", true},
		{"/", true},
		{"", false},
		{"graph", false},
		{"/graph//me", false},
		{"/graph/./me", false},
		{"/graph/../me", false},
		{"/graph/..;x/me", false},
		{"/graph/.hidden", false},
		{"/graph/ ", false},
		{"/graph/;x/me", false},
		{"/graph/100%", false},
		{"/graph\\x", false},
		{"/graph/\x00", false},
	}
	for _, tc := range tests {
		if got := isClean(tc.p); got != tc.want {
			t.Errorf("isClean(%q) = %v, want %v", tc.p, got, tc.want)
		}
	}
}

func TestCleanPathOfACleanPathDoesNotAllocate(t *testing.T) {
	for _, p := range []string{"/graph/me", "/graph/me/"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = cleanPath(p) }); n != 0 {
			t.Errorf("cleanPath(%q) allocates %v times, want 0", p, n)
		}
	}
}
