package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// seenAnswers keeps the answers a test read through the gateway.
type seenAnswers struct {
	mu sync.Mutex
	// gateway holds the bodies the gateway wrote itself (they carry
	// Cache-Control: no-store, which the echo API never sets);
	// downstream the answers of the echo API passed through.
	gateway, downstream []string
}

func (s *seenAnswers) add(h http.Header, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.Get("Cache-Control") == "no-store" {
		s.gateway = append(s.gateway, string(body))
	} else {
		s.downstream = append(s.downstream, string(body))
	}
}

// secret is a value that must not appear where it is looked for.
type secret struct {
	kind  string // "token A", "token B", "client secret", ...
	value string
	// tokenB marks token B, which the downstream API legitimately sees
	// (and the echo API shows).
	tokenB bool
}

// haystack is a text the secrets are looked for in.
type haystack struct {
	name string
	text string
	// downstream marks an answer of the downstream API, which may show
	// token B but nothing else.
	downstream bool
}

// findLeaks returns one line per secret found in a haystack. A JWT is also
// found by its signature alone, which identifies it as well.
func findLeaks(secrets []secret, stacks []haystack) []string {
	var leaks []string
	for _, s := range secrets {
		needles := []string{s.value}
		if parts := strings.Split(s.value, "."); len(parts) == 3 && len(parts[2]) >= 16 {
			needles = append(needles, parts[2])
		}
		for _, h := range stacks {
			if h.downstream && s.tokenB {
				continue
			}
			for i, n := range needles {
				if len(n) >= 8 && strings.Contains(h.text, n) {
					what := s.kind
					if i > 0 {
						what += " (its signature)"
					}
					leaks = append(leaks, fmt.Sprintf("%s %s…(%d bytes) appears in %s", what, s.value[:min(6, len(s.value))], len(s.value), h.name))
					break
				}
			}
		}
	}
	return leaks
}

// checkSecretHygiene fails the test when a token A, a token B, a client
// secret, a client assertion or a refresh token of this environment
// appears in the gateway's logs (debug level), its metrics, or an answer
// the gateway wrote itself; and when token A or a credential appears in a
// downstream answer the gateway passed through.
func (e *env) checkSecretHygiene(configuredSecret string) {
	t := e.t
	var secrets []secret
	known := make(map[string]bool)
	addSecret := func(kind, v string, tokenB bool) {
		if v != "" && !known[v] {
			known[v] = true
			secrets = append(secrets, secret{kind: kind, value: v, tokenB: tokenB})
		}
	}
	addSecret("client secret", clientSecret, false)
	addSecret("configured client secret", configuredSecret, false)
	for _, tok := range e.idp.MintedTokens() {
		addSecret("token A", tok, false)
	}
	for _, it := range e.idp.IssuedTokens() {
		addSecret("token B", it.Token, true)
		addSecret("refresh token", it.RefreshToken, false)
	}
	for _, f := range e.idp.TokenRequestForms() {
		for field, kind := range map[string]string{
			"client_secret": "client secret sent", "client_assertion": "client assertion",
			"assertion": "token A sent for exchange", "subject_token": "token A sent for exchange",
			"refresh_token": "refresh token sent",
		} {
			for _, v := range f[field] {
				addSecret(kind, v, false)
			}
		}
	}

	stacks := []haystack{{name: "the gateway's logs", text: e.logs.String()}}
	if e.app != nil {
		rec := httptest.NewRecorder()
		e.app.Metrics().Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		stacks = append(stacks, haystack{name: "/metrics", text: rec.Body.String()})
	}
	e.seen.mu.Lock()
	handled := len(e.seen.downstream) // requests that reached the proxy handler, which logs them
	for i, b := range e.seen.gateway {
		stacks = append(stacks, haystack{name: fmt.Sprintf("gateway answer %d", i+1), text: b})
		if !strings.Contains(b, "the gateway is starting") {
			handled++
		}
	}
	for i, b := range e.seen.downstream {
		stacks = append(stacks, haystack{name: fmt.Sprintf("downstream answer %d", i+1), text: b, downstream: true})
	}
	requests := len(e.seen.gateway) + len(e.seen.downstream)
	e.seen.mu.Unlock()

	for _, l := range findLeaks(secrets, stacks) {
		t.Errorf("secret hygiene: %s", l)
	}
	if e.traces != nil {
		e.checkTraceHygiene(secrets, handled > 0)
	}
	// The check must have had something to check.
	if len(stacks[0].text) == 0 || e.app != nil && len(stacks) < 2 {
		t.Error("secret hygiene: no logs or metrics to check")
	}
	if handled > 0 && !strings.Contains(stacks[0].text, `"msg":"request"`) {
		t.Error("secret hygiene: requests were made but the logs checked hold no request line")
	}
	t.Logf("secret hygiene: %d secrets checked in %d texts (%d requests)", len(secrets), len(stacks), requests)
}

