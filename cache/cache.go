package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/sync/singleflight"
)

// DefaultMaxBytes is the memory bound used when Config.MaxBytes is zero.
const DefaultMaxBytes = 64 << 20

// DefaultRefreshRetry is the pause after a failed refresh-ahead before the
// next attempt for the same entry, when Config.RefreshRetry is zero.
const DefaultRefreshRetry = 5 * time.Second

// averageEntryBytes sizes ristretto's admission counters: a typical Entra
// access token is 1.5–2.5 KB.
const averageEntryBytes = 2048

// Config configures a Cache.
type Config struct {
	// MaxBytes bounds the bytes of all entries (tokens, keys and
	// bookkeeping). Zero means DefaultMaxBytes.
	MaxBytes int64
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// OnEvict, when set, is called each time an entry is evicted to make
	// room (not when it expires or is deleted).
	OnEvict func()
	// OnReject, when set, is called each time the store refuses a new
	// entry (its admission policy judged it less valuable than what it
	// would evict); the next request for that key exchanges again.
	OnReject func()
	// OnRefresh, when set, is called after each refresh-ahead that asked
	// the authority, with its error (nil on success), once the key is free
	// to be refreshed again: it may run while the key's next refresh does.
	OnRefresh func(key string, err error)
	// RefreshRetry is the least time between two refresh-ahead attempts for
	// one entry after a failure. Zero means DefaultRefreshRetry.
	RefreshRetry time.Duration
	// L2, when set, is a second level shared with other replicas: read on
	// a miss before fetching, written after every fetch and refresh, and
	// cleared by Delete. It must never fail a request (a failing L2
	// reports misses).
	L2 SecondLevel
}

// SecondLevel is a cache shared between replicas (rediscache.Store).
type SecondLevel interface {
	// Get returns the usable entry stored for key.
	Get(ctx context.Context, key string) (*Entry, bool)
	// Set stores e until its UsableUntil.
	Set(ctx context.Context, e *Entry)
	// Delete removes the entry of key.
	Delete(ctx context.Context, key string)
	// Lock asks to be the replica that fetches key. It reports false only
	// when another replica is fetching it; release gives the lock up.
	Lock(ctx context.Context, key string) (release func(), acquired bool)
	// Wait waits, briefly, for another replica's fetch of key to appear.
	Wait(ctx context.Context, key string) (*Entry, bool)
}

// Cache stores token B per key. It is safe for concurrent use.
//
// Fetch serves an entry from the cache while it is usable; once the entry
// passes its RefreshAt, the first Fetch still returns it at once but also
// starts one background fetch that replaces it (refresh-ahead), so that a
// steady user never waits for the authority. A failed refresh leaves the
// old entry in place until its UsableUntil.
type Cache struct {
	store *ristretto.Cache[string, *Entry]
	group singleflight.Group
	cfg   Config

	// refreshing holds the keys whose refresh-ahead is running.
	refreshing sync.Map

	mu     sync.RWMutex // guards closed, bg.Add and the store against Close
	closed bool
	bg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

// New returns an empty Cache. Close releases its goroutines.
func New(cfg Config) (*Cache, error) {
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("cache: MaxBytes %d is negative", cfg.MaxBytes)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RefreshRetry <= 0 {
		cfg.RefreshRetry = DefaultRefreshRetry
	}
	counters := max(cfg.MaxBytes/averageEntryBytes*10, 1000)
	rc := &ristretto.Config[string, *Entry]{
		NumCounters:        counters,
		MaxCost:            cfg.MaxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true,
	}
	if cfg.OnEvict != nil {
		onEvict, now := cfg.OnEvict, cfg.Now
		rc.OnEvict = func(it *ristretto.Item[*Entry]) {
			// ristretto also reports expired items here; only count
			// entries pushed out to stay within the bound.
			if it.Expiration.IsZero() || it.Expiration.After(now()) {
				onEvict()
			}
		}
	}
	if cfg.OnReject != nil {
		onReject := cfg.OnReject
		rc.OnReject = func(*ristretto.Item[*Entry]) { onReject() }
	}
	store, err := ristretto.NewCache(rc)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c := &Cache{store: store, cfg: cfg}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Close cancels running refreshes, waits for them, and drops every entry.
func (c *Cache) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.bg.Wait()
	c.store.Close()
}

// Get returns the entry stored under key if it is still usable.
func (c *Cache) Get(key string) (*Entry, bool) {
	return c.get(key, c.cfg.Now())
}

// get is Get at now.
func (c *Cache) get(key string, now time.Time) (*Entry, bool) {
	e, ok := c.store.Get(key)
	if !ok || e.Key != key || !e.Usable(now) {
		return nil, false
	}
	return e, true
}

// Set stores e under e.Key until e.UsableUntil and waits until the entry is
// visible to Get. It reports whether the store accepted the entry (it may
// refuse one when memory is short and the entry is less valuable than those
// it would evict).
func (c *Cache) Set(e *Entry) bool {
	ttl := e.UsableUntil.Sub(c.cfg.Now())
	if ttl <= 0 {
		return false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return false
	}
	ok := c.store.SetWithTTL(e.Key, e, e.cost(), ttl)
	c.store.Wait()
	return ok
}

// Delete removes the entry stored under key, from the second level too.
func (c *Cache) Delete(key string) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return
	}
	c.store.Del(key)
	c.store.Wait()
	if c.cfg.L2 != nil {
		c.cfg.L2.Delete(c.ctx, key)
	}
}

