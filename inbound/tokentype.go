package inbound

import (
	"strings"
)

// isAccessTokenType reports whether typ, a JOSE "typ" header, may name an
// access token: "JWT" or "at+jwt" (RFC 9068 2.1), each with or without
// the "application/" prefix RFC 7515 4.1.9 lets a sender omit, compared as
// media types are, without regard to case. An absent "typ" is allowed, as
// RFC 7519 5.1 makes it optional.
func isAccessTokenType(typ string) bool {
	if len(typ) > len("application/") && strings.EqualFold(typ[:len("application/")], "application/") {
		typ = typ[len("application/"):]
	}
	return typ == "" || strings.EqualFold(typ, "JWT") || strings.EqualFold(typ, "at+jwt")
}

// notAccessToken says why a token with header h and claims p is not an
// access token, or returns "" when nothing says so: a "typ" of another
// kind of token (an ID token's "id_token+jwt", a logout token's
// "logout+jwt"), a claim that only ID tokens or security event tokens
// carry, or an Entra "idtyp" that contradicts the token's delegated
// scopes.
func notAccessToken(h *header, p *payload) string {
	switch {
	case !isAccessTokenType(h.Typ):
		return "token type (typ) is not JWT or at+jwt"
	case p.Nonce != nil:
		return "token carries a nonce claim, as ID tokens do; an access token is expected"
	case p.AtHash != nil || p.CHash != nil:
		return "token carries at_hash or c_hash, as ID tokens do; an access token is expected"
	case p.Events != nil:
		return "token carries an events claim, as security event tokens do; an access token is expected"
	case p.Idtyp == "app" && p.Scp != "":
		return "token says it is an app token (idtyp) but carries delegated scopes"
	case p.Idtyp == "user" && p.Scp == "":
		return "token says it is a user token (idtyp) but carries no delegated scopes"
	case p.Idtyp != "" && p.Idtyp != "app" && p.Idtyp != "user":
		return "token idtyp is neither app nor user"
	}
	return ""
}
