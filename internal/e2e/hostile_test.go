package e2e

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// forge signs header and claims with key (RS256), whatever the header says.
func forge(t *testing.T, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	in := b64json(header) + "." + b64json(claims)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestHostileTokens sends forged and malformed tokens A through the gateway:
// every one is refused with 401 or 403, and none causes an exchange or a
// downstream call.
func TestHostileTokens(t *testing.T) {
	e := start(t, options{})
	now := time.Now()
	attacker, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	attackerJWK, _ := jwk.Import(attacker.Public())
	realKID := e.idp.SigningKeyID()
	claims := func(edit func(map[string]any)) map[string]any {
		c := map[string]any{
			"iss": e.idp.Issuer(), "aud": apiURI, "sub": "s", "oid": "victim", "tid": e.idp.TenantID(),
			"scp": "access_as_user", "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	// signed by the identity provider's real key, with chosen claims
	signed := func(edit func(map[string]any)) string {
		tok, err := e.idp.SignClaims(claims(edit))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	typed := func(typ string) string {
		tok, err := e.idp.SignClaimsAs(typ, claims(nil))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	unsigned := func(header map[string]any) string { return b64json(header) + "." + b64json(claims(nil)) + "." }

	// HS256 keyed with the real public key's bytes: the key confusion attack.
	set, _ := jwk.Fetch(t.Context(), e.idp.JWKSURL())
	realKey, _ := set.LookupKeyID(realKID)
	var realPub rsa.PublicKey
	_ = jwk.Export(realKey, &realPub)
	der, _ := x509.MarshalPKIXPublicKey(&realPub)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hsInput := b64json(map[string]any{"alg": "HS256", "kid": realKID}) + "." + b64json(claims(nil))
	mac := hmac.New(sha256.New, pemBytes)
	mac.Write([]byte(hsInput))
	keyConfusion := hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	graphToken := e.token("victim", func(u *localidp.UserToken) { u.Audience = "https://graph.microsoft.com" })
	otherTenant, err := localidp.New(localidp.Options{Clients: []localidp.Client{{ID: clientID, Secret: "x", IdentifierURI: apiURI}}})
	if err != nil {
		t.Fatal(err)
	}
	defer otherTenant.Close()
	otherTenantTok, _ := otherTenant.IssueToken(localidp.UserToken{ObjectID: "victim", Audience: apiURI, Scopes: []string{"access_as_user"}, Issuer: e.idp.Issuer()})

	tests := []struct {
		name   string
		token  string
		status int
	}{
		{"alg none", unsigned(map[string]any{"alg": "none"}), 401},
		{"alg None", unsigned(map[string]any{"alg": "None"}), 401},
		{"alg NONE", unsigned(map[string]any{"alg": "NONE"}), 401},
		{"HS256 with the public key as secret", keyConfusion, 401},
		{"embedded jwk", forge(t, attacker, map[string]any{"alg": "RS256", "kid": realKID, "jwk": attackerJWK}, claims(nil)), 401},
		{"jku", forge(t, attacker, map[string]any{"alg": "RS256", "kid": realKID, "jku": "https://attacker.example/keys"}, claims(nil)), 401},
		{"x5u", forge(t, attacker, map[string]any{"alg": "RS256", "kid": realKID, "x5u": "https://attacker.example/cert"}, claims(nil)), 401},
		{"x5c", forge(t, attacker, map[string]any{"alg": "RS256", "x5c": []string{"MIIB"}}, claims(nil)), 401},
		{"kid path traversal", forge(t, attacker, map[string]any{"alg": "RS256", "kid": "../../../../dev/null"}, claims(nil)), 401},
		{"kid SQL", forge(t, attacker, map[string]any{"alg": "RS256", "kid": "' OR 1=1 --"}, claims(nil)), 401},
		{"unknown crit", forge(t, attacker, map[string]any{"alg": "RS256", "kid": realKID, "crit": []string{"x-custom"}, "x-custom": 1}, claims(nil)), 401},
		{"JWE", "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d", 401},
		{"two segments", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0", 401},
		{"five segments", "a.b.c.d.e", 401},
		{"bad base64", "eyJhbGc!!!.eyJzdWIiOiJ4In0.c2ln", 401},
		{"huge header", b64json(map[string]any{"alg": "RS256", "pad": strings.Repeat("x", 20000)}) + ".e30.c2ln", 401},
		{"huge payload", signed(func(c map[string]any) { c["pad"] = strings.Repeat("x", 20000) }), 401},
		{"exp as string", signed(func(c map[string]any) { c["exp"] = "9999999999" }), 401},
		{"nbf as string", signed(func(c map[string]any) { c["nbf"] = "0" }), 401},
		{"iat as string", signed(func(c map[string]any) { c["iat"] = "now" }), 401},
		{"exp as a float in the past", signed(func(c map[string]any) { c["exp"] = float64(now.Add(-time.Hour).Unix()) + 0.5 }), 401},
		{"exp absurd float", signed(func(c map[string]any) { c["exp"] = 1e300 }), 401},
		{"far future nbf", signed(func(c map[string]any) { c["nbf"] = now.Add(24 * time.Hour).Unix() }), 401},
		{"missing exp", signed(func(c map[string]any) { delete(c, "exp") }), 401},
		{"aud array without the API", signed(func(c map[string]any) { c["aud"] = []string{"https://graph.microsoft.com", "api://other"} }), 401},
		{"iss with trailing slash", signed(func(c map[string]any) { c["iss"] = e.idp.Issuer() + "/" }), 401},
		{"iss in another case", signed(func(c map[string]any) { c["iss"] = strings.ToUpper(e.idp.Issuer()) }), 401},
		{"signed by another tenant's key", otherTenantTok, 401},
		{"valid token for Microsoft Graph", graphToken, 401},
		{"app-only token on an OBO route", signed(func(c map[string]any) { delete(c, "scp"); c["roles"] = []string{"x"} }), 403},
		{"typ logout+jwt", typed("logout+jwt"), 401},
		{"typ id_token+jwt", typed("application/id_token+jwt"), 401},
		{"nonce", signed(func(c map[string]any) { c["nonce"] = "n-0S6_WzA2Mj" }), 401},
		{"at_hash", signed(func(c map[string]any) { c["at_hash"] = "77QmUPtjPfzWtF2AnpK9RQ" }), 401},
		{"c_hash", signed(func(c map[string]any) { c["c_hash"] = "LDktKdoQak3Pk0cnXxCltA" }), 401},
		{"events", signed(func(c map[string]any) {
			c["events"] = map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}
		}), 401},
		{"idtyp app with delegated scopes", signed(func(c map[string]any) { c["idtyp"] = "app" }), 401},
		{"tid of another tenant than the issuer's", signed(func(c map[string]any) { c["tid"] = "bbbbbbbb-0000-4000-8000-00000000000b" }), 401},
		{"padded", signed(nil) + "==", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exchanges, hits := e.idp.TokenRequests(), e.echoHits.Load()
			a := e.get("/echo/x", tc.token)
			if a.status != tc.status {
				t.Errorf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if e.idp.TokenRequests() != exchanges || e.echoHits.Load() != hits {
				t.Error("the token caused an exchange or a downstream call")
			}
		})
	}
	// The controls: an RFC 9068 access token, and one without typ, are
	// accepted; so is the unpadded token, warm, whose padded copy was
	// refused.
	for _, typ := range []string{"at+jwt", "application/AT+JWT", ""} {
		if a := e.get("/echo/x", typed(typ)); a.status != 200 {
			t.Errorf("typ %q: %d %s", typ, a.status, a.body)
		}
	}
	warm := signed(nil)
	for _, tok := range []string{warm, warm + "==", warm + "="} {
		want := 200
		if tok != warm {
			want = 401
		}
		if a := e.get("/echo/x", tok); a.status != want {
			t.Errorf("warm token %q: %d, want %d", tok[len(tok)-4:], a.status, want)
		}
	}
	// The control: the array audience with the API in it is accepted.
	if a := e.get("/echo/x", signed(func(c map[string]any) { c["aud"] = []string{"https://graph.microsoft.com", apiURI} })); a.status != 200 {
		t.Errorf("aud array containing the API: %d %s", a.status, a.body)
	}
}

// TestIDTokenOnAppRoute: an ID token of API A's own client (aud its client
// id, a nonce, a role, no scp) and a user token without scopes are refused
// on a client_credentials route, counted as token_type, with no exchange;
// an app token saying idtyp=app passes.
func TestIDTokenOnAppRoute(t *testing.T) {
	e := start(t, options{})
	now := time.Now()
	sign := func(typ string, edit func(map[string]any)) string {
		c := map[string]any{
			"iss": e.idp.Issuer(), "aud": clientID, "sub": "s", "oid": "app-or-user", "tid": e.idp.TenantID(),
			"roles": []string{"Reader"}, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}
		edit(c)
		tok, err := e.idp.SignClaimsAs(typ, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	before := e.counter(`obo_gateway_inbound_rejections_total{reason="token_type"}`)
	exchanges := e.idp.TokenRequests()
	for name, tok := range map[string]string{
		"ID token":                 sign("JWT", func(c map[string]any) { c["nonce"] = "abc" }),
		"idtyp user without scp":   sign("JWT", func(c map[string]any) { c["idtyp"] = "user" }),
		"logout token":             sign("logout+jwt", func(map[string]any) {}),
		"ID token with idtyp app?": sign("JWT", func(c map[string]any) { c["idtyp"] = "app"; c["at_hash"] = "x" }),
	} {
		if a := e.get("/app/x", tok); a.status != http.StatusUnauthorized || a.json(t)["error"] != "invalid_token" {
			t.Errorf("%s on the app route: %d %s", name, a.status, a.body)
		}
	}
	if got := e.counter(`obo_gateway_inbound_rejections_total{reason="token_type"}`) - before; got != 4 {
		t.Errorf("token_type refusals counted %d, want 4", got)
	}
	if e.idp.TokenRequests() != exchanges {
		t.Error("a refused token caused an exchange")
	}
	if a := e.get("/app/x", sign("JWT", func(c map[string]any) { c["idtyp"] = "app" })); a.status != 200 {
		t.Errorf("app token with idtyp app: %d %s", a.status, a.body)
	}
}
