package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// hostileAuthority is a token endpoint in front of the identity provider
// that passes each request on and then rewrites the answer with rewrite,
// which sees the request's form and the answer's status and JSON body.
type hostileAuthority struct {
	URL      string
	target   atomic.Pointer[string]
	requests atomic.Int64
	mu       sync.Mutex
	rewrite  func(form url.Values, status int, body map[string]any) (int, map[string]any)
}

func newHostileAuthority(t *testing.T) *hostileAuthority {
	t.Helper()
	h := &hostileAuthority{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		raw, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(raw))
		res, err := http.Post(*h.target.Load(), r.Header.Get("Content-Type"), bytes.NewReader(raw))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(res.Body).Decode(&body)
		status := res.StatusCode
		h.mu.Lock()
		if h.rewrite != nil {
			status, body = h.rewrite(form, status, body)
		}
		h.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	return h
}

// startBehind starts the gateway with h as its token endpoint.
func startBehind(t *testing.T, h *hostileAuthority) *env {
	t.Helper()
	e := start(t, options{tokenEndpoint: h.URL})
	target := e.idp.TokenEndpoint()
	h.target.Store(&target)
	return e
}

func (h *hostileAuthority) set(f func(form url.Values, status int, body map[string]any) (int, map[string]any)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rewrite = f
}

// TestAuthorityEchoingSecretsIsScrubbed: an authority whose error answer
// quotes token A and the gateway's client secret (as sent, form-encoded,
// and in every field the gateway relays) has them replaced before the
// caller's 401 and the gateway's log; the suite's hygiene check looks for
// them in every log line and answer.
func TestAuthorityEchoingSecretsIsScrubbed(t *testing.T) {
	h := newHostileAuthority(t)
	e := startBehind(t, h)
	for _, tc := range []struct {
		name, suberror, wantError string
	}{
		{"invalid_grant", "", "invalid_token"},
		{"interaction required", "basic_action", "invalid_grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.set(func(form url.Values, _ int, _ map[string]any) (int, map[string]any) {
				echo := "AADSTS50013: Assertion failed signature validation: " + form.Get("assertion") +
					" for client_secret=" + form.Get("client_secret") + " (" + url.Values{"client_secret": form["client_secret"]}.Encode() + ")"
				return http.StatusBadRequest, map[string]any{
					"error": "invalid_grant", "error_description": echo, "suberror": tc.suberror,
					"error_codes": []int{50013}, "trace_id": form.Get("client_secret"), "correlation_id": form.Get("assertion"),
				}
			})
			tok := e.token("echoed-" + tc.suberror)
			a := e.get("/echo/x", tok)
			if a.status != http.StatusUnauthorized {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			body := a.json(t)
			desc, _ := body["error_description"].(string)
			if body["error"] != tc.wantError || !strings.Contains(desc, "signature validation: [redacted] for client_secret=[redacted]") {
				t.Errorf("body %s: want the authority's text with the secrets replaced", a.body)
			}
			for kind, s := range map[string]string{"token A": tok, "the client secret": clientSecret, "the form-encoded secret": url.QueryEscape(clientSecret)} {
				if strings.Contains(string(a.body), s) || strings.Contains(a.header.Get("WWW-Authenticate"), s) {
					t.Errorf("the 401 carries %s", kind)
				}
			}
		})
	}
	if !strings.Contains(e.logs.String(), "[redacted]") {
		t.Error("the exchange failures were not logged with the scrubbed text")
	}
}

// TestMalformedTokenBIsNotCached: a 200 answer whose access_token or
// token_type could not be put into a header is an authority error (502),
// counted as such; nothing is cached, so the next request exchanges again,
// and the user is served once the authority answers well.
func TestMalformedTokenBIsNotCached(t *testing.T) {
	h := newHostileAuthority(t)
	e := startBehind(t, h)
	for _, tc := range []struct {
		name, field, value string
	}{
		{"CR LF in access_token", "access_token", "tok\r\nX-Evil: 1"},
		{"space in access_token", "access_token", "tok en"},
		{"CR LF in token_type", "token_type", "Bearer\r\nX-Evil: 1"},
		{"comma in token_type", "token_type", "Bearer,x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.set(func(_ url.Values, status int, body map[string]any) (int, map[string]any) {
				if status == http.StatusOK {
					body[tc.field] = tc.value
				}
				return status, body
			})
			tok := e.token("malformed-" + strings.ReplaceAll(tc.name, " ", "-"))
			hitsBefore := e.echoHits.Load()
			before, errorsBefore := h.requests.Load(), e.counter(`obo_gateway_exchanges_total{flow="on_behalf_of",outcome="authority_error",route="echo"}`)
			for i := range 2 {
				if a := e.get("/echo/x", tok); a.status != http.StatusBadGateway {
					t.Fatalf("request %d: %d %s, want 502", i+1, a.status, a.body)
				}
			}
			if n := h.requests.Load() - before; n != 2 {
				t.Errorf("2 requests made %d exchanges: the malformed token was cached", n)
			}
			if n := e.counter(`obo_gateway_exchanges_total{flow="on_behalf_of",outcome="authority_error",route="echo"}`) - errorsBefore; n != 2 {
				t.Errorf("authority_error exchanges grew by %d, want 2", n)
			}
			h.set(nil)
			if a := e.get("/echo/x", tok); a.status != http.StatusOK {
				t.Errorf("after the authority mended: %d %s", a.status, a.body)
			}
			if n := e.echoHits.Load() - hitsBefore; n != 1 {
				t.Errorf("the downstream API saw %d requests, want only the one after the mend", n)
			}
		})
	}
}
