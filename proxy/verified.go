package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
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
//
// Its table is a few locked maps rather than a ristretto cache: a
// remembered validation is cheap to redo (one signature check), so an
// admission policy buys little, while every ristretto instance holds a
// 32,768-slot buffer of pointers that the garbage collector scans on each
// cycle, as long on one CPU as the rest of a bare proxy's collection.
type VerifiedCache struct {
	v          *Validator
	keys       KeyPresence
	shardBytes int64 // the bound of each shard
	// keyMemos is how many token B cache keys a remembered token may
	// come to hold, one per on-behalf-of route up to keyMemoSlots; the
	// Handler sets it, and each entry is charged for them.
	keyMemos atomic.Int32
	shards   [verifiedShards]verifiedShard
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
// its SHA-256, in one object (see remember).
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
// key kid whose SHA-256 is sum. A remembered token stays on the heap until
// it expires, and the garbage collector visits each of its objects on every
// cycle: the claims a JSON decoder builds are a dozen objects per token
// (each string and list its own), which for thousands of users lengthens
// every collection. The entry holds the same values in three objects: the
// entry itself, one string that every claim and the kid are slices of, and
// one array behind the scope, role and authentication-context lists. Its
// cost is verifiedOverhead, the bytes of the strings and 16 per list item.
func remember(c *Claims, kid string, sum [sha256.Size]byte) *verified {
	e := &verified{sum: sum, kid: kid, claims: Claims{
		Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience, TenantID: c.TenantID, ObjectID: c.ObjectID,
		Scopes: c.Scopes, Roles: c.Roles, AuthContexts: c.AuthContexts,
		Version: c.Version, ClientAppID: c.ClientAppID, Username: c.Username, ExpiresAt: c.ExpiresAt,
	}}
	strs := [...]*string{&e.claims.Issuer, &e.claims.Subject, &e.claims.Audience, &e.claims.TenantID,
		&e.claims.ObjectID, &e.claims.Version, &e.claims.ClientAppID, &e.claims.Username, &e.kid}
	lists := [...]*[]string{&e.claims.Scopes, &e.claims.Roles, &e.claims.AuthContexts}
	size, items := 0, 0
	for _, s := range strs {
		size += len(*s)
	}
	for _, l := range lists {
		items += len(*l)
		for _, s := range *l {
			size += len(s)
		}
	}
	var b strings.Builder
	b.Grow(size)
	for _, s := range strs {
		b.WriteString(*s)
	}
	for _, l := range lists {
		for _, s := range *l {
			b.WriteString(s)
		}
	}
	packed := b.String()
	e.cost = int64(verifiedOverhead + size + 16*items)
	next := func(n int) string {
		s := packed[:n]
		packed = packed[n:]
		return s
	}
	for _, s := range strs {
		*s = next(len(*s))
	}
	array := make([]string, 0, items)
	for _, l := range lists {
		if len(*l) == 0 {
			continue
		}
		from := len(array)
		for _, s := range *l {
			array = append(array, next(len(s)))
		}
		*l = array[from:len(array):len(array)]
	}
	return e
}

// NewVerifiedCache returns a cache in front of v holding at most maxBytes
// of claims. keys tells whether a signing key is still published. Each of
// the cache's 16 maps holds at most a sixteenth of maxBytes, and a
// remembered token costs about a kilobyte (see remember), so a cache of less
// than a few hundred KiB remembers few tokens, or none.
func NewVerifiedCache(v *Validator, keys KeyPresence, maxBytes int64) (*VerifiedCache, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("proxy: verified token cache size %d must be positive", maxBytes)
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
	claims, err := c.v.Validate(ctx, raw)
	if err != nil || len(raw) > MaxCachedTokenBytes {
		return claims, err
	}
	e := remember(claims, headerKID(raw), sum)
	if n := c.keyMemos.Load(); n > 1 {
		e.cost += int64(n-1) * keyMemoCost
	}
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

// keyMemoCost approximates the bytes of the token B cache key remembered
// with a token's claims: the routeKey with its Ref (and the weak pointer
// the Ref holds), and a key of tenant, user and scopes.
const keyMemoCost = 96 + 160

// verifiedOverhead approximates the bytes a remembered token costs beyond
// its strings and lists: its entry, its map slot and one cache key (a
// token used on several routes is charged keyMemoCost for each further
// route's key; VerifiedCache.keyMemos).
const verifiedOverhead = int(unsafe.Sizeof(verified{})) + 32 + keyMemoCost

// headerKID returns the "kid" of a token that has already been validated.
func headerKID(raw string) string {
	h64, _, _ := strings.Cut(raw, ".")
	var h header
	if err := decodeSegment(h64, &h); err != nil {
		return ""
	}
	return h.Kid
}

// sumToken returns the SHA-256 of a raw token. It hashes the string's own
// bytes: a token is about a kilobyte and arrives on every request, and
// Sum256 only reads its input, so the copy []byte(raw) would make is not
// needed.
func sumToken(raw string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

// fingerprintOf names a token in logs: the first 12 hex digits of its
// SHA-256.
func fingerprintOf(sum [sha256.Size]byte) string {
	return hex.EncodeToString(sum[:6])
}
