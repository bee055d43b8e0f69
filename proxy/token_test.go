package proxy

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/obo-gateway/obo-gateway/inbound"
)

// signer signs tokens A with an RSA key of key id kid.
type signer struct {
	key *rsa.PrivateKey
	kid string
}

func newSigner(tb testing.TB, kid string) *signer {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return &signer{key: k, kid: kid}
}

// keySet serves the signer's public key from a loopback JWKS server and
// returns a KeySet that has fetched it.
func (s *signer) keySet(tb testing.TB) *inbound.KeySet {
	tb.Helper()
	k, err := jwk.Import(s.key.Public())
	if err != nil {
		tb.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, s.kid)
	set := jwk.NewSet()
	_ = set.AddKey(k)
	body, err := json.Marshal(set)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }))
	tb.Cleanup(srv.Close)
	keys, err := inbound.NewKeySet(context.Background(), inbound.KeySetConfig{URL: srv.URL, HTTPClient: srv.Client()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = keys.Close() })
	for deadline := time.Now().Add(10 * time.Second); !keys.Ready(context.Background()); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatal("the key set was not fetched")
		}
	}
	return keys
}

func seg(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sign builds a compact JWS of header and claims.
func (s *signer) sign(tb testing.TB, header map[string]any, claims map[string]any) string {
	tb.Helper()
	in := seg(header) + "." + seg(claims)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		tb.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

const testIssuer = "https://login.example/tenant/v2.0"

// goodClaims are the claims of a valid delegated token A for "api://a".
func goodClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": testIssuer, "aud": "api://a", "sub": "s1", "oid": "o1", "tid": "t1",
		"scp": "access_as_user other", "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix(),
		"iat": now.Add(-time.Minute).Unix(),
	}
}

// userTokens signs n valid tokens A, the i-th for its own user, with
// goodClaims and the claims of extra.
func userTokens(tb testing.TB, s *signer, n int, extra map[string]any) []string {
	tb.Helper()
	now := time.Now()
	toks := make([]string, n)
	for i := range toks {
		c := goodClaims(now)
		maps.Copy(c, extra)
		c["oid"] = fmt.Sprintf("%08d-0000-0000-0000-000000000000", i)
		toks[i] = s.sign(tb, map[string]any{"alg": "RS256", "kid": s.kid}, c)
	}
	return toks
}
