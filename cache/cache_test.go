package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewEntryTiming(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name                string
		lifetime, refreshIn time.Duration
		usable, refresh     time.Duration // after t0
	}{
		{"one hour", time.Hour, 0, 55 * time.Minute, 55 * time.Minute * 3 / 4},
		{"one hour, refresh_in 30m", time.Hour, 30 * time.Minute, 55 * time.Minute, 30 * time.Minute},
		{"refresh_in after usable", time.Hour, 58 * time.Minute, 55 * time.Minute, 55 * time.Minute * 3 / 4},
		{"20 seconds", 20 * time.Second, 0, 10 * time.Second, 7500 * time.Millisecond},
		{"8 minutes", 8 * time.Minute, 0, 4 * time.Minute, 3 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEntry("k", "tok", "Bearer", t0, t0.Add(tc.lifetime), tc.refreshIn)
			if got := e.UsableUntil.Sub(t0); got != tc.usable {
				t.Errorf("usable for %v, want %v", got, tc.usable)
			}
			if got := e.RefreshAt.Sub(t0); got != tc.refresh {
				t.Errorf("refresh at %v, want %v", got, tc.refresh)
			}
		})
	}
}

func TestKeysSeparateUsersAndScopes(t *testing.T) {
	s := NormalizeScopes([]string{"User.Read", "https://x/B", "user.read", " "})
	if s != "https://x/b user.read" {
		t.Errorf("NormalizeScopes = %q", s)
	}
	keys := []string{
		UserKey("t1", "u1", nil, "a"), UserKey("t1", "u2", nil, "a"), UserKey("t2", "u1", nil, "a"),
		UserKey("t1", "u1", nil, "b"), UserKey("t1u", "1", nil, "a"), UserKey("t", "1u1", nil, "a"),
		UserKey("t1", "u1", []string{"c1"}, "a"), UserKey("t1", "u1", []string{"c1", "c2"}, "a"),
		AppKey("a"), AssertionKey([32]byte{1}, "a"), AssertionKey([32]byte{2}, "a"),
		AgentKey("l", "t1", "g1", "", "a"), AgentKey("l", "t1", "g2", "", "a"), AgentKey("l", "t2", "g1", "", "a"),
		AgentKey("m", "t1", "g1", "", "a"), AgentKey("l", "t1", "g1", "u1", "a"), AgentKey("l", "t1", "g1", "u2", "a"),
		AgentKey("l", "t1", "g1u", "1", "a"), AgentKey("l", "t1", "g1", "", "b"),
	}
	if UserKey("t", "u", []string{"c2", "c1", "c1"}, "a") != UserKey("t", "u", []string{"c1", "c2"}, "a") {
		t.Error("authentication contexts are not normalised")
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			t.Errorf("key %q produced twice", k)
		}
		seen[k] = true
	}
}

