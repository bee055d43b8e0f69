package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable time source.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.ns.Store(t.UnixNano()); return c }
func (c *clock) now() time.Time   { return time.Unix(0, c.ns.Load()) }
func (c *clock) set(t time.Time)  { c.ns.Store(t.UnixNano()) }

// refreshingCache returns a Cache on clk whose refresh-ahead outcomes
// arrive on the returned channel (read them with awaitRefresh); retry is
// its RefreshRetry (0: the default).
func refreshingCache(t *testing.T, clk *clock, retry time.Duration) (*Cache, <-chan error) {
	t.Helper()
	refreshed := make(chan error, 10)
	c, err := New(Config{MaxBytes: 1 << 20, Now: clk.now, RefreshRetry: retry,
		OnRefresh: func(_ string, err error) { refreshed <- err }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, refreshed
}

// awaitRefresh returns the outcome of the next refresh-ahead reported on
// refreshed, failing the test if none comes within ten seconds.
func awaitRefresh(t *testing.T, refreshed <-chan error) error {
	t.Helper()
	select {
	case err := <-refreshed:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no refresh-ahead reported within 10 s")
		return nil
	}
}

func TestRefreshAheadServesOldAndReplaces(t *testing.T) {
	t0 := time.Now()
	clk := newClock(t0)
	c, refreshed := refreshingCache(t, clk, 0)
	c.Set(NewEntry("k", "old", "Bearer", t0, t0.Add(time.Hour), 0)) // refresh at 41m15s

	var calls atomic.Int32
	release := make(chan struct{})
	fetch := func(ctx context.Context) (*Entry, error) {
		calls.Add(1)
		<-release
		now := clk.now()
		return NewEntry("k", "new", "Bearer", now, now.Add(time.Hour), 0), nil
	}

	// Before the refresh time: a plain hit.
	if e, res, _ := c.Fetch(context.Background(), "k", fetch); e.Token != "old" || res != Hit || calls.Load() != 0 {
		t.Fatalf("before refresh time: %s %v, %d fetches", e.Token, res, calls.Load())
	}
	clk.set(t0.Add(42 * time.Minute))
	// Many requests past the refresh time: all served at once from the
	// cache, one refresh in the background.
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, res, err := c.Fetch(context.Background(), "k", fetch)
			if err != nil || e.Token != "old" || res != Hit {
				t.Errorf("during refresh: %v %v %v", e, res, err)
			}
		}()
	}
	wg.Wait()
	close(release)
	if err := awaitRefresh(t, refreshed); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d refreshes ran for one key, want 1", n)
	}
	if e, _ := c.Get("k"); e.Token != "new" {
		t.Errorf("after refresh: %s", e.Token)
	}
}

func TestFailedRefreshKeepsOldUntilMargin(t *testing.T) {
	t0 := time.Now()
	clk := newClock(t0)
	c, refreshed := refreshingCache(t, clk, time.Minute)
	c.Set(NewEntry("k", "old", "Bearer", t0, t0.Add(time.Hour), 0))
	var calls atomic.Int32
	boom := errors.New("authority down")
	fetch := func(ctx context.Context) (*Entry, error) { calls.Add(1); return nil, boom }

	clk.set(t0.Add(50 * time.Minute))
	if e, res, err := c.Fetch(context.Background(), "k", fetch); err != nil || e.Token != "old" || res != Hit {
		t.Fatalf("%v %v %v", e, res, err)
	}
	if err := awaitRefresh(t, refreshed); !errors.Is(err, boom) {
		t.Fatalf("OnRefresh got %v", err)
	}
	// Within RefreshRetry: no new attempt, still the old token.
	clk.set(t0.Add(50*time.Minute + 30*time.Second))
	if e, _, _ := c.Fetch(context.Background(), "k", fetch); e.Token != "old" {
		t.Fatal("old token not served after a failed refresh")
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d attempts within RefreshRetry, want 1", n)
	}
	// After RefreshRetry: another attempt.
	clk.set(t0.Add(52 * time.Minute))
	c.Fetch(context.Background(), "k", fetch)
	awaitRefresh(t, refreshed)
	if n := calls.Load(); n != 2 {
		t.Errorf("%d attempts after RefreshRetry, want 2", n)
	}
	// Inside the safety margin the old token is no longer served: a miss
	// that waits for (and here fails with) the fetch.
	clk.set(t0.Add(55 * time.Minute))
	if _, res, err := c.Fetch(context.Background(), "k", fetch); !errors.Is(err, boom) || res != Miss {
		t.Errorf("inside the margin: %v %v", res, err)
	}
}

