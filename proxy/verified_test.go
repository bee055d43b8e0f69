package proxy

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/internal/heapstat"
	"github.com/obo-gateway/obo-gateway/metrics"
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
		_, err := vc.Validate(context.Background(), raw, sumToken(raw))
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
	sum := sumToken(tok)
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

func TestCacheKeyIsBuiltOncePerTokenAndRoute(t *testing.T) {
	newRoute := func(scopes, flow string) *route {
		set := cache.NormalizeScopes([]string{scopes})
		return &route{scopeSet: set, flow: flow, appKey: cache.AppKey(set)}
	}
	sumA, sumB := sumToken("token-a"), sumToken("token-b")
	for _, mode := range []string{KeyUser, KeyAssertion} {
		// A route belongs to one handler, hence one key mode; New gives
		// each on-behalf-of route its own memo slot.
		graph, files := newRoute("api://graph/.default", FlowOnBehalfOf), newRoute("api://files/.default", FlowOnBehalfOf)
		files.memo = 1
		app := newRoute("api://jobs/.default", FlowClientCredentials)
		alice := &Claims{TenantID: "t", ObjectID: "alice", AuthContexts: []string{"c1"}}
		h := &Handler{keyMode: mode}
		want := func(rt *route, c *Claims, sum [32]byte) string {
			if mode == KeyAssertion {
				return cache.AssertionKey(sum, rt.scopeSet)
			}
			return cache.UserKey(c.TenantID, c.ObjectID, c.AuthContexts, rt.scopeSet)
		}
		for _, step := range []struct {
			rt  *route
			sum [32]byte
		}{{graph, sumA}, {graph, sumA}, {files, sumA}, {graph, sumA}, {graph, sumB}} {
			if got, _ := h.cacheKey(step.rt, alice, step.sum); got != want(step.rt, alice, step.sum) {
				t.Errorf("%s: cacheKey = %q, want %q", mode, got, want(step.rt, alice, step.sum))
			}
		}
		// Asked again for the same route and token, the key costs nothing,
		// and comes with the same Ref, which finds token B without the
		// cache's lookup; another token or route gets its own.
		_, ref := h.cacheKey(graph, alice, sumA)
		if n := testing.AllocsPerRun(100, func() { h.cacheKey(graph, alice, sumA) }); n != 0 {
			t.Errorf("%s: a remembered key allocates %v times", mode, n)
		}
		if _, again := h.cacheKey(graph, alice, sumA); again != ref {
			t.Errorf("%s: the same token and route got another Ref", mode)
		}
		_, filesRef := h.cacheKey(files, alice, sumA)
		if filesRef == ref {
			t.Errorf("%s: two routes share a Ref", mode)
		}
		// A token used on two routes in turn (an API calling two
		// downstream APIs for one user) keeps both keys.
		for range 3 {
			_, g := h.cacheKey(graph, alice, sumA)
			_, f := h.cacheKey(files, alice, sumA)
			if g != ref || f != filesRef {
				t.Fatalf("%s: alternating routes rebuilt a key", mode)
			}
		}
		if n := testing.AllocsPerRun(100, func() { h.cacheKey(graph, alice, sumA); h.cacheKey(files, alice, sumA) }); n != 0 {
			t.Errorf("%s: alternating routes allocate %v times", mode, n)
		}
		if got, appRef := h.cacheKey(app, alice, sumA); got != cache.AppKey(app.scopeSet) || appRef != &app.appRef {
			t.Errorf("%s: app-only route: cacheKey = %q and not the route's Ref", mode, got)
		}
	}
}

func TestRememberPacksClaims(t *testing.T) {
	c := &Claims{
		Issuer: testIssuer, Subject: "s1", Audience: "api://a", TenantID: "t1", ObjectID: "o1",
		Scopes: []string{"access_as_user", "other"}, Roles: []string{"Reader"}, AuthContexts: []string{"c1", "c2"},
		Version: "2.0", ClientAppID: "app", Username: "alice@example.com", ExpiresAt: time.Unix(1700000000, 0),
	}
	// Every field is set, so that a field added to Claims but not to
	// remember fails here.
	fields := reflect.ValueOf(c).Elem()
	for i := range fields.NumField() {
		if f := fields.Type().Field(i); f.IsExported() && fields.Field(i).IsZero() {
			t.Fatalf("the fixture leaves Claims.%s empty", f.Name)
		}
	}
	sum := sumToken("token")
	e := remember(c, "k1", sum)
	if !reflect.DeepEqual(&e.claims, c) || e.kid != "k1" || e.sum != sum {
		t.Fatalf("remember changed the claims:\n got %+v kid %q\nwant %+v kid %q", &e.claims, e.kid, c, "k1")
	}
	// Appending to one list must not overwrite the next in the shared array.
	for name, l := range map[string][]string{"Scopes": e.claims.Scopes, "Roles": e.claims.Roles, "AuthContexts": e.claims.AuthContexts} {
		if cap(l) != len(l) {
			t.Errorf("%s has spare capacity %d in the shared array", name, cap(l)-len(l))
		}
	}
	// The entry, the string every claim is a slice of, the lists' array.
	if n := testing.AllocsPerRun(100, func() { remember(c, "k1", sum) }); n != 3 {
		t.Errorf("remember allocates %v objects, want 3", n)
	}
	bare := &Claims{Subject: "s1", ExpiresAt: c.ExpiresAt}
	if e := remember(bare, "", sum); !reflect.DeepEqual(&e.claims, bare) {
		t.Errorf("claims without lists: got %+v, want %+v", &e.claims, bare)
	}
}

