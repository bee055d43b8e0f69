package localidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/obo-gateway/obo-gateway/internal/idshape"
)

const (
	apiAID     = "6e1b2c3d-0000-4000-8000-0000000000aa"
	apiASecret = "api-a-secret"
	apiAURI    = "api://api-a"
	otherID    = "6e1b2c3d-0000-4000-8000-0000000000bb"
	userOID    = "00000000-0000-4000-8000-000000000001"
	user2OID   = "00000000-0000-4000-8000-000000000002"
	graphScope = "https://graph.microsoft.com/User.Read"
)

func newTestServer(t *testing.T, mutate ...func(*Options)) *Server {
	t.Helper()
	opts := Options{Clients: []Client{
		{ID: apiAID, Secret: apiASecret, IdentifierURI: apiAURI},
		{ID: otherID, Secret: "other-secret"},
	}}
	for _, m := range mutate {
		m(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func userToken(t *testing.T, s *Server, ut UserToken) string {
	t.Helper()
	if ut.ObjectID == "" && !ut.AppOnly {
		ut.ObjectID = userOID
	}
	tok, err := s.IssueToken(ut)
	if err != nil {
		t.Fatalf("IssueToken: %v", err)
	}
	return tok
}

func oboForm(assertion, scope string) url.Values {
	return url.Values{
		"grant_type":          {GrantOnBehalfOf},
		"client_id":           {apiAID},
		"client_secret":       {apiASecret},
		"assertion":           {assertion},
		"scope":               {scope},
		"requested_token_use": {"on_behalf_of"},
	}
}

func ccForm(scope string) url.Values {
	return url.Values{
		"grant_type":    {GrantClientCredentials},
		"client_id":     {apiAID},
		"client_secret": {apiASecret},
		"scope":         {scope},
	}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (a answer) str(name string) string { v, _ := a.body[name].(string); return v }

func post(t *testing.T, s *Server, form url.Values) answer {
	t.Helper()
	return do(t, s, http.MethodPost, form, nil)
}

func do(t *testing.T, s *Server, method string, form url.Values, edit func(*http.Request)) answer {
	t.Helper()
	a, err := request(s, method, form, edit)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// request sends form to the token endpoint; unlike do it may run on any
// goroutine.
func request(s *Server, method string, form url.Values, edit func(*http.Request)) (answer, error) {
	req, err := http.NewRequest(method, s.TokenEndpoint(), strings.NewReader(form.Encode()))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if edit != nil {
		edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s token endpoint: %w", method, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		return answer{}, fmt.Errorf("answer is not JSON (%d): %q", resp.StatusCode, raw)
	}
	return a, nil
}

func getJSON(t *testing.T, u string) map[string]any {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func fetchJWKS(t *testing.T, s *Server) jwk.Set {
	t.Helper()
	set, err := jwk.Fetch(context.Background(), s.JWKSURL())
	if err != nil {
		t.Fatalf("fetch JWKS: %v", err)
	}
	return set
}

// claimsOf decodes a JWT payload without verifying it.
func claimsOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func kidOf(t *testing.T, token string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

func TestNewValidatesOptions(t *testing.T) {
	for name, opts := range map[string]Options{
		"no clients":       {},
		"empty client ID":  {Clients: []Client{{Secret: "x"}}},
		"duplicate client": {Clients: []Client{{ID: "a", Secret: "x"}, {ID: "a", Secret: "y"}}},
		"bad tenant":       {TenantID: "a/b", Clients: []Client{{ID: "a"}}},
		"negative life":    {TokenLifetime: -time.Second, Clients: []Client{{ID: "a"}}},
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := New(opts); err == nil {
				_ = s.Close()
				t.Fatal("New succeeded, want an error")
			}
		})
	}
}

func TestURLsAndDiscovery(t *testing.T) {
	s := newTestServer(t)
	tenant := DefaultTenantID
	if s.TenantID() != tenant {
		t.Errorf("TenantID = %q", s.TenantID())
	}
	if !strings.HasPrefix(s.BaseURL(), "http://127.0.0.1:") {
		t.Errorf("BaseURL = %q", s.BaseURL())
	}
	for got, want := range map[string]string{
		s.Authority():     s.BaseURL() + "/" + tenant + "/v2.0",
		s.Issuer():        s.BaseURL() + "/" + tenant + "/v2.0",
		s.JWKSURL():       s.BaseURL() + "/" + tenant + "/discovery/v2.0/keys",
		s.TokenEndpoint(): s.BaseURL() + "/" + tenant + "/oauth2/v2.0/token",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}

	doc := getJSON(t, s.Authority()+"/.well-known/openid-configuration")
	for field, want := range map[string]string{
		"issuer":                 s.Issuer(),
		"jwks_uri":               s.JWKSURL(),
		"token_endpoint":         s.TokenEndpoint(),
		"authorization_endpoint": s.BaseURL() + "/" + tenant + "/oauth2/v2.0/authorize",
	} {
		if got, _ := doc[field].(string); got != want {
			t.Errorf("discovery %s = %q, want %q", field, got, want)
		}
	}
	algs, _ := doc["id_token_signing_alg_values_supported"].([]any)
	if !slices.Contains(algs, any("RS256")) {
		t.Errorf("id_token_signing_alg_values_supported = %v", algs)
	}
}

func TestJWKS(t *testing.T) {
	s := newTestServer(t)
	set := fetchJWKS(t, s)
	if set.Len() != 1 {
		t.Fatalf("JWKS has %d keys, want 1", set.Len())
	}
	key, _ := set.Key(0)
	kid, _ := key.KeyID()
	if kid == "" || !slices.Equal(s.KeyIDs(), []string{kid}) || s.SigningKeyID() != kid {
		t.Errorf("kid %q, KeyIDs %v, SigningKeyID %q", kid, s.KeyIDs(), s.SigningKeyID())
	}
	if key.KeyType() != jwa.RSA() {
		t.Errorf("kty = %v", key.KeyType())
	}
	if alg, _ := key.Algorithm(); alg.String() != "RS256" {
		t.Errorf("alg = %v", alg)
	}
	if use, _ := key.KeyUsage(); use != "sig" {
		t.Errorf("use = %q", use)
	}
	if private, err := jwk.IsPrivateKey(key); err != nil || private {
		t.Errorf("published key is private (%v, %v)", private, err)
	}
	raw := getJSON(t, s.JWKSURL())
	for _, k := range raw["keys"].([]any) {
		m := k.(map[string]any)
		for _, field := range []string{"kid", "kty", "n", "e", "alg", "use"} {
			if _, ok := m[field]; !ok {
				t.Errorf("JWKS key lacks %q", field)
			}
		}
		for _, field := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := m[field]; ok {
				t.Errorf("JWKS key leaks private field %q", field)
			}
		}
	}
}

func TestIssueTokenClaims(t *testing.T) {
	s := newTestServer(t)
	iat := time.Now().Add(-time.Minute).Truncate(time.Second)

	c := claimsOf(t, userToken(t, s, UserToken{ObjectID: userOID, IssuedAt: iat, Extra: map[string]any{"name": "Ada", "rh": nil}}))
	want := map[string]any{
		"iss": s.Issuer(), "aud": apiAID, "oid": userOID, "tid": DefaultTenantID, "scp": "access_as_user",
		"azp": DefaultClientAppID, "ver": "2.0", "name": "Ada",
		"iat": float64(iat.Unix()), "nbf": float64(iat.Unix()), "exp": float64(iat.Add(time.Hour).Unix()),
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("claim %s = %v, want %v", k, c[k], v)
		}
	}
	if sub, _ := c["sub"].(string); len(sub) != 43 || sub == userOID {
		t.Errorf("sub = %q, want a 43-character pairwise subject", sub)
	}
	if uti, _ := c["uti"].(string); uti == "" {
		t.Error("no uti")
	}
	if _, ok := c["rh"]; ok {
		t.Error("Extra with nil did not remove the claim")
	}

	app := claimsOf(t, userToken(t, s, UserToken{AppOnly: true, Roles: []string{"Data.Read"}}))
	if _, ok := app["scp"]; ok {
		t.Error("app-only token has scp")
	}
	if app["idtyp"] != "app" || app["oid"] == "" || app["oid"] != app["sub"] {
		t.Errorf("app-only claims: %v", app)
	}
	if roles, _ := app["roles"].([]any); len(roles) != 1 || roles[0] != "Data.Read" {
		t.Errorf("roles = %v", app["roles"])
	}

	if _, err := s.IssueToken(UserToken{}); err == nil {
		t.Error("IssueToken without ObjectID succeeded")
	}
}

func TestOnBehalfOfSuccess(t *testing.T) {
	tests := []struct {
		name      string
		audience  string
		scope     string
		basicAuth bool
		wantAud   string
		wantScp   string
	}{
		{name: "aud is client id", audience: apiAID, scope: graphScope, wantAud: "https://graph.microsoft.com", wantScp: "User.Read"},
		{name: "aud is identifier URI", audience: apiAURI, scope: graphScope + " https://graph.microsoft.com/Mail.Read",
			wantAud: "https://graph.microsoft.com", wantScp: "User.Read Mail.Read"},
		{name: "default scope", scope: "api://api-b/.default", wantAud: "api://api-b", wantScp: "default"},
		{name: "oidc scopes ignored", scope: "openid profile offline_access api://api-b/Data.Read", wantAud: "api://api-b", wantScp: "Data.Read"},
		{name: "basic auth", scope: graphScope, basicAuth: true, wantAud: "https://graph.microsoft.com", wantScp: "User.Read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, func(o *Options) {
				o.TenantID = "11111111-2222-4333-8444-555555555555"
				o.TokenLifetime = 30 * time.Minute
				o.RefreshIn = 10 * time.Minute
			})
			assertion := userToken(t, s, UserToken{Audience: tc.audience})
			form := oboForm(assertion, tc.scope)
			var edit func(*http.Request)
			if tc.basicAuth {
				form.Del("client_id")
				form.Del("client_secret")
				edit = func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(apiAID), url.QueryEscape(apiASecret)) }
			}
			a := do(t, s, http.MethodPost, form, edit)
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %v", a.status, a.body)
			}
			if a.str("token_type") != "Bearer" || a.str("scope") != strings.Join(strings.Fields(tc.scope), " ") {
				t.Errorf("token_type %q, scope %q", a.str("token_type"), a.str("scope"))
			}
			for field, want := range map[string]float64{"expires_in": 1800, "ext_expires_in": 1800, "refresh_in": 600} {
				if a.body[field] != want {
					t.Errorf("%s = %v, want %v", field, a.body[field], want)
				}
			}

			tokenB := a.str("access_token")
			if _, err := jwt.ParseString(tokenB,
				jwt.WithKeySet(fetchJWKS(t, s)),
				jwt.WithValidate(true),
				jwt.WithIssuer(s.Issuer()),
				jwt.WithAudience(tc.wantAud),
			); err != nil {
				t.Fatalf("token B does not verify with the JWKS: %v", err)
			}
			a0 := claimsOf(t, assertion)
			c := claimsOf(t, tokenB)
			for claim, want := range map[string]any{
				"aud": tc.wantAud, "scp": tc.wantScp, "oid": userOID, "tid": s.TenantID(),
				"azp": apiAID, "sub": a0["sub"], "ver": "2.0", "iss": s.Issuer(),
			} {
				if c[claim] != want {
					t.Errorf("token B %s = %v, want %v", claim, c[claim], want)
				}
			}
			exp, _ := c["exp"].(float64)
			if d := time.Until(time.Unix(int64(exp), 0)); d < 29*time.Minute || d > 31*time.Minute {
				t.Errorf("token B expires in %v, want about 30m", d)
			}

			issued := s.IssuedTokens()
			if len(issued) != 1 || issued[0].Token != tokenB || issued[0].Grant != GrantOnBehalfOf ||
				issued[0].ObjectID != userOID || issued[0].ClientID != apiAID || issued[0].Scope != a.str("scope") {
				t.Errorf("IssuedTokens = %+v", issued)
			}
		})
	}
}

