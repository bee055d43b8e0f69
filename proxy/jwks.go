package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"golang.org/x/sync/singleflight"
)

// ErrUnknownKey is returned by KeySet.Key when the authority publishes no
// key with the requested id, even after a refetch.
var ErrUnknownKey = errors.New("no published key has this id")

// ErrKeysUnavailable is returned by KeySet.Key while no key set has been
// fetched yet.
var ErrKeysUnavailable = errors.New("the authority's key set has not been fetched")

// errRateLimited is the refetch refusal inside MinRefetch.
var errRateLimited = errors.New("key set refetched too recently")

// KeySetConfig configures a KeySet.
type KeySetConfig struct {
	// URL is the authority's jwks_uri. Required.
	URL string
	// HTTPClient fetches the key set; it should carry a timeout. Required.
	HTTPClient *http.Client
	// Refresh is the background refresh interval. Zero means one hour.
	Refresh time.Duration
	// MinRefetch is the least time between two refetches caused by an
	// unknown key id, so that tokens with random "kid"s cannot make the
	// gateway hammer the authority. Zero means 30 seconds.
	MinRefetch time.Duration
	// OnFetch, when set, is called after every fetch of the key set with
	// whether it succeeded (status 200).
	OnFetch func(ok bool)
}

// keyIndex is one fetched key set, indexed by key id. It never changes
// once installed.
type keyIndex struct {
	set   jwk.Set
	byKID map[string]jwk.Key
	// gen numbers the installed indexes: 1 for the first, one more for
	// each later one.
	gen uint64
}

// newKeyIndex indexes the signature keys of set. Keys published for
// encryption ("use":"enc") or without the "verify" operation are left out.
func newKeyIndex(set jwk.Set) *keyIndex {
	idx := &keyIndex{set: set, byKID: make(map[string]jwk.Key, set.Len())}
	for i := range set.Len() {
		k, _ := set.Key(i)
		if !forSignatures(k) {
			continue
		}
		kid, _ := k.KeyID()
		idx.byKID[kid] = k
	}
	return idx
}

func forSignatures(k jwk.Key) bool {
	if use, ok := k.KeyUsage(); ok && use != "" && use != "sig" {
		return false
	}
	if ops, ok := k.KeyOps(); ok && len(ops) > 0 {
		for _, op := range ops {
			if op == jwk.KeyOpVerify {
				return true
			}
		}
		return false
	}
	return true
}

func (idx *keyIndex) lookup(kid string) (jwk.Key, bool) {
	if kid == "" && len(idx.byKID) == 1 {
		for _, k := range idx.byKID {
			return k, true
		}
	}
	k, ok := idx.byKID[kid]
	return k, ok && kid != ""
}

// KeySet is the authority's signing keys, kept fresh by jwx's JWKS cache in
// the background. A token signed with a key id the set does not hold causes
// one immediate refetch (at most one per MinRefetch), so a key rollover never
// fails requests. A failed refresh keeps the last good set.
//
// Lookups read an immutable index swapped atomically whenever the JWKS cache
// holds a new set, so the request path takes no lock.
type KeySet struct {
	cache      *jwk.Cache
	url        string
	minRefetch time.Duration

	current atomic.Pointer[keyIndex]
	// installMu orders installs, so that generations only grow.
	installMu sync.Mutex

	group       singleflight.Group
	mu          sync.Mutex
	lastRefetch time.Time

	// ctx bounds the JWKS cache's goroutines and every call into it; Close
	// cancels it after stopping the sync loop.
	ctx    context.Context
	cancel context.CancelFunc
	stop   chan struct{}
	done   chan struct{}
}

// syncInterval is how often the index is compared with the JWKS cache's
// current set, to pick up background refreshes.
const syncInterval = time.Second

// NewKeySet registers cfg.URL with a new JWKS cache and starts fetching in
// the background; it does not wait for the first fetch (see Ready). Close
// stops it; so does the end of ctx.
func NewKeySet(ctx context.Context, cfg KeySetConfig) (*KeySet, error) {
	if cfg.Refresh <= 0 {
		cfg.Refresh = time.Hour
	}
	if cfg.MinRefetch <= 0 {
		cfg.MinRefetch = 30 * time.Second
	}
	hc := cfg.HTTPClient
	if cfg.OnFetch != nil {
		c := *hc
		c.Transport = observedTransport{next: transportOf(hc), onFetch: cfg.OnFetch}
		hc = &c
	}
	ctx, cancel := context.WithCancel(ctx)
	c, err := jwk.NewCache(ctx, httprc.NewClient())
	if err != nil {
		cancel()
		return nil, fmt.Errorf("proxy: jwks cache: %w", err)
	}
	err = c.Register(ctx, cfg.URL,
		jwk.WithHTTPClient(hc),
		jwk.WithConstantInterval(cfg.Refresh),
		jwk.WithHttprcResourceOption(httprc.WithMinInterval(cfg.MinRefetch)),
		jwk.WithWaitReady(false),
	)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("proxy: register jwks %s: %w", cfg.URL, err)
	}
	k := &KeySet{cache: c, url: cfg.URL, minRefetch: cfg.MinRefetch,
		ctx: ctx, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{})}
	go k.syncLoop()
	return k, nil
}

