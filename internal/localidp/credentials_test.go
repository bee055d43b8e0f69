package localidp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

type testCert struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newTestCert(t *testing.T, key crypto.Signer, notAfter time.Time) testCert {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "api-a"},
		NotBefore:    time.Now().Add(-2 * time.Hour),
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return testCert{cert: c, key: key}
}

func rsaCert(t *testing.T) testCert {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return newTestCert(t, k, time.Now().Add(time.Hour))
}

func ecCert(t *testing.T) testCert {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return newTestCert(t, k, time.Now().Add(time.Hour))
}

func (tc testCert) s256() string {
	sum := sha256.Sum256(tc.cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// signAssertion signs claims with tc's key as a compact JWS with the given
// header fields and alg (PS256, RS256, ES256 or HS256 with a guessable
// secret), built by hand so that any header can be forged.
func signAssertion(t *testing.T, tc testCert, alg string, header map[string]any, claims map[string]any) string {
	t.Helper()
	header = with(header, "alg", alg)
	seg := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	in := seg(header) + "." + seg(claims)
	sum := sha256.Sum256([]byte(in))
	var sig []byte
	var err error
	switch alg {
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, tc.key.(*rsa.PrivateKey), crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, tc.key.(*rsa.PrivateKey), crypto.SHA256, sum[:])
	case "ES256":
		r, s, serr := ecdsa.Sign(rand.Reader, tc.key.(*ecdsa.PrivateKey), sum[:])
		err = serr
		sig = make([]byte, 64)
		if serr == nil {
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
		}
	case "HS256":
		m := hmac.New(sha256.New, []byte("guessable"))
		m.Write([]byte(in))
		sig = m.Sum(nil)
	default:
		t.Fatalf("alg %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// assertionClaims are valid client assertion claims for s's home token
// endpoint.
func assertionClaims(s *Server) map[string]any {
	now := time.Now()
	return map[string]any{
		"aud": s.TokenEndpoint(), "iss": apiAID, "sub": apiAID, "jti": newGUID(),
		"nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
}

func with(m map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(m))
	for key, val := range m {
		out[key] = val
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func assertionForm(assertion, userToken string) url.Values {
	return url.Values{
		"grant_type":            {GrantOnBehalfOf},
		"client_id":             {apiAID},
		"client_assertion_type": {clientAssertionTypeJWT},
		"client_assertion":      {assertion},
		"assertion":             {userToken},
		"scope":                 {graphScope},
		"requested_token_use":   {"on_behalf_of"},
	}
}

func TestCertificateClientAssertions(t *testing.T) {
	good, ec, unregistered := rsaCert(t), ecCert(t), rsaCert(t)
	expiredCert := newTestCert(t, good.key, time.Now().Add(-time.Hour))
	s := newTestServer(t, func(o *Options) {
		o.Clients[0].Certificates = []*x509.Certificate{good.cert, ec.cert, expiredCert.cert}
	})
	sum := sha256.Sum256(good.cert.Raw)
	msalThumbprint := base64.StdEncoding.EncodeToString(sum[:]) // MSAL's encoding
	x5tSHA1 := base64.RawURLEncoding.EncodeToString(sha1Of(good.cert.Raw))
	hdr := func(tc testCert) map[string]any { return map[string]any{"typ": "JWT", "x5t#S256": tc.s256()} }
	user := userToken(t, s, UserToken{Audience: apiAURI})
	now := time.Now()
	tests := []struct {
		name   string
		token  func() string
		status int
		code   int
	}{
		{"PS256 with x5t#S256", func() string { return signAssertion(t, good, "PS256", hdr(good), assertionClaims(s)) }, 200, 0},
		{"RS256", func() string { return signAssertion(t, good, "RS256", hdr(good), assertionClaims(s)) }, 200, 0},
		{"ES256", func() string { return signAssertion(t, ec, "ES256", hdr(ec), assertionClaims(s)) }, 200, 0},
		{"standard base64 thumbprint (MSAL)", func() string {
			return signAssertion(t, good, "PS256", map[string]any{"x5t#S256": msalThumbprint}, assertionClaims(s))
		}, 200, 0},
		{"SHA-1 x5t", func() string {
			return signAssertion(t, good, "RS256", map[string]any{"x5t": x5tSHA1}, assertionClaims(s))
		}, 200, 0},
		{"with x5c", func() string {
			return signAssertion(t, good, "PS256", with(hdr(good), "x5c", []string{base64.StdEncoding.EncodeToString(good.cert.Raw)}), assertionClaims(s))
		}, 200, 0},
		{"x5c of another certificate", func() string {
			return signAssertion(t, good, "PS256", with(hdr(good), "x5c", []string{base64.StdEncoding.EncodeToString(ec.cert.Raw)}), assertionClaims(s))
		}, 401, 700027},
		{"unregistered certificate", func() string { return signAssertion(t, unregistered, "PS256", hdr(unregistered), assertionClaims(s)) }, 401, 700027},
		{"thumbprint of one, key of another", func() string { return signAssertion(t, unregistered, "PS256", hdr(good), assertionClaims(s)) }, 401, 700027},
		{"expired certificate", func() string { return signAssertion(t, expiredCert, "PS256", hdr(expiredCert), assertionClaims(s)) }, 401, 700027},
		{"audience of another tenant", func() string {
			return signAssertion(t, good, "PS256", hdr(good), with(assertionClaims(s), "aud", s.TokenEndpointFor("other")))
		}, 401, 700023},
		{"iss of another client", func() string {
			return signAssertion(t, good, "PS256", hdr(good), with(assertionClaims(s), "iss", otherID))
		}, 401, 700021},
		{"sub of another client", func() string {
			return signAssertion(t, good, "PS256", hdr(good), with(assertionClaims(s), "sub", otherID))
		}, 401, 700021},
		{"expired assertion", func() string {
			return signAssertion(t, good, "PS256", hdr(good), with(with(assertionClaims(s), "exp", now.Add(-time.Minute).Unix()), "nbf", now.Add(-11*time.Minute).Unix()))
		}, 401, 700024},
		{"not yet valid", func() string {
			return signAssertion(t, good, "PS256", hdr(good), with(assertionClaims(s), "nbf", now.Add(5*time.Minute).Unix()))
		}, 401, 700024},
		{"lifetime over ten minutes", func() string {
			return signAssertion(t, good, "PS256", hdr(good), with(assertionClaims(s), "exp", now.Add(time.Hour).Unix()))
		}, 401, 700024},
		{"no jti", func() string { return signAssertion(t, good, "PS256", hdr(good), with(assertionClaims(s), "jti", nil)) }, 401, 700027},
		{"HS256", func() string { return signAssertion(t, good, "HS256", hdr(good), assertionClaims(s)) }, 401, 700027},
		{"no thumbprint and no federated credential", func() string { return signAssertion(t, good, "PS256", map[string]any{}, assertionClaims(s)) }, 401, 700027},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := post(t, s, assertionForm(tc.token(), user))
			if a.status != tc.status {
				t.Fatalf("status %d (%s), want %d", a.status, a.str("error_description"), tc.status)
			}
			if tc.code != 0 {
				if a.str("error") != "invalid_client" {
					t.Errorf("error = %q", a.str("error"))
				}
				checkEntraError(t, a, tc.code)
				return
			}
			issued := s.IssuedTokens()
			if got := issued[len(issued)-1].ClientAuth; !strings.HasPrefix(got, "certificate ") {
				t.Errorf("ClientAuth = %q", got)
			}
		})
	}
}

func TestAssertionReplay(t *testing.T) {
	cert := rsaCert(t)
	for _, reject := range []bool{false, true} {
		t.Run(fmt.Sprintf("reject=%v", reject), func(t *testing.T) {
			s := newTestServer(t, func(o *Options) {
				o.Clients[0].Certificates = []*x509.Certificate{cert.cert}
				o.RejectAssertionReplay = reject
			})
			user := userToken(t, s, UserToken{Audience: apiAURI})
			tok := signAssertion(t, cert, "PS256", map[string]any{"x5t#S256": cert.s256()}, assertionClaims(s))
			if a := post(t, s, assertionForm(tok, user)); a.status != 200 {
				t.Fatalf("first use: %d %s", a.status, a.str("error_description"))
			}
			a := post(t, s, assertionForm(tok, user))
			switch {
			case reject && (a.status != 401 || !strings.Contains(a.str("error_description"), "already used")):
				t.Errorf("replay accepted: %d %s", a.status, a.str("error_description"))
			case !reject && a.status != 200:
				t.Errorf("reuse refused: %d %s", a.status, a.str("error_description"))
			}
		})
	}
}

func TestFederatedCredentials(t *testing.T) {
	const subject = "system:serviceaccount:default:api-a"
	s := newTestServer(t, func(o *Options) {
		o.Clients[0].FederatedCredentials = []FederatedCredential{{Subject: subject}}
	})
	user := userToken(t, s, UserToken{Audience: apiAURI})
	sa := func(st ServiceAccountToken) func() string {
		return func() string {
			tok, err := s.IssueServiceAccountToken(st)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}
	foreign := func() string {
		tok, _ := s.SignClaims(map[string]any{"iss": "https://oidc.other", "sub": subject, "aud": DefaultFederatedAudience, "exp": time.Now().Add(time.Hour).Unix()})
		return tok
	}
	tests := []struct {
		name   string
		token  func() string
		status int
		code   int
	}{
		{"projected token", sa(ServiceAccountToken{Subject: subject}), 200, 0},
		{"other subject", sa(ServiceAccountToken{Subject: "system:serviceaccount:default:intruder"}), 401, 700213},
		{"other audience", sa(ServiceAccountToken{Subject: subject, Audience: "api://other"}), 401, 700212},
		{"expired", sa(ServiceAccountToken{Subject: subject, Lifetime: -time.Minute}), 401, 700024},
		{"other issuer", foreign, 401, 700211},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkFederatedAssertion(t, s, tc.token(), user, tc.status, tc.code, "federated "+s.ServiceAccountIssuer()+" "+subject)
		})
	}
	// A tampered token (signature of another payload) is refused.
	tok := sa(ServiceAccountToken{Subject: subject})()
	parts := strings.Split(tok, ".")
	evil, _ := json.Marshal(map[string]any{"iss": s.ServiceAccountIssuer(), "sub": subject, "aud": DefaultFederatedAudience, "exp": time.Now().Add(time.Hour).Unix()})
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(evil) + "." + parts[2]
	if a := post(t, s, assertionForm(tampered, user)); a.status != 401 {
		t.Errorf("tampered token: %d", a.status)
	}
}

// checkFederatedAssertion presents a federated token as the client
// assertion of an On-Behalf-Of request for user and checks the answer: the
// status, the AADSTS code of a refusal, or how the client authenticated.
func checkFederatedAssertion(t *testing.T, s *Server, assertion, user string, status, code int, wantAuth string) {
	t.Helper()
	a := post(t, s, assertionForm(assertion, user))
	if a.status != status {
		t.Fatalf("status %d (%s), want %d", a.status, a.str("error_description"), status)
	}
	if code != 0 {
		checkEntraError(t, a, code)
		return
	}
	issued := s.IssuedTokens()
	if got := issued[len(issued)-1].ClientAuth; got != wantAuth {
		t.Errorf("ClientAuth = %q, want %q", got, wantAuth)
	}
}

const guestTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"

func postTo(t *testing.T, s *Server, endpoint string, form url.Values) answer {
	t.Helper()
	res, err := http.PostForm(endpoint, form)
	return readAnswer(t, res, err)
}

// readAnswer reads a JSON answer.
func readAnswer(t *testing.T, res *http.Response, err error) answer {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, header: res.Header}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("not JSON (%d): %s", res.StatusCode, raw)
	}
	return a
}

func TestMultiTenant(t *testing.T) {
	s := newTestServer(t, func(o *Options) { o.GuestTenants = []string{guestTenant} })
	if got := s.Tenants(); len(got) != 2 || got[1] != guestTenant {
		t.Errorf("Tenants() = %v", got)
	}
	for _, tenant := range []string{"common", "organizations"} {
		doc := getJSON(t, s.AuthorityFor(tenant)+"/.well-known/openid-configuration")
		if doc["issuer"] != s.BaseURL()+"/{tenantid}/v2.0" || doc["token_endpoint"] != s.TokenEndpointFor(tenant) {
			t.Errorf("%s discovery: %v", tenant, doc)
		}
		v1 := getJSON(t, s.BaseURL()+"/"+tenant+"/.well-known/openid-configuration")
		if v1["issuer"] != s.BaseURL()+"/sts/{tenantid}/" {
			t.Errorf("%s v1 discovery issuer %v", tenant, v1["issuer"])
		}
	}
	if doc := getJSON(t, s.AuthorityFor(guestTenant)+"/.well-known/openid-configuration"); doc["issuer"] != s.IssuerFor(guestTenant) {
		t.Errorf("guest discovery issuer %v", doc["issuer"])
	}
	if res, _ := http.Get(s.AuthorityFor("unknown-tenant") + "/.well-known/openid-configuration"); res == nil || res.StatusCode != 400 {
		t.Error("unknown tenant served")
	}

	guestUser := userToken(t, s, UserToken{Audience: apiAURI, TenantID: guestTenant, ObjectID: user2OID})
	if c := claimsOf(t, guestUser); c["iss"] != s.IssuerFor(guestTenant) || c["tid"] != guestTenant {
		t.Errorf("guest token A: %v", c)
	}
	v1User := userToken(t, s, UserToken{Audience: apiAURI, TenantID: guestTenant, Version: "1.0", UPN: "bob@guest.example"})
	if c := claimsOf(t, v1User); c["iss"] != s.V1IssuerFor(guestTenant) || c["ver"] != "1.0" || c["appid"] != DefaultClientAppID || c["azp"] != nil || c["upn"] != "bob@guest.example" {
		t.Errorf("v1 token A: %v", c)
	}
	tests := []struct {
		name     string
		endpoint string
		user     string
		status   int
		errCode  string
	}{
		{"guest user at the guest tenant", s.TokenEndpointFor(guestTenant), guestUser, 200, ""},
		{"v1 token at its tenant", s.TokenEndpointFor(guestTenant), v1User, 200, ""},
		{"guest user at the home tenant", s.TokenEndpoint(), guestUser, 400, "invalid_grant"},
		{"organizations endpoint", s.TokenEndpointFor("organizations"), guestUser, 400, "invalid_request"},
		{"unknown tenant", s.TokenEndpointFor("unknown-tenant"), guestUser, 400, "invalid_tenant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := postTo(t, s, tc.endpoint, oboForm(tc.user, graphScope))
			if a.status != tc.status || a.str("error") != tc.errCode {
				t.Fatalf("%d %s: %s", a.status, a.str("error"), a.str("error_description"))
			}
			if tc.status != 200 {
				return
			}
			c := claimsOf(t, a.str("access_token"))
			if c["iss"] != s.IssuerFor(guestTenant) || c["tid"] != guestTenant {
				t.Errorf("token B: %v", c)
			}
			issued := s.IssuedTokens()
			if issued[len(issued)-1].TenantID != guestTenant {
				t.Errorf("IssuedToken.TenantID = %q", issued[len(issued)-1].TenantID)
			}
		})
	}
	// App-only tokens come from the tenant whose endpoint is asked.
	a := postTo(t, s, s.TokenEndpointFor(guestTenant), ccForm("api://api-b/.default"))
	if c := claimsOf(t, a.str("access_token")); a.status != 200 || c["tid"] != guestTenant || c["oid"] != s.servicePrincipalIDIn(guestTenant, s.clients[apiAID]) {
		t.Errorf("guest client credentials: %d %v", a.status, c)
	}
}

