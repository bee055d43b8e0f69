package obo

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// answer is one scripted answer of a fault server.
type answer struct {
	status     int
	body       string
	retryAfter string
	// drop closes the connection without an answer (a transport error).
	drop bool
}

var (
	ok200          = answer{status: 200, body: `{"token_type":"Bearer","expires_in":3600,"access_token":"tokB"}`}
	unavailable503 = answer{status: 503, body: `{"error":"temporarily_unavailable","error_codes":[90033]}`}
	throttled429   = answer{status: 429, body: `{"error":"temporarily_unavailable"}`}
	dropped        = answer{drop: true}
	invalidGrant   = answer{status: 400, body: `{"error":"invalid_grant","error_codes":[50013]}`}
	interaction    = answer{status: 400, body: `{"error":"interaction_required","error_codes":[50079]}`}
	mfa            = answer{status: 400, body: `{"error":"invalid_grant","suberror":"basic_action","claims":"{}"}`}
	invalidClient  = answer{status: 401, body: `{"error":"invalid_client","error_codes":[7000215]}`}
	invalidScope   = answer{status: 400, body: `{"error":"invalid_scope"}`}
)

// faultServer answers token requests from a script: request n gets
// script[n], or the last entry once the script is used up, or next when it
// is set. It counts requests and the most it had in flight at once.
type faultServer struct {
	*httptest.Server
	latency time.Duration

	mu       sync.Mutex
	script   []answer
	next     *answer
	requests int
	inFlight int
	maxIn    int
}

func newFaultServer(t *testing.T, latency time.Duration, script ...answer) *faultServer {
	t.Helper()
	fs := &faultServer{latency: latency, script: script}
	fs.Server = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *faultServer) serve(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	latency := fs.latency
	a := ok200
	switch {
	case fs.next != nil:
		a = *fs.next
	case fs.requests < len(fs.script):
		a = fs.script[fs.requests]
	case len(fs.script) > 0:
		a = fs.script[len(fs.script)-1]
	}
	fs.requests++
	fs.inFlight++
	fs.maxIn = max(fs.maxIn, fs.inFlight)
	fs.mu.Unlock()
	defer func() {
		fs.mu.Lock()
		fs.inFlight--
		fs.mu.Unlock()
	}()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	if a.drop {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(a.body))
}

// answerAll makes every further request get a, after latency.
func (fs *faultServer) answerAll(a answer, latency time.Duration) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.next = &a
	fs.latency = latency
}

func (fs *faultServer) count() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.requests
}

func (fs *faultServer) current() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.inFlight
}

func (fs *faultServer) maxInFlight() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.maxIn
}

// countingCredential is a client secret that counts its applications.
type countingCredential struct{ n atomic.Int64 }

func (c *countingCredential) Apply(ctx context.Context, endpoint string, form url.Values) error {
	c.n.Add(1)
	return ClientSecret("s").Apply(ctx, endpoint, form)
}

