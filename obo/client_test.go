package obo

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tokenServer answers token requests with fn and records the last form.
func tokenServer(t *testing.T, fn func(w http.ResponseWriter, form url.Values)) (*httptest.Server, *url.Values) {
	t.Helper()
	var last url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Errorf("parse form: %v", err)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type = %q", ct)
		}
		last = r.PostForm
		fn(w, r.PostForm)
	}))
	t.Cleanup(srv.Close)
	return srv, &last
}

func newTestClient(t *testing.T, endpoint string, cred Credential, now time.Time) *Client {
	t.Helper()
	c, err := NewClient(Config{
		ClientID: "client-a", TokenEndpoint: endpoint, Credential: cred,
		Timeout: 2 * time.Second, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOnBehalfOfRequestAndSuccess(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	srv, last := tokenServer(t, func(w http.ResponseWriter, _ url.Values) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"token_type":"Bearer","scope":"https://graph.microsoft.com/User.Read","expires_in":3599,"ext_expires_in":"7199","refresh_in":1800,"access_token":"tokB","refresh_token":"rt"}`))
	})
	c := newTestClient(t, srv.URL, ClientSecret("s3cret"), now)
	tok, err := c.OnBehalfOf(context.Background(), "tokA", []string{"https://graph.microsoft.com/User.Read", "offline_access"})
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{
		"grant_type":          {GrantJWTBearer},
		"assertion":           {"tokA"},
		"requested_token_use": {"on_behalf_of"},
		"client_id":           {"client-a"},
		"client_secret":       {"s3cret"},
		"scope":               {"https://graph.microsoft.com/User.Read offline_access"},
	}
	for k, v := range want {
		if got := last.Get(k); got != v[0] {
			t.Errorf("form %s = %q, want %q", k, got, v[0])
		}
	}
	if len(*last) != len(want) {
		t.Errorf("form has %d fields, want %d: %v", len(*last), len(want), keys(*last))
	}
	if tok.AccessToken != "tokB" || tok.TokenType != "Bearer" || tok.Scope != "https://graph.microsoft.com/User.Read" {
		t.Errorf("token = %+v", tok)
	}
	if !tok.ExpiresAt.Equal(now.Add(3599*time.Second)) || !tok.ExtExpiresAt.Equal(now.Add(7199*time.Second)) || tok.RefreshIn != 1800*time.Second {
		t.Errorf("times: expires %v ext %v refresh_in %v", tok.ExpiresAt, tok.ExtExpiresAt, tok.RefreshIn)
	}
}

func keys(v url.Values) []string {
	var k []string
	for n := range v {
		k = append(k, n)
	}
	return k
}

func TestClientCredentialsRequest(t *testing.T) {
	srv, last := tokenServer(t, func(w http.ResponseWriter, _ url.Values) {
		_, _ = w.Write([]byte(`{"token_type":"Bearer","expires_in":600,"access_token":"app"}`))
	})
	c := newTestClient(t, srv.URL, ClientSecret("s"), time.Now())
	if _, err := c.ClientCredentials(context.Background(), []string{"api://b/.default"}); err != nil {
		t.Fatal(err)
	}
	if last.Get("grant_type") != "client_credentials" || last.Get("scope") != "api://b/.default" || last.Get("assertion") != "" {
		t.Errorf("form = %v", *last)
	}
}

func TestSecretFileIsReadEachTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, last := tokenServer(t, func(w http.ResponseWriter, _ url.Values) {
		_, _ = w.Write([]byte(`{"expires_in":600,"access_token":"x"}`))
	})
	c := newTestClient(t, srv.URL, SecretFile(path), time.Now())
	if _, err := c.OnBehalfOf(context.Background(), "a", []string{"s/x"}); err != nil {
		t.Fatal(err)
	}
	if got := last.Get("client_secret"); got != "first" {
		t.Errorf("client_secret = %q, want first (trimmed)", got)
	}
	if err := os.WriteFile(path, []byte("second"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.OnBehalfOf(context.Background(), "a", []string{"s/x"}); err != nil {
		t.Fatal(err)
	}
	if got := last.Get("client_secret"); got != "second" {
		t.Errorf("after rotation client_secret = %q, want second", got)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.OnBehalfOf(context.Background(), "a", []string{"s/x"}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty secret file: err = %v", err)
	}
}

func TestErrorResponses(t *testing.T) {
	mfa := `{"error":"invalid_grant","error_description":"AADSTS50076: Due to a configuration change made by your administrator, you must use multi-factor authentication.\r\nTrace ID: t","error_codes":[50076],"timestamp":"2026-11-22 10:00:00Z","trace_id":"t1","correlation_id":"c1","suberror":"basic_action","claims":"{\"access_token\":{\"capolids\":{\"essential\":true,\"values\":[\"p1\"]}}}"}`
	tests := []struct {
		name        string
		status      int
		header      http.Header
		body        string
		interaction bool
		client      bool
		temporary   bool
		outcome     string
		check       func(t *testing.T, e *Error)
	}{
		{name: "mfa", status: 400, body: mfa, interaction: true, outcome: "interaction_required", check: func(t *testing.T, e *Error) {
			if e.Code != "invalid_grant" || e.SubError != "basic_action" || len(e.ErrorCodes) != 1 || e.ErrorCodes[0] != 50076 ||
				e.TraceID != "t1" || e.CorrelationID != "c1" || e.Timestamp != "2026-11-22 10:00:00Z" ||
				e.Claims != `{"access_token":{"capolids":{"essential":true,"values":["p1"]}}}` {
				t.Errorf("fields lost: %+v", e)
			}
			if strings.Contains(e.Error(), "Trace ID") {
				t.Errorf("Error() should keep only the first line: %q", e.Error())
			}
		}},
		{name: "interaction_required", status: 400, body: `{"error":"interaction_required","error_codes":[50079]}`, interaction: true, outcome: "interaction_required"},
		{name: "consent_required", status: 400, body: `{"error":"consent_required","suberror":"consent_required"}`, interaction: true, outcome: "interaction_required"},
		{name: "plain invalid_grant", status: 400, body: `{"error":"invalid_grant","error_codes":[50013]}`, outcome: "invalid_grant"},
		{name: "invalid_client", status: 401, body: `{"error":"invalid_client","error_codes":[7000215]}`, client: true, outcome: "invalid_client"},
		{name: "unauthorized_client", status: 400, body: `{"error":"unauthorized_client"}`, client: true, outcome: "invalid_client"},
		{name: "invalid_scope", status: 400, body: `{"error":"invalid_scope"}`, outcome: "authority_error"},
		{name: "throttled", status: 429, header: http.Header{"Retry-After": {"7"}}, body: `{"error":"temporarily_unavailable"}`, temporary: true, outcome: "throttled",
			check: func(t *testing.T, e *Error) {
				if e.RetryAfter != 7*time.Second {
					t.Errorf("RetryAfter = %v", e.RetryAfter)
				}
			}},
		{name: "html 502", status: 502, header: http.Header{"Content-Type": {"text/html"}}, body: `<html>bad gateway</html>`, temporary: true, outcome: "unavailable",
			check: func(t *testing.T, e *Error) {
				if strings.Contains(e.Description, "html>") {
					t.Errorf("non-JSON body copied into the error: %q", e.Description)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := tokenServer(t, func(w http.ResponseWriter, _ url.Values) {
				for k, v := range tc.header {
					w.Header()[k] = v
				}
				if w.Header().Get("Content-Type") == "" {
					w.Header().Set("Content-Type", "application/json; charset=utf-8")
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})
			c := newTestClient(t, srv.URL, ClientSecret("s3cret"), time.Now())
			_, err := c.OnBehalfOf(context.Background(), "tokA", []string{"x/y"})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.StatusCode != tc.status {
				t.Errorf("StatusCode = %d", e.StatusCode)
			}
			if e.InteractionRequired() != tc.interaction || e.ClientRejected() != tc.client || e.Temporary() != tc.temporary {
				t.Errorf("interaction=%v client=%v temporary=%v", e.InteractionRequired(), e.ClientRejected(), e.Temporary())
			}
			if got := Outcome(err); got != tc.outcome {
				t.Errorf("Outcome = %q, want %q", got, tc.outcome)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "tokA") {
				t.Errorf("error leaks a secret: %q", err)
			}
			if tc.check != nil {
				tc.check(t, e)
			}
		})
	}
}

func TestTimeoutIsUnavailable(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c, err := NewClient(Config{ClientID: "c", TokenEndpoint: srv.URL, Credential: ClientSecret("s"), Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.OnBehalfOf(context.Background(), "a", []string{"s/x"})
	var ue *UnavailableError
	if !errors.As(err, &ue) || !ue.Timeout() {
		t.Fatalf("err = %v, want a timeout UnavailableError", err)
	}
	if Outcome(err) != "timeout" {
		t.Errorf("Outcome = %q", Outcome(err))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v, the timeout was not applied", d)
	}
}

func TestBadSuccessBodies(t *testing.T) {
	for _, body := range []string{`{}`, `{"access_token":"x"}`, `{"access_token":"x","expires_in":"soon"}`, `not json`} {
		srv, _ := tokenServer(t, func(w http.ResponseWriter, _ url.Values) { _, _ = w.Write([]byte(body)) })
		c := newTestClient(t, srv.URL, ClientSecret("s"), time.Now())
		if _, err := c.OnBehalfOf(context.Background(), "a", []string{"s/x"}); err == nil {
			t.Errorf("body %s: no error", body)
		}
	}
}

func TestDiscover(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/t/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"issuer":"https://issuer/t/v2.0","jwks_uri":"https://keys","token_endpoint":"https://token"}`))
	})
	mux.HandleFunc("/partial/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"issuer":"https://issuer"}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	md, err := Discover(context.Background(), srv.Client(), srv.URL+"/t/v2.0/")
	if err != nil {
		t.Fatal(err)
	}
	if md.Issuer != "https://issuer/t/v2.0" || md.JWKSURI != "https://keys" || md.TokenEndpoint != "https://token" {
		t.Errorf("metadata = %+v", md)
	}
	if _, err := Discover(context.Background(), srv.Client(), srv.URL+"/partial"); err == nil || !strings.Contains(err.Error(), "jwks_uri, token_endpoint") {
		t.Errorf("partial document: err = %v", err)
	}
	if _, err := Discover(context.Background(), srv.Client(), srv.URL+"/missing"); err == nil {
		t.Error("404: no error")
	}
}

