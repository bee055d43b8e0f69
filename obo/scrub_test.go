package obo

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestAuthorityTextIsScrubbed: an authority that quotes the request in its
// error answer (token A, the client secret, a client assertion; whole,
// form-encoded, or a JWT's signature alone) gets none of them through the
// *Error the gateway relays and logs.
func TestAuthorityTextIsScrubbed(t *testing.T) {
	const (
		tokenA = "eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJ1c2VyIn0.c2lnbmF0dXJlLW9mLXRva2VuLWE"
		secret = "s3cret~with spaces+and/slashes"
		sig    = "c2lnbmF0dXJlLW9mLXRva2VuLWE"
	)
	echo := func(form url.Values) string {
		return "AADSTS50013: assertion=" + form.Get("assertion") + " client_secret=" + url.QueryEscape(form.Get("client_secret")) +
			" raw " + form.Get("client_secret") + " sig " + sig
	}
	srv, _ := tokenServer(t, func(w http.ResponseWriter, form url.Values) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"error": "invalid_grant", "error_description": echo(form), "suberror": form.Get("client_secret"),
			"trace_id": form.Get("assertion"), "correlation_id": sig, "timestamp": secret,
			"claims": `{"x":"` + form.Get("assertion") + `"}`,
		})
	})
	c := newTestClient(t, srv.URL, ClientSecret(secret), time.Now())
	_, err := c.OnBehalfOf(context.Background(), tokenA, []string{"s/x"})
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want *Error", err)
	}
	b, _ := json.Marshal(ae)
	for _, text := range []string{string(b), err.Error()} {
		for _, s := range []string{tokenA, secret, url.QueryEscape(secret), sig} {
			if strings.Contains(text, s) {
				t.Errorf("%q is in %s", s, text)
			}
		}
	}
	if !strings.Contains(ae.Description, "assertion="+Redacted) || ae.Code != "invalid_grant" {
		t.Errorf("description %q, code %q: want the text kept around %s", ae.Description, ae.Code, Redacted)
	}
}

// TestClientAssertionIsScrubbed: a client assertion the gateway signed is
// scrubbed as well.
func TestClientAssertionIsScrubbed(t *testing.T) {
	srv, last := tokenServer(t, func(w http.ResponseWriter, form url.Values) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": "invalid_client", "error_description": "bad " + form.Get("client_assertion")})
	})
	cred := assertionCredential("eyJhbGciOiJQUzI1NiJ9.eyJpc3MiOiJjbGllbnQtYSJ9.YXNzZXJ0aW9uLXNpZ25hdHVyZS0x")
	c := newTestClient(t, srv.URL, cred, time.Now())
	_, err := c.ClientCredentials(context.Background(), []string{"api://b/.default"})
	if err == nil || strings.Contains(err.Error(), "YXNzZXJ0aW9uLXNpZ25hdHVyZS0x") || last.Get("client_assertion") == "" {
		t.Errorf("err = %v (assertion sent %t)", err, last.Get("client_assertion") != "")
	}
}

// assertionCredential presents a fixed client assertion.
type assertionCredential string

func (a assertionCredential) Apply(_ context.Context, _ string, form url.Values) error {
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", string(a))
	return nil
}

// TestMalformedTokenIsRefused: an access_token or token_type that could
// not be put into a header is an error, not a token.
func TestMalformedTokenIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, accessToken, tokenType string
		ok                           bool
	}{
		{"jwt", "eyJ.eyJ.sig-_~+/", "Bearer", true},
		{"padded", "YWJj==", "bearer", true},
		{"no token_type", "abc", "", true},
		{"N_A", "abc", "N_A", true},
		{"CR LF in token", "tok\r\nX-Evil: 1", "Bearer", false},
		{"space in token", "tok en", "Bearer", false},
		{"quote in token", `tok"`, "Bearer", false},
		{"padding inside", "a=b", "Bearer", false},
		{"only padding", "==", "Bearer", false},
		{"non-ASCII", "tokö", "Bearer", false},
		{"CR LF in token_type", "abc", "Bearer\r\nX-Evil: 1", false},
		{"space in token_type", "abc", "Bearer x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := tokenServer(t, func(w http.ResponseWriter, _ url.Values) {
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tc.accessToken, "token_type": tc.tokenType, "expires_in": 3600})
			})
			c := newTestClient(t, srv.URL, ClientSecret("s"), time.Now())
			tok, err := c.OnBehalfOf(context.Background(), "a", []string{"s/x"})
			if tc.ok != (err == nil) {
				t.Fatalf("token %v, err %v; want ok %t", tok, err, tc.ok)
			}
			if err != nil {
				if Outcome(err) != "authority_error" || strings.Contains(err.Error(), tc.accessToken) {
					t.Errorf("err %q, outcome %s: want authority_error without the token", err, Outcome(err))
				}
			}
		})
	}
}
