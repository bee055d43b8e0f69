package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/sync/singleflight"
)

// DefaultMaxBytes is the memory bound used when Config.MaxBytes is zero.
const DefaultMaxBytes = 64 << 20

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
}

// Cache stores token B per key. It is safe for concurrent use.
type Cache struct {
	store *ristretto.Cache[string, *Entry]
	group singleflight.Group
	now   func() time.Time
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
	counters := max(cfg.MaxBytes/averageEntryBytes*10, 1000)
	rc := &ristretto.Config[string, *Entry]{
		NumCounters:        counters,
		MaxCost:            cfg.MaxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true,
	}
	if cfg.OnEvict != nil {
		onEvict := cfg.OnEvict
		rc.OnEvict = func(*ristretto.Item[*Entry]) { onEvict() }
	}
	store, err := ristretto.NewCache(rc)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return &Cache{store: store, now: cfg.Now}, nil
}

// Close stops the cache's background work and drops every entry.
func (c *Cache) Close() { c.store.Close() }

// Get returns the entry stored under key if it is still usable.
func (c *Cache) Get(key string) (*Entry, bool) {
	e, ok := c.store.Get(key)
	if !ok || e.Key != key || !e.Usable(c.now()) {
		return nil, false
	}
	return e, true
}

// Set stores e under e.Key until e.UsableUntil and waits until the entry is
// visible to Get. It reports whether the store accepted the entry (it may
// refuse one when memory is short and the entry is less valuable than those
// it would evict) .
func (c *Cache) Set(e *Entry) bool {
	ttl := e.UsableUntil.Sub(c.now())
	if ttl <= 0 {
		return false
	}
	ok := c.store.SetWithTTL(e.Key, e, e.cost(), ttl)
	c.store.Wait()
	return ok
}

// Delete removes the entry stored under key.
func (c *Cache) Delete(key string) {
	c.store.Del(key)
	c.store.Wait()
}

// FetchFunc obtains a new entry for a key, typically by an exchange with
// the authority.
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
)

// String returns "hit", "miss" or "shared".
func (r Result) String() string {
	switch r {
	case Hit:
		return "hit"
	case Miss:
		return "miss"
	case Shared:
		return "shared"
	}
	return "unknown"
}

// Fetch returns the usable entry for key, calling fetch on a miss. However
// many calls miss on one key at once, fetch runs once and they all receive
// its result. The fetch runs detached from ctx, so one caller giving up does
// not fail the others; fetch must bound its own duration. A failed fetch is
// returned to every waiting caller and not cached.
func (c *Cache) Fetch(ctx context.Context, key string, fetch FetchFunc) (*Entry, Result, error) {
	if e, ok := c.Get(key); ok {
		return e, Hit, nil
	}
	detached := context.WithoutCancel(ctx)
	ch := c.group.DoChan(key, func() (any, error) {
		// Another flight may have stored the entry between our Get and
		// the start of this one.
		if e, ok := c.Get(key); ok {
			return e, nil
		}
		e, err := fetch(detached)
		if err != nil {
			return nil, err
		}
		if e == nil || e.Key != key {
			return nil, errors.New("cache: fetch returned an entry for another key")
		}
		c.Set(e)
		return e, nil
	})
	select {
	case <-ctx.Done():
		return nil, Miss, ctx.Err()
	case r := <-ch:
		res := Miss
		if r.Shared {
			res = Shared
		}
		if r.Err != nil {
			return nil, res, r.Err
		}
		return r.Val.(*Entry), res, nil
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
