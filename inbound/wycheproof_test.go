package inbound

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/lestrrat-go/dsig"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// wycheproofFile is a subset of Project Wycheproof's RSA PKCS#1 v1.5
// SHA-256 signature vectors; testdata/ holds its origin and licence.
type wycheproofFile struct {
	Origin  string          `json:"origin"`
	License string          `json:"license"`
	KeyJWK  json.RawMessage `json:"keyJwk"`
	Tests   []struct {
		ID      int      `json:"tcId"`
		Comment string   `json:"comment"`
		Msg     string   `json:"msg"`
		Sig     string   `json:"sig"`
		Result  string   `json:"result"`
		Flags   []string `json:"flags"`
	} `json:"tests"`
}

// TestWycheproofRS256 runs the vectors two ways.
//
// First through the verifier jwx uses for RS256 (dsig), with the key loaded
// from its JWK as the gateway loads keys: valid signatures must verify,
// invalid ones must not. "acceptable" legacy signatures (missing NULL
// parameter) must be refused too: the gateway accepts no legacy encoding.
//
// Then wrapped as JWTs: a JWS signs "header.payload", never an arbitrary
// message, so a Wycheproof signature can only ever appear in a token whose
// signing input it does not match. Every vector's signature is put on a
// well-formed token signed "with" the Wycheproof key, and the validator must
// refuse each one as a bad signature, never as accepted.
func TestWycheproofRS256(t *testing.T) {
	raw, err := os.ReadFile("testdata/wycheproof_rsa_pkcs1_2048_sha256.json")
	if err != nil {
		t.Fatal(err)
	}
	var f wycheproofFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if f.Origin == "" || f.License == "" || len(f.Tests) < 20 {
		t.Fatal("vector file lacks its origin, licence or tests")
	}
	key, err := jwk.ParseKey(f.KeyJWK)
	if err != nil {
		t.Fatal(err)
	}
	var pub rsa.PublicKey
	if err := jwk.Export(key, &pub); err != nil {
		t.Fatal(err)
	}

	valid := 0
	for _, tc := range f.Tests {
		msg, _ := hex.DecodeString(tc.Msg)
		sig, err := hex.DecodeString(tc.Sig)
		if err != nil {
			t.Fatalf("tcId %d: %v", tc.ID, err)
		}
		err = dsig.Verify(&pub, dsig.RSAPKCS1v15WithSHA256, msg, sig)
		switch tc.Result {
		case "valid":
			valid++
			if err != nil {
				t.Errorf("tcId %d (valid): rejected: %v", tc.ID, err)
			}
		default:
			if err == nil {
				t.Errorf("tcId %d (%s, %q): accepted", tc.ID, tc.Result, tc.Comment)
			}
		}
	}
	if valid == 0 {
		t.Fatal("no valid vectors: the test proves nothing")
	}

	// Wrapped as JWTs.
	_ = key.Set(jwk.KeyIDKey, "wycheproof")
	set := jwk.NewSet()
	_ = set.AddKey(key)
	now := time.Now()
	v, err := NewValidator(ValidatorConfig{Issuer: testIssuer, Audiences: []string{"api://a"}, Keys: staticKeys{set}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	signingInput := seg(map[string]any{"alg": "RS256", "kid": "wycheproof"}) + "." + seg(goodClaims(now))
	for _, tc := range f.Tests {
		sig, _ := hex.DecodeString(tc.Sig)
		tok := signingInput + "." + base64.RawURLEncoding.EncodeToString(sig)
		_, err := v.Validate(context.Background(), tok)
		re, ok := err.(*RejectError)
		if !ok || re.Reason != ReasonSignature {
			t.Errorf("tcId %d wrapped as a JWT: %v, want a signature rejection", tc.ID, err)
		}
	}
}