func exchangeForm(subject string) url.Values {
	return url.Values{
		"grant_type":         {GrantTokenExchange},
		"client_id":          {apiAID},
		"client_secret":      {apiASecret},
		"subject_token":      {subject},
		"subject_token_type": {tokenTypeAccessToken},
	}
}

func TestTokenExchange(t *testing.T) {
	s := newTestServer(t)
	user := userToken(t, s, UserToken{Audience: apiAURI})
	set := func(kv ...string) url.Values {
		f := exchangeForm(user)
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				f.Del(kv[i])
			} else {
				f.Set(kv[i], kv[i+1])
			}
		}
		return f
	}
	tests := []struct {
		name      string
		form      url.Values
		status    int
		errCode   string
		aud, scp  string
		issuedTyp string
	}{
		{name: "audience and plain scopes", form: set("audience", "api-b", "scope", "read write"), status: 200, aud: "api-b", scp: "read write", issuedTyp: tokenTypeAccessToken},
		{name: "audience only", form: set("audience", "api-b"), status: 200, aud: "api-b", issuedTyp: tokenTypeAccessToken},
		{name: "Entra-style scopes", form: set("scope", "api://api-b/Read"), status: 200, aud: "api://api-b", scp: "Read", issuedTyp: tokenTypeAccessToken},
		{name: "jwt requested", form: set("audience", "api-b", "requested_token_type", TokenTypeJWT), status: 200, aud: "api-b", issuedTyp: TokenTypeJWT},
		{name: "SAML requested", form: set("audience", "urn:api-b", "requested_token_type", TokenTypeSAML2), status: 200, issuedTyp: TokenTypeSAML2},
		{name: "neither audience nor scope", form: set(), status: 400, errCode: "invalid_target"},
		{name: "plain scopes without audience", form: set("scope", "read"), status: 400, errCode: "invalid_target"},
		{name: "no subject token", form: set("audience", "b", "subject_token", ""), status: 400, errCode: "invalid_request"},
		{name: "no subject token type", form: set("audience", "b", "subject_token_type", ""), status: 400, errCode: "invalid_request"},
		{name: "id_token subject", form: set("audience", "b", "subject_token_type", "urn:ietf:params:oauth:token-type:id_token"), status: 400, errCode: "invalid_request"},
		{name: "actor token", form: set("audience", "b", "actor_token", "x", "actor_token_type", tokenTypeAccessToken), status: 400, errCode: "invalid_request"},
		{name: "refresh token requested", form: set("audience", "b", "requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), status: 400, errCode: "invalid_request"},
		{name: "subject for another client", form: set("audience", "b", "subject_token", userToken(t, s, UserToken{Audience: "api://someone-else"})), status: 400, errCode: "invalid_grant"},
		{name: "bad client secret", form: set("audience", "b", "client_secret", "wrong"), status: 401, errCode: "invalid_client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := post(t, s, tc.form)
			if a.status != tc.status || a.str("error") != tc.errCode {
				t.Fatalf("%d %s: %s", a.status, a.str("error"), a.str("error_description"))
			}
			if tc.status != 200 {
				return
			}
			if a.str("issued_token_type") != tc.issuedTyp {
				t.Errorf("issued_token_type = %q", a.str("issued_token_type"))
			}
			if tc.issuedTyp == TokenTypeSAML2 {
				xml, err := base64.RawURLEncoding.DecodeString(a.str("access_token"))
				if err != nil || !strings.Contains(string(xml), "<Audience>urn:api-b</Audience>") {
					t.Errorf("SAML assertion: %v %s", err, xml)
				}
				return
			}
			c := claimsOf(t, a.str("access_token"))
			if c["aud"] != tc.aud || c["oid"] != userOID || c["azp"] != apiAID {
				t.Errorf("token B claims: %v", c)
			}
			if scp, _ := c["scp"].(string); scp != tc.scp {
				t.Errorf("scp = %q, want %q", scp, tc.scp)
			}
		})
	}
	if s.TokenExchangeRequests() != int64(len(tests)) || s.OnBehalfOfRequestsFor(userOID) == 0 {
		t.Errorf("counters: %d exchanges, %d for the user", s.TokenExchangeRequests(), s.OnBehalfOfRequestsFor(userOID))
	}
	s.SetUserBehavior(userOID, Behavior{Kind: BehaviorMFA})
	if a := post(t, s, set("audience", "api-b")); a.status != 400 || a.str("suberror") != "basic_action" || a.str("claims") == "" {
		t.Errorf("MFA behaviour on token exchange: %d %v", a.status, a.body)
	}
}

