package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

// exchangeLogLevels returns the level of every "exchange failed" log line
// by outcome.
func (e *env) exchangeLogLevels() map[string][]string {
	e.t.Helper()
	out := make(map[string][]string)
	for _, l := range strings.Split(e.logs.String(), "\n") {
		var rec struct {
			Level   string `json:"level"`
			Msg     string `json:"msg"`
			Outcome string `json:"outcome"`
		}
		if json.Unmarshal([]byte(l), &rec) == nil && rec.Msg == "exchange failed" {
			out[rec.Outcome] = append(out[rec.Outcome], rec.Level)
		}
	}
	return out
}

// checkWarnOnly fails the test when an exchange failure with one of the
// outcomes was logged at another level than WARN, or not at all.
func (e *env) checkWarnOnly(outcomes ...string) {
	e.t.Helper()
	levels := e.exchangeLogLevels()
	for _, o := range outcomes {
		if len(levels[o]) == 0 {
			e.t.Errorf("no exchange failure logged with outcome %q; logged: %v", o, levels)
		}
		for _, l := range levels[o] {
			if l != "WARN" {
				e.t.Errorf("outcome %q logged at %s, want WARN", o, l)
			}
		}
	}
}

func TestAuthorityFaultsAreRetried(t *testing.T) {
	tests := []struct {
		name     string
		fault    localidp.Behavior
		times    int
		status   int
		requests int64
		retries  map[string]int // obo_gateway_authority_retries_total by reason
		minTime  time.Duration
	}{
		{name: "503 twice then OK", fault: localidp.Behavior{Kind: localidp.BehaviorServerError}, times: 2,
			status: http.StatusOK, requests: 3, retries: map[string]int{"unavailable": 2}},
		{name: "429 then OK after its Retry-After", fault: localidp.Behavior{Kind: localidp.BehaviorThrottle, RetryAfter: time.Second}, times: 1,
			status: http.StatusOK, requests: 2, retries: map[string]int{"throttled": 1}, minTime: time.Second},
		{name: "503 beyond the retries", fault: localidp.Behavior{Kind: localidp.BehaviorServerError}, times: 3,
			status: http.StatusServiceUnavailable, requests: 3, retries: map[string]int{"unavailable": 2}},
		{name: "MFA is never retried", fault: localidp.Behavior{Kind: localidp.BehaviorMFA}, times: 1,
			status: http.StatusUnauthorized, requests: 1, retries: map[string]int{"unavailable": 0, "throttled": 0}},
		{name: "consent is never retried", fault: localidp.Behavior{Kind: localidp.BehaviorConsentRequired}, times: 1,
			status: http.StatusUnauthorized, requests: 1, retries: map[string]int{"unavailable": 0, "throttled": 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, options{})
			e.idp.SetNextBehavior(tc.times, tc.fault)
			startAt := time.Now()
			a := e.get("/echo/x", e.token("flaky-user"))
			if a.status != tc.status {
				t.Errorf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if d := time.Since(startAt); d < tc.minTime {
				t.Errorf("answered after %v, before the authority's Retry-After of %v", d, tc.minTime)
			}
			if n := e.idp.OnBehalfOfRequestsFor("flaky-user"); n != tc.requests {
				t.Errorf("the authority saw %d requests, want %d", n, tc.requests)
			}
			for reason, want := range tc.retries {
				if got := e.counter(fmt.Sprintf(`obo_gateway_authority_retries_total{reason=%q}`, reason)); got != want {
					t.Errorf("retries_total{reason=%q} = %d, want %d", reason, got, want)
				}
			}
		})
	}
}