// resilientClient returns a Client for fs with quick retries; edit adjusts
// the configuration.
func resilientClient(t *testing.T, url string, edit func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		ClientID: "c", TokenEndpoint: url, Credential: ClientSecret("s"),
		Timeout:        3 * time.Second,
		RetryBaseDelay: 10 * time.Millisecond, RetryMaxDelay: 20 * time.Millisecond,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name     string
		script   []answer
		retries  int
		requests int
		outcome  string
		reasons  []string // OnRetry calls
	}{
		{name: "503 then success", script: []answer{unavailable503, ok200}, requests: 2, outcome: "success", reasons: []string{"unavailable"}},
		{name: "503 twice then success", script: []answer{unavailable503, unavailable503, ok200}, requests: 3, outcome: "success", reasons: []string{"unavailable", "unavailable"}},
		{name: "429 then success", script: []answer{throttled429, ok200}, requests: 2, outcome: "success", reasons: []string{"throttled"}},
		{name: "connection dropped then success", script: []answer{dropped, ok200}, requests: 2, outcome: "success", reasons: []string{"unavailable"}},
		{name: "retries exhausted", script: []answer{unavailable503}, requests: 3, outcome: "unavailable", reasons: []string{"unavailable", "unavailable"}},
		{name: "more retries", script: []answer{unavailable503}, retries: 4, requests: 5, outcome: "unavailable", reasons: []string{"unavailable", "unavailable", "unavailable", "unavailable"}},
		{name: "retries off", script: []answer{unavailable503, ok200}, retries: -1, requests: 1, outcome: "unavailable"},
		{name: "invalid_grant is final", script: []answer{invalidGrant, ok200}, requests: 1, outcome: "invalid_grant"},
		{name: "interaction_required is final", script: []answer{interaction, ok200}, requests: 1, outcome: "interaction_required"},
		{name: "mfa claims challenge is final", script: []answer{mfa, ok200}, requests: 1, outcome: "interaction_required"},
		{name: "invalid_client is final", script: []answer{invalidClient, ok200}, requests: 1, outcome: "invalid_client"},
		{name: "invalid_scope is final", script: []answer{invalidScope, ok200}, requests: 1, outcome: "authority_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFaultServer(t, 0, tc.script...)
			cred := &countingCredential{}
			var mu sync.Mutex
			var reasons []string
			c := resilientClient(t, fs.URL, func(cfg *Config) {
				cfg.Retries = tc.retries
				cfg.Credential = cred
				cfg.OnRetry = func(r string) {
					mu.Lock()
					reasons = append(reasons, r)
					mu.Unlock()
				}
			})
			tok, err := c.OnBehalfOf(context.Background(), "tokA", []string{"s/x"})
			if got := Outcome(err); got != tc.outcome {
				t.Fatalf("Outcome = %q (err %v), want %q", got, err, tc.outcome)
			}
			if err == nil && tok.AccessToken != "tokB" {
				t.Errorf("token %q", tok.AccessToken)
			}
			if n := fs.count(); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
			if n := cred.n.Load(); n != int64(tc.requests) {
				t.Errorf("credential applied %d times for %d requests; every attempt needs its own", n, tc.requests)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(reasons, tc.reasons) {
				t.Errorf("OnRetry reasons %v, want %v", reasons, tc.reasons)
			}
		})
	}
}

func TestRetryAfterWithinDeadline(t *testing.T) {
	tests := []struct {
		name        string
		timeout     time.Duration
		requests    int
		outcome     string
		minDuration time.Duration
		maxDuration time.Duration
		retryAfter  time.Duration // of the returned *Error
	}{
		{name: "honoured when it fits", timeout: 3 * time.Second, requests: 2, outcome: "success", minDuration: time.Second, maxDuration: 2500 * time.Millisecond},
		{name: "returned when it does not fit", timeout: 800 * time.Millisecond, requests: 1, outcome: "throttled", maxDuration: 500 * time.Millisecond, retryAfter: time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			throttled := throttled429
			throttled.retryAfter = "1"
			fs := newFaultServer(t, 0, throttled, ok200)
			c := resilientClient(t, fs.URL, func(cfg *Config) { cfg.Timeout = tc.timeout })
			start := time.Now()
			_, err := c.OnBehalfOf(context.Background(), "tokA", []string{"s/x"})
			d := time.Since(start)
			if got := Outcome(err); got != tc.outcome {
				t.Fatalf("Outcome = %q (err %v), want %q", got, err, tc.outcome)
			}
			if n := fs.count(); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
			if d < tc.minDuration || d > tc.maxDuration {
				t.Errorf("took %v, want between %v and %v", d, tc.minDuration, tc.maxDuration)
			}
			var ae *Error
			if tc.retryAfter > 0 && (!errors.As(err, &ae) || ae.RetryAfter != tc.retryAfter) {
				t.Errorf("err = %#v, want an *Error with RetryAfter %v", err, tc.retryAfter)
			}
		})
	}
}

