package proxy

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	rtmetrics "runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/obo-gateway/obo-gateway/cache"
)

// countingKeys counts key lookups (one per signature verification) and can
// withdraw its key.
type countingKeys struct {
	staticKeys
	lookups   atomic.Int32
	withdrawn atomic.Bool
}

func (c *countingKeys) Key(ctx context.Context, kid string) (jwk.Key, error) {
	c.lookups.Add(1)
	if c.withdrawn.Load() {
		return nil, ErrUnknownKey
	}
	return c.staticKeys.Key(ctx, kid)
}

func (c *countingKeys) Has(kid string) bool {
	_, ok := lookup(c.set, kid)
	return ok && !c.withdrawn.Load()
}

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
		vc.store.Wait()
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
	if err := validate(tok2); err != nil {
		t.Fatal(err)
	}
	keys.withdrawn.Store(true)
	if err := validate(tok2); err == nil || err.(*RejectError).Reason != ReasonSignature {
		t.Errorf("token whose key was withdrawn: %v", err)
	}
}

func TestCacheKeyIsBuiltOncePerTokenAndRoute(t *testing.T) {
	newRoute := func(scopes, flow string) *route {
		set := cache.NormalizeScopes([]string{scopes})
		return &route{scopeSet: set, flow: flow, appKey: cache.AppKey(set)}
	}
	sumA, sumB := sumToken("token-a"), sumToken("token-b")
	for _, mode := range []string{KeyUser, KeyAssertion} {
		// A route belongs to one handler, hence one key mode.
		graph, files := newRoute("api://graph/.default", FlowOnBehalfOf), newRoute("api://files/.default", FlowOnBehalfOf)
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
			if got, w := h.cacheKey(step.rt, alice, step.sum), want(step.rt, alice, step.sum); got != w {
				t.Errorf("%s: cacheKey = %q, want %q", mode, got, w)
			}
		}
		// Asked again for the same route and token, the key costs nothing.
		h.cacheKey(graph, alice, sumA)
		if n := testing.AllocsPerRun(100, func() { h.cacheKey(graph, alice, sumA) }); n != 0 {
			t.Errorf("%s: a remembered key allocates %v times", mode, n)
		}
		if got := h.cacheKey(app, alice, sumA); got != cache.AppKey(app.scopeSet) {
			t.Errorf("%s: app-only route: cacheKey = %q", mode, got)
		}
	}
}

// TestVerifiedCacheCountersFitATypicalToken keeps the admission counters'
// sizing (averageVerifiedBytes) near what a remembered Entra token costs.
func TestVerifiedCacheCountersFitATypicalToken(t *testing.T) {
	c := &Claims{
		Issuer:      "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
		Subject:     "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
		Audience:    "api://6e74172b-be56-4843-9ff4-e66a39bb12e3",
		TenantID:    "72f988bf-86f1-41af-91ab-2d7cd011db47",
		ObjectID:    "00000000-0000-0000-66f3-3332eca7ea81",
		Scopes:      []string{"access_as_user"},
		Version:     "2.0",
		ClientAppID: "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
		Username:    "abeli@microsoft.com",
	}
	if n := claimsCost(c); n < averageVerifiedBytes/2 || n > averageVerifiedBytes*3/2 {
		t.Errorf("a typical token costs %d bytes; the counters are sized for %d", n, averageVerifiedBytes)
	}
}

func TestRememberPacksClaims(t *testing.T) {
	c := &Claims{
		Issuer: testIssuer, Subject: "s1", Audience: "api://a", TenantID: "t1", ObjectID: "o1",
		Scopes: []string{"access_as_user", "other"}, Roles: []string{"Reader"}, AuthContexts: []string{"c1", "c2"},
		Version: "2.0", ClientAppID: "app", Username: "alice@example.com", ExpiresAt: time.Unix(1700000000, 0),
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
	s := newSigner(t, "k1")
	keys := &countingKeys{staticKeys: staticKeys{s.publicSet(t)}}
	v, err := NewValidator(ValidatorConfig{Issuer: testIssuer, Audiences: []string{"api://a"}, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	vc, err := NewVerifiedCache(v, keys, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	now := time.Now()
	toks := make([]string, n)
	for i := range toks {
		c := goodClaims(now)
		c["oid"] = fmt.Sprintf("%08d-0000-0000-0000-000000000000", i)
		c["roles"] = []string{"Reader", "Writer"}
		c["acrs"] = []string{"c1"}
		c["azp"], c["preferred_username"] = "client-app", fmt.Sprintf("user%d@example.com", i)
		toks[i] = s.sign(t, map[string]any{"alg": "RS256", "kid": "k1"}, c)
	}
	objects := func() uint64 {
		vc.store.Wait()
		runtime.GC()
		m := []rtmetrics.Sample{{Name: "/gc/heap/objects:objects"}}
		rtmetrics.Read(m)
		return m[0].Value.Uint64()
	}
	before := objects()
	for _, tok := range toks {
		if _, err := vc.Validate(context.Background(), tok, sumToken(tok)); err != nil {
			t.Fatal(err)
		}
	}
	per := float64(objects()-before) / n
	t.Logf("%.1f heap objects per remembered token", per)
	if per > 5 {
		t.Errorf("the verified-token cache holds %.1f heap objects per token, want at most 5 (3 of its own, the rest its store's)", per)
	}
	runtime.KeepAlive(toks)
}