func TestAuthorityDownOpensTheBreaker(t *testing.T) {
	e := start(t, options{authorityExtra: []string{"retries: 2", "breaker: {failures: 3, open_for: 1s}"}})
	warm := e.token("warm-user")
	if a := e.get("/echo/x", warm); a.status != http.StatusOK {
		t.Fatalf("warm-up: %d %s", a.status, a.body)
	}
	cachedUserOK := func(when string) {
		t.Helper()
		if a := e.get("/echo/x", warm); a.status != http.StatusOK {
			t.Errorf("cached user %s: %d %s", when, a.status, a.body)
		}
	}

	// The authority goes down: the first new user's exchange makes three
	// attempts, which open the breaker.
	e.idp.SetDefaultBehavior(localidp.Behavior{Kind: localidp.BehaviorServerError})
	before := e.idp.TokenRequests()
	if a := e.get("/echo/x", e.token("new-1")); a.status != http.StatusServiceUnavailable {
		t.Errorf("new user while the authority is down: %d %s", a.status, a.body)
	}
	if n := e.idp.TokenRequests() - before; n != 3 {
		t.Errorf("%d token requests for the first new user, want 3 (2 retries)", n)
	}
	if s := e.counter("obo_gateway_breaker_state"); s != 2 {
		t.Errorf("breaker_state %d, want 2 (open)", s)
	}
	cachedUserOK("after the breaker opened")

	// Open: new users get 503 with Retry-After at once; the authority is
	// not called.
	before = e.idp.TokenRequests()
	for i := range 4 {
		startAt := time.Now()
		a := e.get("/echo/x", e.token(fmt.Sprintf("open-%d", i)))
		if d := time.Since(startAt); d > 300*time.Millisecond {
			t.Errorf("fail-fast answer took %v", d)
		}
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") != "1" || a.json(t)["error"] != "temporarily_unavailable" {
			t.Errorf("new user while the breaker is open: %d Retry-After %q %s", a.status, a.header.Get("Retry-After"), a.body)
		}
		cachedUserOK("while the breaker is open")
	}
	if n := e.idp.TokenRequests() - before; n != 0 {
		t.Errorf("the authority saw %d requests while the breaker was open", n)
	}
	if n := e.counter(`obo_gateway_exchanges_total{flow="on_behalf_of",outcome="circuit_open",route="echo"}`); n != 4 {
		t.Errorf("circuit_open exchanges %d, want 4", n)
	}

	// After the open period one probe goes through; it fails, and the
	// breaker opens again.
	time.Sleep(1100 * time.Millisecond)
	before = e.idp.TokenRequests()
	if a := e.get("/echo/x", e.token("probe-1")); a.status != http.StatusServiceUnavailable {
		t.Errorf("failed probe: %d", a.status)
	}
	if n := e.idp.TokenRequests() - before; n != 1 {
		t.Errorf("%d requests after the open period, want one probe", n)
	}
	if a := e.get("/echo/x", e.token("after-probe")); a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
		t.Errorf("after a failed probe: %d Retry-After %q", a.status, a.header.Get("Retry-After"))
	}
	if n := e.idp.TokenRequests() - before; n != 1 {
		t.Errorf("%d requests after the failed probe, want none beyond the probe", n)
	}
	cachedUserOK("after the failed probe")

	// The authority recovers: the next probe closes the breaker.
	e.idp.ResetBehaviors()
	time.Sleep(1100 * time.Millisecond)
	for _, u := range []string{"recovered-1", "recovered-2"} {
		if a := e.get("/echo/x", e.token(u)); a.status != http.StatusOK {
			t.Errorf("new user after recovery: %d %s", a.status, a.body)
		}
	}
	if s := e.counter("obo_gateway_breaker_state"); s != 0 {
		t.Errorf("breaker_state %d after recovery, want 0 (closed)", s)
	}
	cachedUserOK("after recovery")
	e.checkWarnOnly("unavailable", "circuit_open")
}

