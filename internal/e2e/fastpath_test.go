package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/echo"
	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

// counter reads one counter or gauge of the admin listener (0 if absent).
func (e *env) counter(series string) int {
	e.t.Helper()
	l := e.metric(series + " ")
	if len(l) != 1 {
		return 0
	}
	n, err := strconv.ParseFloat(l[0][strings.LastIndexByte(l[0], ' ')+1:], 64)
	if err != nil {
		e.t.Fatal(err)
	}
	return int(n)
}

func TestRefreshAheadNoRequestWaits(t *testing.T) {
	// Tokens B live 4 s: usable for 2 s, refreshed from 1.5 s.
	e := start(t, options{idp: func(o *localidp.Options) { o.TokenLifetime = 4 * time.Second }})
	tok := e.token("steady")
	deadline := time.Now().Add(5 * time.Second)
	n := 0
	for time.Now().Before(deadline) {
		if a := e.get("/echo/x", tok); a.status != 200 {
			t.Fatalf("request %d: %d", n, a.status)
		}
		n++
		time.Sleep(20 * time.Millisecond)
	}
	misses := e.counter(`obo_gateway_cache_lookups_total{result="miss",route="echo"}`)
	shared := e.counter(`obo_gateway_cache_lookups_total{result="shared",route="echo"}`)
	refreshes := e.counter(`obo_gateway_refreshes_total{outcome="success"}`)
	if misses != 1 || shared != 0 {
		t.Errorf("%d requests over 5 s of 4-second tokens: %d misses, %d shared waits; want only the first request to wait", n, misses, shared)
	}
	if refreshes < 2 {
		t.Errorf("%d refresh-ahead exchanges in 5 s, want at least 2", refreshes)
	}
	if got := e.idp.OnBehalfOfRequestsFor("steady"); got != int64(1+refreshes) {
		t.Errorf("%d exchanges, want 1 + %d refreshes", got, refreshes)
	}
}

func TestFailedRefreshKeepsServing(t *testing.T) {
	e := start(t, options{idp: func(o *localidp.Options) { o.TokenLifetime = 6 * time.Second }})
	tok := e.token("r")
	if a := e.get("/echo/x", tok); a.status != 200 {
		t.Fatal(a.status)
	}
	e.idp.SetDefaultBehavior(localidp.Behavior{Kind: localidp.BehaviorServerError})
	time.Sleep(2300 * time.Millisecond) // past refresh time (2.25 s), before usable-until (3 s)
	if a := e.get("/echo/x", tok); a.status != 200 {
		t.Errorf("request after a failed refresh: %d", a.status)
	}
	time.Sleep(200 * time.Millisecond)
	if a := e.get("/echo/x", tok); a.status != 200 {
		t.Errorf("second request after a failed refresh: %d", a.status)
	}
	// The refresh fails after its retries (authority.retries, with backoff).
	f := 0
	for deadline := time.Now().Add(2 * time.Second); f == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		f = e.counter(`obo_gateway_refreshes_total{outcome="failure"}`)
	}
	if f != 1 {
		t.Errorf("failed refreshes counted: %d, want 1", f)
	}
}

func TestVerifiedTokenCacheFollowsKeyRemoval(t *testing.T) {
	e := start(t, options{})
	oldKID := e.idp.SigningKeyID()
	tok := e.token("v")
	for range 3 {
		if a := e.get("/echo/x", tok); a.status != 200 {
			t.Fatal(a.status)
		}
	}
	// The authority rotates and withdraws the old key; a token signed with
	// the new key makes the gateway refetch the set.
	if _, err := e.idp.RotateKey(); err != nil {
		t.Fatal(err)
	}
	e.idp.RemoveKey(oldKID)
	if a := e.get("/echo/x", e.token("w")); a.status != 200 {
		t.Fatalf("token with the new key: %d", a.status)
	}
	// The remembered verification of the old token no longer counts.
	a := e.get("/echo/x", tok)
	if a.status != http.StatusUnauthorized || !strings.Contains(a.header.Get("WWW-Authenticate"), "key id") {
		t.Errorf("token signed with a withdrawn key: %d %q", a.status, a.header.Get("WWW-Authenticate"))
	}
}

