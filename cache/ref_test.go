package cache

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// countingCache returns a Cache on clk whose store counts its lookups.
func countingCache(t *testing.T, clk *clock, maxBytes int64) *Cache {
	t.Helper()
	c, err := New(Config{MaxBytes: maxBytes, Now: clk.now, metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// cacheHolding returns a counting Cache holding one entry, under key, usable
// for the next hour.
func cacheHolding(t *testing.T, key string) (*Cache, *Entry) {
	t.Helper()
	t0 := time.Now()
	c := countingCache(t, newClock(t0), 1<<20)
	e := NewEntry(key, "token-"+key, "Bearer", t0, t0.Add(time.Hour), 0)
	c.Set(e)
	return c, e
}

// lookups is how many times the store was asked for a key.
func (c *Cache) lookups() uint64 { return c.store.Metrics.Hits() + c.store.Metrics.Misses() }

func TestFreshRefSkipsMostLookups(t *testing.T) {
	c, e := cacheHolding(t, "k")
	var r Ref
	const uses = 80
	before := c.lookups()
	for range uses {
		if got, ok := c.FreshRef(&r, "k"); !ok || got != e {
			t.Fatalf("FreshRef = %v, %v; want the stored entry", got, ok)
		}
	}
	// The first two uses look the key up, then one in refSample: the
	// store's admission policy still sees the key used.
	n := c.lookups() - before
	if want := uses/refSample + 2; n < 3 || n > uint64(want) {
		t.Errorf("%d uses of a Ref looked the key up %d times, want 3 to %d", uses, n, want)
	}
}

// TestRefUsedOnceHoldsNothing: a caller that keeps no index hands FreshRef
// a new Ref each time, which must cost no weak pointer.
func TestRefUsedOnceHoldsNothing(t *testing.T) {
	c, _ := cacheHolding(t, "k")
	var r Ref
	if _, ok := c.FreshRef(&r, "k"); !ok {
		t.Fatal("FreshRef missed a stored entry")
	}
	if r.p.Load() != nil {
		t.Error("a Ref used once holds a weak pointer")
	}
	refs := make([]Ref, 101) // AllocsPerRun's warm-up run and 100 more
	i := 0
	if n := testing.AllocsPerRun(100, func() { c.FreshRef(&refs[i], "k"); i++ }); n != 0 {
		t.Errorf("FreshRef with a new Ref each time allocates %v times", n)
	}
}

func TestFreshRefFollowsTheStore(t *testing.T) {
	t0 := time.Now()
	for _, tc := range []struct {
		name string
		// change acts on the cache holding old under "k"; want is the
		// entry FreshRef must then return (nil: none), reporting it
		// fresh unless due.
		change func(c *Cache, clk *clock, old *Entry) (want *Entry)
		due    bool
	}{
		{"unchanged", func(c *Cache, _ *clock, old *Entry) *Entry { return old }, false},
		{"deleted", func(c *Cache, _ *clock, _ *Entry) *Entry { c.Delete("k"); return nil }, false},
		{"replaced", func(c *Cache, _ *clock, _ *Entry) *Entry {
			e := NewEntry("k", "new", "Bearer", t0, t0.Add(time.Hour), 0)
			c.Set(e)
			return e
		}, false},
		{"past its usable time", func(c *Cache, clk *clock, _ *Entry) *Entry { clk.set(t0.Add(56 * time.Minute)); return nil }, false},
		// Due for refresh-ahead: Fresh returns the entry but reports it
		// not fresh, so that Fetch starts the refresh; a Ref must not
		// hide it.
		{"due for refresh", func(c *Cache, clk *clock, old *Entry) *Entry { clk.set(t0.Add(42 * time.Minute)); return old }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock(t0)
			c := countingCache(t, clk, 1<<20)
			old := NewEntry("k", "old", "Bearer", t0, t0.Add(time.Hour), 0)
			c.Set(old)
			var r Ref
			for range 2 { // the second use points r at the entry
				if got, ok := c.FreshRef(&r, "k"); !ok || got != old {
					t.Fatalf("FreshRef before the change = %v, %v", got, ok)
				}
			}
			want := tc.change(c, clk, old)
			for i := range 2 * refSample { // every use, through the Ref or the store
				got, ok := c.FreshRef(&r, "k")
				if want == nil && (ok || got != nil) {
					t.Fatalf("use %d: FreshRef = %q, want nothing", i, got.Token)
				}
				if want != nil && (got != want || ok == tc.due) {
					t.Fatalf("use %d: FreshRef = %v, %v; want %q, %v", i, got, ok, want.Token, !tc.due)
				}
			}
		})
	}
}

// TestRefServesOnlyItsKey: a Ref handed another key looks that key up.
// TestFreshRefUnderConcurrentChanges runs Refs while the entry they serve
// is replaced and deleted (for the race detector): every answer is an
// entry for the key.
func TestFreshRefUnderConcurrentChanges(t *testing.T) {
	c, _ := cacheHolding(t, "k")
	t0 := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			var r Ref
			for {
				select {
				case <-done:
					return
				default:
				}
				if e, ok := c.FreshRef(&r, "k"); ok && e.Key != "k" {
					t.Errorf("FreshRef answered key k with an entry for %q", e.Key)
					return
				}
			}
		})
	}
	for i := range 200 {
		if i%3 == 0 {
			c.Delete("k")
		} else {
			c.Set(NewEntry("k", fmt.Sprint("token-", i), "Bearer", t0, t0.Add(time.Hour), 0))
		}
	}
	close(done)
	wg.Wait()
}

