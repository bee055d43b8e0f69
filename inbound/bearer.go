package inbound

import (
	"net/http"
	"strings"
)

// BearerToken returns the credential of the request's single
// "Authorization: Bearer <credential>" header, the scheme matched without
// regard to case, or a *RejectError. Another scheme counts as no token (RFC
// 6750: a bare challenge); the credential's b64token syntax is Validate's to
// check, so a VerifiedCache hit does not scan it again.
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
