package inbound

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// BenchmarkValidate compares a full validation with a remembered one.
func BenchmarkValidate(b *testing.B) {
	vc, s, _ := newTestVerifiedCache(b, 1<<20)
	tok := s.sign(b, map[string]any{"alg": "RS256", "kid": "k1"}, goodClaims(time.Now()))
	sum := Sum(tok)
	for name, tv := range map[string]TokenValidator{"full": Uncached(vc.v), "remembered": vc} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tv.Validate(context.Background(), tok, sum); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseBearer is the Authorization header parsing.
func BenchmarkParseBearer(b *testing.B) {
	h := http.Header{"Authorization": {"Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BearerToken(h); err != nil {
			b.Fatal(err)
		}
	}
}