func TestClientCredentials(t *testing.T) {
	s := newTestServer(t)
	a := post(t, s, ccForm("api://api-b/.default"))
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %v", a.status, a.body)
	}
	if _, err := jwt.ParseString(a.str("access_token"), jwt.WithKeySet(fetchJWKS(t, s)), jwt.WithValidate(true)); err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	c := claimsOf(t, a.str("access_token"))
	if c["aud"] != "api://api-b" || c["idtyp"] != "app" || c["azp"] != apiAID || c["oid"] != c["sub"] || c["oid"] == "" {
		t.Errorf("claims %v", c)
	}
	if _, ok := c["scp"]; ok {
		t.Error("app-only token has scp")
	}
	if _, ok := a.body["refresh_in"]; ok {
		t.Error("refresh_in present without Options.RefreshIn")
	}
	again := claimsOf(t, post(t, s, ccForm("https://graph.microsoft.com/.default")).str("access_token"))
	if again["oid"] != c["oid"] {
		t.Errorf("service principal id not stable: %v vs %v", again["oid"], c["oid"])
	}
	if issued := s.IssuedTokens(); len(issued) != 2 || issued[0].Grant != GrantClientCredentials || issued[0].ObjectID != c["oid"] {
		t.Errorf("IssuedTokens = %+v", issued)
	}
}