func TestOpenBreakerKeepsCachedTokensUntilTheirMargin(t *testing.T) {
	// Tokens B live 6 s: usable for 3 s, refreshed from 2.25 s.
	e := start(t, options{
		idp:            func(o *localidp.Options) { o.TokenLifetime = 6 * time.Second },
		authorityExtra: []string{"retries: 0", "breaker: {failures: 1, open_for: 30s}"},
	})
	tok := e.token("steady")
	issued := time.Now()
	if a := e.get("/echo/x", tok); a.status != http.StatusOK {
		t.Fatal(a.status)
	}
	e.idp.SetDefaultBehavior(localidp.Behavior{Kind: localidp.BehaviorServerError})
	if a := e.get("/echo/x", e.token("other")); a.status != http.StatusServiceUnavailable {
		t.Fatalf("the fault that opens the breaker: %d", a.status)
	}
	before := e.idp.TokenRequests()

	// Past the refresh time: the refresh fails at once without a request,
	// and the old token is still served.
	time.Sleep(time.Until(issued.Add(2400 * time.Millisecond)))
	for range 3 {
		if a := e.get("/echo/x", tok); a.status != http.StatusOK {
			t.Errorf("before the safety margin: %d", a.status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := e.idp.TokenRequests() - before; n != 0 {
		t.Errorf("refresh-ahead sent %d requests through the open breaker", n)
	}
	if f := e.counter(`obo_gateway_refreshes_total{outcome="failure"}`); f < 1 {
		t.Errorf("no failed refresh counted")
	}

	// Past the safety margin the token is no longer served: 503.
	time.Sleep(time.Until(issued.Add(3300 * time.Millisecond)))
	a := e.get("/echo/x", tok)
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
		t.Errorf("after the safety margin: %d Retry-After %q", a.status, a.header.Get("Retry-After"))
	}
}

func TestColdStartStormIsBounded(t *testing.T) {
	const users, limit = 50, 4
	e := start(t, options{authorityExtra: []string{"max_concurrent_exchanges: 4", "queue_timeout: 300ms"}})
	e.idp.SetLatency(100 * time.Millisecond)
	tokens := make([]string, users)
	for i := range tokens {
		tokens[i] = e.token(fmt.Sprintf("storm-%d", i))
	}
	type result struct {
		status     int
		retryAfter string
		took       time.Duration
		err        error
	}
	results := make([]result, users)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i, tok := range tokens {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, e.gw+"/echo/x", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			<-gate
			startAt := time.Now()
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				results[i].err = err
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			results[i] = result{status: res.StatusCode, retryAfter: res.Header.Get("Retry-After"), took: time.Since(startAt)}
		})
	}
	close(gate)
	wg.Wait()

	served, refused := 0, 0
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("user %d: %v", i, r.err)
		case r.status == http.StatusOK:
			served++
		case r.status == http.StatusServiceUnavailable:
			refused++
			if r.retryAfter != "1" {
				t.Errorf("user %d refused with Retry-After %q, want 1", i, r.retryAfter)
			}
			if r.took > 2*time.Second {
				t.Errorf("user %d refused after %v; the queue timeout is 300ms", i, r.took)
			}
		default:
			t.Errorf("user %d: status %d", i, r.status)
		}
	}
	if m := e.idp.MaxConcurrentTokenRequests(); m > limit || m < 2 {
		t.Errorf("the authority served %d token requests at once, want at most %d (and the limit reached)", m, limit)
	}
	if served < limit || refused == 0 {
		t.Errorf("%d served, %d refused; want at least %d served and the users beyond the queue timeout refused", served, refused, limit)
	}
	if n := e.idp.TokenRequests(); n != int64(served) {
		t.Errorf("the authority saw %d requests for %d served users; refused users must not reach it", n, served)
	}
	if n := e.counter("obo_gateway_exchange_queue_rejections_total"); n != refused {
		t.Errorf("queue rejections counted %d, want %d", n, refused)
	}
	if n := e.counter(`obo_gateway_exchanges_total{flow="on_behalf_of",outcome="overloaded",route="echo"}`); n != refused {
		t.Errorf("overloaded exchanges counted %d, want %d", n, refused)
	}
	e.checkWarnOnly("overloaded")
	t.Logf("%d users: %d served, %d refused, at most %d token requests at once", users, served, refused, e.idp.MaxConcurrentTokenRequests())
}
