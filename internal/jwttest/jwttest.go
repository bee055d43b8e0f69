// Package jwttest signs the tokens A of unit tests: RS256 JWTs built by hand,
// so a test can forge any header or claim.
package jwttest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Issuer is the issuer of GoodClaims.
const Issuer = "https://login.example/tenant/v2.0"

// Signer signs tokens with an RSA key published under key id KID.
type Signer struct {
	Key *rsa.PrivateKey
	KID string
}

// NewSigner returns a Signer with a new 2048-bit key.
func NewSigner(tb testing.TB, kid string) *Signer {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return &Signer{Key: k, KID: kid}
}

// PublicKey returns the signer's public key as a JWK with its key id.
func (s *Signer) PublicKey(tb testing.TB) jwk.Key {
	tb.Helper()
	k, err := jwk.Import(s.Key.Public())
	if err != nil {
		tb.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, s.KID)
	return k
}

// PublicSet returns a key set holding PublicKey.
func (s *Signer) PublicSet(tb testing.TB) jwk.Set {
	set := jwk.NewSet()
	_ = set.AddKey(s.PublicKey(tb))
	return set
}

// Segment is the base64url JSON of v.
func Segment(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Sign builds a compact JWS of header and claims, signed with RS256
// whatever the header says.
func (s *Signer) Sign(tb testing.TB, header map[string]any, claims map[string]any) string {
	tb.Helper()
	in := Segment(header) + "." + Segment(claims)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.Key, crypto.SHA256, sum[:])
	if err != nil {
		tb.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// GoodClaims are the claims of a valid delegated token A of Issuer for
// "api://a", valid for an hour from now.
func GoodClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": Issuer, "aud": "api://a", "sub": "s1", "oid": "o1", "tid": "t1",
		"scp": "access_as_user other", "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix(),
		"iat": now.Add(-time.Minute).Unix(),
	}
}

// UserOID is the object id of UserTokens' i-th user.
func UserOID(i int) string { return fmt.Sprintf("%08d-0000-0000-0000-000000000000", i) }

// UserTokens signs n valid tokens A, the i-th for user UserOID(i), with
// GoodClaims and the claims of extra.
func UserTokens(tb testing.TB, s *Signer, n int, extra map[string]any) []string {
	tb.Helper()
	now := time.Now()
	toks := make([]string, n)
	for i := range toks {
		c := GoodClaims(now)
		maps.Copy(c, extra)
		c["oid"] = UserOID(i)
		toks[i] = s.Sign(tb, map[string]any{"alg": "RS256", "kid": s.KID}, c)
	}
	return toks
}

// NonB64Tokens returns variants of the token good that fall outside RFC
// 6750's b64token syntax.
func NonB64Tokens(good string) []string {
	return []string{
		good + " x",
		`"` + good + `"`,
		good + ",Bearer " + good,
		strings.Replace(good, ".", "=.", 1),
		good + "!",
	}
}
