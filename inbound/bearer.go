package inbound

import (
	"net/http"
	"strings"
)

// BearerToken returns the credential of the request's single
// "Authorization: Bearer <credential>" header. The scheme is matched
// case-insensitively (RFC 7235). It returns a *RejectError when the header
// is missing, repeated or malformed. A header of another scheme (Basic,
// say) counts as missing: RFC 6750 answers an unsupported authentication
// method with a bare challenge, no error code.
//
// The credential's syntax, an RFC 6750 b64token, is checked by
// Validator.Validate, not here: a token the VerifiedCache holds passed it.
func BearerToken(h http.Header) (string, error) {
	values := h.Values("Authorization")
	switch len(values) {
	case 0:
		return "", &RejectError{Reason: ReasonMissing, Description: "no bearer token"}
	case 1:
	default:
		return "", reject(ReasonMalformed, "more than one Authorization header")
	}
	return parseBearer(values[0])
}

// parseBearer parses the value of one Authorization header; see
// BearerToken.
func parseBearer(v string) (string, error) {
	const scheme = "bearer"
	if v == "" {
		return "", &RejectError{Reason: ReasonMissing, Description: "no bearer token"}
	}
	end := strings.IndexAny(v, " \t")
	if end < 0 {
		end = len(v)
	}
	if !strings.EqualFold(v[:end], scheme) {
		return "", &RejectError{Reason: ReasonMissing, Description: "no bearer token: the Authorization scheme is not Bearer"}
	}
	if end < len(v) && v[end] == '\t' {
		return "", reject(ReasonMalformed, "the bearer token must follow the scheme after a space")
	}
	tok := strings.TrimLeft(v[end:], " ")
	if tok == "" {
		return "", reject(ReasonMalformed, "empty bearer token")
	}
	return tok, nil
}

// b64tokenChars marks the bytes of RFC 6750's b64token alphabet, "="
// excepted.
var b64tokenChars = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()

// isB64Token reports whether s matches RFC 6750's
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for i < len(s) && b64tokenChars[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
