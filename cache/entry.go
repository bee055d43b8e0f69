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
	// retired is set once the store has let the entry go (replaced,
	// deleted, evicted, expired or refused): a Ref no longer serves it.
	retired atomic.Bool
	// credential is TokenType + " " + Token, built once; Token and
	// TokenType are slices of it, so the token's bytes are held once.
	credential string
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
// token: TokenType, a space, Token. Entries built by NewEntry or
// RestoreEntry return it without building a string (the comparisons below
// cost a pointer check when the fields still share its bytes).
func (e *Entry) Credential() string {
	n := len(e.TokenType)
	if len(e.credential) == n+1+len(e.Token) && e.credential[:n] == e.TokenType && e.credential[n+1:] == e.Token {
		return e.credential
	}
	return e.TokenType + " " + e.Token
}

// Usable reports whether the entry may be served at now.
func (e *Entry) Usable(now time.Time) bool { return now.Before(e.UsableUntil) }

// due reports whether e's next refresh-ahead may start at now.
func (e *Entry) due(now time.Time) bool { return now.UnixNano() >= e.nextRefresh.Load() }

// entryOverhead approximates the bytes an Entry costs beyond its strings:
// the struct, four time.Time values, ristretto's bookkeeping and the
// runtime's record of a weak pointer to it (a Ref's).
const entryOverhead = 224

// cost is the number of bytes the entry is charged against MaxBytes (the
// credential's bytes are those of TokenType, a space and Token).
func (e *Entry) cost() int64 {
	return int64(len(e.Key) + len(e.Token) + len(e.TokenType) + 1 + entryOverhead)
}

// RestoreEntry rebuilds an entry with all its times given, as stored by a
// second-level cache; unlike NewEntry it derives nothing.
func RestoreEntry(key, token, tokenType string, issuedAt, expiresAt, usableUntil, refreshAt time.Time) *Entry {
	credential := tokenType + " " + token
	e := &Entry{
		Key:         key,
		Token:       credential[len(tokenType)+1:],
		TokenType:   credential[:len(tokenType)],
		credential:  credential,
		IssuedAt:    issuedAt,
		ExpiresAt:   expiresAt,
		UsableUntil: usableUntil,
		RefreshAt:   refreshAt,
	}
	e.nextRefresh.Store(refreshAt.UnixNano())
	return e
}
