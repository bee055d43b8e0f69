package obo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Defaults of the resilience settings of Config, used where a field is zero.
const (
	// DefaultRetries is the number of times a token request that failed
	// with a temporary fault is sent again.
	DefaultRetries = 2
	// DefaultRetryBaseDelay is the upper bound of the random pause before
	// the first retry; it doubles for every further retry.
	DefaultRetryBaseDelay = 100 * time.Millisecond
	// DefaultRetryMaxDelay caps the random pause between two attempts.
	DefaultRetryMaxDelay = 2 * time.Second
	// DefaultBreakerFailures is the number of consecutive temporary faults
	// that open the circuit breaker.
	DefaultBreakerFailures = 5
	// DefaultBreakerOpenFor is how long an open circuit breaker fails
	// token requests without calling the authority.
	DefaultBreakerOpenFor = 30 * time.Second
	// DefaultMaxConcurrent is the number of token requests a Client sends
	// to its authority at once.
	DefaultMaxConcurrent = 32
	// DefaultQueueTimeout bounds the wait for a free slot when
	// DefaultMaxConcurrent requests are in flight.
	DefaultQueueTimeout = 2 * time.Second
)

// halfOpenRetryAfter is the delay announced to callers refused while the
// half-open probe is in flight: the probe's answer is due soon.
const halfOpenRetryAfter = time.Second

// overloadRetryAfter is the delay announced to callers refused because
// every exchange slot stayed busy for the whole queue timeout.
const overloadRetryAfter = time.Second

// ErrCircuitOpen is the cause of an *UnavailableError returned without
// calling the authority, because its recent token requests failed with
// temporary faults and the circuit breaker is open. The error's RetryAfter
// says when the authority will be tried again.
var ErrCircuitOpen = errors.New("circuit breaker open: the authority failed repeatedly and is not called until it is probed")

// ErrOverloaded is the cause of an *UnavailableError returned because the
// Client's limit of concurrent token requests was reached and no slot came
// free within the queue timeout.
var ErrOverloaded = errors.New("too many concurrent token requests to the authority")

// BreakerState is the state of a Client's circuit breaker. Its numeric
// values are those of the obo_gateway_breaker_state gauge.
type BreakerState int

// The states of the circuit breaker.
const (
	// BreakerClosed lets every token request through. It is the initial
	// state.
	BreakerClosed BreakerState = 0
	// BreakerHalfOpen follows the open period: one probe request is let
	// through; its success closes the breaker, its failure opens it again.
	BreakerHalfOpen BreakerState = 1
	// BreakerOpen fails every token request at once with ErrCircuitOpen.
	BreakerOpen BreakerState = 2
)

// String returns "closed", "half_open" or "open".
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half_open"
	case BreakerOpen:
		return "open"
	}
	return fmt.Sprintf("BreakerState(%d)", int(s))
}

// verdict is what one attempt says about the authority's health.
type verdict int

const (
	// verdictNone: nothing was learnt (no request was sent, or the caller
	// gave up).
	verdictNone verdict = iota
	// verdictHealthy: the authority answered (a token or a refusal that is
	// not a temporary fault).
	verdictHealthy
	// verdictFault: a transport error, a timeout, a 429 or a 5xx.
	verdictFault
)

// breaker is a consecutive-failure circuit breaker. A nil *breaker is a
// breaker that never opens.
type breaker struct {
	threshold int
	openFor   time.Duration
	// onState, when set, is called with every new state, under mu so that
	// the reported states follow the transitions in order.
	onState func(BreakerState)

	mu          sync.Mutex
	state       BreakerState
	consecutive int         // temporary faults in a row while closed
	openUntil   time.Time   // end of the open period
	probing     bool        // the half-open probe is in flight
	halfOpen    *time.Timer // reports half-open when the open period ends
}

func newBreaker(threshold int, openFor time.Duration, onState func(BreakerState)) *breaker {
	if threshold <= 0 {
		return nil
	}
	b := &breaker{threshold: threshold, openFor: openFor, onState: onState}
	if onState != nil {
		onState(BreakerClosed)
	}
	return b
}

func (b *breaker) setState(s BreakerState) {
	b.state = s
	if b.onState != nil {
		b.onState(s)
	}
}