// foreignToken signs claims with a key the server never published.
func foreignToken(t *testing.T, claims map[string]any) string {
	t.Helper()
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, "foreign")
	payload, _ := json.Marshal(claims)
	signed, err := jws.Sign(payload, jws.WithKey(jwa.RS256(), key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

func TestTokenEndpointErrors(t *testing.T) {
	s := newTestServer(t)
	valid := userToken(t, s, UserToken{})
	validClaims := claimsOf(t, valid)
	encode := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + encode(map[string]any{"oid": "someone-else"}) + "." + parts[2]
	algNone := encode(map[string]string{"alg": "none", "kid": kidOf(t, valid)}) + "." + parts[1] + "."

	with := func(form url.Values, kv ...string) url.Values {
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				form.Del(kv[i])
			} else {
				form.Set(kv[i], kv[i+1])
			}
		}
		return form
	}
	tests := []struct {
		name   string
		method string
		ctype  string
		form   url.Values
		basic  []string
		status int
		error  string
		code   int
	}{
		{name: "wrong secret", form: with(oboForm(valid, graphScope), "client_secret", "nope"), status: 401, error: "invalid_client", code: 7000215},
		{name: "wrong secret basic", form: with(oboForm(valid, graphScope), "client_id", "", "client_secret", ""), basic: []string{apiAID, "nope"}, status: 401, error: "invalid_client", code: 7000215},
		{name: "unknown client", form: with(oboForm(valid, graphScope), "client_id", "nobody"), status: 401, error: "invalid_client", code: 700016},
		{name: "no credential", form: with(oboForm(valid, graphScope), "client_secret", ""), status: 401, error: "invalid_client", code: 7000218},
		{name: "client assertion not supported", form: with(oboForm(valid, graphScope), "client_secret", "",
			"client_assertion_type", clientAssertionTypeJWT, "client_assertion", "x.y.z"), status: 401, error: "invalid_client", code: 700027},
		{name: "no client id", form: with(oboForm(valid, graphScope), "client_id", ""), status: 400, error: "invalid_request", code: 900144},
		{name: "wrong audience", form: with(oboForm(userToken(t, s, UserToken{Audience: "api://someone-else"}), graphScope)), status: 400, error: "invalid_grant", code: 50013},
		{name: "other client's audience", form: with(oboForm(userToken(t, s, UserToken{Audience: otherID}), graphScope)), status: 400, error: "invalid_grant", code: 50013},
		{name: "expired", form: oboForm(userToken(t, s, UserToken{IssuedAt: time.Now().Add(-2 * time.Hour)}), graphScope), status: 400, error: "invalid_grant", code: 500133},
		{name: "not yet valid", form: oboForm(userToken(t, s, UserToken{NotBefore: time.Now().Add(time.Hour)}), graphScope), status: 400, error: "invalid_grant", code: 500133},
		{name: "no exp", form: oboForm(userToken(t, s, UserToken{Extra: map[string]any{"exp": nil}}), graphScope), status: 400, error: "invalid_grant", code: 50027},
		{name: "foreign issuer", form: oboForm(userToken(t, s, UserToken{Issuer: "https://login.microsoftonline.com/x/v2.0"}), graphScope), status: 400, error: "invalid_grant", code: 50013},
		{name: "unknown key", form: oboForm(foreignToken(t, validClaims), graphScope), status: 400, error: "invalid_grant", code: 50013},
		{name: "tampered payload", form: oboForm(tampered, graphScope), status: 400, error: "invalid_grant", code: 50013},
		{name: "alg none", form: oboForm(algNone, graphScope), status: 400, error: "invalid_grant", code: 50013},
		{name: "malformed", form: oboForm("not-a-jwt", graphScope), status: 400, error: "invalid_grant", code: 50027},
		{name: "app-only assertion", form: oboForm(userToken(t, s, UserToken{AppOnly: true, Audience: apiAID}), graphScope), status: 400, error: "invalid_grant", code: 50013},
		{name: "no scp", form: oboForm(userToken(t, s, UserToken{Extra: map[string]any{"scp": nil}}), graphScope), status: 400, error: "invalid_grant", code: 50013},
		{name: "scope without resource", form: oboForm(valid, "User.Read"), status: 400, error: "invalid_scope", code: 70011},
		{name: "scope with trailing slash", form: oboForm(valid, "api://api-b/"), status: 400, error: "invalid_scope", code: 70011},
		{name: "two resources", form: oboForm(valid, graphScope+" api://api-b/Data.Read"), status: 400, error: "invalid_scope", code: 28000},
		{name: "default combined", form: oboForm(valid, "api://api-b/.default api://api-b/Data.Read"), status: 400, error: "invalid_scope", code: 70011},
		{name: "only oidc scopes", form: oboForm(valid, "openid profile"), status: 400, error: "invalid_scope", code: 70011},
		{name: "no scope", form: with(oboForm(valid, graphScope), "scope", ""), status: 400, error: "invalid_request", code: 900144},
		{name: "no assertion", form: with(oboForm(valid, graphScope), "assertion", ""), status: 400, error: "invalid_request", code: 900144},
		{name: "no requested_token_use", form: with(oboForm(valid, graphScope), "requested_token_use", ""), status: 400, error: "invalid_request", code: 900144},
		{name: "wrong requested_token_use", form: with(oboForm(valid, graphScope), "requested_token_use", "id_token"), status: 400, error: "invalid_request", code: 9002313},
		{name: "no grant type", form: with(oboForm(valid, graphScope), "grant_type", ""), status: 400, error: "invalid_request", code: 900144},
		{name: "unsupported grant", form: with(oboForm(valid, graphScope), "grant_type", "password"), status: 400, error: "unsupported_grant_type", code: 70003},
		{name: "client credentials non-default scope", form: ccForm(graphScope), status: 400, error: "invalid_scope", code: 1002012},
		{name: "client credentials two scopes", form: ccForm("api://api-b/.default https://graph.microsoft.com/.default"), status: 400, error: "invalid_scope", code: 1002012},
		{name: "client credentials wrong secret", form: with(ccForm("api://api-b/.default"), "client_secret", "nope"), status: 401, error: "invalid_client", code: 7000215},
		{name: "GET", method: http.MethodGet, form: url.Values{}, status: 405, error: "invalid_request", code: 900561},
		{name: "JSON body", ctype: "application/json", form: oboForm(valid, graphScope), status: 400, error: "invalid_request", code: 900144},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			a := do(t, s, method, tc.form, func(r *http.Request) {
				if tc.basic != nil {
					r.SetBasicAuth(tc.basic[0], tc.basic[1])
				}
				if tc.ctype != "" {
					r.Header.Set("Content-Type", tc.ctype)
				}
			})
			if a.status != tc.status || a.str("error") != tc.error {
				t.Fatalf("got %d %q, want %d %q: %v", a.status, a.str("error"), tc.status, tc.error, a.body)
			}
			checkEntraError(t, a, tc.code)
		})
	}
}