func TestSAMLOnBehalfOf(t *testing.T) {
	s := newTestServer(t)
	user := userToken(t, s, UserToken{Audience: apiAURI})
	form := oboForm(user, "https://api.contoso.example/.default")
	form.Set("requested_token_type", TokenTypeSAML2)
	a := post(t, s, form)
	if a.status != 200 || a.str("issued_token_type") != TokenTypeSAML2 || a.str("token_type") != "Bearer" {
		t.Fatalf("%d %v", a.status, a.body)
	}
	xml, err := base64.RawURLEncoding.DecodeString(a.str("access_token"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"`,
		"<Issuer>" + s.V1IssuerFor(s.TenantID()) + "</Issuer>",
		">" + userOID + "</NameID>",
		"<Audience>https://api.contoso.example</Audience>",
		`<Attribute Name="` + SAMLAttributeTenantID + `"><AttributeValue>` + s.TenantID() + "</AttributeValue>",
	} {
		if !strings.Contains(string(xml), want) {
			t.Errorf("assertion lacks %s:\n%s", want, xml)
		}
	}
	issued := s.IssuedTokens()
	if issued[len(issued)-1].TokenType != TokenTypeSAML2 {
		t.Errorf("IssuedToken.TokenType = %q", issued[len(issued)-1].TokenType)
	}
	form.Set("requested_token_type", "urn:ietf:params:oauth:token-type:saml1")
	if a := post(t, s, form); a.status != 400 {
		t.Errorf("saml1: %d", a.status)
	}
}

func TestClientInfoAndTLS(t *testing.T) {
	s := newTestServer(t, func(o *Options) { o.TLS = true })
	if !strings.HasPrefix(s.BaseURL(), "https://127.0.0.1:") || s.TLSCertificate() == nil {
		t.Fatalf("BaseURL = %q", s.BaseURL())
	}
	if _, err := http.Get(s.Authority() + "/.well-known/openid-configuration"); err == nil {
		t.Error("an untrusting client reached the TLS server")
	}
	hc := s.HTTPClient()
	res, err := hc.Get(s.Authority() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	form := oboForm(userToken(t, s, UserToken{Audience: apiAURI}), graphScope)
	form.Set("client_info", "1")
	res, err = hc.PostForm(s.TokenEndpoint(), form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(res.Body).Decode(&body)
	ci, _ := body["client_info"].(string)
	raw, _ := base64.RawURLEncoding.DecodeString(ci)
	if res.StatusCode != 200 || string(raw) != `{"uid":"`+userOID+`","utid":"`+s.TenantID()+`"}` {
		t.Errorf("%d client_info %q", res.StatusCode, raw)
	}
}
