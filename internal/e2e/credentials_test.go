package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/localidp"
	"github.com/obo-gateway/obo-gateway/internal/smallfile"
)

// certificate is a client certificate and its key, written to PEM files.
type certificate struct {
	cert              *x509.Certificate
	certFile, keyFile string
	certPEM, keyPEM   []byte
	thumbprintS256    string
}

// newCertificate creates a self-signed certificate for key and writes it,
// and its key in PKCS#8, into dir as name.crt and name.key.
func newCertificate(t *testing.T, dir, name string, key crypto.Signer) certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "api-a " + name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	c := certificate{
		cert:           cert,
		certFile:       filepath.Join(dir, name+".crt"),
		keyFile:        filepath.Join(dir, name+".key"),
		certPEM:        pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:         pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		thumbprintS256: base64.RawURLEncoding.EncodeToString(sum[:]),
	}
	c.writeTo(t, c.certFile, c.keyFile)
	return c
}

// writeTo writes the certificate and key to the given files, with a new
// modification time.
func (c certificate) writeTo(t *testing.T, certFile, keyFile string) {
	t.Helper()
	for path, data := range map[string][]byte{certFile: c.certPEM, keyFile: c.keyPEM} {
		if err := smallfile.Replace(path, data); err != nil {
			t.Fatal(err)
		}
	}
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func p256Key(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// registerOnly makes the identity provider know the gateway's client by
// these certificates and federated credentials only: no secret.
func registerOnly(certs []*x509.Certificate, fed []localidp.FederatedCredential) func(*localidp.Options) {
	return func(o *localidp.Options) {
		o.Clients[0].Secret = ""
		o.Clients[0].Certificates = certs
		o.Clients[0].FederatedCredentials = fed
	}
}

// lastIssued returns the last token the identity provider issued.
func (e *env) lastIssued() localidp.IssuedToken {
	e.t.Helper()
	issued := e.idp.IssuedTokens()
	if len(issued) == 0 {
		e.t.Fatal("no token issued")
	}
	return issued[len(issued)-1]
}

func TestCertificateCredential(t *testing.T) {
	dir := t.TempDir()
	rsaCert := newCertificate(t, dir, "rsa", rsaKey(t))
	ecCert := newCertificate(t, dir, "ec", p256Key(t))
	combined := filepath.Join(dir, "combined.pem")
	if err := os.WriteFile(combined, append(append([]byte{}, ecCert.certPEM...), ecCert.keyPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		cert       certificate
		credential string
		alg        string
		x5c        bool
	}{
		{"RSA, separate files", rsaCert, "certificate: {file: " + rsaCert.certFile + ", key_file: " + rsaCert.keyFile + "}", "PS256", false},
		{"EC P-256, one file, x5c", ecCert, "certificate: {file: " + combined + ", send_x5c: true}", "ES256", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The identity provider refuses an assertion it has seen, as
			// Keycloak does: each of the three exchanges needs its own.
			register := registerOnly([]*x509.Certificate{tc.cert.cert}, nil)
			e := start(t, options{credential: tc.credential, idp: func(o *localidp.Options) { register(o); o.RejectAssertionReplay = true }})
			for i, path := range []string{"/echo/me", "/app/jobs", "/echo/me"} {
				if a := e.get(path, e.token(fmt.Sprint("cert-user-", i))); a.status != http.StatusOK {
					t.Fatalf("%s: %d %s", path, a.status, a.body)
				}
				if got := e.lastIssued().ClientAuth; got != "certificate "+tc.cert.thumbprintS256 {
					t.Errorf("%s: client authenticated with %q", path, got)
				}
				form := e.idp.LastTokenRequest()
				if form.Has("client_secret") || form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
					t.Errorf("%s: token request %v", path, form)
				}
				h := jwtHeader(t, form.Get("client_assertion"))
				if h["alg"] != tc.alg || h["x5t#S256"] != tc.cert.thumbprintS256 || (h["x5c"] != nil) != tc.x5c {
					t.Errorf("%s: assertion header %v", path, h)
				}
			}
		})
	}
}

// jwtHeader decodes a JWT's header.
func jwtHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestCertificateRotationWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	first := newCertificate(t, dir, "first", rsaKey(t))
	second := newCertificate(t, dir, "second", p256Key(t))
	// The gateway reads tls.crt and tls.key, as mounted from a kubernetes.io/tls Secret.
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first.writeTo(t, certFile, keyFile)
	e := start(t, options{
		credential: "certificate: {file: " + certFile + ", key_file: " + keyFile + "}",
		idp:        registerOnly([]*x509.Certificate{first.cert, second.cert}, nil),
	})
	if a := e.get("/echo/x", e.token("before")); a.status != http.StatusOK {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if got := e.lastIssued().ClientAuth; got != "certificate "+first.thumbprintS256 {
		t.Fatalf("before rotation: %q", got)
	}

	time.Sleep(20 * time.Millisecond) // a visibly newer modification time
	second.writeTo(t, certFile, keyFile)
	if a := e.get("/echo/x", e.token("after")); a.status != http.StatusOK {
		t.Fatalf("after rotation: %d %s", a.status, a.body)
	}
	if got := e.lastIssued().ClientAuth; got != "certificate "+second.thumbprintS256 {
		t.Errorf("after rotation the gateway authenticated with %q, want the new certificate", got)
	}
	if !strings.Contains(e.logs.String(), `"msg":"client certificate reloaded"`) {
		t.Error("the reload is not logged")
	}

	// Broken files: the last good certificate stays in use, and the problem
	// is logged.
	time.Sleep(20 * time.Millisecond)
	if err := os.WriteFile(keyFile, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if a := e.get("/echo/x", e.token("broken")); a.status != http.StatusOK {
		t.Fatalf("with a broken key file: %d %s", a.status, a.body)
	}
	if got := e.lastIssued().ClientAuth; got != "certificate "+second.thumbprintS256 {
		t.Errorf("with a broken key file: %q", got)
	}
	if !strings.Contains(e.logs.String(), "could not be loaded; the previous certificate stays in use") {
		t.Error("the failed reload is not logged")
	}
	if l := e.logs.String(); strings.Contains(l, "AAAA") || strings.Contains(l, "-----BEGIN") {
		t.Errorf("key material in the logs:\n%s", l)
	}
}

func TestWorkloadIdentityFederation(t *testing.T) {
	const subject = "system:serviceaccount:default:api-a"
	tokenFile := filepath.Join(t.TempDir(), "azure-identity-token")
	// The projected token exists before the pod starts; the identity
	// provider that signs it exists only with the environment, so start
	// with a placeholder and write the real token once it runs.
	if err := os.WriteFile(tokenFile, []byte("placeholder"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := start(t, options{
		// No credential in the file: AZURE_FEDERATED_TOKEN_FILE supplies it,
		// as the AKS workload identity webhook does.
		credential: "# credential: AZURE_FEDERATED_TOKEN_FILE",
		env:        map[string]string{"AZURE_FEDERATED_TOKEN_FILE": tokenFile, "AZURE_TENANT_ID": localidp.DefaultTenantID},
		idp:        registerOnly(nil, []localidp.FederatedCredential{{Subject: subject}}),
	})
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(tokenFile, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sa := func() string {
		tok, err := e.idp.IssueServiceAccountToken(localidp.ServiceAccountToken{Subject: subject})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	first := sa()
	write(first + "\n")
	for _, path := range []string{"/echo/x", "/app/x"} {
		if a := e.get(path, e.token("wi-user")); a.status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, a.status, a.body)
		}
		if got := e.lastIssued().ClientAuth; got != "federated "+e.idp.ServiceAccountIssuer()+" "+subject {
			t.Errorf("%s: client authenticated with %q", path, got)
		}
		if got := e.idp.LastTokenRequest().Get("client_assertion"); got != first {
			t.Errorf("%s: client_assertion is not the projected token", path)
		}
	}

	// The kubelet rotates the token: the next exchange presents the new one.
	rotated := sa()
	write(rotated)
	if a := e.get("/echo/x", e.token("wi-user-2")); a.status != http.StatusOK {
		t.Fatalf("after rotation: %d %s", a.status, a.body)
	}
	if got := e.idp.LastTokenRequest().Get("client_assertion"); got != rotated {
		t.Error("the rotated token was not read")
	}

	// A missing or empty file is a clear, counted error; nothing is sent.
	requests := e.idp.TokenRequests()
	for i, broken := range []func(){func() { _ = os.Remove(tokenFile) }, func() { write("  \n") }} {
		broken()
		a := e.get("/echo/x", e.token("wi-broken-"+string(rune('a'+i))))
		if a.status != http.StatusBadGateway {
			t.Errorf("broken token file %d: %d %s", i, a.status, a.body)
		}
	}
	if n := e.idp.TokenRequests(); n != requests {
		t.Errorf("%d token requests sent without a credential", n-requests)
	}
	if m := e.metric(`obo_gateway_exchanges_total{flow="on_behalf_of",outcome="credential_error",route="echo"}`); len(m) != 1 || !strings.HasSuffix(m[0], " 2") {
		t.Errorf("credential errors counted: %v", m)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "read federated token file") || !strings.Contains(logs, tokenFile+" is empty") {
		t.Error("the log does not say what is wrong with the token file")
	}
	if strings.Contains(logs, first) || strings.Contains(logs, rotated) {
		t.Error("the federated token is in the log")
	}
}

func TestAppOnlyRouteWithEveryCredential(t *testing.T) {
	dir := t.TempDir()
	cert := newCertificate(t, dir, "app", rsaKey(t))
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(clientSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	const subject = "system:serviceaccount:jobs:api-a"
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("placeholder"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		credential string
		auth       string
	}{
		{"secret", "", "client_secret"},
		{"secret_file", "secret_file: " + secretFile, "client_secret"},
		{"certificate", "certificate: {file: " + cert.certFile + ", key_file: " + cert.keyFile + "}", "certificate " + cert.thumbprintS256},
		{"assertion_file", "assertion_file: " + tokenFile, "federated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, options{credential: tc.credential, idp: func(o *localidp.Options) {
				o.Clients[0].Certificates = []*x509.Certificate{cert.cert}
				o.Clients[0].FederatedCredentials = []localidp.FederatedCredential{{Subject: subject}}
			}})
			sa, err := e.idp.IssueServiceAccountToken(localidp.ServiceAccountToken{Subject: subject})
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(tokenFile, []byte(sa), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, u := range []string{"app-1", "app-2"} {
				a := e.get("/app/jobs", e.token(u))
				if a.status != http.StatusOK {
					t.Fatalf("%d %s", a.status, a.body)
				}
				authz := a.echoed(t).Headers["Authorization"][0]
				if c := jwtClaims(t, strings.TrimPrefix(authz, "Bearer ")); c["idtyp"] != "app" || c["scp"] != nil {
					t.Errorf("token B is not app-only: %v", c)
				}
			}
			if n := e.idp.ClientCredentialsRequests(); n != 1 {
				t.Errorf("%d client credentials requests for two users, want 1", n)
			}
			if got := e.lastIssued().ClientAuth; !strings.HasPrefix(got, tc.auth) {
				t.Errorf("client authenticated with %q, want %s", got, tc.auth)
			}
		})
	}
}

// Tenants of the multi-tenant tests.
const (
	guestTenant    = "9188040d-6c67-4c5b-b112-36a304b66dad"
	strangerTenant = "5f3b3c1e-0000-4000-8000-00000000dead"
)

func TestMultiTenantAuthority(t *testing.T) {
	home := localidp.DefaultTenantID
	e := start(t, options{
		idp:          func(o *localidp.Options) { o.GuestTenants = []string{guestTenant, strangerTenant} },
		authorityOf:  func(idp *localidp.Server) string { return idp.AuthorityFor("organizations") },
		inboundExtra: []string{"allowed_tenants: [" + home + ", " + guestTenant + "]"},
		clientExtra:  []string{"tenant_id: " + home},
	})
	tests := []struct {
		name    string
		tenant  string
		version string
		status  int
	}{
		{"user of the home tenant", home, "2.0", http.StatusOK},
		{"user of a guest tenant", guestTenant, "2.0", http.StatusOK},
		{"v1 token of a guest tenant", guestTenant, "1.0", http.StatusOK},
		{"user of a tenant not allowed", strangerTenant, "2.0", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.idp.OnBehalfOfRequests()
			tok := e.token("same-oid", func(u *localidp.UserToken) { u.TenantID, u.Version = tc.tenant, tc.version })
			a := e.get("/echo/x", tok)
			if a.status != tc.status {
				t.Fatalf("%d %s", a.status, a.body)
			}
			if tc.status != http.StatusOK {
				if n := e.idp.OnBehalfOfRequests(); n != before {
					t.Error("a refused token was exchanged")
				}
				if !strings.Contains(a.header.Get("WWW-Authenticate"), "invalid_token") {
					t.Errorf("WWW-Authenticate = %q", a.header.Get("WWW-Authenticate"))
				}
				return
			}
			authz := a.echoed(t).Headers["Authorization"][0]
			c := jwtClaims(t, strings.TrimPrefix(authz, "Bearer "))
			if c["tid"] != tc.tenant || c["iss"] != e.idp.IssuerFor(tc.tenant) {
				t.Errorf("token B of tenant %v (iss %v), want %s", c["tid"], c["iss"], tc.tenant)
			}
		})
	}
	// The same object id in two tenants is two users.
	if n := e.idp.OnBehalfOfRequestsFor("same-oid"); n != 2 {
		t.Errorf("%d exchanges for the same oid in two tenants (v2 and v1 of the guest share one), want 2", n)
	}
	// App-only tokens come from the home tenant.
	if a := e.get("/app/x", e.token("x", func(u *localidp.UserToken) { u.TenantID = guestTenant })); a.status != http.StatusOK {
		t.Fatalf("app route: %d %s", a.status, a.body)
	}
	if got := e.lastIssued(); got.TenantID != home || got.Grant != localidp.GrantClientCredentials {
		t.Errorf("app-only token from tenant %s", got.TenantID)
	}
}

func TestV1TokensAccepted(t *testing.T) {
	e := start(t, options{})
	tok := e.token("v1-user", func(u *localidp.UserToken) { u.Version, u.UPN = "1.0", "v1@contoso.example" })
	if c := jwtClaims(t, tok); c["ver"] != "1.0" || c["iss"] != e.idp.V1IssuerFor(e.idp.TenantID()) {
		t.Fatalf("not a v1 token: %v", c)
	}
	if a := e.get("/echo/x", tok); a.status != http.StatusOK {
		t.Fatalf("%d %s", a.status, a.body)
	}
	// Audience still matters.
	bad := e.token("v1-user", func(u *localidp.UserToken) { u.Version, u.Audience = "1.0", "https://graph.microsoft.com" })
	if a := e.get("/echo/x", bad); a.status != http.StatusUnauthorized {
		t.Errorf("v1 token for another audience: %d", a.status)
	}
}

func TestRFC8693Mode(t *testing.T) {
	e := start(t, options{authorityExtra: []string{"protocol: rfc8693"}})
	a := e.get("/echo/x", e.token("te-user"))
	if a.status != http.StatusOK {
		t.Fatalf("%d %s", a.status, a.body)
	}
	form := e.idp.LastTokenRequest()
	if form.Get("grant_type") != localidp.GrantTokenExchange || form.Get("subject_token_type") != "urn:ietf:params:oauth:token-type:access_token" ||
		form.Has("assertion") || form.Has("requested_token_use") || form.Get("scope") != echoScope {
		t.Errorf("token request %v", form)
	}
	if e.idp.TokenExchangeRequests() != 1 || e.idp.OnBehalfOfRequests() != 0 {
		t.Errorf("%d token exchanges, %d on-behalf-of requests", e.idp.TokenExchangeRequests(), e.idp.OnBehalfOfRequests())
	}
	if c := jwtClaims(t, e.lastIssued().Token); c["aud"] != "api://echo-api" || c["oid"] != "te-user" {
		t.Errorf("token B %v", c)
	}
	// The authority's refusals are answered exactly as in Entra mode.
	e.idp.SetUserBehavior("te-mfa", localidp.Behavior{Kind: localidp.BehaviorMFA})
	a = e.get("/echo/x", e.token("te-mfa"))
	if a.status != http.StatusUnauthorized || !strings.Contains(a.header.Get("WWW-Authenticate"), `error="insufficient_claims"`) {
		t.Errorf("MFA: %d %q", a.status, a.header.Get("WWW-Authenticate"))
	}
	if a := e.get("/app/x", e.token("te-user")); a.status != http.StatusOK {
		t.Errorf("client credentials in rfc8693 mode: %d %s", a.status, a.body)
	}
}

func TestRFC8693Audience(t *testing.T) {
	e := start(t, options{authorityExtra: []string{"protocol: rfc8693"}, extraRoutes: `  - name: orders
    path_prefix: /orders
    upstream: ` + "${ECHO_URL}" + `/orders
    audience: urn:orders-api
`})
	a := e.get("/orders/1", e.token("aud-user"))
	if a.status != http.StatusOK {
		t.Fatalf("%d %s", a.status, a.body)
	}
	form := e.idp.LastTokenRequest()
	if form.Get("audience") != "urn:orders-api" || form.Has("scope") {
		t.Errorf("token request %v", form)
	}
	if c := jwtClaims(t, e.lastIssued().Token); c["aud"] != "urn:orders-api" {
		t.Errorf("token B aud %v", c["aud"])
	}
}

func TestSAMLRoute(t *testing.T) {
	e := start(t, options{extraRoutes: `  - name: saml
    path_prefix: /saml
    upstream: ${ECHO_URL}/saml
    scopes: [https://saml-api.example/.default]
    token_type: saml2
  - name: saml-custom
    path_prefix: /saml-custom
    upstream: ${ECHO_URL}/saml
    scopes: [https://saml-api.example/.default]
    token_type: saml2
    auth_header: X-SAML-Assertion
    auth_format: "{base64url}"
`})
	tokA := e.token("saml-user")
	for i := range 2 {
		a := e.get("/saml/x", tokA)
		if a.status != http.StatusOK {
			t.Fatalf("%d %s", a.status, a.body)
		}
		authz := a.echoed(t).Headers["Authorization"]
		if len(authz) != 1 || !strings.HasPrefix(authz[0], "SAML ") {
			t.Fatalf("request %d: Authorization = %q", i, authz)
		}
		xml, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(authz[0], "SAML "))
		if err != nil || !strings.Contains(string(xml), ">saml-user</NameID>") || !strings.Contains(string(xml), "<Audience>https://saml-api.example</Audience>") {
			t.Errorf("assertion: %v %s", err, xml)
		}
	}
	if e.lastIssued().TokenType != "urn:ietf:params:oauth:token-type:saml2" || e.idp.OnBehalfOfRequestsFor("saml-user") != 1 {
		t.Errorf("%d exchanges (want 1, cached), last token type %s", e.idp.OnBehalfOfRequestsFor("saml-user"), e.lastIssued().TokenType)
	}
	if e.idp.LastTokenRequest().Get("requested_token_type") != "urn:ietf:params:oauth:token-type:saml2" {
		t.Error("requested_token_type not sent")
	}
	a := e.get("/saml-custom/x", tokA)
	h := a.echoed(t).Headers
	if a.status != http.StatusOK || h["Authorization"] != nil || len(h["X-Saml-Assertion"]) != 1 {
		t.Fatalf("%d headers %v", a.status, h)
	}
	if xml, err := base64.RawURLEncoding.DecodeString(h["X-Saml-Assertion"][0]); err != nil || !strings.HasPrefix(string(xml), "<Assertion") {
		t.Errorf("X-SAML-Assertion: %v %s", err, xml)
	}
	// A SAML token B and an access token B for the same scopes are
	// different cache entries.
	if a := e.get("/echo/x", tokA); a.status != http.StatusOK || !strings.HasPrefix(a.echoed(t).Headers["Authorization"][0], "Bearer ey") {
		t.Errorf("access token route after a SAML route: %d", a.status)
	}
}
