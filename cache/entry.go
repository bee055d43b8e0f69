package cache

import (
	"sync/atomic"
	"time"
)

// MaxSafetyMargin is the longest time before expiry at which an entry stops
// being served. Shorter-lived tokens use half their lifetime instead.
const MaxSafetyMargin = 5 * time.Minute

// Entry is one cached token B.
type Entry struct {
	// Key is the cache key the entry was stored under.
	Key string
	// Token is the access token. Never log it.
	Token string
	// TokenType is the scheme the token is presented with ("Bearer").
	TokenType string
	// IssuedAt and ExpiresAt bound the token's lifetime as the authority
	// stated it.
	IssuedAt, ExpiresAt time.Time
	// UsableUntil is ExpiresAt minus the safety margin: the entry is served
	// only before this instant, so that token B never expires in flight.
	UsableUntil time.Time
	// RefreshAt is when a background renewal should start (refresh-ahead).
	RefreshAt time.Time

	// nextRefresh is when the next refresh-ahead may start, in Unix
	// nanoseconds: RefreshAt at first, pushed back after a failed attempt.
	nextRefresh atomic.Int64
}

// NewEntry builds the entry for a token issued at issuedAt that expires at
// expiresAt. refreshIn is the authority's renewal advice (zero when absent).
//
// The safety margin is MaxSafetyMargin, or half the lifetime when that is
// shorter. RefreshAt is issuedAt+refreshIn when that falls before
// UsableUntil, otherwise three quarters of the way from issuedAt to
// UsableUntil.
func NewEntry(key, token, tokenType string, issuedAt, expiresAt time.Time, refreshIn time.Duration) *Entry {
	lifetime := expiresAt.Sub(issuedAt)
	margin := min(MaxSafetyMargin, lifetime/2)
	usable := expiresAt.Add(-margin)
	refresh := issuedAt.Add(usable.Sub(issuedAt) * 3 / 4)
	if refreshIn > 0 && issuedAt.Add(refreshIn).Before(usable) {
		refresh = issuedAt.Add(refreshIn)
	}
	return RestoreEntry(key, token, tokenType, issuedAt, expiresAt, usable, refresh)
}

// Credential returns the Authorization header value that presents the
// token: TokenType, a space, Token.
func (e *Entry) Credential() string { return e.TokenType + " " + e.Token }

// Usable reports whether the entry may be served at now.
func (e *Entry) Usable(now time.Time) bool { return now.Before(e.UsableUntil) }

// due reports whether e's next refresh-ahead may start at now.
func (e *Entry) due(now time.Time) bool { return now.UnixNano() >= e.nextRefresh.Load() }

// entryOverhead approximates the bytes an Entry costs beyond its strings:
// the struct, four time.Time values and ristretto's bookkeeping.
const entryOverhead = 224

// cost is the number of bytes the entry is charged against MaxBytes.
func (e *Entry) cost() int64 {
	return int64(len(e.Key) + len(e.Token) + len(e.TokenType) + entryOverhead)
}

// RestoreEntry rebuilds an entry with all its times given, as stored by a
// second-level cache; unlike NewEntry it derives nothing.
func RestoreEntry(key, token, tokenType string, issuedAt, expiresAt, usableUntil, refreshAt time.Time) *Entry {
	e := &Entry{
		Key:         key,
		Token:       token,
		TokenType:   tokenType,
		IssuedAt:    issuedAt,
		ExpiresAt:   expiresAt,
		UsableUntil: usableUntil,
		RefreshAt:   refreshAt,
	}
	e.nextRefresh.Store(refreshAt.UnixNano())
	return e
}
