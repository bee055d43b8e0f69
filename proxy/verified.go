package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
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
	Has(kid string) bool
}

// VerifiedCache remembers the claims of tokens that passed validation, keyed
// by the SHA-256 of the raw token, so that the signature of a token is
// verified once rather than on every request. Each hit re-checks the
// token's expiry (with the validator's clock skew) and that the key that
// signed it is still published, so removing a key from the authority's key
// set revokes the tokens it signed. Refusals are not remembered.
type VerifiedCache struct {
	v     *Validator
	keys  KeyPresence
	store *ristretto.Cache[uint64, *verified]
}

// verified is one remembered token: its claims, the key that signed it and
// its SHA-256, in one object (see remember).
type verified struct {
	claims Claims
	kid    string
	sum    [sha256.Size]byte
}

// remember returns the entry that remembers claims, of a token signed with
// key kid whose SHA-256 is sum. A remembered token stays on the heap until
// it expires, and the garbage collector visits each of its objects on every
// cycle: the claims a JSON decoder builds are a dozen objects per token
// (each string and list its own), which for thousands of users lengthens
// every collection. The entry holds the same values in three objects: the
// entry itself, one string that every claim and the kid are slices of, and
// one array behind the scope, role and authentication-context lists.
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

// averageVerifiedBytes sizes the admission counters of a VerifiedCache
// (ristretto wants about ten per entry the cache holds when full): what
// claimsCost charges for a typical Entra token's claims.
const averageVerifiedBytes = 768

// NewVerifiedCache returns a cache in front of v holding at most maxBytes
// of claims. keys tells whether a signing key is still published.
func NewVerifiedCache(v *Validator, keys KeyPresence, maxBytes int64) (*VerifiedCache, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("proxy: verified token cache size %d must be positive", maxBytes)
	}
	store, err := ristretto.NewCache(&ristretto.Config[uint64, *verified]{
		NumCounters:        max(maxBytes/averageVerifiedBytes*10, 1000),
		MaxCost:            maxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, fmt.Errorf("proxy: verified token cache: %w", err)
	}
	return &VerifiedCache{v: v, keys: keys, store: store}, nil
}

// Close releases the cache.
func (c *VerifiedCache) Close() { c.store.Close() }

// Validate returns the remembered claims of raw when they are still valid,
// and otherwise validates raw fully and remembers the result.
func (c *VerifiedCache) Validate(ctx context.Context, raw string, sum [sha256.Size]byte) (*Claims, error) {
	id := binary.LittleEndian.Uint64(sum[:8])
	if e, ok := c.store.Get(id); ok && e.sum == sum {
		if c.v.cfg.Now().Before(e.claims.ExpiresAt.Add(c.v.cfg.ClockSkew)) && c.keys.Has(e.kid) {
			return &e.claims, nil
		}
		c.store.Del(id)
	}
	claims, err := c.v.Validate(ctx, raw)
	if err != nil || len(raw) > MaxCachedTokenBytes {
		return claims, err
	}
	ttl := claims.ExpiresAt.Add(c.v.cfg.ClockSkew).Sub(c.v.cfg.Now())
	if ttl > 0 {
		e := remember(claims, headerKID(raw), sum)
		c.store.SetWithTTL(id, e, claimsCost(claims), ttl)
		return &e.claims, nil
	}
	return claims, nil
}

// keyMemoCost approximates the bytes of the token B cache key remembered
// with a token's claims: the routeKey and a key of tenant, user and scopes.
const keyMemoCost = 64 + 160

// claimsCost approximates the bytes one remembered token costs.
func claimsCost(c *Claims) int64 {
	n := 208 + keyMemoCost + len(c.Issuer) + len(c.Subject) + len(c.Audience) + len(c.TenantID) + len(c.ObjectID) +
		len(c.Version) + len(c.ClientAppID) + len(c.Username)
	for _, s := range c.Scopes {
		n += 16 + len(s)
	}
	for _, s := range c.Roles {
		n += 16 + len(s)
	}
	return int64(n)
}

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
