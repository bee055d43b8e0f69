package conformance

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/obo-gateway/obo-gateway/internal/localidp"
	"github.com/obo-gateway/obo-gateway/obo"
)

const (
	clientID  = "6e1b2c3d-0000-4000-8000-0000000000aa"
	apiURI    = "api://api-a"
	userOID   = "00000000-0000-4000-8000-000000000001"
	oboScope  = "api://downstream/Read"
	appScope  = "api://downstream/.default"
	assertTyp = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// deliberate lists where the gateway's request differs from MSAL's on
// purpose, and why. The comparison below skips exactly these.
var deliberate = map[string]string{
	"scope": "MSAL adds openid, offline_access and profile to every request (for an ID token and a refresh token for " +
		"its own account cache; the authority ignores them for client credentials); the gateway caches token B itself, " +
		"exchanges token A again instead of refreshing, and asks only for the route's scopes (the resource scopes must be the same)",
	"client_info": "MSAL asks for client_info (client_info=1) to key its account cache; the gateway keys its cache on " +
		"the validated tid and oid of token A and does not need it",
	"x5t#S256 encoding": "MSAL writes the thumbprint in standard base64 with padding; RFC 7515 section 4.1.8 specifies " +
		"base64url without padding, which the gateway writes; the Microsoft identity platform accepts both, and both " +
		"must name the same certificate",
	"jti":      "unique per assertion by design: the two values must both be UUIDs and differ",
	"exp, nbf": "the two assertions are signed at different moments: the lifetime exp - nbf must be the same (10 minutes)",
}

// fixture is a local identity provider over TLS with API A registered by
// certificate, and the certificate's PEM files.
type fixture struct {
	idp               *localidp.Server
	cert              *x509.Certificate
	key               *rsa.PrivateKey
	certFile, keyFile string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "api-a"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	f := &fixture{cert: cert, key: key, certFile: filepath.Join(dir, "tls.crt"), keyFile: filepath.Join(dir, "tls.key")}
	if err := os.WriteFile(f.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	f.idp, err = localidp.New(localidp.Options{
		TLS:     true,
		Clients: []localidp.Client{{ID: clientID, IdentifierURI: apiURI, Certificates: []*x509.Certificate{cert}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.idp.Close() })
	return f
}

// msalRequest runs MSAL's grant and returns the form the identity provider
// received.
func (f *fixture) msalRequest(t *testing.T, grant, tokenA string, x5c bool) url.Values {
	t.Helper()
	cred, err := confidential.NewCredFromCert([]*x509.Certificate{f.cert}, f.key)
	if err != nil {
		t.Fatal(err)
	}
	opts := []confidential.Option{
		confidential.WithHTTPClient(f.idp.HTTPClient()),
		// localidp is not a known Microsoft cloud: skip instance discovery
		// and read the authority's own discovery document.
		confidential.WithInstanceDiscovery(false),
	}
	if x5c {
		opts = append(opts, confidential.WithX5C())
	}
	// MSAL's authority is the tenant URL without /v2.0.
	authority := strings.TrimSuffix(f.idp.Authority(), "/v2.0")
	app, err := confidential.New(authority, clientID, cred, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	switch grant {
	case "obo":
		_, err = app.AcquireTokenOnBehalfOf(ctx, tokenA, []string{oboScope})
	default:
		_, err = app.AcquireTokenByCredential(ctx, []string{appScope})
	}
	if err != nil {
		t.Fatalf("MSAL %s against localidp: %v", grant, err)
	}
	return f.idp.LastTokenRequest()
}

// gatewayRequest runs the gateway's grant with the same certificate and
// returns the form the identity provider received.
func (f *fixture) gatewayRequest(t *testing.T, grant, tokenA string, x5c bool) url.Values {
	t.Helper()
	cred, err := obo.NewCertificate(obo.CertificateConfig{CertFile: f.certFile, KeyFile: f.keyFile, SendX5C: x5c})
	if err != nil {
		t.Fatal(err)
	}
	c, err := obo.NewClient(obo.Config{ClientID: clientID, TokenEndpoint: f.idp.TokenEndpoint(), Credential: cred, HTTPClient: f.idp.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	switch grant {
	case "obo":
		_, err = c.OnBehalfOf(ctx, tokenA, []string{oboScope})
	default:
		_, err = c.ClientCredentials(ctx, []string{appScope})
	}
	if err != nil {
		t.Fatalf("gateway %s against localidp: %v", grant, err)
	}
	return f.idp.LastTokenRequest()
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestRequestsMatchMSAL(t *testing.T) {
	f := newFixture(t)
	tokenA, err := f.idp.IssueToken(localidp.UserToken{ObjectID: userOID, Audience: apiURI})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		grant string
		x5c   bool
		// same lists the form fields that must be equal.
		same []string
	}{
		{"on-behalf-of", "obo", false, []string{"grant_type", "requested_token_use", "assertion", "client_id", "client_assertion_type"}},
		{"on-behalf-of with x5c", "obo", true, []string{"grant_type", "requested_token_use", "assertion", "client_id", "client_assertion_type"}},
		{"client credentials", "client_credentials", false, []string{"grant_type", "client_id", "client_assertion_type"}},
		{"client credentials with x5c", "client_credentials", true, []string{"grant_type", "client_id", "client_assertion_type"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msal := f.msalRequest(t, tc.grant, tokenA, tc.x5c)
			gw := f.gatewayRequest(t, tc.grant, tokenA, tc.x5c)

			for _, k := range tc.same {
				if msal.Get(k) == "" || msal.Get(k) != gw.Get(k) {
					t.Errorf("%s: MSAL %q, gateway %q", k, msal.Get(k), gw.Get(k))
				}
			}
			if gw.Get("client_assertion_type") != assertTyp {
				t.Errorf("client_assertion_type = %q", gw.Get("client_assertion_type"))
			}
			// Every field MSAL sends is sent by the gateway too, except the
			// deliberate differences.
			for k := range msal {
				if !gw.Has(k) && deliberate[k] == "" {
					t.Errorf("MSAL sends %s=%q, the gateway does not, and no reason is listed", k, msal.Get(k))
				}
			}
			for k := range gw {
				if !msal.Has(k) {
					t.Errorf("the gateway sends %s, MSAL does not", k)
				}
			}
			// scope: the same resource scopes; MSAL's extra ones are OpenID
			// Connect scopes only (see deliberate["scope"]).
			var msalResource []string
			for _, s := range strings.Fields(msal.Get("scope")) {
				if !slices.Contains([]string{"openid", "offline_access", "profile"}, s) {
					msalResource = append(msalResource, s)
				}
			}
			if !slices.Equal(msalResource, strings.Fields(gw.Get("scope"))) {
				t.Errorf("resource scopes: MSAL %q, gateway %q", msal.Get("scope"), gw.Get("scope"))
			}
			compareAssertions(t, f, msal.Get("client_assertion"), gw.Get("client_assertion"))
		})
	}
}

// compareAssertions checks that two client assertions are equivalent: the
// same header fields naming the same certificate, and the same claims.
func compareAssertions(t *testing.T, f *fixture, msal, gw string) {
	t.Helper()
	mh, mc := decode(t, msal)
	gh, gc := decode(t, gw)
	if !slices.Equal(keys(mh), keys(gh)) {
		t.Errorf("header fields: MSAL %v, gateway %v", keys(mh), keys(gh))
	}
	for _, k := range []string{"alg", "typ"} {
		if mh[k] != gh[k] {
			t.Errorf("header %s: MSAL %v, gateway %v", k, mh[k], gh[k])
		}
	}
	// x5t#S256: the same certificate, in two encodings (see deliberate).
	mt, err1 := base64.StdEncoding.DecodeString(mh["x5t#S256"].(string))
	gt, err2 := base64.RawURLEncoding.DecodeString(gh["x5t#S256"].(string))
	if err1 != nil || err2 != nil || string(mt) != string(gt) || len(gt) != 32 {
		t.Errorf("x5t#S256: MSAL %v, gateway %v", mh["x5t#S256"], gh["x5t#S256"])
	}
	if mx, gx := mh["x5c"], gh["x5c"]; mx != nil || gx != nil {
		mb, _ := json.Marshal(mx)
		gb, _ := json.Marshal(gx)
		if string(mb) != string(gb) {
			t.Errorf("x5c: MSAL %s, gateway %s", mb, gb)
		}
	}
	if !slices.Equal(keys(mc), keys(gc)) {
		t.Errorf("claims: MSAL %v, gateway %v", keys(mc), keys(gc))
	}
	for _, k := range []string{"aud", "iss", "sub"} {
		if mc[k] != gc[k] {
			t.Errorf("claim %s: MSAL %v, gateway %v", k, mc[k], gc[k])
		}
	}
	if gc["aud"] != f.idp.TokenEndpoint() || gc["iss"] != clientID {
		t.Errorf("gateway claims %v", gc)
	}
	num := func(m map[string]any, k string) int64 { n, _ := m[k].(json.Number).Int64(); return n }
	// MSAL reads the clock twice (nbf, then exp), so on a loaded machine its
	// lifetime may come out a second short; the gateway's is exactly 600 s.
	if ml, gl := num(mc, "exp")-num(mc, "nbf"), num(gc, "exp")-num(gc, "nbf"); ml < gl-1 || ml > gl || gl != 600 {
		t.Errorf("lifetime: MSAL %ds, gateway %ds", ml, gl)
	}
	if d := num(gc, "nbf") - num(mc, "nbf"); d < -5 || d > 60 {
		t.Errorf("nbf differs by %ds", d)
	}
	mj, _ := mc["jti"].(string)
	gj, _ := gc["jti"].(string)
	if !uuidPattern.MatchString(mj) || !uuidPattern.MatchString(gj) || mj == gj {
		t.Errorf("jti: MSAL %q, gateway %q", mj, gj)
	}
}

func decode(t *testing.T, jwt string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS (%d parts)", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		d := json.NewDecoder(strings.NewReader(string(b)))
		d.UseNumber()
		if err := d.Decode(dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

func keys(m map[string]any) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

func TestDeliberateDifferencesAreExplained(t *testing.T) {
	for k, why := range deliberate {
		if len(why) < 40 {
			t.Errorf("deliberate difference %q has no real reason: %q", k, why)
		}
	}
}