// Bytes returns the bytes charged against MaxBytes by the entries held.
func (c *Cache) Bytes() int64 { return c.store.MaxCost() - c.store.RemainingCost() }

// Len counts the entries held, expired ones not yet collected included. It
// walks the whole store: call it for metrics, not per request.
func (c *Cache) Len() int {
	n := 0
	c.store.IterValues(func(*Entry) bool { n++; return false })
	return n
}

// FetchFunc obtains a new entry for a key, typically by an exchange with
// the authority. It must bound its own duration.
type FetchFunc func(ctx context.Context) (*Entry, error)

// Result says where Fetch found its entry.
type Result int

const (
	// Hit means the entry was in the cache.
	Hit Result = iota
	// Miss means this call ran the fetch.
	Miss
	// Shared means this call waited for a fetch another call had started
	// for the same key.
	Shared
	// Remote means the entry came from the second level (another replica
	// fetched it).
	Remote
)

// String returns "hit", "miss", "shared" or "l2".
func (r Result) String() string {
	switch r {
	case Hit:
		return "hit"
	case Miss:
		return "miss"
	case Shared:
		return "shared"
	case Remote:
		return "l2"
	}
	return "unknown"
}

// Fetch returns the usable entry for key, calling fetch on a miss. However
// many calls miss on one key at once, fetch runs once and they all receive
// its result. The fetch runs detached from ctx, so one caller giving up does
// not fail the others. A failed fetch is returned to every waiting caller
// and not cached.
//
// On a hit past the entry's refresh time, Fetch returns the entry and starts
// fetch in the background (at most one per key at a time) to replace it.
func (c *Cache) Fetch(ctx context.Context, key string, fetch FetchFunc) (*Entry, Result, error) {
	now := c.cfg.Now()
	if e, ok := c.get(key, now); ok {
		if e.due(now) {
			c.refreshAhead(e, fetch)
		}
		return e, Hit, nil
	}
	return c.fetchMissing(ctx, key, fetch)
}