// TestVerifiedCacheObjectsPerToken counts the heap objects the verified-token
// cache keeps per remembered token, after real validations (whose decoded
// claims are a dozen objects): the collector visits each on every cycle.
func TestVerifiedCacheObjectsPerToken(t *testing.T) {
	const n = 1000
	vc, s, _ := newTestVerifiedCache(t, 64<<20)
	toks := userTokens(t, s, n, map[string]any{
		"roles": []string{"Reader", "Writer"}, "acrs": []string{"c1"}, "azp": "client-app", "preferred_username": "user@example.com",
	})
	before := heapstat.AfterGC()
	for _, tok := range toks {
		if _, err := vc.Validate(context.Background(), tok, sumToken(tok)); err != nil {
			t.Fatal(err)
		}
	}
	after := heapstat.AfterGC()
	per := float64(after.Objects-before.Objects) / n
	t.Logf("%.1f heap objects per remembered token", per)
	if per > 4 {
		t.Errorf("the verified-token cache holds %.1f heap objects per token, want at most 4 (3 of its own, the rest its maps' growth)", per)
	}
	runtime.KeepAlive(toks)
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
				c, err := vc.Validate(context.Background(), toks[i], sumToken(toks[i]))
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
	sumA, sumB := sumToken(toks[0]), sumToken(toks[1])
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

// TestEachRouteKeepsItsKey: New gives each on-behalf-of route a memo slot
// of its own (up to keyMemoSlots; client credentials routes need none),
// and the verified-token cache charges a remembered token for the keys it
// may come to hold, one per such route.
func TestEachRouteKeepsItsKey(t *testing.T) {
	charged := func(routes []RouteConfig) (*Handler, int64) {
		vc, s, _ := newTestVerifiedCache(t, 1<<20)
		c, err := cache.New(cache.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		h, err := New(Config{Routes: routes, Validator: vc, Exchanger: fixedExchanger{}, Cache: c, Metrics: metrics.New("test")})
		if err != nil {
			t.Fatal(err)
		}
		tok := userTokens(t, s, 1, nil)[0]
		if _, err := vc.Validate(context.Background(), tok, sumToken(tok)); err != nil {
			t.Fatal(err)
		}
		var cost int64
		for i := range vc.shards {
			for _, e := range vc.shards[i].entries {
				cost += e.cost
			}
		}
		return h, cost
	}
	route := func(name, flow string) RouteConfig {
		return RouteConfig{Name: name, PathPrefix: "/" + name, Upstream: "http://127.0.0.1:9/" + name, Scopes: []string{"api://" + name + "/.default"}, Flow: flow}
	}
	slotsOf := func(h *Handler) []int {
		var slots []int
		for _, rt := range h.routes {
			if rt.flow == FlowOnBehalfOf {
				slots = append(slots, rt.memo)
			}
		}
		return slots
	}
	_, one := charged([]RouteConfig{route("graph", "")})
	h, three := charged([]RouteConfig{route("graph", ""), route("jobs", FlowClientCredentials), route("files", ""), route("mail", "")})
	if slots := slotsOf(h); !slices.Equal(slots, []int{0, 1, 2}) {
		t.Errorf("memo slots of the on-behalf-of routes = %v, want 0, 1, 2", slots)
	}
	if three-one != 2*keyMemoCost {
		t.Errorf("a token remembered for three on-behalf-of routes is charged %d bytes more than for one, want %d", three-one, 2*keyMemoCost)
	}
	// A fifth route shares the first one's slot; no token is charged for
	// more keys than it can keep.
	h, five := charged([]RouteConfig{route("graph", ""), route("files", ""), route("mail", ""), route("sites", ""), route("teams", "")})
	if slots := slotsOf(h); !slices.Equal(slots, []int{0, 1, 2, 3, 0}) {
		t.Errorf("memo slots of five on-behalf-of routes = %v, want 0, 1, 2, 3, 0", slots)
	}
	if five-one != (keyMemoSlots-1)*keyMemoCost {
		t.Errorf("a token remembered for five on-behalf-of routes is charged %d bytes more than for one, want %d", five-one, (keyMemoSlots-1)*keyMemoCost)
	}
}
