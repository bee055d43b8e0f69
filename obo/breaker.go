package obo

import (
	"fmt"
	"sync"
	"time"
)

// halfOpenRetryAfter is the delay announced to callers refused while the
// half-open probe is in flight: the probe's answer is due soon.
const halfOpenRetryAfter = time.Second

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

// BreakerState is the state of a Client's circuit breaker. Its numeric
// values are those of the obo_gateway_breaker_state gauge.
type BreakerState int

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