func TestRefServesOnlyItsKey(t *testing.T) {
	c, _ := cacheHolding(t, "a")
	var r Ref
	c.FreshRef(&r, "a")
	c.FreshRef(&r, "a")
	for range 2 * refSample {
		if got, ok := c.FreshRef(&r, "b"); ok || got != nil {
			t.Fatalf("a Ref to a's entry answered key b with %q", got.Token)
		}
	}
}

// TestEvictedEntriesAreRetired: entries the store evicts to stay within
// its bound are retired, so that no Ref serves them, and a Ref does not
// keep them in memory.
func TestEvictedEntriesAreRetired(t *testing.T) {
	t0 := time.Now()
	c := countingCache(t, newClock(t0), 64<<10)
	refs := make([]Ref, 400)
	// The test holds the entries until it has checked them, so that a Ref
	// found empty means retired, not collected.
	entries := make([]*Entry, len(refs))
	for i := range refs {
		key := fmt.Sprint("user-", i)
		entries[i] = NewEntry(key, fmt.Sprintf("token-%04d-%0900d", i, 0), "Bearer", t0, t0.Add(time.Hour), 0)
		c.Set(entries[i])
		c.FreshRef(&refs[i], key)
		c.FreshRef(&refs[i], key)
	}
	c.store.Wait()
	var evicted []int // entries a Ref pointed at that the store let go
	for i := range refs {
		key := fmt.Sprint("user-", i)
		if _, ok := c.Get(key); ok || refs[i].p.Load() == nil {
			continue
		}
		evicted = append(evicted, i)
		if !entries[i].retired.Load() {
			t.Errorf("%s was evicted but not retired", key)
		}
		for range refSample {
			if got, ok := c.FreshRef(&refs[i], key); ok || got != nil {
				t.Fatalf("%s was evicted but its Ref served it", key)
			}
		}
	}
	if len(evicted) == 0 {
		t.Fatal("no entry a Ref pointed at was evicted; the test needs a smaller cache")
	}
	entries = nil
	// Nothing but the Refs points at the evicted entries now.
	pinned := 0
	for range 5 {
		runtime.GC()
		pinned = 0
		for _, i := range evicted {
			if refs[i].p.Load().Value() != nil {
				pinned++
			}
		}
		if pinned == 0 {
			break
		}
	}
	if pinned > 0 {
		t.Errorf("%d of %d evicted entries are still in memory: Refs keep entries alive", pinned, len(evicted))
	}
}

// TestMissIsLookedUpOnce: the first request of a new key, as the proxy
// makes it (FreshRef, then FetchMissing), asks the store for the key once,
// so that the admission policy weighs it as one use.
func TestMissIsLookedUpOnce(t *testing.T) {
	t0 := time.Now()
	c := countingCache(t, newClock(t0), 1<<20)
	var r Ref
	before := c.lookups()
	if e, ok := c.FreshRef(&r, "new"); ok || e != nil {
		t.Fatalf("FreshRef of a new key = %v, %v", e, ok)
	}
	fetches := 0
	e, res, err := c.FetchMissing(context.Background(), "new", func(context.Context) (*Entry, error) {
		fetches++
		return NewEntry("new", "token-new", "Bearer", t0, t0.Add(time.Hour), 0), nil
	})
	if err != nil || e == nil || res != Miss || fetches != 1 {
		t.Fatalf("FetchMissing = %v, %v, %v after %d fetches", e, res, err, fetches)
	}
	if n := c.lookups() - before; n != 1 {
		t.Errorf("a new key's first request looked it up %d times, want 1", n)
	}
}

// TestFetchMissingFindsAStoredEntry: an entry stored between the caller's
// lookup and its flight is served, not fetched again.
func TestFetchMissingFindsAStoredEntry(t *testing.T) {
	c, stored := cacheHolding(t, "k")
	e, res, err := c.FetchMissing(context.Background(), "k", func(context.Context) (*Entry, error) {
		t.Error("FetchMissing fetched a key the store holds")
		return nil, errors.New("unexpected fetch")
	})
	if err != nil || e != stored || res != Hit {
		t.Errorf("FetchMissing = entry %p, %v, %v; want the stored entry %p, a hit", e, res, err, stored)
	}
}
