package proxy

import (
	"net/http"
	"slices"
	"strings"
)

// DefaultMaxRequestHeaders is the number of header fields a request may
// carry when Config.MaxRequestHeaders is zero. Their total size is bounded
// by the server (64 KiB in the gateway).
const DefaultMaxRequestHeaders = 100

// identityHeaders are removed from every inbound request: headers through
// which a front end asserts who the caller is, or where the request came
// from or goes, that a downstream API might trust. Only token B speaks for
// the user downstream.
var identityHeaders = []string{
	// Azure App Service / Container Apps authentication ("Easy Auth").
	"X-MS-CLIENT-PRINCIPAL",
	"X-MS-CLIENT-PRINCIPAL-ID",
	"X-MS-CLIENT-PRINCIPAL-NAME",
	"X-MS-CLIENT-PRINCIPAL-IDP",
	"X-MS-TOKEN-AAD-ACCESS-TOKEN",
	"X-MS-TOKEN-AAD-ID-TOKEN",
	"X-MS-TOKEN-AAD-REFRESH-TOKEN",
	"X-MS-TOKEN-AAD-EXPIRES-ON",
	// oauth2-proxy and similar authenticating front ends (its X-Forwarded-*
	// headers go with every other X-Forwarded-* header).
	"X-Auth-Request-User",
	"X-Auth-Request-Email",
	"X-Auth-Request-Preferred-Username",
	"X-Auth-Request-Groups",
	"X-Auth-Request-Access-Token",
	"X-Remote-User",
	"X-Remote-Group",
	"Remote-User",
	// Client certificates asserted by a TLS-terminating front end.
	"X-Forwarded-Client-Cert",
	"X-ARR-ClientCert",
	"X-Client-Cert",
	"X-SSL-Client-Cert",
	// Client address and path overrides.
	"X-Real-IP",
	"X-Original-URL",
	"X-Rewrite-URL",
	// Agent routes' own request headers: for the gateway, not the
	// downstream.
	HeaderAgentIdentity,
	HeaderAgentUser,
	HeaderAgentTenant,
}

// IdentityHeaders returns the request headers the gateway always removes
// before proxying, in addition to Config.StripHeaders, to every X-Forwarded-*
// header and Forwarded (replaced by the gateway's own X-Forwarded-For,
// -Host and -Proto), to hop-by-hop headers and those named in Connection,
// and to Cookie unless the route forwards cookies.
func IdentityHeaders() []string { return slices.Clone(identityHeaders) }

// stripSet is the set of headers removed from inbound requests, kept in
// two forms: folded by headerKey (any spelling), and canonical (the form
// net/http gives almost every header name), so that the common case costs
// no allocation.
type stripSet struct {
	folded    map[string]bool
	canonical map[string]bool
}

// stripList returns the identity headers and extra as a stripSet.
func stripList(extra []string) stripSet {
	s := stripSet{folded: make(map[string]bool), canonical: make(map[string]bool)}
	for _, h := range append(IdentityHeaders(), extra...) {
		if k := headerKey(strings.TrimSpace(h)); k != "" {
			s.folded[k] = true
			s.canonical[http.CanonicalHeaderKey(k)] = true
		}
	}
	return s
}

// headerKey folds a header name for comparison: lower case, with "_" read
// as "-". CGI-style servers (WSGI, PHP, many frameworks) map X_Forwarded_For
// and X-Forwarded-For to the same variable, so either spelling must go.
func headerKey(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}

// stripInbound removes from h, the outbound copy of an inbound request's
// header, what the caller must not be able to tell the upstream: every
// X-Forwarded-* header and Forwarded (the gateway sets its own), the
// headers of strip, and Cookie unless cookies is set. Names are compared
// with headerKey.
func stripInbound(h http.Header, strip stripSet, cookies bool) {
	for k := range h {
		if k == http.CanonicalHeaderKey(k) && !strings.Contains(k, "_") {
			// Canonical names compare without folding.
			if strings.HasPrefix(k, "X-Forwarded-") || k == "Forwarded" || strip.canonical[k] ||
				!cookies && (k == "Cookie" || k == "Cookie2") {
				delete(h, k)
			}
			continue
		}
		n := headerKey(k)
		if strings.HasPrefix(n, "x-forwarded-") || n == "forwarded" || strip.folded[n] ||
			!cookies && (n == "cookie" || n == "cookie2") {
			delete(h, k)
		}
	}
}

// headerFields counts the header fields of a request: each value of each
// name (Host is not in the map).
func headerFields(h http.Header) int {
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	return n
}
