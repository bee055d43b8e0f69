package config

import (
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/obo-gateway/obo-gateway/internal/idshape"
	"github.com/obo-gateway/obo-gateway/internal/smallfile"
	"github.com/obo-gateway/obo-gateway/obo"
	"github.com/obo-gateway/obo-gateway/proxy"
)

// allowedAlgorithms returns the asymmetric JWS algorithms that may be
// accepted for token A.
func allowedAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
}

var routeName = regexp.MustCompile(`^[a-z0-9_-]+$`)

// Validate checks the configuration and returns every problem found, as
// Problems, or nil when the configuration is valid. Problems from Validate
// carry the key path of each problem but neither file nor line. Parse calls
// Validate after applying the defaults; a Config built in code must set
// every value that has a default itself.
//
// Validate reads Client.SecretFile, when it is set, to check that it can
// be read and is not empty.
func (c *Config) Validate() error {
	ps := c.validate()
	if len(ps) == 0 {
		return nil
	}
	sortProblems(ps)
	return Problems(ps)
}

type validator struct{ problems []Problem }

func (v *validator) add(key, format string, args ...any) {
	v.problems = append(v.problems, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

func (c *Config) validate() []Problem {
	v := &validator{}
	v.hostPort("listen", c.Listen)
	v.hostPort("admin_listen", c.AdminListen)
	if c.Listen != "" && c.Listen == c.AdminListen && !strings.HasSuffix(c.Listen, ":0") {
		v.add("admin_listen", "must differ from listen (both are %q)", c.Listen)
	}
	if c.ShutdownTimeout < 0 {
		v.add("shutdown_timeout", "must not be negative")
	}
	if c.ShutdownDelay < 0 || c.ShutdownDelay.D() > 5*time.Minute {
		v.add("shutdown_delay", "must be between 0 and 5m, not %s", c.ShutdownDelay)
	}
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")
	if c.Log.Requests != "" { // empty: the default, failures
		v.oneOf("log.requests", c.Log.Requests, "failures", "all", "none")
	}
	c.validateAuthority(v)
	c.validateClient(v)
	c.validateInbound(v)
	c.validateRoutes(v)
	c.validateAgents(v)
	if c.Cache.MaxBytes < MiB {
		v.add("cache.max_bytes", "must be at least 1MiB, not %s", c.Cache.MaxBytes)
	}
	c.validateRedis(v)
	c.validateTelemetry(v)
	if c.Cache.Key != "" { // empty means the default, user
		v.oneOf("cache.key", c.Cache.Key, proxy.KeyUser, proxy.KeyAssertion)
	}
	// The verified-token cache splits its bytes over 16 maps; below 256KiB
	// each would hold a handful of tokens, or none.
	if n := c.Inbound.VerifiedCacheBytes; n < 0 || n > 0 && n < 256*KiB {
		v.add("inbound.verified_cache_bytes", "must be 0 (off) or at least 256KiB, not %s", n)
	}
	for i, cp := range c.Client.Capabilities {
		if cp != "cp1" {
			v.add(fmt.Sprintf("client.capabilities[%d]", i), "%q is not a known client capability (the only one is \"cp1\")", cp)
		}
	}
	for i, r := range c.Routes {
		if r.ReplayMaxBytes < 0 || r.ReplayMaxBytes > 16*MiB {
			v.add(fmt.Sprintf("routes[%d].replay_max_bytes", i), "must be between 0 and 16MiB, not %s", r.ReplayMaxBytes)
		}
	}
	return v.problems
}

func (v *validator) hostPort(key, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(key, "%q must be host:port, such as \"127.0.0.1:8080\"", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add(key, "%q must have a numeric port from 0 to 65535", addr)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostName(host) {
		v.add(key, "%q must have a valid host name or IP address", addr)
	}
}

func validHostName(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				return false
			}
		}
	}
	return true
}

func (v *validator) oneOf(key, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	v.add(key, "%q is not one of %s", value, strings.Join(allowed, ", "))
}

func (v *validator) positive(key string, d Duration) {
	if d <= 0 {
		v.add(key, "must be positive, not %s", d)
	}
}

// intRange checks that n lies in [lo, hi]; note explains the special
// values.
func (v *validator) intRange(key string, n, lo, hi int, note string) {
	if n < lo || n > hi {
		v.add(key, "must be between %d and %d (%s), not %d", lo, hi, note, n)
	}
}

func (c *Config) validateClient(v *validator) {
	cl := c.Client
	if cl.ID == "" {
		v.add("client.id", "must be set (or set the environment variable %s)", EnvAzureClientID)
	}
	if cl.TenantID != "" && (!idshape.IsTenantName(cl.TenantID) || obo.IsMultiTenant(cl.TenantID)) {
		v.add("client.tenant_id", "%q must be the application's home tenant: a tenant id (GUID) or domain name, not common or organizations", cl.TenantID)
	}
	n := 0
	if cl.Secret != "" {
		n++
	}
	if cl.Certificate.Configured() {
		n++
		c.validateCertificate(v)
	}
	if cl.AssertionFile != "" {
		n++
		switch _, err := smallfile.ReadSecret(cl.AssertionFile); {
		case errors.Is(err, smallfile.ErrEmpty):
			v.add("client.assertion_file", "%s", err)
		case err != nil:
			v.add("client.assertion_file", "%s (on AKS the workload identity webhook mounts it when the pod has the label azure.workload.identity/use: \"true\")", err)
		}
	}
	if cl.SecretFile != "" {
		n++
		if _, err := smallfile.ReadSecret(cl.SecretFile); err != nil {
			v.add("client.secret_file", "%s", err)
		}
	}
	if cl.ManagedIdentity != nil {
		n++
		c.validateManagedIdentity(v)
	}
	if n != 1 {
		v.add("client", "exactly one credential must be set (secret, secret_file, certificate, assertion_file or managed_identity), found %d", n)
	}
}