func TestShortLivedTokenIsRefreshedAhead(t *testing.T) {
	// A 20-second token is usable for 10 s and refreshed from 7.5 s.
	t0 := time.Now()
	clk := newClock(t0)
	c, done := refreshingCache(t, clk, 0)
	c.Set(NewEntry("k", "old", "Bearer", t0, t0.Add(20*time.Second), 0))
	fetch := func(ctx context.Context) (*Entry, error) {
		now := clk.now()
		return NewEntry("k", "new", "Bearer", now, now.Add(20*time.Second), 0), nil
	}
	clk.set(t0.Add(7 * time.Second))
	c.Fetch(context.Background(), "k", fetch)
	select {
	case <-done:
		t.Fatal("refreshed before 7.5 s")
	case <-time.After(50 * time.Millisecond):
	}
	clk.set(t0.Add(7600 * time.Millisecond))
	c.Fetch(context.Background(), "k", fetch)
	if err := awaitRefresh(t, done); err != nil {
		t.Fatal(err)
	}
	if e, ok := c.Get("k"); !ok || e.Token != "new" {
		t.Error("short-lived token was not refreshed ahead")
	}
}

// TestAnEntryForAnotherKeyIsNeverStored: a fetch (or a refresh) that
// answers with another key's entry fails and stores nothing under key.
func TestAnEntryForAnotherKeyIsNeverStored(t *testing.T) {
	t0 := time.Now()
	clk := newClock(t0)
	c, refreshed := refreshingCache(t, clk, 0)
	other := func(ctx context.Context) (*Entry, error) {
		return NewEntry("other", "someone-else", "Bearer", clk.now(), clk.now().Add(time.Hour), 0), nil
	}

	if _, _, err := c.Fetch(context.Background(), "k", other); err == nil {
		t.Error("a miss answered with another key's entry succeeded")
	}
	if e, ok := c.Get("k"); ok {
		t.Errorf("k holds %q after a fetch for another key", e.Token)
	}

	c.Set(NewEntry("k", "old", "Bearer", t0, t0.Add(time.Hour), 0))
	clk.set(t0.Add(50 * time.Minute))
	if e, res, err := c.Fetch(context.Background(), "k", other); err != nil || res != Hit || e.Token != "old" {
		t.Fatalf("due for refresh: %v %v %v", e, res, err)
	}
	if err := awaitRefresh(t, refreshed); err == nil {
		t.Error("a refresh answered with another key's entry succeeded")
	}
	if e, _ := c.Get("k"); e == nil || e.Token != "old" {
		t.Errorf("after a refresh for another key, k holds %v", e)
	}
}

// TestRefreshReportedAfterKeyReleased: OnRefresh runs once the key is free
// for the next refresh, so a caller told of a failure can retry at once.
// (Reporting first let a test's next Fetch find the old refresh still
// registered and start none.)
func TestRefreshReportedAfterKeyReleased(t *testing.T) {
	t0 := time.Now()
	clk := newClock(t0)
	stillRunning := make(chan bool, 1)
	var c *Cache
	c, err := New(Config{MaxBytes: 1 << 20, Now: clk.now,
		OnRefresh: func(key string, _ error) {
			_, running := c.refreshing.Load(key)
			stillRunning <- running
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	c.Set(NewEntry("k", "old", "Bearer", t0, t0.Add(time.Hour), 0))
	clk.set(t0.Add(50 * time.Minute))
	fail := func(context.Context) (*Entry, error) { return nil, errors.New("authority down") }
	c.Fetch(context.Background(), "k", fail)
	select {
	case running := <-stillRunning:
		if running {
			t.Error("OnRefresh ran while the key was still marked as refreshing")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no refresh-ahead reported within 10 s")
	}
}