// State returns the current state, as it would be seen by the next request.
func (b *breaker) State() BreakerState {
	if b == nil {
		return BreakerClosed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen && !time.Now().Before(b.openUntil) {
		return BreakerHalfOpen
	}
	return b.state
}

// refusal returns how long a request arriving now would be refused for, or
// zero when it would be let through (possibly as the probe). It changes
// nothing, so it can be asked before waiting for an exchange slot.
func (b *breaker) refusal() time.Duration {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.refusalLocked(time.Now())
}

func (b *breaker) refusalLocked(now time.Time) time.Duration {
	switch b.state {
	case BreakerOpen:
		if left := b.openUntil.Sub(now); left > 0 {
			return left
		}
	case BreakerHalfOpen:
		if b.probing {
			return halfOpenRetryAfter
		}
	}
	return 0
}

// allow decides whether a request may be sent now. When it may, probe says
// whether it is the half-open probe, whose verdict must be reported with
// record. When it may not, retryAfter is the time left before the next
// probe.
func (b *breaker) allow() (probe bool, retryAfter time.Duration) {
	if b == nil {
		return false, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if left := b.refusalLocked(now); left > 0 {
		return false, left
	}
	if b.state == BreakerClosed {
		return false, 0
	}
	// Open period over, or half-open without a probe in flight: this
	// request is the probe.
	if b.state != BreakerHalfOpen {
		b.setState(BreakerHalfOpen)
	}
	b.probing = true
	return true, 0
}

// record reports the verdict of a request that allow let through.
func (b *breaker) record(probe bool, v verdict) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
		switch v {
		case verdictHealthy:
			b.consecutive = 0
			b.setState(BreakerClosed)
		case verdictFault:
			b.open()
		}
		// verdictNone: stay half-open; the next request probes.
		return
	}
	if b.state != BreakerClosed {
		// A request let through before the breaker opened: the probe
		// decides now.
		return
	}
	switch v {
	case verdictHealthy:
		b.consecutive = 0
	case verdictFault:
		b.consecutive++
		if b.consecutive >= b.threshold {
			b.open()
		}
	}
}

func (b *breaker) open() {
	b.consecutive = 0
	b.openUntil = time.Now().Add(b.openFor)
	b.setState(BreakerOpen)
	// The state is reported when the open period ends, not when the
	// next request comes.
	if b.halfOpen != nil {
		b.halfOpen.Stop()
	}
	b.halfOpen = time.AfterFunc(b.openFor, b.endOpenPeriod)
}

// endOpenPeriod turns an open breaker whose period is over half-open.
func (b *breaker) endOpenPeriod() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen && !time.Now().Before(b.openUntil) {
		b.setState(BreakerHalfOpen)
	}
}

// slots bounds the token requests in flight. A nil *slots has no bound.
type slots struct {
	ch      chan struct{}
	timeout time.Duration // negative: no wait
}

func newSlots(max int, timeout time.Duration) *slots {
	if max <= 0 {
		return nil
	}
	return &slots{ch: make(chan struct{}, max), timeout: timeout}
}

// acquire waits for a free slot, at most the queue timeout and never past
// ctx. It returns an *UnavailableError wrapping ErrOverloaded when none came
// free, or ctx's error when the caller gave up.
func (s *slots) acquire(ctx context.Context) error {
	if s == nil {
		return nil
	}
	select {
	case s.ch <- struct{}{}:
		return nil
	default:
	}
	if s.timeout < 0 {
		return s.overloaded(0)
	}
	start := time.Now()
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case s.ch <- struct{}{}:
		return nil
	case <-t.C:
		return s.overloaded(time.Since(start))
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// The exchange's deadline came first: still no free slot.
			return s.overloaded(time.Since(start))
		}
		return &UnavailableError{Op: "token", Err: fmt.Errorf("waiting for an exchange slot: %w", ctx.Err())}
	}
}

func (s *slots) release() {
	if s != nil {
		<-s.ch
	}
}

func (s *slots) overloaded(waited time.Duration) error {
	return &UnavailableError{
		Op:         "token",
		Err:        fmt.Errorf("%w: %d in flight, none free after %s", ErrOverloaded, cap(s.ch), waited.Round(time.Millisecond)),
		RetryAfter: overloadRetryAfter,
	}
}

