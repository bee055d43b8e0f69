package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/obo"
)

func (c *Config) validateAuthority(v *validator) {
	a := c.Authority
	if a.URL == "" {
		if a.Issuer == "" || a.JWKSURI == "" || a.TokenEndpoint == "" {
			v.add("authority.url", "must be set, unless issuer, jwks_uri and token_endpoint are all set")
		}
	} else {
		v.authorityURL("authority.url", a.URL, false)
	}
	if a.JWKSURI != "" {
		v.authorityURL("authority.jwks_uri", a.JWKSURI, true)
	}
	if a.TokenEndpoint != "" {
		v.authorityURL("authority.token_endpoint", a.TokenEndpoint, true)
	}
	if a.Issuer != "" && strings.TrimSpace(a.Issuer) != a.Issuer {
		v.add("authority.issuer", "must not start or end with white space")
	}
	v.positive("authority.timeout", a.Timeout)
	if a.JWKSRefresh < Duration(time.Minute) {
		v.add("authority.jwks_refresh", "must be at least 1m, not %s", a.JWKSRefresh)
	}
	switch a.Protocol {
	case "", obo.ProtocolEntra, obo.ProtocolRFC8693:
	default:
		v.add("authority.protocol", "%q is not a protocol (use %s, the Microsoft On-Behalf-Of request, or %s, an OAuth 2.0 token exchange)",
			a.Protocol, obo.ProtocolEntra, obo.ProtocolRFC8693)
	}
	v.intRange("authority.retries", a.Retries, 0, 5, "0 turns retries off")
	v.intRange("authority.breaker.failures", a.Breaker.Failures, 0, 1000, "0 turns the breaker off")
	if a.Breaker.Failures > 0 && (a.Breaker.OpenFor <= 0 || a.Breaker.OpenFor > Duration(time.Hour)) {
		v.add("authority.breaker.open_for", "must be positive and at most 1h, not %s", a.Breaker.OpenFor)
	}
	v.intRange("authority.max_concurrent_exchanges", a.MaxConcurrentExchanges, 0, 10000, "0 means no bound")
	if a.QueueTimeout < 0 || a.QueueTimeout > Duration(time.Minute) {
		v.add("authority.queue_timeout", "must be between 0s and 1m, not %s", a.QueueTimeout)
	}
}

// MultiTenant reports whether the authority serves many tenants: the
// tenant segment of its URL (or token endpoint) is "common" or
// "organizations", or its issuer holds the {tenantid} placeholder.
func (a Authority) MultiTenant() bool {
	return obo.IsMultiTenant(a.Tenant()) || strings.Contains(a.Issuer, "{tenantid}")
}

// Tenant returns the tenant segment of the authority: the first path
// segment of URL, or of TokenEndpoint when URL is not set.
func (a Authority) Tenant() string {
	raw := a.URL
	if raw == "" {
		raw = a.TokenEndpoint
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	seg, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	return seg
}

// authorityURL checks a URL of the authority: absolute, https unless the
// host is a loopback host, and without user information or fragment. A
// query is allowed where allowQuery is set (Azure AD B2C endpoints carry
// ?p=<policy>), but not on the discovery base, to which a path is appended.
func (v *validator) authorityURL(key, raw string, allowQuery bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		v.add(key, "must be an absolute https URL")
		return
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			v.add(key, "must use https (http is allowed only for loopback hosts)")
		}
	default:
		v.add(key, "must be an absolute https URL")
	}
	v.urlParts(key, raw, u, allowQuery)
}

func (v *validator) urlParts(key, raw string, u *url.URL, allowQuery bool) {
	if u.User != nil {
		v.add(key, "must not contain user information")
	}
	if !allowQuery && (u.RawQuery != "" || u.ForceQuery) {
		v.add(key, "must not contain a query")
	}
	if strings.Contains(raw, "#") {
		v.add(key, "must not contain a fragment")
	}
}

// isLoopback reports whether host is localhost or a loopback IP address
// (127.0.0.0/8 or ::1).
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckAuthorityURL applies the rules for configured authority URLs to an
// endpoint learned at run time (from a discovery document): absolute, https
// unless the host is a loopback host, no user information or fragment.
func CheckAuthorityURL(raw string) error {
	v := &validator{}
	v.authorityURL("url", raw, true)
	if len(v.problems) > 0 {
		return fmt.Errorf("%q %s", raw, v.problems[0].Message)
	}
	return nil
}
