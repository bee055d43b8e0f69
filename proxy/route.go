package proxy

import (
	"errors"
	"fmt"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"

	"github.com/obo-gateway/obo-gateway/obo"
)

// errBadPath is returned by cleanPath for paths the gateway refuses to
// forward.
var errBadPath = errors.New("path contains a backslash, a control character, a doubly encoded separator or a dot segment with parameters")

// cleanPath returns the canonical form of p, the request's decoded path:
// dot segments resolved (so "..", and "%2e%2e" and "%2f" which arrive here
// decoded, can never climb above the root), duplicate slashes folded, the
// trailing slash kept. It refuses backslashes (a separator for some
// servers), control characters, and percent signs that would still decode to
// a dot, slash or backslash downstream (double encoding).
func cleanPath(p string) (string, error) {
	if isClean(p) {
		return p, nil
	}
	return cleanSlow(p)
}

// isClean reports whether p is already canonical, as most request paths
// are, so that cleanPath can return it as it is: it begins with a slash and
// has no empty segment, no segment beginning with a dot, a semicolon or a
// space (which covers every dot segment, with parameters or trailing spaces
// or not, and every segment those reduce to nothing), no percent sign,
// backslash or control character.
func isClean(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c < 0x20 || c == 0x7f || c == '\\' || c == '%':
			return false
		case c == '/' && i+1 < len(p):
			switch p[i+1] {
			case '/', '.', ';', ' ':
				return false
			}
		}
	}
	return true
}

// cleanSlow is cleanPath for paths that need more than a look.
func cleanSlow(p string) (string, error) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c < 0x20 || c == 0x7f || c == '\\':
			return "", errBadPath
		case c == '%' && i+2 < len(p):
			switch strings.ToLower(p[i+1 : i+3]) {
			case "2e", "2f", "5c":
				return "", errBadPath
			}
		}
	}
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	// A dot segment with parameters ("..;x") or trailing spaces ("..  "),
	// or of three dots or more, is a dot segment to servlet containers or
	// IIS, but an ordinary name to path.Clean.
	for seg := range strings.SplitSeq(p, "/") {
		name, _, _ := strings.Cut(seg, ";")
		if name = strings.TrimRight(name, " "); strings.Trim(name, ".") == "" && (name != seg || len(name) > 2) {
			return "", errBadPath
		}
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c, nil
}

// route is one configured downstream.
type route struct {
	name     string
	prefix   string // "/graph": no trailing slash
	upstream *url.URL
	basePath string // upstream path without trailing slash
	scopes   []string
	scopeSet string // normalised, for cache keys
	appKey   string // cache key of the route's app-only token B
	flow     string
	replay   int64 // RouteConfig.ReplayMaxBytes
	cookies  bool  // RouteConfig.ForwardCookies
	// websocket is RouteConfig.WebSocket.
	websocket bool
	proxy     *httputil.ReverseProxy
	// agentID and agentUser are the fixed agent identity and agent user
	// of an agent route, empty when the request names them.
	agentID, agentUser string

	audience, requestedType string
	present                 obo.Presentation
	bearer                  bool // present is "Authorization: Bearer <token>"
}

// matches reports whether the clean path p is under the route's prefix.
func (rt *route) matches(p string) bool {
	return strings.HasPrefix(p, rt.prefix) && (len(p) == len(rt.prefix) || p[len(rt.prefix)] == '/')
}

// outPath maps the clean inbound path p, which the route matches, to the
// upstream path: the prefix is replaced by the upstream's base path. Since p
// is clean, the result is always the base path or below it.
func (rt *route) outPath(p string) string {
	rest := p[len(rt.prefix):]
	out := rt.basePath + rest
	if out == "" {
		return "/"
	}
	return out
}

// parseUpstream checks an upstream base URL.
func parseUpstream(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q must not carry user info, a query or a fragment", s)
	}
	return u, nil
}

// router finds the route of a path: the longest matching prefix.
type router []*route

func (r router) match(p string) *route {
	var best *route
	for _, rt := range r {
		if rt.matches(p) && (best == nil || len(rt.prefix) > len(best.prefix)) {
			best = rt
		}
	}
	return best
}