// validateCertificate checks client.certificate: the files can be read, hold
// a certificate and its unencrypted key, and the certificate is valid now.
func (c *Config) validateCertificate(v *validator) {
	cert := c.Client.Certificate
	if cert.File == "" {
		v.add("client.certificate.file", "must be set: the PEM file with the certificate (and its chain)")
		return
	}
	ck, err := obo.LoadCertificateKey(cert.File, cert.KeyFile)
	if err != nil {
		key := "client.certificate.file"
		if cert.KeyFile != "" && strings.HasPrefix(err.Error(), cert.KeyFile+":") || strings.Contains(err.Error(), "read key file") {
			key = "client.certificate.key_file"
		}
		v.add(key, "%s", err)
		return
	}
	if err := ck.CheckValidity(time.Now()); err != nil {
		v.add("client.certificate.file", "%s; the authority refuses assertions signed with it", err)
	}
}

func (c *Config) validateInbound(v *validator) {
	in := c.Inbound
	if len(in.Audiences) == 0 {
		v.add("inbound.audiences", "must not be empty")
	}
	c.validateStripHeaders(v)
	switch {
	case len(in.AllowedTenants) == 0 && c.Authority.MultiTenant():
		v.add("inbound.allowed_tenants", "must be set: the authority %q is multi-tenant, so list the tenant ids whose users may call, or [\"*\"] to accept every tenant",
			c.Authority.Tenant())
	case slices.Contains(in.AllowedTenants, "*") && len(in.AllowedTenants) > 1:
		v.add("inbound.allowed_tenants", "\"*\" accepts every tenant and must stand alone")
	}
	for i, t := range in.AllowedTenants {
		if t != "*" && !idshape.IsGUID(t) {
			v.add(fmt.Sprintf("inbound.allowed_tenants[%d]", i), "%q must be a tenant id (a GUID, as in the tid claim of tokens) or \"*\"", t)
		}
	}
	v.tokens("inbound.audiences", in.Audiences)
	v.tokens("inbound.required_scopes", in.RequiredScopes)
	switch {
	case in.ClockSkew < 0:
		v.add("inbound.clock_skew", "must not be negative")
	case in.ClockSkew > Duration(10*time.Minute):
		v.add("inbound.clock_skew", "must be at most 10m, not %s", in.ClockSkew)
	}
	if len(in.Algorithms) == 0 {
		v.add("inbound.algorithms", "must not be empty")
	}
	for i, alg := range in.Algorithms {
		key := fmt.Sprintf("inbound.algorithms[%d]", i)
		switch {
		case isAllowedAlgorithm(alg):
		case len(alg) >= 2 && strings.EqualFold(alg[:2], "HS"):
			v.add(key, "%q is not allowed (symmetric algorithms are never accepted)", alg)
		case strings.EqualFold(alg, "none"):
			v.add(key, "%q is not allowed (unsigned tokens are never accepted)", alg)
		default:
			v.add(key, "%q is not supported (use one of %s)", alg, strings.Join(allowedAlgorithms(), ", "))
		}
	}
}

// validateStripHeaders checks inbound.strip_headers: header field names,
// none that framing needs, and no Cookie when a route forwards cookies.
func (c *Config) validateStripHeaders(v *validator) {
	for i, h := range c.Inbound.StripHeaders {
		key := fmt.Sprintf("inbound.strip_headers[%d]", i)
		switch canon := textproto.CanonicalMIMEHeaderKey(h); {
		case !isHeaderName(h):
			v.add(key, "%q is not a header name (letters, digits and !#$%%&'*+-.^_`|~ only)", h)
		case canon == "Host" || canon == "Content-Length" || canon == "Transfer-Encoding":
			v.add(key, "%q cannot be removed: the request cannot be forwarded without it", h)
		case canon == "Cookie":
			for j, r := range c.Routes {
				if r.ForwardCookies {
					v.add(key, "Cookie contradicts routes[%d].forward_cookies: true; remove one of them", j)
					break
				}
			}
		}
	}
}

// isHeaderName reports whether s is an HTTP field name (an RFC 9110 token).
func isHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func isAllowedAlgorithm(alg string) bool {
	return slices.Contains(allowedAlgorithms(), alg)
}

// tokens checks that every item of a list of audiences or scopes is set and
// contains no white space.
func (v *validator) tokens(key string, items []string) {
	for i, s := range items {
		k := fmt.Sprintf("%s[%d]", key, i)
		switch {
		case s == "":
			v.add(k, "must not be empty")
		case strings.IndexFunc(s, unicode.IsSpace) >= 0:
			v.add(k, "%q must not contain white space", s)
		}
	}
}
