package obo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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
