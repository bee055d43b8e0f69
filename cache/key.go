package cache

import (
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
)

// NormalizeScopes returns the canonical form of a scope set: scopes are
// compared case-insensitively by the Microsoft identity platform, so they are
// lower-cased, sorted and de-duplicated, then joined with spaces.
func NormalizeScopes(scopes []string) string {
	s := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		if sc = strings.ToLower(strings.TrimSpace(sc)); sc != "" {
			s = append(s, sc)
		}
	}
	slices.Sort(s)
	return strings.Join(slices.Compact(s), " ")
}

// UserKey is the key of a delegated token B in the default key mode: the
// user's tenant and object id, the authentication contexts the user
// satisfied ("acrs", so a stepped-up token never shares an entry with a
// plain one) and the normalised scope set. Every part but the last is
// length-prefixed, so no choice of claim values can make two different
// users share a key.
func UserKey(tenant, user string, authContexts []string, scopeSet string) string {
	return userKey('u', tenant, user, authContexts, scopeSet)
}

// SubjectKey is UserKey for a token without an object id, which names its
// user by issuer and subject. Its own tag keeps it apart from every UserKey,
// whatever the claims' values.
func SubjectKey(issuer, subject string, authContexts []string, scopeSet string) string {
	return userKey('s', issuer, subject, authContexts, scopeSet)
}

// userKey is UserKey and SubjectKey, which tag says apart.
func userKey(tag byte, tenant, user string, authContexts []string, scopeSet string) string {
	var b strings.Builder
	n := len(tenant) + len(user) + len(scopeSet) + 16
	for _, a := range authContexts {
		n += len(a) + 1
	}
	b.Grow(n)
	b.WriteByte(tag)
	writePrefixed(&b, tenant)
	writePrefixed(&b, user)
	switch len(authContexts) {
	case 0:
		writePrefixed(&b, "")
	case 1:
		writePrefixed(&b, authContexts[0])
	default:
		acrs := slices.Clone(authContexts)
		slices.Sort(acrs)
		writePrefixed(&b, strings.Join(slices.Compact(acrs), ","))
	}
	b.WriteString(scopeSet)
	return b.String()
}

func writePrefixed(b *strings.Builder, s string) {
	b.WriteString(strconv.Itoa(len(s)))
	b.WriteByte(':')
	b.WriteString(s)
}

// AssertionKey is the key of a delegated token B in the assertion key mode:
// bound to the SHA-256 of token A itself, as MSAL caches OBO tokens. Each new
// token A of a user costs an exchange.
func AssertionKey(assertionSum [32]byte, scopeSet string) string {
	return "h" + hex.EncodeToString(assertionSum[:]) + scopeSet
}

// AppKey is the key of an app-only token B (client credentials): it depends
// on the scope set only, and never equals a UserKey or a SubjectKey.
func AppKey(scopeSet string) string {
	return "a" + scopeSet
}

// AgentKey is the key of a token obtained for an agent identity (Microsoft
// Entra Agent ID): leg names the exchange (the blueprint's token for the
// agent, the agent's exchange token, or an agent flow), tenant where it was
// sent, agentID the agent identity, subject a fingerprint of the agent user
// or the calling user ("" for app tokens), then the normalised scope set.
// Every part but the last is length-prefixed, and no AgentKey equals a
// UserKey, AssertionKey or AppKey.
func AgentKey(leg, tenant, agentID, subject, scopeSet string) string {
	var b strings.Builder
	b.Grow(len(leg) + len(tenant) + len(agentID) + len(subject) + len(scopeSet) + 16)
	b.WriteByte('g')
	writePrefixed(&b, leg)
	writePrefixed(&b, tenant)
	writePrefixed(&b, agentID)
	writePrefixed(&b, subject)
	b.WriteString(scopeSet)
	return b.String()
}
