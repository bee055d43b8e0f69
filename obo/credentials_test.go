package obo

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
)

func TestParseCertificateKey(t *testing.T) {
	now := time.Now()
	rsa2048 := newTestCert(t, rsaKey(t, 2048), now.Add(-time.Hour), now.Add(time.Hour))
	p256 := newTestCert(t, ecKey(t, elliptic.P256()), now.Add(-time.Hour), now.Add(time.Hour))
	p384 := newTestCert(t, ecKey(t, elliptic.P384()), now.Add(-time.Hour), now.Add(time.Hour))
	rsa1024 := newTestCert(t, rsaKey(t, 1024), now.Add(-time.Hour), now.Add(time.Hour))
	other := newTestCert(t, rsaKey(t, 2048), now.Add(-time.Hour), now.Add(time.Hour))
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509MarshalPKCS8(edKey)

	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name      string
		cert, key []byte
		alg       string
		leaf      *testCert
		wantErr   string
	}{
		{name: "RSA PKCS#1", cert: certPEM(rsa2048.cert), key: keyPEM(t, rsa2048.key, "pkcs1"), alg: "PS256", leaf: &rsa2048},
		{name: "RSA PKCS#8", cert: certPEM(rsa2048.cert), key: keyPEM(t, rsa2048.key, "pkcs8"), alg: "PS256", leaf: &rsa2048},
		{name: "EC P-256 SEC 1", cert: certPEM(p256.cert), key: keyPEM(t, p256.key, "sec1"), alg: "ES256", leaf: &p256},
		{name: "EC P-384 PKCS#8", cert: certPEM(p384.cert), key: keyPEM(t, p384.key, "pkcs8"), alg: "ES384", leaf: &p384},
		{name: "combined file", cert: join(keyPEM(t, p256.key, "sec1"), certPEM(p256.cert)), key: nil, alg: "ES256", leaf: &p256},
		{name: "chain with the leaf second", cert: join(certPEM(other.cert), certPEM(rsa2048.cert)), key: keyPEM(t, rsa2048.key, "pkcs1"), alg: "PS256", leaf: &rsa2048},
		{name: "encrypted PKCS#8", cert: certPEM(rsa2048.cert), key: pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}}), wantErr: "encrypted"},
		{name: "legacy encrypted PEM", cert: certPEM(rsa2048.cert), key: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"}, Bytes: []byte{1}}), wantErr: "encrypted"},
		{name: "key of another certificate", cert: certPEM(other.cert), key: keyPEM(t, rsa2048.key, "pkcs1"), wantErr: "belongs to none"},
		{name: "short RSA key", cert: certPEM(rsa1024.cert), key: keyPEM(t, rsa1024.key, "pkcs1"), wantErr: "at least 2048"},
		{name: "Ed25519", cert: certPEM(rsa2048.cert), key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edDER}), wantErr: "Ed25519"},
		{name: "no certificate", cert: keyPEM(t, rsa2048.key, "pkcs1"), key: keyPEM(t, rsa2048.key, "pkcs1"), wantErr: "no PEM CERTIFICATE"},
		{name: "no key", cert: certPEM(rsa2048.cert), key: []byte("not a key"), wantErr: "no PEM private key"},
		{name: "broken certificate", cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}), key: keyPEM(t, rsa2048.key, "pkcs1"), wantErr: "not a valid X.509"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			if key == nil {
				key = tc.cert
			}
			ck, err := ParseCertificateKey(tc.cert, key)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "PRIVATE KEY-----") {
					t.Error("the error quotes key material")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ck.Algorithm != tc.alg || !ck.Leaf().Equal(tc.leaf.cert) {
				t.Errorf("alg %s leaf %s, want %s %s", ck.Algorithm, ck.Leaf().Subject, tc.alg, tc.leaf.cert.Subject)
			}
			sum := sha256.Sum256(tc.leaf.cert.Raw)
			if ck.Thumbprint() != base64.RawURLEncoding.EncodeToString(sum[:]) {
				t.Errorf("Thumbprint = %s", ck.Thumbprint())
			}
		})
	}
}

// decodeJWT returns the header and claims of a compact JWT.
func decodeJWT(t *testing.T, tok string) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	var h, c map[string]any
	for i, dst := range []*map[string]any{&h, &c} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return h, c
}