func TestBackoffNeverSleepsPastTheDeadline(t *testing.T) {
	fs := newFaultServer(t, 0, unavailable503)
	c := resilientClient(t, fs.URL, func(cfg *Config) {
		cfg.Timeout = 300 * time.Millisecond
		cfg.Retries = 5
		cfg.RetryBaseDelay, cfg.RetryMaxDelay = 250*time.Millisecond, 250*time.Millisecond
		cfg.BreakerFailures = -1
	})
	start := time.Now()
	_, err := c.OnBehalfOf(context.Background(), "tokA", []string{"s/x"})
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Errorf("took %v with a 300ms deadline", d)
	}
	var ae *Error
	if !errors.As(err, &ae) || ae.StatusCode != 503 {
		t.Errorf("err = %v, want the authority's 503 rather than a deadline error", err)
	}
}

func TestBreakerOpensOnTemporaryFaultsOnly(t *testing.T) {
	tests := []struct {
		name   string
		script []answer
		want   BreakerState
	}{
		{name: "5xx", script: []answer{unavailable503, unavailable503, unavailable503}, want: BreakerOpen},
		{name: "429", script: []answer{throttled429, throttled429, throttled429}, want: BreakerOpen},
		{name: "transport errors", script: []answer{dropped, dropped, dropped}, want: BreakerOpen},
		{name: "mixed faults", script: []answer{dropped, throttled429, unavailable503}, want: BreakerOpen},
		{name: "fewer than the threshold", script: []answer{unavailable503, unavailable503}, want: BreakerClosed},
		{name: "a success resets the count", script: []answer{unavailable503, unavailable503, ok200, unavailable503, unavailable503}, want: BreakerClosed},
		{name: "an OAuth refusal resets the count", script: []answer{unavailable503, unavailable503, invalidGrant, unavailable503, unavailable503}, want: BreakerClosed},
		{name: "invalid_grant", script: []answer{invalidGrant, invalidGrant, invalidGrant, invalidGrant}, want: BreakerClosed},
		{name: "interaction_required", script: []answer{interaction, interaction, interaction, interaction}, want: BreakerClosed},
		{name: "invalid_client", script: []answer{invalidClient, invalidClient, invalidClient, invalidClient}, want: BreakerClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFaultServer(t, 0, tc.script...)
			c := resilientClient(t, fs.URL, func(cfg *Config) {
				cfg.Retries = -1
				cfg.BreakerFailures = 3
				cfg.BreakerOpenFor = time.Minute
			})
			for range tc.script {
				_, _ = c.OnBehalfOf(context.Background(), "tokA", []string{"s/x"})
			}
			if got := c.BreakerState(); got != tc.want {
				t.Errorf("breaker %s, want %s", got, tc.want)
			}
		})
	}
}

