package inbound

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/obo-gateway/obo-gateway/internal/heapstat"
)

// countingKeys counts key lookups (one per signature verification) and
// presence checks, and can withdraw its key, which starts a new generation.
type countingKeys struct {
	staticKeys
	lookups   atomic.Int32
	checks    atomic.Int32
	withdrawn atomic.Bool
	gen       atomic.Uint64 // generation - 1
}

// withdraw stops publishing the key.
func (c *countingKeys) withdraw() {
	c.withdrawn.Store(true)
	c.gen.Add(1)
}

func (c *countingKeys) Key(ctx context.Context, kid string) (jwk.Key, error) {
	c.lookups.Add(1)
	if c.withdrawn.Load() {
		return nil, ErrUnknownKey
	}
	return c.staticKeys.Key(ctx, kid)
}

func (c *countingKeys) Published(kid string) (uint64, bool) {
	c.checks.Add(1)
	g := c.Generation()
	_, ok := lookup(c.set, kid)
	return g, ok && !c.withdrawn.Load()
}

func (c *countingKeys) Generation() uint64 { return c.gen.Load() + 1 }

func TestVerifiedCache(t *testing.T) {
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	s := newSigner(t, "k1")
	keys := &countingKeys{staticKeys: staticKeys{s.publicSet(t)}}
	v, err := NewValidator(ValidatorConfig{
		Issuer: testIssuer, Audiences: []string{"api://a"}, ClockSkew: time.Minute, Keys: keys,
		Now: func() time.Time { return time.Unix(0, clock.Load()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	vc, err := NewVerifiedCache(v, keys, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	hdr := map[string]any{"alg": "RS256", "kid": "k1"}
	tok := s.sign(t, hdr, goodClaims(now))
	validate := func(raw string) error {
		_, err := vc.Validate(context.Background(), raw, Sum(raw))
		return err
	}

	for range 5 {
		if err := validate(tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := keys.lookups.Load(); n != 1 {
		t.Errorf("5 validations of one token verified the signature %d times, want 1", n)
	}

	// A refused token is not remembered.
	bad := s.sign(t, hdr, map[string]any{"iss": "x", "aud": "api://a", "exp": now.Add(time.Hour).Unix(), "sub": "s"})
	for range 2 {
		if err := validate(bad); err == nil {
			t.Fatal("bad token accepted")
		}
	}

	// Tokens over 8 KiB are verified every time.
	big := goodClaims(now)
	big["pad"] = strings.Repeat("x", MaxCachedTokenBytes)
	bigTok := s.sign(t, hdr, big)
	before := keys.lookups.Load()
	for range 3 {
		if err := validate(bigTok); err != nil {
			t.Fatal(err)
		}
	}
	if n := keys.lookups.Load() - before; n != 3 {
		t.Errorf("a %d-byte token was verified %d times in 3 validations, want 3", len(bigTok), n)
	}

	// Expiry is checked on every hit.
	clock.Store(now.Add(time.Hour + 2*time.Minute).UnixNano())
	if err := validate(tok); err == nil || err.(*RejectError).Reason != ReasonExpired {
		t.Errorf("expired token: %v", err)
	}

	// Withdrawing the signing key revokes remembered tokens.
	clock.Store(now.UnixNano())
	tok2 := s.sign(t, hdr, goodClaims(now))
	for range 2 { // verified, then a hit that finds the key published
		if err := validate(tok2); err != nil {
			t.Fatal(err)
		}
	}
	keys.withdraw()
	if err := validate(tok2); err == nil || err.(*RejectError).Reason != ReasonSignature {
		t.Errorf("token whose key was withdrawn: %v", err)
	}
}

// TestVerifiedCacheLooksKeysUpOncePerKeySet: a hit looks the signing key up
// only when the key set changed since the token's last hit, not on every
// request.
func TestVerifiedCacheLooksKeysUpOncePerKeySet(t *testing.T) {
	vc, s, keys := newTestVerifiedCache(t, 1<<20)
	tok := s.sign(t, map[string]any{"alg": "RS256", "kid": "k1"}, goodClaims(time.Now()))
	sum := Sum(tok)
	hits := func(n int) int32 {
		t.Helper()
		before := keys.checks.Load()
		for range n {
			if _, err := vc.Validate(context.Background(), tok, sum); err != nil {
				t.Fatal(err)
			}
		}
		return keys.checks.Load() - before
	}
	hits(1) // verified and remembered
	if n := hits(100); n != 1 {
		t.Errorf("100 hits looked the key up %d times, want 1 (the first)", n)
	}
	keys.gen.Add(1) // a new key set that still holds the key
	if n := hits(100); n != 1 {
		t.Errorf("100 hits after a key set change looked the key up %d times, want 1", n)
	}
}

// TestVerifiedCacheAddsLittleScanWork checks that an empty cache gives the
// collector no work on every cycle (a ristretto cache's set buffer is 256
// KiB of pointers).
func TestVerifiedCacheAddsLittleScanWork(t *testing.T) {
	before := heapstat.AfterGC()
	vc, err := NewVerifiedCache(nil, nil, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	if n := int64(heapstat.AfterGC().Scan) - int64(before.Scan); n > 64<<10 {
		t.Errorf("an empty verified-token cache adds %d bytes to every collection's heap scan, want at most 64 KiB (a ristretto cache adds about 290 KiB)", n)
	}
	runtime.KeepAlive(vc)
}

func TestVerifiedShardStaysWithinItsBound(t *testing.T) {
	now := time.Now()
	const limit = 10_000
	var s verifiedShard
	for i := range 2000 {
		e := &verified{cost: int64(100 + i%300), claims: Claims{ExpiresAt: now.Add(time.Duration(i%50) * time.Minute)}}
		s.add(uint64(i%700), e, limit, now)
		var sum int64
		for _, e := range s.entries {
			sum += e.cost
		}
		if s.bytes != sum || s.bytes > limit {
			t.Fatalf("after %d inserts: %d bytes counted, %d held, limit %d", i+1, s.bytes, sum, limit)
		}
		if s.entries[uint64(i%700)] != e {
			t.Fatalf("insert %d is not held", i)
		}
	}
	if s.bytes < limit-400 {
		t.Errorf("the full shard holds %d of %d bytes: an insert evicted more than it needed", s.bytes, limit)
	}
	over := &verified{cost: limit + 1, claims: Claims{ExpiresAt: now.Add(time.Hour)}}
	s.add(1<<40, over, limit, now)
	if _, ok := s.entries[1<<40]; ok {
		t.Error("an entry larger than the bound was stored")
	}
}

func TestVerifiedShardDropsExpiredEntries(t *testing.T) {
	now := time.Now()
	var s verifiedShard
	for i := range 100 {
		s.add(uint64(i), &verified{cost: 1, claims: Claims{ExpiresAt: now.Add(-time.Second)}}, 1<<30, now.Add(-time.Hour))
	}
	for i := range 200 {
		s.add(uint64(1000+i), &verified{cost: 1, claims: Claims{ExpiresAt: now.Add(time.Hour)}}, 1<<30, now)
	}
	expired := 0
	for id := range s.entries {
		if id < 1000 {
			expired++
		}
	}
	if expired > 20 || len(s.entries)-expired != 200 {
		t.Errorf("after 200 inserts %d of 100 expired entries remain and %d of 200 fresh ones", expired, len(s.entries)-expired)
	}
}

// TestVerifiedCacheConcurrentTokens validates many tokens from many
// goroutines through a cache too small to hold them: every answer carries
// the claims of the token asked about, never another's.
func TestVerifiedCacheConcurrentTokens(t *testing.T) {
	vc, s, keys := newTestVerifiedCache(t, verifiedShards*3000)
	toks := userTokens(t, s, 60, nil)
	want := make([]*Claims, len(toks))
	for i, tok := range toks {
		var err error
		if want[i], err = vc.v.Validate(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	keys.lookups.Store(0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := range 300 {
				i := (g*7 + n*13) % len(toks)
				c, err := vc.Validate(context.Background(), toks[i], Sum(toks[i]))
				if err != nil {
					t.Error(err)
					return
				}
				if !reflect.DeepEqual(c, want[i]) {
					t.Errorf("token of %s answered with claims %+v", userOID(i), c)
					return
				}
			}
		})
	}
	wg.Wait()
	n := keys.lookups.Load()
	t.Logf("%d signature checks for %d validations", n, 8*300)
	// 60 tokens of about a kilobyte each in 48 KB: most, not all, fit (in
	// 25 runs, 430 to 1020 checks).
	if n >= 8*300*3/4 {
		t.Errorf("%d signature checks for %d validations: fewer than a quarter were remembered", n, 8*300)
	}
}

// TestVerifiedCacheIDCollision gives two tokens SHA-256 sums that share the
// first 8 bytes, the id the cache's maps are keyed by: each must get its
// own claims, never the other's.
func TestVerifiedCacheIDCollision(t *testing.T) {
	vc, s, keys := newTestVerifiedCache(t, 1<<20)
	toks := userTokens(t, s, 2, nil)
	sumA, sumB := Sum(toks[0]), Sum(toks[1])
	copy(sumB[:8], sumA[:8])
	for i, step := range []struct {
		tok      string
		sum      [32]byte
		user     string
		verifies int32
	}{
		{toks[0], sumA, userOID(0), 1}, {toks[0], sumA, userOID(0), 0},
		{toks[1], sumB, userOID(1), 1}, {toks[1], sumB, userOID(1), 0},
		{toks[0], sumA, userOID(0), 1},
	} {
		before := keys.lookups.Load()
		c, err := vc.Validate(context.Background(), step.tok, step.sum)
		if err != nil {
			t.Fatal(err)
		}
		if c.ObjectID != step.user {
			t.Errorf("step %d: the token of %s got the claims of %s", i, step.user, c.ObjectID)
		}
		if n := keys.lookups.Load() - before; n != step.verifies {
			t.Errorf("step %d: %d signature checks, want %d", i, n, step.verifies)
		}
	}
}

// newTestVerifiedCache returns a verified-token cache of maxBytes in front
// of a validator of testIssuer's tokens for "api://a", the signer of those
// tokens (key id "k1") and its key set, which counts signature checks.
func newTestVerifiedCache(tb testing.TB, maxBytes int64) (*VerifiedCache, *signer, *countingKeys) {
	tb.Helper()
	s := newSigner(tb, "k1")
	keys := &countingKeys{staticKeys: staticKeys{s.publicSet(tb)}}
	v, err := NewValidator(ValidatorConfig{Issuer: testIssuer, Audiences: []string{"api://a"}, Keys: keys})
	if err != nil {
		tb.Fatal(err)
	}
	vc, err := NewVerifiedCache(v, keys, maxBytes)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(vc.Close)
	return vc, s, keys
}

// userTokens signs n valid tokens A, the i-th for user userOID(i), with
// goodClaims and the claims of extra.
func userTokens(tb testing.TB, s *signer, n int, extra map[string]any) []string {
	tb.Helper()
	now := time.Now()
	toks := make([]string, n)
	for i := range toks {
		c := goodClaims(now)
		maps.Copy(c, extra)
		c["oid"] = userOID(i)
		toks[i] = s.sign(tb, map[string]any{"alg": "RS256", "kid": "k1"}, c)
	}
	return toks
}

// userOID is the object id of userTokens' i-th user.
func userOID(i int) string { return fmt.Sprintf("%08d-0000-0000-0000-000000000000", i) }