// checkTraceHygiene fails the test when one of secrets, or a user's object
// id, subject or sign-in name from a token A, appears in the protobuf bytes
// the gateway exported to its collector. Token B is looked for too: the
// downstream may see it, a span may not. handled says whether requests
// reached the proxy handler, and so made spans.
func (e *env) checkTraceHygiene(secrets []secret, handled bool) {
	t := e.t
	raw := e.traces.Raw()
	if len(raw) == 0 {
		if handled {
			t.Error("trace hygiene: requests were served but no span was exported")
		}
		return
	}
	var all []secret
	for _, s := range secrets {
		all = append(all, secret{kind: s.kind, value: s.value})
	}
	for _, tok := range e.idp.MintedTokens() {
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			continue
		}
		b, err := base64.RawURLEncoding.DecodeString(parts[1])
		var claims map[string]any
		if err != nil || json.Unmarshal(b, &claims) != nil {
			continue
		}
		for _, c := range []string{"oid", "sub", "upn", "unique_name", "preferred_username"} {
			if v, ok := claims[c].(string); ok {
				all = append(all, secret{kind: "user " + c, value: v})
			}
		}
	}
	stacks := make([]haystack, len(raw))
	for i, b := range raw {
		stacks[i] = haystack{name: fmt.Sprintf("exported spans %d", i+1), text: string(b)}
	}
	for _, l := range findLeaks(all, stacks) {
		t.Errorf("trace hygiene: %s", l)
	}
	t.Logf("trace hygiene: %d secrets and identities checked in %d exports", len(all), len(raw))
}

// TestFindLeaks: the hygiene check finds what it looks for, so that the
// suite-wide check cannot pass because it looks at nothing.
func TestFindLeaks(t *testing.T) {
	tokA := "eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJ1In0.c2lnbmF0dXJlLW9mLXRva2VuLWE"
	tokB := "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJiIn0.c2lnbmF0dXJlLW9mLXRva2VuLWI"
	secrets := []secret{{kind: "token A", value: tokA}, {kind: "token B", value: tokB, tokenB: true}, {kind: "client secret", value: clientSecret}}
	tests := []struct {
		name  string
		stack haystack
		want  int
	}{
		{"clean log", haystack{name: "log", text: `{"msg":"request","user":"0123456789ab"}`}, 0},
		{"token A in a log", haystack{name: "log", text: "token " + tokA}, 1},
		{"signature of token A in a log", haystack{name: "log", text: "sig c2lnbmF0dXJlLW9mLXRva2VuLWE"}, 1},
		{"client secret in metrics", haystack{name: "metrics", text: `x{secret="` + clientSecret + `"} 1`}, 1},
		{"token B in a gateway answer", haystack{name: "gateway", text: `{"error":"` + tokB + `"}`}, 1},
		{"token B in a downstream answer", haystack{name: "echo", text: `{"Authorization":["Bearer ` + tokB + `"]}`, downstream: true}, 0},
		{"token A in a downstream answer", haystack{name: "echo", text: `{"Authorization":["Bearer ` + tokA + `"]}`, downstream: true}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := findLeaks(secrets, []haystack{tc.stack}); len(got) != tc.want {
				t.Errorf("findLeaks found %q, want %d leaks", got, tc.want)
			}
		})
	}
}
