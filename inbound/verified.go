package inbound

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// MaxCachedTokenBytes is the size above which a verified token A is not
// remembered (such tokens are rare and would crowd out the others).
const MaxCachedTokenBytes = 8 << 10

// TokenValidator checks token A. sum is the SHA-256 of raw, which the
// caller computes once per request (it also names the token in logs).
type TokenValidator interface {
	Validate(ctx context.Context, raw string, sum [sha256.Size]byte) (*Claims, error)
}

// Uncached adapts a Validator to TokenValidator: every call verifies the
// signature.
func Uncached(v *Validator) TokenValidator { return uncached{v} }

type uncached struct{ v *Validator }

func (u uncached) Validate(ctx context.Context, raw string, _ [sha256.Size]byte) (*Claims, error) {
	return u.v.Validate(ctx, raw)
}

// KeyPresence reports whether the authority still publishes a key.
// *KeySet implements it.
type KeyPresence interface {
	// Published reports whether key kid is in the current key set, and
	// the generation of that set.
	Published(kid string) (generation uint64, ok bool)
	// Generation returns the generation of the current key set: a number,
	// never 0 once a set is held, that grows each time the set changes, so
	// that a key Published found in generation g is still published while
	// Generation returns g.
	Generation() uint64
}

// VerifiedCache remembers the claims of tokens that passed validation, keyed
// by the SHA-256 of the raw token, so that the signature of a token is
// verified once rather than on every request. Each hit re-checks the
// token's expiry (with the validator's clock skew) and that the key that
// signed it is still published, so removing a key from the authority's key
// set revokes the tokens it signed; the key is looked up only on the first
// hit after the key set changed (see KeyPresence.Generation). Refusals are
// not remembered.
type VerifiedCache struct {
	v          *Validator
	keys       KeyPresence
	shardBytes int64 // the bound of each shard
	shards     [verifiedShards]verifiedShard
}

// verifiedShards is the number of independently locked parts of a
// VerifiedCache; each holds at most 1/verifiedShards of its bytes.
const verifiedShards = 16

// evictionSamples is how many entries an insert into a shard looks at: it
// drops those whose token has expired, and, while the shard is full, the
// one that expires first.
const evictionSamples = 5

// verifiedShard is one part of a VerifiedCache's table.
type verifiedShard struct {
	mu      sync.RWMutex
	entries map[uint64]*verified // by the first 8 bytes of the token's SHA-256
	bytes   int64                // the sum of the entries' costs
}

// verified is one remembered token: its claims, the key that signed it and
// its SHA-256.
type verified struct {
	claims Claims
	kid    string
	sum    [sha256.Size]byte
	cost   int64 // bytes charged against the cache's bound
	// keyGen is the key set generation in which kid was last found
	// published; 0 until the first hit looks.
	keyGen atomic.Uint64
}

// remember returns the entry that remembers claims, of a token signed with
// key kid whose SHA-256 is sum. Its cost is verifiedOverhead plus the bytes
// of its strings and 16 per list item.
func remember(c *Claims, kid string, sum [sha256.Size]byte) *verified {
	size := len(c.Issuer) + len(c.Subject) + len(c.Audience) + len(c.TenantID) + len(c.ObjectID) +
		len(c.Version) + len(c.ClientAppID) + len(c.Username) + len(kid)
	for _, l := range [...][]string{c.Scopes, c.Roles, c.AuthContexts} {
		for _, s := range l {
			size += len(s) + 16
		}
	}
	return &verified{claims: *c, kid: kid, sum: sum, cost: int64(verifiedOverhead + size)}
}

// NewVerifiedCache returns a cache in front of v holding at most maxBytes
// of claims. keys tells whether a signing key is still published. Each of
// the cache's 16 maps holds at most a sixteenth of maxBytes, and a
// remembered token costs about a kilobyte, so a cache of less than a few
// hundred KiB remembers few tokens, or none.
func NewVerifiedCache(v *Validator, keys KeyPresence, maxBytes int64) (*VerifiedCache, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("inbound: verified token cache size %d must be positive", maxBytes)
	}
	return &VerifiedCache{v: v, keys: keys, shardBytes: maxBytes / verifiedShards}, nil
}

