package echo

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

// TestEchoShowsTokenClaims: the answer carries the decoded claims of the
// bearer token it received, and reads other tokens without failing.
func TestEchoShowsTokenClaims(t *testing.T) {
	idp, err := localidp.New(localidp.Options{Clients: []localidp.Client{{ID: "00000000-0000-4000-8000-00000000a11a", Secret: "s"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	const oid = "00000000-0000-4000-8000-0000000a11ce"
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	jwt, err := idp.IssueToken(localidp.UserToken{
		ObjectID: oid, Audience: "api://echo-api", Scopes: []string{"Echo.Read", "Echo.Write"},
		IssuedAt: exp.Add(-time.Hour), Lifetime: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	app, err := idp.IssueToken(localidp.UserToken{AppOnly: true, Audience: "api://echo-api", Roles: []string{"Echo.All"}})
	if err != nil {
		t.Fatal(err)
	}
	saml := base64.RawURLEncoding.EncodeToString([]byte(`<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="_1"></Assertion>`))

	srv := httptest.NewServer(NewHandler())
	defer srv.Close()
	tests := []struct {
		name          string
		authorization string
		want          *Token // Claims: only the ones compared
	}{
		{"user token", "Bearer " + jwt, &Token{Format: FormatJWT, Expires: exp.UTC().Format(time.RFC3339),
			Claims: map[string]any{"aud": "api://echo-api", "scp": "Echo.Read Echo.Write", "oid": oid, "azp": localidp.DefaultClientAppID,
				"tid": localidp.DefaultTenantID, "iss": idp.Issuer(), "exp": json.Number(itoa(exp.Unix()))}}},
		{"app token", "bearer " + app, &Token{Format: FormatJWT, Claims: map[string]any{"aud": "api://echo-api", "roles": []any{"Echo.All"}}}},
		{"SAML assertion", "Bearer " + saml, &Token{Format: FormatSAML}},
		{"opaque token", "Bearer not-a-jwt", &Token{Format: FormatOpaque}},
		{"three parts, payload not base64", "Bearer a.b!.c", &Token{Format: FormatOpaque}},
		{"three parts, payload not an object", "Bearer eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString([]byte(`[1]`)) + ".", &Token{Format: FormatOpaque}},
		{"basic credentials", "Basic dXNlcjpwYXNz", nil},
		{"empty bearer", "Bearer ", nil},
		{"no header", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/me", nil)
			if tc.authorization != "" {
				req.Header.Set("Authorization", tc.authorization)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var a Answer
			dec := json.NewDecoder(resp.Body)
			dec.UseNumber()
			if err := dec.Decode(&a); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			got := a.Token
			switch {
			case tc.want == nil:
				if got != nil {
					t.Errorf("token %+v, want none", got)
				}
				return
			case got == nil:
				t.Fatalf("no token in the answer, want %+v", tc.want)
			}
			if got.Format != tc.want.Format || (tc.want.Expires != "" || got.Format != FormatJWT) && got.Expires != tc.want.Expires {
				t.Errorf("format %q expires %q, want %q %q", got.Format, got.Expires, tc.want.Format, tc.want.Expires)
			}
			if tc.want.Claims == nil && got.Claims != nil {
				t.Errorf("claims %v for a token that is not a JWT", got.Claims)
			}
			for k, want := range tc.want.Claims {
				if g, _ := json.Marshal(got.Claims[k]); string(g) != mustJSON(t, want) {
					t.Errorf("claim %s = %s, want %s", k, g, mustJSON(t, want))
				}
			}
		})
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