func TestSecretsAreNotPrinted(t *testing.T) {
	s := ClientSecret("hunter2")
	for _, got := range []string{s.String(), s.GoString(), s.LogValue().String()} {
		if strings.Contains(got, "hunter2") {
			t.Errorf("secret printed: %q", got)
		}
	}
}

func TestCapabilitiesAndClaims(t *testing.T) {
	srv, last := tokenServer(t, func(w http.ResponseWriter, _ url.Values) {
		_, _ = w.Write([]byte(`{"expires_in":600,"access_token":"x"}`))
	})
	c, err := NewClient(Config{ClientID: "c", TokenEndpoint: srv.URL, Credential: ClientSecret("s"), Capabilities: []string{"cp1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.OnBehalfOf(context.Background(), "a", []string{"s/x"}); err != nil {
		t.Fatal(err)
	}
	if got := last.Get("claims"); got != `{"access_token":{"xms_cc":{"values":["cp1"]}}}` {
		t.Errorf("claims = %s", got)
	}
	challenge := `{"access_token":{"nbf":{"essential":true,"value":"1604106651"}}}`
	if _, err := c.Token(context.Background(), Request{Assertion: "a", Scopes: []string{"s/x"}, Claims: challenge}); err != nil {
		t.Fatal(err)
	}
	if got := last.Get("claims"); got != `{"access_token":{"nbf":{"essential":true,"value":"1604106651"},"xms_cc":{"values":["cp1"]}}}` {
		t.Errorf("merged claims = %s", got)
	}
	plain := newTestClient(t, srv.URL, ClientSecret("s"), time.Now())
	if _, err := plain.OnBehalfOf(context.Background(), "a", []string{"s/x"}); err != nil {
		t.Fatal(err)
	}
	if last.Has("claims") {
		t.Error("claims sent without capabilities or a challenge")
	}
}

func TestMergeClaims(t *testing.T) {
	tests := []struct{ a, b, want string }{
		{"", "", ""},
		{`{"x":1}`, "", `{"x":1}`},
		{"", `{"x":1}`, `{"x":1}`},
		{`{"access_token":{"a":1}}`, `{"access_token":{"b":2},"id_token":{}}`, `{"access_token":{"a":1,"b":2},"id_token":{}}`},
		{`{"k":{"a":1}}`, `{"k":2}`, `{"k":2}`},
	}
	for _, tc := range tests {
		got, err := MergeClaims(tc.a, tc.b)
		if err != nil || got != tc.want {
			t.Errorf("MergeClaims(%s, %s) = %s, %v; want %s", tc.a, tc.b, got, err, tc.want)
		}
	}
	if _, err := MergeClaims(`{"a":1}`, `not json`); err == nil {
		t.Error("invalid claims accepted")
	}
}