func TestCertificateAssertion(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	tests := []struct {
		name    string
		tc      testCert
		format  string
		alg     jwa.SignatureAlgorithm
		sendX5C bool
	}{
		{"RSA", newTestCert(t, rsaKey(t, 2048), start.Add(-time.Hour), start.Add(24*time.Hour)), "pkcs1", jwa.PS256(), false},
		{"RSA with x5c", newTestCert(t, rsaKey(t, 3072), start.Add(-time.Hour), start.Add(24*time.Hour)), "pkcs8", jwa.PS256(), true},
		{"EC P-256", newTestCert(t, ecKey(t, elliptic.P256()), start.Add(-time.Hour), start.Add(24*time.Hour)), "sec1", jwa.ES256(), false},
		{"EC P-521", newTestCert(t, ecKey(t, elliptic.P521()), start.Add(-time.Hour), start.Add(24*time.Hour)), "pkcs8", jwa.ES512(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			now := start
			c, err := NewCertificate(CertificateConfig{
				CertFile: writeFile(t, dir, "tls.crt", certPEM(tt.tc.cert)),
				KeyFile:  writeFile(t, dir, "tls.key", keyPEM(t, tt.tc.key, tt.format)),
				SendX5C:  tt.sendX5C,
				Now:      func() time.Time { return now },
			})
			if err != nil {
				t.Fatal(err)
			}
			form := url.Values{"client_id": {"client-a"}}
			if err := c.Apply(context.Background(), "https://login.example/t/oauth2/v2.0/token", form); err != nil {
				t.Fatal(err)
			}
			if form.Get("client_assertion_type") != ClientAssertionType {
				t.Errorf("client_assertion_type = %q", form.Get("client_assertion_type"))
			}
			tok := form.Get("client_assertion")
			if _, err := jws.Verify([]byte(tok), jws.WithKey(tt.alg, tt.tc.cert.PublicKey)); err != nil {
				t.Fatalf("signature does not verify with %s: %v", tt.alg, err)
			}
			h, cl := decodeJWT(t, tok)
			sum := sha256.Sum256(tt.tc.cert.Raw)
			if h["alg"] != tt.alg.String() || h["typ"] != "JWT" || h["x5t#S256"] != base64.RawURLEncoding.EncodeToString(sum[:]) {
				t.Errorf("header = %v", h)
			}
			if x5c, _ := h["x5c"].([]any); tt.sendX5C != (len(x5c) == 1) || (tt.sendX5C && x5c[0] != base64.StdEncoding.EncodeToString(tt.tc.cert.Raw)) {
				t.Errorf("x5c = %v, send %v", h["x5c"], tt.sendX5C)
			}
			if cl["aud"] != "https://login.example/t/oauth2/v2.0/token" || cl["iss"] != "client-a" || cl["sub"] != "client-a" ||
				cl["nbf"] != float64(start.Unix()) || cl["exp"] != float64(start.Add(10*time.Minute).Unix()) || cl["jti"] == "" {
				t.Errorf("claims = %v", cl)
			}
			if len(cl) != 6 {
				t.Errorf("claims %v, want exactly aud exp iss jti nbf sub", cl)
			}

			// Every assertion is new: an authority may refuse a jti it has
			// seen (RFC 7523), so none is sent twice.
			now = start.Add(time.Minute)
			again, _ := c.Assertion("client-a", "https://login.example/t/oauth2/v2.0/token")
			if _, c2 := decodeJWT(t, again); again == tok || c2["jti"] == cl["jti"] {
				t.Error("a second assertion for the same token endpoint repeats the first, or its jti")
			}
		})
	}
}

