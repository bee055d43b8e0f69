package echo

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/safejson"
)

// Formats of a bearer token, in Token.Format.
const (
	FormatJWT    = "jwt"
	FormatSAML   = "saml"
	FormatOpaque = "opaque"
)

// Token is the echo API's reading of a bearer token, so that a person
// trying the gateway sees token B's audience, scopes and subject without a
// JWT decoder.
type Token struct {
	// Format is FormatJWT, FormatSAML (a base64 SAML assertion) or
	// FormatOpaque (anything else).
	Format string `json:"format"`
	// Claims are the payload claims of a JWT (aud, scp or roles, oid, azp,
	// exp, iss, tid, ...), decoded without checking the signature.
	Claims map[string]any `json:"claims,omitempty"`
	// Expires is the exp claim as an RFC 3339 time in UTC, for reading.
	Expires string `json:"expires,omitempty"`
}

// readToken reads the bearer token of an Authorization header value, or
// returns nil when it holds none. The signature is not checked: the echo
// API is a demonstration that shows what it received and trusts nothing.
func readToken(authorization string) *Token {
	scheme, tok, ok := strings.Cut(authorization, " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return nil
	}
	var claims map[string]any
	if err := safejson.DecodePayload(tok, &claims); err != nil || claims == nil {
		if isSAML(tok) {
			return &Token{Format: FormatSAML}
		}
		return &Token{Format: FormatOpaque}
	}
	t := &Token{Format: FormatJWT, Claims: claims}
	if exp, ok := claims["exp"].(json.Number); ok {
		if sec, err := exp.Float64(); err == nil {
			t.Expires = time.Unix(int64(sec), 0).UTC().Format(time.RFC3339)
		}
	}
	return t
}

// isSAML reports whether tok is base64 (either alphabet, padded or not) of
// an XML SAML assertion, as the gateway forwards a SAML token B.
func isSAML(tok string) bool {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if b, err := enc.DecodeString(tok); err == nil {
			s := strings.TrimSpace(string(b))
			return strings.HasPrefix(s, "<") && strings.Contains(s, "Assertion")
		}
	}
	return false
}