func checkEntraError(t *testing.T, a answer, code int) {
	t.Helper()
	codes, _ := a.body["error_codes"].([]any)
	if len(codes) != 1 || codes[0] != float64(code) {
		t.Errorf("error_codes = %v, want [%d]", a.body["error_codes"], code)
	}
	desc := a.str("error_description")
	prefix := "AADSTS" + strconv.Itoa(code) + ": "
	if !strings.HasPrefix(desc, prefix) || !strings.Contains(desc, "Trace ID: "+a.str("trace_id")) ||
		!strings.Contains(desc, "Correlation ID: "+a.str("correlation_id")) || !strings.Contains(desc, "Timestamp: "+a.str("timestamp")) {
		t.Errorf("error_description = %q", desc)
	}
	if _, err := time.Parse("2006-01-02 15:04:05Z", a.str("timestamp")); err != nil {
		t.Errorf("timestamp %q: %v", a.str("timestamp"), err)
	}
	for _, f := range []string{"trace_id", "correlation_id"} {
		if !idshape.IsGUID(a.str(f)) {
			t.Errorf("%s = %q, want a GUID", f, a.str(f))
		}
	}
}

func TestBehaviors(t *testing.T) {
	const customClaims = `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`
	tests := []struct {
		name       string
		behavior   Behavior
		status     int
		error      string
		code       int
		suberror   string
		claims     string
		retryAfter string
	}{
		{name: "mfa", behavior: Behavior{Kind: BehaviorMFA}, status: 400, error: "invalid_grant", code: 50076, suberror: "basic_action", claims: DefaultMFAClaims},
		{name: "mfa custom claims", behavior: Behavior{Kind: BehaviorMFA, Claims: customClaims}, status: 400, error: "invalid_grant", code: 50076, suberror: "basic_action", claims: customClaims},
		{name: "interaction required", behavior: Behavior{Kind: BehaviorInteractionRequired}, status: 400, error: "interaction_required", code: 50079},
		{name: "consent required", behavior: Behavior{Kind: BehaviorConsentRequired}, status: 400, error: "consent_required", code: 65001, suberror: "consent_required"},
		{name: "throttle", behavior: Behavior{Kind: BehaviorThrottle, RetryAfter: 1500 * time.Millisecond}, status: 429, error: "temporarily_unavailable", code: 50196, retryAfter: "2"},
		{name: "throttle default retry", behavior: Behavior{Kind: BehaviorThrottle}, status: 429, error: "temporarily_unavailable", code: 50196, retryAfter: "1"},
		{name: "server error", behavior: Behavior{Kind: BehaviorServerError}, status: 503, error: "temporarily_unavailable", code: 90033},
		{name: "server error retry", behavior: Behavior{Kind: BehaviorServerError, RetryAfter: 5 * time.Second}, status: 503, error: "temporarily_unavailable", code: 90033, retryAfter: "5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t)
			s.SetUserBehavior(userOID, tc.behavior)
			check := func(a answer) {
				t.Helper()
				if a.status != tc.status || a.str("error") != tc.error || a.str("suberror") != tc.suberror || a.str("claims") != tc.claims {
					t.Fatalf("got %d %q suberror %q claims %q", a.status, a.str("error"), a.str("suberror"), a.str("claims"))
				}
				if got := a.header.Get("Retry-After"); got != tc.retryAfter {
					t.Errorf("Retry-After = %q, want %q", got, tc.retryAfter)
				}
				checkEntraError(t, a, tc.code)
			}
			check(post(t, s, oboForm(userToken(t, s, UserToken{ObjectID: userOID}), graphScope)))

			// Another user and app-only requests are not affected by a user behaviour.
			if a := post(t, s, oboForm(userToken(t, s, UserToken{ObjectID: user2OID}), graphScope)); a.status != 200 {
				t.Errorf("other user: %d %v", a.status, a.body)
			}
			if a := post(t, s, ccForm("api://api-b/.default")); a.status != 200 {
				t.Errorf("client credentials: %d %v", a.status, a.body)
			}

			// The default behaviour covers everybody but the users set to something else.
			s.SetUserBehavior(userOID, Behavior{Kind: BehaviorNormal})
			s.SetDefaultBehavior(tc.behavior)
			check(post(t, s, oboForm(userToken(t, s, UserToken{ObjectID: user2OID}), graphScope)))
			check(post(t, s, ccForm("api://api-b/.default")))
			if a := post(t, s, oboForm(userToken(t, s, UserToken{ObjectID: userOID}), graphScope)); a.status != 200 {
				t.Errorf("exempted user: %d %v", a.status, a.body)
			}

			s.ResetBehaviors()
			if a := post(t, s, oboForm(userToken(t, s, UserToken{ObjectID: user2OID}), graphScope)); a.status != 200 {
				t.Errorf("after reset: %d %v", a.status, a.body)
			}
		})
	}
}

