package config

import (
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
)

func TestParseRequestHygieneKeys(t *testing.T) {
	tests := []struct {
		name        string
		data        string
		wantCookies []bool
		wantStrip   []string
	}{
		{"defaults: no cookies, no extra headers", minimal, []bool{false}, nil},
		{
			name: "forward_cookies and strip_headers set",
			data: strings.Replace(minimal, "inbound:\n  audiences: [api://api-a]\n",
				"inbound:\n  audiences: [api://api-a]\n  strip_headers: [X-User-Id, x-tenant]\n", 1) +
				"    forward_cookies: true\n" +
				"  - name: legacy\n    path_prefix: /legacy\n    upstream: https://legacy.example\n    scopes: [api://legacy/.default]\n    flow: client_credentials\n    forward_cookies: false\n",
			wantCookies: []bool{true, false},
			wantStrip:   []string{"X-User-Id", "x-tenant"},
		},
		{
			name:        "forward_cookies from the environment",
			data:        minimal + "    forward_cookies: ${FORWARD}\n",
			wantCookies: []bool{true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.data, envMap(map[string]string{"OBO_CLIENT_SECRET": "s", "FORWARD": "true"}))
			var cookies []bool
			for _, r := range c.Routes {
				cookies = append(cookies, bool(r.ForwardCookies))
			}
			if !reflect.DeepEqual(cookies, tc.wantCookies) || !reflect.DeepEqual(c.Inbound.StripHeaders, tc.wantStrip) {
				t.Errorf("forward_cookies %v, strip_headers %q; want %v, %q", cookies, c.Inbound.StripHeaders, tc.wantCookies, tc.wantStrip)
			}
		})
	}
}

func TestRequestHygieneKeyProblems(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{"forward_cookies not a boolean", minimal + "    forward_cookies: yes\n",
			`test.yaml:13: routes[0].forward_cookies: must be true or false, not "yes"`},
		{"strip_headers not a list", strings.Replace(minimal, "  audiences: [api://api-a]\n", "  audiences: [api://api-a]\n  strip_headers: X-User\n", 1),
			"test.yaml:8: inbound.strip_headers: must be a list, not a scalar"},
		{"header name with a space", strings.Replace(minimal, "  audiences: [api://api-a]\n", "  audiences: [api://api-a]\n  strip_headers: [X-User, \"X User\"]\n", 1),
			`test.yaml:8: inbound.strip_headers[1]: "X User" is not a header name (letters, digits and !#$%&'*+-.^_` + "`" + `|~ only)`},
		{"empty header name", strings.Replace(minimal, "  audiences: [api://api-a]\n", "  audiences: [api://api-a]\n  strip_headers: [\"\"]\n", 1),
			`test.yaml:8: inbound.strip_headers[0]: "" is not a header name (letters, digits and !#$%&'*+-.^_` + "`" + `|~ only)`},
		{"framing header", strings.Replace(minimal, "  audiences: [api://api-a]\n", "  audiences: [api://api-a]\n  strip_headers: [content-length]\n", 1),
			`test.yaml:8: inbound.strip_headers[0]: "content-length" cannot be removed: the request cannot be forwarded without it`},
		{"Cookie stripped while a route forwards cookies",
			strings.Replace(minimal, "  audiences: [api://api-a]\n", "  audiences: [api://api-a]\n  strip_headers: [cookie]\n", 1) + "    forward_cookies: true\n",
			"test.yaml:8: inbound.strip_headers[0]: Cookie contradicts routes[0].forward_cookies: true; remove one of them"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.data), "test.yaml", testEnv)
			var ps Problems
			if !errors.As(err, &ps) || err.Error() != tc.want {
				t.Errorf("Parse() error =\n%v\nwant\n%s", err, tc.want)
			}
		})
	}
	// Stripping Cookie is fine when no route forwards cookies.
	data := strings.Replace(minimal, "  audiences: [api://api-a]\n", "  audiences: [api://api-a]\n  strip_headers: [Cookie]\n", 1)
	if _, err := Parse([]byte(data), "test.yaml", testEnv); err != nil {
		t.Errorf("strip_headers [Cookie] refused: %v", err)
	}
}

// TestAdminListenDefaultsToLoopback: /metrics and the probes are not
// exposed beyond the pod unless the configuration says so.
func TestAdminListenDefaultsToLoopback(t *testing.T) {
	c := mustParse(t, minimal, testEnv)
	for key, addr := range map[string]string{"admin_listen": c.AdminListen, "listen": c.Listen} {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%s = %q: %v", key, addr, err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			t.Errorf("default %s = %q, want a loopback address", key, addr)
		}
	}
}

func TestRedactedCopiesStripHeaders(t *testing.T) {
	c := validConfig()
	c.Inbound.StripHeaders = []string{"X-User"}
	r := c.Redacted()
	r.Inbound.StripHeaders[0] = "changed"
	if c.Inbound.StripHeaders[0] != "X-User" {
		t.Error("Redacted shares inbound.strip_headers with the original")
	}
}