// retryPolicy says whether and when a failed attempt is repeated.
type retryPolicy struct {
	retries       int
	base, maxWait time.Duration
}

// retryable reports whether err is a temporary fault worth another attempt:
// the authority could not be reached or did not answer in time, or it
// answered 429 or 5xx. OAuth refusals (invalid_grant, interaction_required,
// invalid_client, ...) and credential errors are final.
func retryable(err error) bool {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Temporary()
	}
	var ue *UnavailableError
	return errors.As(err, &ue) && !errors.Is(ue.Err, context.Canceled)
}

// delay returns the pause before retry number n (1 for the first retry):
// the authority's Retry-After when it sent one, otherwise a full-jitter
// exponential backoff, a random time below min(max, base·2ⁿ⁻¹).
func (p retryPolicy) delay(n int, err error) time.Duration {
	var ae *Error
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		return ae.RetryAfter
	}
	ceiling := p.maxWait
	if n-1 < 30 && p.base<<(n-1) < ceiling {
		ceiling = p.base << (n - 1)
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling)
}

// faultVerdict classifies the outcome of one attempt for the breaker.
func faultVerdict(ctx context.Context, err error, sent bool) verdict {
	if !sent {
		return verdictNone
	}
	if err == nil {
		return verdictHealthy
	}
	var ae *Error
	if errors.As(err, &ae) {
		if ae.Temporary() {
			return verdictFault
		}
		return verdictHealthy
	}
	var ue *UnavailableError
	if errors.As(err, &ue) {
		if errors.Is(ctx.Err(), context.Canceled) {
			// The caller gave up; the authority is not to blame.
			return verdictNone
		}
		return verdictFault
	}
	// An answer that could not be decoded: the authority did answer.
	return verdictHealthy
}

// exchange runs one token request with the resilience rules: it waits for
// an exchange slot, then sends attempts until one succeeds, fails for good,
// or the retries or the deadline of ctx run out. Each attempt asks the
// circuit breaker first. attempt sends one request and reports whether it
// reached the network.
func (c *Client) exchange(ctx context.Context, attempt func(context.Context) (*Token, bool, error)) (*Token, error) {
	if wait := c.breaker.refusal(); wait > 0 {
		return nil, circuitOpen(wait, nil)
	}
	if err := c.slots.acquire(ctx); err != nil {
		if errors.Is(err, ErrOverloaded) && c.cfg.OnQueueReject != nil {
			c.cfg.OnQueueReject()
		}
		return nil, err
	}
	defer c.slots.release()

	var lastErr error
	for n := 0; ; n++ {
		probe, wait := c.breaker.allow()
		if wait > 0 {
			return nil, circuitOpen(wait, lastErr)
		}
		tok, sent, err := attempt(ctx)
		c.breaker.record(probe, faultVerdict(ctx, err, sent))
		if err == nil {
			return tok, nil
		}
		lastErr = err
		if n >= c.retry.retries || !retryable(err) || ctx.Err() != nil {
			return nil, err
		}
		d := c.retry.delay(n+1, err)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= d+minAttemptTime {
			// The pause would not leave time for another attempt: give
			// the caller the fault now, with the authority's Retry-After
			// when it sent one.
			return nil, err
		}
		if d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, err
			}
		}
		if c.cfg.OnRetry != nil {
			c.cfg.OnRetry(Outcome(err))
		}
	}
}

// minAttemptTime is the least time left before the deadline for a retry to
// be worth sending.
const minAttemptTime = 50 * time.Millisecond

// circuitOpen returns the error of a request refused by the open breaker;
// last is the fault of the request's own previous attempt, if any.
func circuitOpen(wait time.Duration, last error) error {
	err := ErrCircuitOpen
	if last != nil {
		err = fmt.Errorf("%w (last fault: %v)", ErrCircuitOpen, last)
	}
	return &UnavailableError{Op: "token", Err: err, RetryAfter: wait}
}

// BreakerState returns the state of the Client's circuit breaker as the
// next token request would find it (BreakerHalfOpen once the open period is
// over). Without a breaker it is always BreakerClosed.
func (c *Client) BreakerState() BreakerState { return c.breaker.State() }