func TestBehaviorAppliesAfterValidation(t *testing.T) {
	s := newTestServer(t)
	s.SetDefaultBehavior(Behavior{Kind: BehaviorMFA})
	a := post(t, s, with1(oboForm(userToken(t, s, UserToken{}), graphScope), "client_secret", "nope"))
	if a.status != 401 || a.str("error") != "invalid_client" {
		t.Errorf("got %d %v, want invalid_client", a.status, a.body)
	}
}

func with1(form url.Values, k, v string) url.Values {
	form.Set(k, v)
	return form
}

func TestCorrelationIDEchoed(t *testing.T) {
	s := newTestServer(t)
	const id = "0a1b2c3d-0000-4000-8000-00000000cafe"
	a := do(t, s, http.MethodPost, ccForm("bad"), func(r *http.Request) { r.Header.Set("client-request-id", id) })
	if a.str("correlation_id") != id || a.header.Get("client-request-id") != id {
		t.Errorf("correlation_id %q, header %q", a.str("correlation_id"), a.header.Get("client-request-id"))
	}
}

func TestLatency(t *testing.T) {
	s := newTestServer(t)
	form := ccForm("api://api-b/.default")
	s.SetLatency(200 * time.Millisecond)
	start := time.Now()
	if a := post(t, s, form); a.status != 200 {
		t.Fatalf("status %d", a.status)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("answered after %v, want at least 200ms", d)
	}

	// A client that gives up earlier is not kept waiting.
	s.SetLatency(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := postCtx(ctx, s, form); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %v", d)
	}

	s.SetLatency(0)
	if a := post(t, s, form); a.status != 200 {
		t.Fatalf("status %d", a.status)
	}
	if got := s.TokenRequests(); got != 3 {
		t.Errorf("TokenRequests = %d, want 3", got)
	}
}

