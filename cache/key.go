package cache

import (
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

// UserKey is the key of a delegated token B: the user's tenant and object id
// (or, when the token has none, its issuer and subject) and the normalised
// scope set. Tenant and user are length-prefixed, so no choice of claim
// values can make two different users share a key.
func UserKey(tenant, user, scopeSet string) string {
	var b strings.Builder
	b.Grow(len(tenant) + len(user) + len(scopeSet) + 12)
	b.WriteString("u")
	b.WriteString(strconv.Itoa(len(tenant)))
	b.WriteByte(':')
	b.WriteString(tenant)
	b.WriteString(strconv.Itoa(len(user)))
	b.WriteByte(':')
	b.WriteString(user)
	b.WriteString(scopeSet)
	return b.String()
}

// AppKey is the key of an app-only token B (client credentials): it depends
// on the scope set only, and never equals a UserKey.
func AppKey(scopeSet string) string {
	return "a" + scopeSet
}
