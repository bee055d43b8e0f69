// Package cache holds token B between requests: a memory-bounded store
// (ristretto, cost = bytes) keyed per user and scope set, that serves an entry
// only while it is safely inside its lifetime, and that turns concurrent
// misses for one key into a single exchange with the authority.
//
// Failed exchanges are never cached. Every entry remembers its full key and
// a lookup compares it, so a hash collision can never hand one user's token
// to another. A caller that keeps its own index of keys can hold a Ref per
// key, a weak reference that skips most lookups and compares the key too.
//
// A request looks its key up with Fresh (or FreshRef); on a miss it calls
// FetchMissing, which does not look the key up again, and on an entry due
// for refresh it calls Fetch, which serves it and refreshes it ahead. Every
// lookup counts as a use in the store's admission policy, so a miss counts
// once, as a hit does (a hit through a Ref, once in refSample uses).
package cache
