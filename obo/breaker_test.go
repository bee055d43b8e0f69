package obo

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestBreakerReportsHalfOpenOnTime: the state callback (the
// obo_gateway_breaker_state gauge) reads half-open once the open period is
// over, with no request to notice it.
func TestBreakerReportsHalfOpenOnTime(t *testing.T) {
	srv, _ := tokenServer(t, func(w http.ResponseWriter, _ url.Values) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	var mu sync.Mutex
	var states []BreakerState
	const openFor = 100 * time.Millisecond
	c, err := NewClient(Config{
		ClientID: "client-a", TokenEndpoint: srv.URL, Credential: ClientSecret("s"), Timeout: 2 * time.Second,
		Retries: -1, BreakerFailures: 1, BreakerOpenFor: openFor,
		OnBreakerState: func(s BreakerState) { mu.Lock(); states = append(states, s); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	opened := time.Now()
	if _, err := c.OnBehalfOf(context.Background(), "a", []string{"s/x"}); err == nil {
		t.Fatal("no error from a failing authority")
	}
	want := []BreakerState{BreakerClosed, BreakerOpen, BreakerHalfOpen}
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		got := slices.Clone(states)
		mu.Unlock()
		if slices.Equal(got, want) {
			if took := time.Since(opened); took < openFor {
				t.Errorf("half-open after %v, before the open period of %v", took, openFor)
			}
			return
		}
	}
	t.Errorf("states %v, want %v without a further request", states, want)
}