func TestVerifiedTokenCacheRechecksExpiry(t *testing.T) {
	e := start(t, options{})
	// Token B for the user is cached first, so the nearly expired token A
	// below is only validated, never sent to the authority (which would
	// refuse it).
	if a := e.get("/echo/x", e.token("x")); a.status != 200 {
		t.Fatal(a.status)
	}
	// Expired 57 to 58 s ago: with the 60 s skew, valid for 2 to 3 more
	// seconds. exp is a whole second (a JWT's NumericDate), so it is set on
	// one: an exp taken from now+x would be cut to the second below, and
	// the token's remaining validity would depend on when in the second
	// the test ran.
	exp := time.Now().Truncate(time.Second).Add(-57 * time.Second)
	tok := e.token("x", func(u *localidp.UserToken) {
		u.IssuedAt = exp.Add(-10 * time.Minute)
		u.NotBefore = u.IssuedAt
		u.Lifetime = 10 * time.Minute
	})
	if a := e.get("/echo/x", tok); a.status != 200 {
		t.Fatalf("still within skew: %d %s", a.status, a.body)
	}
	time.Sleep(time.Until(exp.Add(60*time.Second + 300*time.Millisecond)))
	if a := e.get("/echo/x", tok); a.status != http.StatusUnauthorized {
		t.Errorf("cached verification served after expiry: %d", a.status)
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestCAEChallengeReexchangesAndRetries(t *testing.T) {
	e := start(t, options{cae: true})
	tok := e.token("cae")
	plain := e.get("/echo/x", tok)
	if plain.status != 200 {
		t.Fatal(plain.status)
	}
	if got := e.idp.LastTokenRequest().Get("claims"); got != `{"access_token":{"xms_cc":{"values":["cp1"]}}}` {
		t.Errorf("exchange claims = %q, want the cp1 capability", got)
	}
	first := e.idp.IssuedTokens()[0].Token
	hits := e.echoHits.Load()
	a := e.do(http.MethodPost, "/echo/items", tok, strings.NewReader(`{"n":1}`),
		"X-Echo-Revoke-Sha256", sha256Hex(first))
	if a.status != 200 {
		t.Fatalf("after a CAE challenge: %d %s", a.status, a.body)
	}
	ec := a.echoed(t)
	if ec.Body != `{"n":1}` || ec.Method != http.MethodPost {
		t.Errorf("retried request lost its body: %+v", ec)
	}
	if ec.Headers["Authorization"][0] == "Bearer "+first {
		t.Error("the retry used the revoked token")
	}
	// The retry is the caller's request sent again, not the first
	// attempt's outbound copy: the same forwarding headers, once each.
	for _, name := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		want, got := plain.echoed(t).Headers[name], ec.Headers[name]
		if len(want) != 1 || want[0] == "" || !slices.Equal(got, want) {
			t.Errorf("the retry's %s = %q, a plain request's %q", name, got, want)
		}
	}
	if n := e.echoHits.Load() - hits; n != 2 {
		t.Errorf("downstream saw %d requests, want 2 (challenge, retry)", n)
	}
	claims := e.idp.LastTokenRequest().Get("claims")
	if !strings.Contains(claims, `"xms_cc":{"values":["cp1"]}`) || !strings.Contains(claims, `"nbf":{"essential":true,"value":"1764000000"}`) {
		t.Errorf("re-exchange claims = %s, want capabilities merged with the challenge", claims)
	}
	if n := e.counter(`obo_gateway_cae_retries_total{route="echo"}`); n != 1 {
		t.Errorf("cae retries = %d", n)
	}
	// The new token B is cached: the next call needs no exchange.
	before := e.idp.OnBehalfOfRequestsFor("cae")
	e.get("/echo/x", tok)
	if e.idp.OnBehalfOfRequestsFor("cae") != before {
		t.Error("the token from the CAE re-exchange was not cached")
	}
}

func TestCAEChallengeNeedingInteractionReachesCaller(t *testing.T) {
	e := start(t, options{cae: true})
	tok := e.token("cae-mfa")
	if a := e.get("/echo/x", tok); a.status != 200 {
		t.Fatal(a.status)
	}
	e.idp.SetUserBehavior("cae-mfa", localidp.Behavior{Kind: localidp.BehaviorMFA})
	a := e.get("/echo/x", tok, "X-Echo-Revoke-Sha256", sha256Hex(e.idp.IssuedTokens()[0].Token))
	if a.status != http.StatusUnauthorized || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), `Bearer error="insufficient_claims", claims="`) {
		t.Errorf("want the authority's claims challenge: %d %q", a.status, a.header.Get("WWW-Authenticate"))
	}
}

func TestCAEOffPassesChallengeThrough(t *testing.T) {
	e := start(t, options{})
	tok := e.token("nocae")
	e.get("/echo/x", tok)
	a := e.get("/echo/x", tok, "X-Echo-Revoke-Sha256", sha256Hex(e.idp.IssuedTokens()[0].Token))
	if a.status != http.StatusUnauthorized || a.header.Get("WWW-Authenticate") != echo.CAEChallenge {
		t.Errorf("without cp1 the challenge must pass through: %d %q", a.status, a.header.Get("WWW-Authenticate"))
	}
}

func TestCacheKeyModes(t *testing.T) {
	t.Run("user", func(t *testing.T) {
		e := start(t, options{})
		e.get("/echo/x", e.token("k"))
		e.get("/echo/x", e.token("k"))
		stepped := e.token("k", func(u *localidp.UserToken) { u.Extra = map[string]any{"acrs": []string{"c1"}} })
		e.get("/echo/x", stepped)
		e.get("/echo/x", stepped)
		if n := e.idp.OnBehalfOfRequestsFor("k"); n != 2 {
			t.Errorf("%d exchanges, want 2: one per authentication context", n)
		}
	})
	t.Run("assertion", func(t *testing.T) {
		e := start(t, options{cacheKey: "assertion"})
		a, b := e.token("k"), e.token("k", func(u *localidp.UserToken) { u.Lifetime = 2 * time.Hour })
		for _, tok := range []string{a, a, b, b} {
			e.get("/echo/x", tok)
		}
		if n := e.idp.OnBehalfOfRequestsFor("k"); n != 2 {
			t.Errorf("%d exchanges, want 2: one per token A", n)
		}
	})
}