// Close forgets every remembered token. The cache stays usable: later
// validations are remembered again.
func (c *VerifiedCache) Close() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.entries, sh.bytes = nil, 0
		sh.mu.Unlock()
	}
}

// Validate returns the remembered claims of raw when they are still valid,
// and otherwise validates raw fully and remembers the result.
func (c *VerifiedCache) Validate(ctx context.Context, raw string, sum [sha256.Size]byte) (*Claims, error) {
	id := binary.LittleEndian.Uint64(sum[:8])
	sh := &c.shards[id%verifiedShards]
	if e := sh.get(id); e != nil && e.sum == sum {
		if c.v.cfg.Now().Before(e.claims.ExpiresAt.Add(c.v.cfg.ClockSkew)) && c.keyPublished(e) {
			return &e.claims, nil
		}
		sh.remove(id, e)
	}
	claims, kid, err := c.v.validate(ctx, raw)
	if err != nil || len(raw) > MaxCachedTokenBytes {
		return claims, err
	}
	e := remember(claims, kid, sum)
	sh.add(id, e, c.shardBytes, c.v.cfg.Now().Add(-c.v.cfg.ClockSkew))
	return &e.claims, nil
}

// keyPublished reports whether the key that signed e is still published.
// While the key set is the one in which the key was last found, nothing
// needs looking up; after a change, the first hit looks the key up once.
func (c *VerifiedCache) keyPublished(e *verified) bool {
	if g := e.keyGen.Load(); g != 0 && g == c.keys.Generation() {
		return true
	}
	g, ok := c.keys.Published(e.kid)
	if ok {
		e.keyGen.Store(g)
	}
	return ok
}

// get returns the entry stored under id, or nil.
func (s *verifiedShard) get(id uint64) *verified {
	s.mu.RLock()
	e := s.entries[id]
	s.mu.RUnlock()
	return e
}

// remove deletes e, if it is still the entry stored under id.
func (s *verifiedShard) remove(id uint64, e *verified) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries[id] == e {
		delete(s.entries, id)
		s.bytes -= e.cost
	}
}

// add stores e under id, within limit bytes: it first drops, of up to
// evictionSamples entries taken in the map's random order, those whose
// token expired before expiredBefore, then, while e does not fit, the
// sampled entry that expires first. An entry over limit is not stored.
func (s *verifiedShard) add(id uint64, e *verified, limit int64, expiredBefore time.Time) {
	if e.cost > limit {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		s.entries = make(map[uint64]*verified)
	}
	if old, ok := s.entries[id]; ok {
		delete(s.entries, id)
		s.bytes -= old.cost
	}
	n := 0
	for k, old := range s.entries {
		if old.claims.ExpiresAt.Before(expiredBefore) {
			delete(s.entries, k)
			s.bytes -= old.cost
		}
		if n++; n == evictionSamples {
			break
		}
	}
	for s.bytes+e.cost > limit {
		s.evictOne()
	}
	s.entries[id] = e
	s.bytes += e.cost
}

// evictOne drops, of up to evictionSamples entries taken in the map's
// random order, the one whose token expires first. The shard must hold an
// entry.
func (s *verifiedShard) evictOne() {
	var victim uint64
	var first *verified
	n := 0
	for k, e := range s.entries {
		if first == nil || e.claims.ExpiresAt.Before(first.claims.ExpiresAt) {
			victim, first = k, e
		}
		if n++; n == evictionSamples {
			break
		}
	}
	delete(s.entries, victim)
	s.bytes -= first.cost
}

// verifiedOverhead approximates the bytes a remembered token costs beyond
// its strings and lists: its entry and its map slot.
const verifiedOverhead = int(unsafe.Sizeof(verified{})) + 32

// Sum returns the SHA-256 of a raw token, which names it in the
// VerifiedCache and, through Fingerprint, in logs. It hashes the string's
// own bytes: []byte(raw) would copy the token on every request.
func Sum(raw string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

// Fingerprint names a token in logs without revealing it: the first 12 hex
// digits of its SHA-256 sum.
func Fingerprint(sum [sha256.Size]byte) string { return hex.EncodeToString(sum[:6]) }
