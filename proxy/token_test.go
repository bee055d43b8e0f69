package proxy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/obo-gateway/obo-gateway/inbound"
	"github.com/obo-gateway/obo-gateway/internal/jwttest"
)

type signer = jwttest.Signer

func newSigner(tb testing.TB, kid string) *signer { return jwttest.NewSigner(tb, kid) }

func goodClaims(now time.Time) map[string]any { return jwttest.GoodClaims(now) }

func userTokens(tb testing.TB, s *signer, n int, extra map[string]any) []string {
	return jwttest.UserTokens(tb, s, n, extra)
}

// newKeySet serves s's public key from a loopback JWKS server and returns a
// KeySet that has fetched it.
func newKeySet(tb testing.TB, s *signer) *inbound.KeySet {
	tb.Helper()
	set := jwk.NewSet()
	_ = set.AddKey(s.PublicKey(tb))
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