func postCtx(ctx context.Context, s *Server, form url.Values) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.TokenEndpoint(), strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return fmt.Errorf("unexpected answer %s", resp.Status)
}

func TestHang(t *testing.T) {
	s := newTestServer(t)
	s.SetHang(true)
	form := ccForm("api://api-b/.default")

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := postCtx(ctx, s, form); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}

	// Close releases a request that would otherwise hang forever.
	done := make(chan error, 1)
	go func() { done <- postCtx(context.Background(), s, form) }()
	deadline := time.Now().Add(5 * time.Second)
	for s.TokenRequests() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("hung request got an answer")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the hung request")
	}
}

func TestKeyRotation(t *testing.T) {
	s := newTestServer(t)
	oldKID := s.SigningKeyID()
	oldToken := userToken(t, s, UserToken{})

	newKID, err := s.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	if newKID == oldKID || s.SigningKeyID() != newKID {
		t.Fatalf("RotateKey = %q (old %q, signing %q)", newKID, oldKID, s.SigningKeyID())
	}
	if !slices.Equal(s.KeyIDs(), []string{oldKID, newKID}) {
		t.Errorf("KeyIDs = %v", s.KeyIDs())
	}
	if set := fetchJWKS(t, s); set.Len() != 2 {
		t.Errorf("JWKS has %d keys, want 2", set.Len())
	}
	newToken := userToken(t, s, UserToken{})
	if kidOf(t, newToken) != newKID || kidOf(t, oldToken) != oldKID {
		t.Error("tokens carry the wrong kid")
	}
	for name, tok := range map[string]string{"old": oldToken, "new": newToken} {
		if a := post(t, s, oboForm(tok, graphScope)); a.status != 200 {
			t.Errorf("%s key token refused: %v", name, a.body)
		}
	}

	s.RemoveKey(oldKID)
	if !slices.Equal(s.KeyIDs(), []string{newKID}) {
		t.Errorf("KeyIDs = %v", s.KeyIDs())
	}
	set := fetchJWKS(t, s)
	if _, ok := set.LookupKeyID(oldKID); ok || set.Len() != 1 {
		t.Error("removed key still published")
	}
	if a := post(t, s, oboForm(oldToken, graphScope)); a.status != 400 || a.str("error") != "invalid_grant" {
		t.Errorf("token of removed key: %d %v", a.status, a.body)
	}
	if a := post(t, s, oboForm(newToken, graphScope)); a.status != 200 {
		t.Errorf("new key token refused: %v", a.body)
	}
	// A token B signed after the rotation verifies with the published set.
	a := post(t, s, oboForm(newToken, graphScope))
	if _, err := jwt.ParseString(a.str("access_token"), jwt.WithKeySet(set)); err != nil {
		t.Errorf("token B: %v", err)
	}
}

