package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"
)

// TestWrkHoldsARate drives a loopback server with wrk at a fixed rate and
// checks that the requests came at that rate, spread over the run rather
// than in bursts, each with a token.
func TestWrkHoldsARate(t *testing.T) {
	g, err := newLoadGen(t.TempDir(), "", 16, []string{"token-1", "token-2"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if g.name != "wrk" {
		if os.Getenv("CI") != "" {
			t.Fatal("wrk is not installed; .ci/run installs it")
		}
		t.Skip("wrk is not installed")
	}
	var (
		mu        sync.Mutex
		arrivals  []time.Time
		untokened int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		if a := r.Header.Get("Authorization"); a != "Bearer token-1" && a != "Bearer token-2" {
			untokened++
		}
		mu.Unlock()
	}))
	defer srv.Close()

	const rate, d = 500.0, 2 * time.Second
	res, err := g.driveAt(srv.URL+"/api/x", d, rate)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := rate * d.Seconds(); float64(res.requests) < 0.85*want || float64(res.requests) > 1.1*want {
		t.Errorf("wrk sent %d requests in %v at %v/s, want about %v", res.requests, d, rate, want)
	}
	if res.errors != 0 || untokened != 0 {
		t.Errorf("%d errors, %d requests without a token", res.errors, untokened)
	}
	// The arrivals keep to the schedule: at no time are they more than a
	// quarter of a second's worth of requests ahead of it or behind it (a
	// stalled machine falls behind and catches up; an unpaced wrk would be
	// thousands ahead within the first tenth of a second).
	if len(arrivals) == 0 {
		t.Fatal("the server saw no request")
	}
	const slack = rate / 4
	for i, a := range arrivals {
		due := rate * a.Sub(arrivals[0]).Seconds()
		if n := float64(i); n > due+slack || n < due-slack {
			t.Fatalf("request %d arrived %v into the run, when about %.0f were due", i, a.Sub(arrivals[0]), due)
		}
	}
}
