package obo

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
)

// Placeholders of a Presentation format.
const (
	// PlaceholderToken is token B exactly as the authority issued it.
	PlaceholderToken = "{token}"
	// PlaceholderBase64 is the standard (padded) base64 of token B's
	// content: for a SAML assertion the XML document, which Entra returns
	// base64url-encoded and the gateway decodes first; for any other token
	// its text.
	PlaceholderBase64 = "{base64}"
	// PlaceholderBase64URL is the same content as PlaceholderBase64,
	// base64url-encoded without padding.
	PlaceholderBase64URL = "{base64url}"
)

// Default presentations of token B to the downstream API.
const (
	// DefaultAuthHeader is the header that carries token B by default.
	DefaultAuthHeader = "Authorization"
	// DefaultBearerFormat presents an access token.
	DefaultBearerFormat = "Bearer {token}"
	// DefaultSAMLAuthFormat presents a SAML assertion.
	DefaultSAMLAuthFormat = "SAML {base64}"
)

// Limits on a Presentation's format and header name.
const (
	maxPresentationPrefix  = 256
	maxPresentationHeaders = 128
)

// Presentation says how token B is presented to a downstream API: in which
// request header and in which format. The zero value is not valid; use
// NewPresentation or DefaultPresentation.
type Presentation struct {
	// Header is the canonical name of the request header that carries
	// token B, normally "Authorization".
	Header string
	// Format is the header value with one placeholder (PlaceholderToken,
	// PlaceholderBase64 or PlaceholderBase64URL) standing for token B,
	// such as "Bearer {token}" or "SAML {base64}".
	Format string
}

// DefaultPresentation returns how a token of tokenType (a TokenType*
// constant, "" for an access token) is presented by default:
// "Authorization: SAML {base64}" for SAML assertions and
// "Authorization: Bearer {token}" for everything else.
func DefaultPresentation(tokenType string) Presentation {
	if IsSAML(tokenType) {
		return Presentation{Header: DefaultAuthHeader, Format: DefaultSAMLAuthFormat}
	}
	return Presentation{Header: DefaultAuthHeader, Format: DefaultBearerFormat}
}

// IsSAML reports whether tokenType is a SAML assertion type.
func IsSAML(tokenType string) bool {
	return tokenType == TokenTypeSAML2 || tokenType == TokenTypeSAML1
}

// reservedHeaders may not carry token B: they frame the message, are
// hop-by-hop, or are set by the gateway itself.
var reservedHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Proxy-Connection": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Host": true, "Content-Length": true, "Content-Type": true, "Content-Encoding": true, "Cookie": true,
	"X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true, "Forwarded": true,
}

// NewPresentation checks header and format and returns the Presentation.
// Empty values take the defaults for tokenType (see DefaultPresentation).
// The header must be a valid field name that is not hop-by-hop, framing or
// set by the gateway; the format must hold exactly one placeholder and
// only printable ASCII otherwise.
func NewPresentation(header, format, tokenType string) (Presentation, error) {
	p := DefaultPresentation(tokenType)
	if header != "" {
		if !validHeaderName(header) {
			return Presentation{}, fmt.Errorf("header %q is not a valid HTTP header name", header)
		}
		h := http.CanonicalHeaderKey(header)
		if reservedHeaders[h] {
			return Presentation{}, fmt.Errorf("header %q cannot carry the token: it is hop-by-hop, describes the body or is set by the gateway", header)
		}
		p.Header = h
	}
	if format != "" {
		if err := checkFormat(format); err != nil {
			return Presentation{}, err
		}
		p.Format = format
	}
	return p, nil
}

func validHeaderName(h string) bool {
	if h == "" || len(h) > maxPresentationHeaders {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func checkFormat(f string) error {
	for i := 0; i < len(f); i++ {
		if c := f[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("format %q may hold only printable ASCII characters", f)
		}
	}
	n := 0
	rest := f
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return fmt.Errorf("format %q has an unclosed \"{\"", f)
		}
		switch ph := rest[i : i+j+1]; ph {
		case PlaceholderToken, PlaceholderBase64, PlaceholderBase64URL:
			n++
		default:
			return fmt.Errorf("format %q has the unknown placeholder %s (use {token}, {base64} or {base64url})", f, ph)
		}
		rest = rest[i+j+1:]
	}
	if n != 1 {
		return fmt.Errorf("format %q must hold exactly one of {token}, {base64} or {base64url}, not %d", f, n)
	}
	if len(f) > maxPresentationPrefix {
		return fmt.Errorf("format %q is longer than %d characters", f, maxPresentationPrefix)
	}
	return nil
}

// Value returns the header value carrying token.
func (p Presentation) Value(token string) string {
	switch {
	case strings.Contains(p.Format, PlaceholderToken):
		return strings.Replace(p.Format, PlaceholderToken, token, 1)
	case strings.Contains(p.Format, PlaceholderBase64):
		return strings.Replace(p.Format, PlaceholderBase64, base64.StdEncoding.EncodeToString(tokenContent(token)), 1)
	case strings.Contains(p.Format, PlaceholderBase64URL):
		return strings.Replace(p.Format, PlaceholderBase64URL, base64.RawURLEncoding.EncodeToString(tokenContent(token)), 1)
	}
	return p.Format
}

// tokenContent returns the content of a token: the XML document of a SAML
// assertion, whether it came raw or base64(url)-encoded, or else the token's
// text.
func tokenContent(token string) []byte {
	if strings.HasPrefix(strings.TrimSpace(token), "<") {
		return []byte(token)
	}
	t := strings.TrimSpace(token)
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(t); err == nil {
			if x := bytes.TrimLeft(b, "\ufeff \t\r\n"); len(x) > 0 && x[0] == '<' {
				return b
			}
		}
	}
	return []byte(token)
}

// samlAssertion returns the XML document of a SAML token as issued by the
// authority (raw or base64(url)-encoded), and whether it is one.
func samlAssertion(token string) ([]byte, bool) {
	b := tokenContent(token)
	x := bytes.TrimLeft(b, "\ufeff \t\r\n")
	return b, len(x) > 0 && x[0] == '<'
}