func TestBreakerFailsFastAndProbes(t *testing.T) {
	const openFor = 300 * time.Millisecond
	fs := newFaultServer(t, 0, unavailable503)
	var mu sync.Mutex
	var states []BreakerState
	c := resilientClient(t, fs.URL, func(cfg *Config) {
		cfg.BreakerFailures = 3
		cfg.BreakerOpenFor = openFor
		cfg.OnBreakerState = func(s BreakerState) {
			mu.Lock()
			states = append(states, s)
			mu.Unlock()
		}
	})
	call := func() error {
		_, err := c.OnBehalfOf(context.Background(), "tokA", []string{"s/x"})
		return err
	}

	// One exchange: three attempts (two retries), three faults: open.
	if err := call(); Outcome(err) != "unavailable" {
		t.Fatalf("first exchange: %v", err)
	}
	if n := fs.count(); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
	if s := c.BreakerState(); s != BreakerOpen {
		t.Fatalf("breaker %s after 3 faults, want open", s)
	}

	// Open: immediate failure, no request, Retry-After = the time left.
	start := time.Now()
	err := call()
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("open breaker took %v to answer", d)
	}
	var ue *UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, ErrCircuitOpen) || Outcome(err) != "circuit_open" {
		t.Fatalf("err = %v, want an *UnavailableError wrapping ErrCircuitOpen", err)
	}
	if ue.RetryAfter <= 0 || ue.RetryAfter > openFor {
		t.Errorf("RetryAfter = %v, want the remaining open time", ue.RetryAfter)
	}
	if n := fs.count(); n != 3 {
		t.Errorf("the open breaker let a request through: %d requests", n)
	}

	// Half-open: one probe; it fails, so the breaker opens again.
	time.Sleep(openFor + 20*time.Millisecond)
	if s := c.BreakerState(); s != BreakerHalfOpen {
		t.Errorf("breaker %s after the open period, want half_open", s)
	}
	if err := call(); !errors.Is(err, ErrCircuitOpen) {
		t.Errorf("failed probe: err = %v, want the probe's fault then ErrCircuitOpen (no retry)", err)
	}
	if n := fs.count(); n != 4 {
		t.Errorf("%d requests, want exactly one probe (4)", n)
	}
	if s := c.BreakerState(); s != BreakerOpen {
		t.Errorf("breaker %s after a failed probe, want open", s)
	}

	// The authority recovers: the next probe closes the breaker.
	fs.answerAll(ok200, 0)
	time.Sleep(openFor + 20*time.Millisecond)
	if err := call(); err != nil {
		t.Fatalf("successful probe: %v", err)
	}
	if s := c.BreakerState(); s != BreakerClosed {
		t.Errorf("breaker %s after a successful probe, want closed", s)
	}
	if err := call(); err != nil {
		t.Errorf("after closing: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []BreakerState{BreakerClosed, BreakerOpen, BreakerHalfOpen, BreakerOpen, BreakerHalfOpen, BreakerClosed}
	if !slices.Equal(states, want) {
		t.Errorf("states %v, want %v", states, want)
	}
}

func TestBreakerLetsOneProbeThrough(t *testing.T) {
	const openFor = 100 * time.Millisecond
	fs := newFaultServer(t, 0, unavailable503)
	c := resilientClient(t, fs.URL, func(cfg *Config) {
		cfg.Retries = -1
		cfg.BreakerFailures = 1
		cfg.BreakerOpenFor = openFor
	})
	_, _ = c.OnBehalfOf(context.Background(), "tokA", []string{"s/x"})
	if s := c.BreakerState(); s != BreakerOpen {
		t.Fatalf("breaker %s, want open", s)
	}
	fs.answerAll(ok200, 300*time.Millisecond)
	time.Sleep(openFor + 20*time.Millisecond)

	// A slow probe: everybody else is refused while it is in flight.
	probe := make(chan error, 1)
	go func() {
		_, err := c.OnBehalfOf(context.Background(), "tokA", []string{"s/x"})
		probe <- err
	}()
	for fs.current() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	_, err := c.OnBehalfOf(context.Background(), "tokB", []string{"s/x"})
	var ue *UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, ErrCircuitOpen) || ue.RetryAfter != time.Second {
		t.Errorf("during the probe: err = %v, want ErrCircuitOpen with RetryAfter 1s", err)
	}
	if err := <-probe; err != nil {
		t.Errorf("probe: %v", err)
	}
	if n := fs.count(); n != 2 {
		t.Errorf("%d requests, want the fault and one probe (2)", n)
	}
	if s := c.BreakerState(); s != BreakerClosed {
		t.Errorf("breaker %s, want closed", s)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	tests := []struct {
		name         string
		max          int
		queueTimeout time.Duration
		latency      time.Duration
		extra        int // calls started once max calls are in flight
		wantOK       int
		wantOverload int
		// overloadWithin bounds how long an overloaded call takes.
		overloadAfter, overloadWithin time.Duration
	}{
		{name: "extra call waits for a slot", max: 2, queueTimeout: 2 * time.Second, latency: 150 * time.Millisecond, extra: 2, wantOK: 4},
		{name: "extra call overloaded after the queue timeout", max: 2, queueTimeout: 150 * time.Millisecond, latency: time.Second, extra: 1, wantOK: 2, wantOverload: 1,
			overloadAfter: 150 * time.Millisecond, overloadWithin: 600 * time.Millisecond},
		{name: "no queue", max: 1, queueTimeout: -1, latency: 500 * time.Millisecond, extra: 3, wantOK: 1, wantOverload: 3,
			overloadWithin: 200 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFaultServer(t, tc.latency, ok200)
			var rejects atomic.Int64
			c := resilientClient(t, fs.URL, func(cfg *Config) {
				cfg.MaxConcurrent = tc.max
				cfg.QueueTimeout = tc.queueTimeout
				cfg.OnQueueReject = func() { rejects.Add(1) }
			})
			type result struct {
				err error
				d   time.Duration
			}
			results := make(chan result, tc.max+tc.extra)
			run := func(i int) {
				start := time.Now()
				_, err := c.OnBehalfOf(context.Background(), "tok"+strconv.Itoa(i), []string{"s/x"})
				results <- result{err, time.Since(start)}
			}
			for i := range tc.max {
				go run(i)
			}
			for fs.current() < tc.max {
				time.Sleep(2 * time.Millisecond)
			}
			for i := range tc.extra {
				go run(tc.max + i)
			}
			okN, overloaded := 0, 0
			for range tc.max + tc.extra {
				r := <-results
				switch {
				case r.err == nil:
					okN++
				case errors.Is(r.err, ErrOverloaded):
					overloaded++
					var ue *UnavailableError
					if !errors.As(r.err, &ue) || ue.RetryAfter != time.Second || Outcome(r.err) != "overloaded" {
						t.Errorf("overload error %#v: want an *UnavailableError with RetryAfter 1s", r.err)
					}
					if r.d < tc.overloadAfter || r.d > tc.overloadWithin {
						t.Errorf("overloaded after %v, want between %v and %v", r.d, tc.overloadAfter, tc.overloadWithin)
					}
				default:
					t.Errorf("unexpected error: %v", r.err)
				}
			}
			if okN != tc.wantOK || overloaded != tc.wantOverload {
				t.Errorf("%d succeeded, %d overloaded; want %d and %d", okN, overloaded, tc.wantOK, tc.wantOverload)
			}
			if m := fs.maxInFlight(); m > tc.max {
				t.Errorf("%d requests in flight at once, limit %d", m, tc.max)
			}
			if n := rejects.Load(); n != int64(tc.wantOverload) {
				t.Errorf("OnQueueReject called %d times, want %d", n, tc.wantOverload)
			}
		})
	}
}

func TestOutcomeOfResilienceErrors(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&Error{StatusCode: 429}, "throttled"},
		{&Error{StatusCode: 429, Code: "temporarily_unavailable"}, "throttled"},
		{&Error{StatusCode: 503, Code: "temporarily_unavailable"}, "unavailable"},
		{&Error{StatusCode: 500}, "unavailable"},
		{&Error{StatusCode: 400, Code: "temporarily_unavailable"}, "unavailable"},
		{&Error{StatusCode: 404}, "authority_error"},
		{&UnavailableError{Op: "token", Err: ErrCircuitOpen, RetryAfter: time.Second}, "circuit_open"},
		{&UnavailableError{Op: "token", Err: ErrOverloaded}, "overloaded"},
		{&UnavailableError{Op: "token", Err: context.DeadlineExceeded}, "timeout"},
		{&UnavailableError{Op: "token", Err: errors.New("connection refused")}, "unavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := Outcome(tc.err); got != tc.want {
				t.Errorf("Outcome = %q, want %q", got, tc.want)
			}
		})
	}
}
