package cache

import (
	"sync/atomic"
	"weak"
)

// refSample is how often a Ref is passed over for the store's lookup: one
// use in refSample goes through the store, so that its admission policy
// keeps counting the key's hits (a key whose hits it never saw would look
// cold to it, and be evicted before keys used far less). The policy sees a
// warm key's hits at a quarter of their number, and a new key's miss once.
// TestWarmKeysOutliveOneTimeKeys measures the choice: with memory short,
// warm keys lose their entry to a stream of one-time keys least often at 4
// of the values tried; about twice as often counting every hit, four times
// at 8, ten times at 16, and 35 times with a Ref that never lets one through.
const refSample = 4

// Ref lets a caller that keeps its own index of keys (the proxy keeps one
// per token A and route) get a key's entry without the store's lookup. It
// refers to the entry weakly: it never keeps an entry in memory that the
// store has let go. The zero Ref is ready to use; a Ref serves one key.
type Ref struct {
	p    atomic.Pointer[weak.Pointer[Entry]]
	uses atomic.Uint32
}

// FreshRef is Fresh, with Fresh's results, for a caller that keeps r with
// key. While r refers to the entry the store holds for key, usable and not
// due for refresh, it returns that entry without looking key up (except
// once in refSample uses); otherwise it calls Fresh and, from r's second use
// on, points r at the fresh entry Fresh found (a Ref used once, by a caller
// that keeps none, is not worth a weak pointer).
func (c *Cache) FreshRef(r *Ref, key string) (*Entry, bool) {
	n := r.uses.Add(1)
	if p := r.p.Load(); p != nil && n%refSample != 0 {
		if e := p.Value(); e != nil && !e.retired.Load() && e.Key == key {
			now := c.cfg.Now()
			if e.Usable(now) && !e.due(now) {
				return e, true
			}
		}
	}
	e, ok := c.Fresh(key)
	if ok && n > 1 {
		if p := r.p.Load(); p == nil || p.Value() != e {
			w := weak.Make(e)
			r.p.Store(&w)
		}
	}
	return e, ok
}
