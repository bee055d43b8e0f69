// Package cache holds token B between requests: a memory-bounded store
// (ristretto, cost = bytes) keyed per user and scope set, that serves an entry
// only while it is safely inside its lifetime, and that turns concurrent
// misses for one key into a single exchange with the authority.
//
// Failed exchanges are never cached. Every entry remembers its full key and
// a lookup compares it, so a hash collision can never hand one user's token
// to another. A request calls Fetch with its key (UserKey, AssertionKey or
// AppKey), which serves a cached entry, refreshing it ahead when it is due,
// or fetches a missing one once for all concurrent callers.
package cache