// fetchMissing is Fetch after a lookup found no usable entry for key. Each
// lookup counts as a use in the store's admission policy, so the flight
// checks whether key is held before it looks key up again.
func (c *Cache) fetchMissing(ctx context.Context, key string, fetch FetchFunc) (*Entry, Result, error) {
	ran, found, remote := false, false, false
	ch := c.group.DoChan(key, func() (any, error) {
		ran = true
		// Another flight may have stored the entry between the caller's
		// lookup and the start of this one. Whether the store holds
		// key is asked first without counting a use.
		if _, held := c.store.GetTTL(key); held {
			if e, ok := c.Get(key); ok {
				found = true
				return e, nil
			}
		}
		detached := context.WithoutCancel(ctx)
		e, fromL2, err := c.fetchThrough(detached, key, fetch)
		if err != nil {
			return nil, err
		}
		remote = fromL2
		c.Set(e)
		return e, nil
	})
	select {
	case <-ctx.Done():
		return nil, Miss, ctx.Err()
	case r := <-ch:
		res := Shared
		switch {
		case ran && found:
			res = Hit
		case ran && remote:
			res = Remote
		case ran:
			res = Miss
		}
		if r.Err != nil {
			return nil, res, r.Err
		}
		return r.Val.(*Entry), res, nil
	}
}

// fetchThrough obtains the entry of key on a miss: from the second level
// when another replica has it, otherwise by fetch, taking the second level's
// lock so that replicas missing at once fetch once; a replica that finds the
// lock taken waits briefly for the value, then fetches itself.
func (c *Cache) fetchThrough(ctx context.Context, key string, fetch FetchFunc) (*Entry, bool, error) {
	l2 := c.cfg.L2
	if l2 != nil {
		if e, ok := l2.Get(ctx, key); ok && e.Key == key && e.Usable(c.cfg.Now()) {
			return e, true, nil
		}
		release, acquired := l2.Lock(ctx, key)
		if !acquired {
			if e, ok := l2.Wait(ctx, key); ok && e.Key == key && e.Usable(c.cfg.Now()) {
				return e, true, nil
			}
		} else {
			defer release()
		}
	}
	e, err := c.fetchAndShare(ctx, key, fetch)
	return e, false, err
}

// fetchAndShare runs fetch for key, checks that the entry is key's and
// writes it to the second level for the other replicas.
func (c *Cache) fetchAndShare(ctx context.Context, key string, fetch FetchFunc) (*Entry, error) {
	e, err := fetch(ctx)
	if err != nil {
		return nil, err
	}
	if e == nil || e.Key != key {
		return nil, errors.New("cache: fetch returned an entry for another key")
	}
	if c.cfg.L2 != nil {
		c.cfg.L2.Set(ctx, e)
	}
	return e, nil
}

// refreshAhead starts a background fetch that replaces old, unless one is
// already running for its key.
func (c *Cache) refreshAhead(old *Entry, fetch FetchFunc) {
	key := old.Key
	if _, running := c.refreshing.LoadOrStore(key, struct{}{}); running {
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.refreshing.Delete(key)
		return
	}
	c.bg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.bg.Done()
		attempted, err := c.refresh(old, fetch)
		// The key is released before OnRefresh runs, so whoever it tells
		// may start the next refresh of the key at once.
		c.refreshing.Delete(key)
		if attempted && c.cfg.OnRefresh != nil {
			c.cfg.OnRefresh(key, err)
		}
	}()
}

// refresh replaces old with a fresh entry, or takes one another replica
// shared through L2. It reports whether it fetched from the authority and
// with what error; after a failure old is retried no sooner than
// RefreshRetry.
func (c *Cache) refresh(old *Entry, fetch FetchFunc) (attempted bool, err error) {
	key := old.Key
	if l2 := c.cfg.L2; l2 != nil {
		// Another replica may have refreshed already, or be doing so.
		if e, ok := l2.Get(c.ctx, key); ok && e.Key == key && e.IssuedAt.After(old.IssuedAt) {
			c.Set(e)
			return false, nil
		}
		release, acquired := l2.Lock(c.ctx, key)
		if !acquired {
			old.nextRefresh.Store(c.cfg.Now().Add(time.Second).UnixNano())
			return false, nil
		}
		defer release()
	}
	e, err := c.fetchAndShare(c.ctx, key, fetch)
	if err != nil {
		old.nextRefresh.Store(c.cfg.Now().Add(c.cfg.RefreshRetry).UnixNano())
		return true, err
	}
	c.Set(e)
	return true, nil
}