func TestCounters(t *testing.T) {
	s := newTestServer(t)
	if s.LastTokenRequest() != nil {
		t.Error("LastTokenRequest before any request")
	}
	tok1 := userToken(t, s, UserToken{ObjectID: userOID})
	tok2 := userToken(t, s, UserToken{ObjectID: user2OID})
	expired := userToken(t, s, UserToken{ObjectID: user2OID, IssuedAt: time.Now().Add(-3 * time.Hour)})

	forms := []url.Values{oboForm(expired, graphScope), ccForm("api://api-b/.default"), {"grant_type": {"password"}}}
	for range 5 {
		forms = append(forms, oboForm(tok1, graphScope))
	}
	for range 3 {
		forms = append(forms, oboForm(tok2, graphScope))
	}
	var wg sync.WaitGroup
	for _, form := range forms {
		wg.Go(func() {
			if _, err := request(s, http.MethodPost, form, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	for name, c := range map[string][2]int64{
		"TokenRequests":             {s.TokenRequests(), 11},
		"OnBehalfOfRequests":        {s.OnBehalfOfRequests(), 9},
		"OnBehalfOfRequestsFor(1)":  {s.OnBehalfOfRequestsFor(userOID), 5},
		"OnBehalfOfRequestsFor(2)":  {s.OnBehalfOfRequestsFor(user2OID), 4},
		"OnBehalfOfRequestsFor(?)":  {s.OnBehalfOfRequestsFor("nobody"), 0},
		"ClientCredentialsRequests": {s.ClientCredentialsRequests(), 1},
		"IssuedTokens":              {int64(len(s.IssuedTokens())), 9},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %d, want %d", name, c[0], c[1])
		}
	}

	post(t, s, oboForm(tok1, graphScope))
	last := s.LastTokenRequest()
	if last.Get("grant_type") != GrantOnBehalfOf || last.Get("assertion") != tok1 || last.Get("scope") != graphScope {
		t.Errorf("LastTokenRequest = %v", last)
	}
	last.Set("scope", "changed")
	if s.LastTokenRequest().Get("scope") != graphScope {
		t.Error("LastTokenRequest is not a copy")
	}
}

func TestKillAndRestart(t *testing.T) {
	s := newTestServer(t)
	tok := userToken(t, s, UserToken{ObjectID: userOID})
	kid := s.SigningKeyID()
	if a := post(t, s, oboForm(tok, graphScope)); a.status != 200 {
		t.Fatalf("before Kill: %d %v", a.status, a.body)
	}
	// A request hanging at Kill fails instead of waiting forever.
	s.SetHang(true)
	hung := make(chan error, 1)
	go func() { hung <- postCtx(context.Background(), s, oboForm(tok, graphScope)) }()
	deadline := time.Now().Add(5 * time.Second)
	for s.TokenRequests() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for range 2 { // killing twice is harmless
		if err := s.Kill(); err != nil {
			t.Fatalf("Kill: %v", err)
		}
	}
	select {
	case err := <-hung:
		if err == nil {
			t.Error("the request in progress at Kill got an answer")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Kill did not end the request in progress")
	}
	s.SetHang(false)
	if _, err := request(s, http.MethodPost, oboForm(tok, graphScope), nil); err == nil {
		t.Fatal("a killed server answered")
	}
	for range 2 { // restarting a running server is harmless
		if err := s.Restart(); err != nil {
			t.Fatalf("Restart: %v", err)
		}
	}
	if a := post(t, s, oboForm(tok, graphScope)); a.status != 200 {
		t.Errorf("after Restart, a token minted before Kill: %d %v", a.status, a.body)
	}
	if s.SigningKeyID() != kid || !slices.Contains(fetchKIDs(t, s), kid) {
		t.Error("Restart changed the signing keys")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(); err == nil {
		t.Error("a closed server restarted")
	}
}

func fetchKIDs(t *testing.T, s *Server) []string {
	t.Helper()
	set := fetchJWKS(t, s)
	var kids []string
	for i := range set.Len() {
		k, _ := set.Key(i)
		kid, _ := k.KeyID()
		kids = append(kids, kid)
	}
	return kids
}

func TestRecordsOfCredentialsAndTokens(t *testing.T) {
	s := newTestServer(t, func(o *Options) { o.IssueRefreshTokens = true })
	if len(s.TokenRequestForms()) != 0 || len(s.MintedTokens()) != 0 {
		t.Fatal("records before any request")
	}
	tok1 := userToken(t, s, UserToken{ObjectID: userOID})
	tok2 := userToken(t, s, UserToken{ObjectID: user2OID})
	a := post(t, s, oboForm(tok1, graphScope))
	post(t, s, ccForm("api://api-b/.default"))
	post(t, s, with1(oboForm(tok2, graphScope), "client_secret", "wrong"))

	if got := s.MintedTokens(); !slices.Equal(got, []string{tok1, tok2}) {
		t.Errorf("MintedTokens = %d tokens, want the two minted", len(got))
	}
	forms := s.TokenRequestForms()
	if len(forms) != 3 || forms[0].Get("assertion") != tok1 || forms[2].Get("client_secret") != "wrong" ||
		forms[1].Get("grant_type") != GrantClientCredentials {
		t.Errorf("TokenRequestForms = %v", forms)
	}
	forms[0].Set("assertion", "changed")
	if s.TokenRequestForms()[0].Get("assertion") != tok1 {
		t.Error("TokenRequestForms is not a copy")
	}
	issued := s.IssuedTokens()
	if len(issued) != 2 {
		t.Fatalf("%d tokens issued, want 2", len(issued))
	}
	rt := a.str("refresh_token")
	if rt == "" || rt != issued[0].RefreshToken || issued[1].RefreshToken == "" || issued[1].RefreshToken == rt {
		t.Errorf("refresh tokens: answer %q, records %q and %q", rt, issued[0].RefreshToken, issued[1].RefreshToken)
	}
	if a := post(t, newTestServer(t), ccForm("api://api-b/.default")); a.str("refresh_token") != "" {
		t.Error("a refresh token was issued without IssueRefreshTokens")
	}
}