func TestCertificateRotationAndFailures(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	first := newTestCert(t, rsaKey(t, 2048), now.Add(-time.Hour), now.Add(time.Hour))
	second := newTestCert(t, ecKey(t, elliptic.P256()), now.Add(-time.Hour), now.Add(time.Hour))
	certFile := writeFile(t, dir, "tls.crt", certPEM(first.cert))
	keyFile := writeFile(t, dir, "tls.key", keyPEM(t, first.key, "pkcs1"))
	var reloads []string
	c, err := NewCertificate(CertificateConfig{CertFile: certFile, KeyFile: keyFile, OnReload: func(tp string, err error) {
		reloads = append(reloads, tp+" "+errString(err))
	}})
	if err != nil {
		t.Fatal(err)
	}
	firstTP := c.Thumbprint()
	if _, err := c.Assertion("c", "https://e/t"); err != nil {
		t.Fatal(err)
	}

	// Half a rotation (new certificate, old key): the old pair stays in use
	// and the failure is reported once.
	touch := func(path string, data []byte) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Duration(len(reloads)+1) * time.Second)
		_ = os.Chtimes(path, later, later)
	}
	touch(certFile, certPEM(second.cert))
	for range 3 {
		tok, err := c.Assertion("c", "https://e/t")
		if err != nil {
			t.Fatalf("half-rotated files: %v", err)
		}
		if h, _ := decodeJWT(t, tok); h["x5t#S256"] != firstTP {
			t.Errorf("half-rotated files: signed with %v, want the previous certificate", h["x5t#S256"])
		}
	}
	if len(reloads) != 1 || !strings.Contains(reloads[0], "belongs to none") {
		t.Errorf("reloads = %q, want one failure", reloads)
	}
	touch(keyFile, keyPEM(t, second.key, "sec1"))
	tok, err := c.Assertion("c", "https://e/t")
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := decodeJWT(t, tok); h["alg"] != "ES256" || h["x5t#S256"] == firstTP || c.Thumbprint() == firstTP {
		t.Errorf("after rotation: header %v", h)
	}
	if len(reloads) != 2 || !strings.HasSuffix(reloads[1], " <nil>") {
		t.Errorf("reloads = %q, want a success after the failure", reloads)
	}

	// Expired certificate: a credential error, not a request.
	expired := newTestCert(t, rsaKey(t, 2048), now.Add(-2*time.Hour), now.Add(-time.Hour))
	ec, err := NewCertificate(CertificateConfig{
		CertFile: writeFile(t, dir, "old.crt", certPEM(expired.cert)),
		KeyFile:  writeFile(t, dir, "old.key", keyPEM(t, expired.key, "pkcs8")),
	})
	if err != nil {
		t.Fatal(err)
	}
	err = ec.Apply(context.Background(), "https://e/t", url.Values{"client_id": {"c"}})
	var ce *CredentialError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "expired") || Outcome(err) != "credential_error" {
		t.Errorf("expired certificate: err = %v", err)
	}
	if _, err := NewCertificate(CertificateConfig{CertFile: filepath.Join(dir, "missing.crt")}); !errors.As(err, &ce) {
		t.Errorf("missing file: err = %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestAssertionFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "azure-identity-token")
	jwt := func(exp time.Time) string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"k"}`))
		c := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://oidc","sub":"system:serviceaccount:ns:sa","exp":` + jsonNumber(exp.Unix()) + `}`))
		return h + "." + c + ".c2ln"
	}
	tests := []struct {
		name    string
		content *string
		want    string // the client_assertion, or the error
		err     bool
	}{
		{name: "token", content: ptr(jwt(time.Now().Add(time.Hour)) + "\n"), want: jwt(time.Now().Add(time.Hour))},
		{name: "rotated token", content: ptr(jwt(time.Now().Add(2 * time.Hour))), want: jwt(time.Now().Add(2 * time.Hour))},
		{name: "opaque token", content: ptr("opaque-federated-token"), want: "opaque-federated-token"},
		{name: "empty file", content: ptr(" \n"), want: "is empty", err: true},
		{name: "expired token", content: ptr(jwt(time.Now().Add(-time.Minute))), want: "expired", err: true},
		{name: "missing file", content: nil, want: "no such file", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_ = os.Remove(path)
			if tc.content != nil {
				if err := os.WriteFile(path, []byte(*tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			form := url.Values{}
			err := AssertionFile(path).Apply(context.Background(), "https://e/t", form)
			if tc.err {
				var ce *CredentialError
				if !errors.As(err, &ce) || ce.Credential != "assertion_file" || !strings.Contains(err.Error(), tc.want) || Outcome(err) != "credential_error" {
					t.Errorf("err = %v, want a credential error with %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if form.Get("client_assertion") != tc.want || form.Get("client_assertion_type") != ClientAssertionType {
				t.Errorf("form = %v", form)
			}
		})
	}
	if s := AssertionFile(path).String(); s != "assertion_file "+path {
		t.Errorf("String() = %q", s)
	}
}

func ptr(s string) *string { return &s }

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestTokenRequestForms(t *testing.T) {
	tests := []struct {
		name     string
		protocol string
		req      Request
		want     url.Values // fields that must be present with these values
		absent   []string
		err      string
	}{
		{name: "entra on-behalf-of", req: Request{Assertion: "A", Scopes: []string{"api://b/read"}},
			want:   url.Values{"grant_type": {GrantJWTBearer}, "assertion": {"A"}, "requested_token_use": {"on_behalf_of"}, "scope": {"api://b/read"}},
			absent: []string{"requested_token_type", "audience", "subject_token"}},
		{name: "entra SAML", req: Request{Assertion: "A", Scopes: []string{"api://b/.default"}, RequestedTokenType: TokenTypeSAML2},
			want: url.Values{"grant_type": {GrantJWTBearer}, "requested_token_type": {TokenTypeSAML2}, "requested_token_use": {"on_behalf_of"}}},
		{name: "entra refuses an audience", req: Request{Assertion: "A", Scopes: []string{"s/x"}, Audience: "b"}, err: "rfc8693"},
		{name: "rfc8693 audience and scopes", protocol: ProtocolRFC8693, req: Request{Assertion: "A", Scopes: []string{"read", "write"}, Audience: "api-b"},
			want: url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {"A"}, "subject_token_type": {TokenTypeAccessToken},
				"audience": {"api-b"}, "scope": {"read write"}},
			absent: []string{"assertion", "requested_token_use", "requested_token_type"}},
		{name: "rfc8693 audience only", protocol: ProtocolRFC8693, req: Request{Assertion: "A", Audience: "api-b", RequestedTokenType: TokenTypeJWT},
			want:   url.Values{"audience": {"api-b"}, "requested_token_type": {TokenTypeJWT}},
			absent: []string{"scope"}},
		{name: "rfc8693 neither", protocol: ProtocolRFC8693, req: Request{Assertion: "A"}, err: "no scopes"},
		{name: "rfc8693 client credentials", protocol: ProtocolRFC8693, req: Request{Flow: FlowClientCredentials, Scopes: []string{"jobs"}},
			want: url.Values{"grant_type": {GrantClientCredentials}, "scope": {"jobs"}}, absent: []string{"subject_token"}},
		{name: "client credentials refuses a token type", req: Request{Flow: FlowClientCredentials, Scopes: []string{"b/.default"}, RequestedTokenType: TokenTypeSAML2}, err: "on behalf of a user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, last := tokenServer(t, func(w http.ResponseWriter, _ url.Values) {
				_, _ = w.Write([]byte(`{"token_type":"N_A","issued_token_type":"urn:ietf:params:oauth:token-type:saml2","expires_in":600,"access_token":"x"}`))
			})
			c, err := NewClient(Config{ClientID: "c", TokenEndpoint: srv.URL, Credential: ClientSecret("s"), Protocol: tc.protocol})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := c.Token(context.Background(), tc.req)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				if *last != nil {
					t.Error("a request was sent")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if got := last.Get(k); got != v[0] {
					t.Errorf("%s = %q, want %q", k, got, v[0])
				}
			}
			for _, k := range tc.absent {
				if last.Has(k) {
					t.Errorf("%s sent: %q", k, last.Get(k))
				}
			}
			if tok.IssuedTokenType != TokenTypeSAML2 {
				t.Errorf("IssuedTokenType = %q", tok.IssuedTokenType)
			}
		})
	}
	if _, err := NewClient(Config{ClientID: "c", TokenEndpoint: "https://e/t", Credential: ClientSecret("s"), Protocol: "saml"}); err == nil {
		t.Error("unknown protocol accepted")
	}
}

// BenchmarkCertificateAssertion is what the certificate credential costs an
// exchange: every token request signs a new client assertion (its own jti).
// The signature runs outside the credential's lock, so concurrent exchanges
// sign in parallel (compare -cpu 1 and 2).
func BenchmarkCertificateAssertion(b *testing.B) {
	now := time.Now()
	for _, tc := range []struct {
		name string
		key  crypto.Signer
	}{
		{"RSA-2048", rsaKey(b, 2048)},
		{"EC-P256", ecKey(b, elliptic.P256())},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dir := b.TempDir()
			cert := newTestCert(b, tc.key, now.Add(-time.Hour), now.Add(time.Hour))
			c, err := NewCertificate(CertificateConfig{
				CertFile: writeFile(b, dir, "tls.crt", certPEM(cert.cert)),
				KeyFile:  writeFile(b, dir, "tls.key", keyPEM(b, tc.key, "pkcs8")),
			})
			if err != nil {
				b.Fatal(err)
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Assertion("client-a", "https://login.example/t/oauth2/v2.0/token"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