// Close stops the background refresh.
func (k *KeySet) Close() error {
	close(k.stop)
	<-k.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := k.cache.Shutdown(ctx)
	k.cancel()
	return err
}

func (k *KeySet) syncLoop() {
	defer close(k.done)
	t := time.NewTicker(syncInterval)
	defer t.Stop()
	for {
		k.sync()
		select {
		case <-k.stop:
			return
		case <-t.C:
		}
	}
}

// sync installs the JWKS cache's current set if it differs from the index.
func (k *KeySet) sync() *keyIndex {
	seen := k.current.Load()
	ctx, cancel := context.WithTimeout(k.ctx, time.Second)
	defer cancel()
	set, err := k.cache.Lookup(ctx, k.url)
	if err != nil {
		return k.current.Load()
	}
	return k.installOver(set, seen)
}

// installOver installs set, read while seen was the current index, unless
// another set has been installed since: set may then be older than it (a
// refetch can finish while a sync's lookup is on its way back), and
// installing it would bring withdrawn keys back until the next sync.
func (k *KeySet) installOver(set jwk.Set, seen *keyIndex) *keyIndex {
	return k.installIf(set, func(cur *keyIndex) bool { return cur == seen })
}

// install installs set, which was fetched just now, so it is the newest.
func (k *KeySet) install(set jwk.Set) *keyIndex {
	return k.installIf(set, func(*keyIndex) bool { return true })
}

// installIf makes set the current key set, a new generation, when it is
// not already and ok accepts the current index.
func (k *KeySet) installIf(set jwk.Set, ok func(cur *keyIndex) bool) *keyIndex {
	k.installMu.Lock()
	defer k.installMu.Unlock()
	cur := k.current.Load()
	if cur != nil && cur.set == set || !ok(cur) {
		return cur
	}
	idx := newKeyIndex(set)
	idx.gen = 1
	if cur != nil {
		idx.gen = cur.gen + 1
	}
	k.current.Store(idx)
	return idx
}

// Ready reports whether a key set has been fetched.
func (k *KeySet) Ready(context.Context) bool { return k.sync() != nil }

// Len returns the number of keys in the current set, or 0 before the first
// fetch.
func (k *KeySet) Len() int {
	if idx := k.current.Load(); idx != nil {
		return idx.set.Len()
	}
	return 0
}

// Published reports whether the current set holds a key with id kid (the
// only key of a one-key set, for an empty kid), and the set's generation
// (see Generation).
func (k *KeySet) Published(kid string) (generation uint64, ok bool) {
	idx := k.current.Load()
	if idx == nil {
		return 0, false
	}
	_, ok = idx.lookup(kid)
	return idx.gen, ok
}

// Generation numbers the key sets the KeySet has held: 0 before the first
// fetch, then one more each time a fetched set replaces the current one. A
// key that Published found in generation g is still published while
// Generation returns g.
func (k *KeySet) Generation() uint64 {
	if idx := k.current.Load(); idx != nil {
		return idx.gen
	}
	return 0
}

// Key returns the published key with id kid. An empty kid selects the only
// key of a one-key set.
func (k *KeySet) Key(ctx context.Context, kid string) (jwk.Key, error) {
	idx := k.current.Load()
	if idx == nil {
		idx = k.sync()
	}
	if idx != nil {
		if key, ok := idx.lookup(kid); ok {
			return key, nil
		}
	}
	// Unknown id, or nothing fetched yet: refetch, at most once per
	// minRefetch. Requests arriving while a refetch runs wait for it.
	v, err, _ := k.group.Do("refetch", func() (any, error) {
		if !k.mayRefetch() {
			return nil, errRateLimited
		}
		rctx, cancel := context.WithTimeout(k.ctx, 30*time.Second)
		defer cancel()
		set, err := k.cache.Refresh(rctx, k.url)
		if err != nil {
			return nil, err
		}
		return k.install(set), nil
	})
	if err != nil {
		if idx == nil {
			return nil, ErrKeysUnavailable
		}
		// Keep using the last good set; the key is unknown to it.
		return nil, ErrUnknownKey
	}
	if key, ok := v.(*keyIndex).lookup(kid); ok {
		return key, nil
	}
	return nil, ErrUnknownKey
}

func (k *KeySet) mayRefetch() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	if now.Sub(k.lastRefetch) < k.minRefetch {
		return false
	}
	k.lastRefetch = now
	return true
}

// observedTransport reports the outcome of each key set fetch.
type observedTransport struct {
	next    http.RoundTripper
	onFetch func(ok bool)
}

func (t observedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := t.next.RoundTrip(r)
	t.onFetch(err == nil && res.StatusCode == http.StatusOK)
	return res, err
}

func transportOf(hc *http.Client) http.RoundTripper {
	if hc.Transport != nil {
		return hc.Transport
	}
	return http.DefaultTransport
}