func newCache(t *testing.T, now func() time.Time) *Cache {
	t.Helper()
	c, err := New(Config{MaxBytes: 1 << 20, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestEntryIsNotServedInsideSafetyMargin(t *testing.T) {
	var now atomic.Int64
	t0 := time.Now()
	now.Store(t0.UnixNano())
	c := newCache(t, func() time.Time { return time.Unix(0, now.Load()) })
	c.Set(NewEntry("k", "tok", "Bearer", t0, t0.Add(time.Hour), 0))
	if _, ok := c.Get("k"); !ok {
		t.Fatal("fresh entry not served")
	}
	now.Store(t0.Add(55*time.Minute - time.Second).UnixNano())
	if _, ok := c.Get("k"); !ok {
		t.Error("entry not served just before its safety margin")
	}
	now.Store(t0.Add(55 * time.Minute).UnixNano())
	if _, ok := c.Get("k"); ok {
		t.Error("entry served inside its safety margin")
	}
}

func TestFetchRunsOnceForConcurrentMisses(t *testing.T) {
	c := newCache(t, nil)
	var calls atomic.Int32
	release := make(chan struct{})
	fetch := func(ctx context.Context) (*Entry, error) {
		calls.Add(1)
		<-release
		now := time.Now()
		return NewEntry("k", "tok", "Bearer", now, now.Add(time.Hour), 0), nil
	}
	var wg sync.WaitGroup
	results := make(chan Result, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, res, err := c.Fetch(context.Background(), "k", fetch)
			if err != nil || e.Token != "tok" {
				t.Errorf("Fetch = %v, %v", e, err)
			}
			results <- res
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	close(results)
	if n := calls.Load(); n != 1 {
		t.Errorf("fetch ran %d times, want 1", n)
	}
	// Afterwards it is a hit, with no fetch.
	if _, res, _ := c.Fetch(context.Background(), "k", fetch); res != Hit || calls.Load() != 1 {
		t.Errorf("after the flight: result %v, fetches %d", res, calls.Load())
	}
}

func TestFetchErrorsAreNotCached(t *testing.T) {
	c := newCache(t, nil)
	var calls int
	boom := errors.New("boom")
	fetch := func(ctx context.Context) (*Entry, error) { calls++; return nil, boom }
	for range 3 {
		if _, _, err := c.Fetch(context.Background(), "k", fetch); !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
	}
	if calls != 3 {
		t.Errorf("fetch ran %d times for 3 calls; an error was cached", calls)
	}
}

func TestFetchCallerCancellationDoesNotCancelFlight(t *testing.T) {
	c := newCache(t, nil)
	release := make(chan struct{})
	var fetchErr atomic.Value
	fetch := func(ctx context.Context) (*Entry, error) {
		<-release
		if err := ctx.Err(); err != nil {
			fetchErr.Store(err)
		}
		now := time.Now()
		return NewEntry("k", "tok", "Bearer", now, now.Add(time.Hour), 0), nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, _, err := c.Fetch(ctx, "k", fetch); done <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller got %v", err)
	}
	close(release)
	// The flight completes and stores the entry for the next caller.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := c.Get("k"); ok {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, ok := c.Get("k"); !ok {
		t.Error("the flight's entry was not stored after its first caller gave up")
	}
	if v := fetchErr.Load(); v != nil {
		t.Errorf("fetch context was cancelled: %v", v)
	}
}

func TestDelete(t *testing.T) {
	c := newCache(t, nil)
	now := time.Now()
	c.Set(NewEntry("k", "tok", "Bearer", now, now.Add(time.Hour), 0))
	c.Delete("k")
	if _, ok := c.Get("k"); ok {
		t.Error("entry served after Delete")
	}
}

func TestMemoryBound(t *testing.T) {
	const maxBytes = 1 << 20
	var evictions atomic.Int64
	c, err := New(Config{MaxBytes: maxBytes, OnEvict: func() { evictions.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	token := string(make([]byte, 2000))
	now := time.Now()
	for i := range 5000 { // ~10 MB offered to a 1 MiB cache
		c.Set(NewEntry(fmt.Sprintf("user-%d", i), token, "Bearer", now, now.Add(time.Hour), 0))
	}
	used := c.store.MaxCost() - c.store.RemainingCost()
	if used > maxBytes {
		t.Errorf("cache holds %d bytes, more than MaxBytes %d", used, maxBytes)
	}
	if used < maxBytes/2 {
		t.Errorf("cache holds only %d bytes of %d; the bound is not being used", used, maxBytes)
	}
	if evictions.Load() == 0 {
		t.Error("no evictions counted")
	}
}

// TestEntryCredential: the Authorization value of an entry is its scheme, a
// space and its token, and follows the fields when they are changed.
func TestEntryCredential(t *testing.T) {
	now := time.Now()
	e := NewEntry("k", "tok-b", "Bearer", now, now.Add(time.Hour), 0)
	if got := e.Credential(); got != "Bearer tok-b" {
		t.Fatalf("Credential() = %q, want %q", got, "Bearer tok-b")
	}
	e.Token = "tok-c"
	if got := e.Credential(); got != "Bearer tok-c" {
		t.Errorf("after changing Token, Credential() = %q, want %q", got, "Bearer tok-c")
	}
	if got := (&Entry{Token: "t", TokenType: "PoP"}).Credential(); got != "PoP t" {
		t.Errorf("literal Entry: Credential() = %q, want %q", got, "PoP t")
	}
}
