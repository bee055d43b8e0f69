package obo

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/obo-gateway/obo-gateway/internal/idshape"
)

// The protocols of Config.Protocol.
const (
	// ProtocolEntra exchanges token A with the Microsoft identity
	// platform's On-Behalf-Of request (grant_type jwt-bearer,
	// requested_token_use on_behalf_of).
	ProtocolEntra = "entra"
	// ProtocolRFC8693 exchanges token A with an OAuth 2.0 token exchange
	// (RFC 8693), as Keycloak, Okta and other authorities implement it.
	ProtocolRFC8693 = "rfc8693"
)

// GrantTokenExchange is the grant type of an RFC 8693 token exchange.
const GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"

// Token type identifiers (RFC 8693 section 3) for subject_token_type,
// requested_token_type and issued_token_type.
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeSAML2       = "urn:ietf:params:oauth:token-type:saml2"
	TokenTypeSAML1       = "urn:ietf:params:oauth:token-type:saml1"
)

// validTenant reports whether t may be put into a token endpoint's path: a
// GUID or a domain name, nothing that could add a path segment or a query,
// and not a multi-tenant authority.
func validTenant(t string) bool {
	return idshape.IsTenantName(t) && !IsMultiTenant(t)
}

// IsMultiTenant reports whether tenant names one of the Entra authorities
// that stand for many tenants: "common" or "organizations".
func IsMultiTenant(tenant string) bool {
	return strings.EqualFold(tenant, "common") || strings.EqualFold(tenant, "organizations")
}

// tenantEndpoint is a multi-tenant token endpoint split around its tenant
// segment: prefix + tenant + suffix.
type tenantEndpoint struct {
	prefix, suffix string
}

// splitTenantEndpoint returns the tenant split of endpoint when its first
// path segment is "common" or "organizations", or nil.
func splitTenantEndpoint(endpoint string) *tenantEndpoint {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil
	}
	seg, _, _ := strings.Cut(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	if !IsMultiTenant(seg) {
		return nil
	}
	// The path starts at the first "/" after "scheme://".
	_, afterScheme, ok := strings.Cut(endpoint, "://")
	if !ok {
		return nil
	}
	slash := strings.IndexByte(afterScheme, '/')
	if slash < 0 {
		return nil
	}
	start := len(endpoint) - len(afterScheme) + slash + 1
	if !strings.EqualFold(endpoint[start:start+len(seg)], seg) {
		return nil
	}
	return &tenantEndpoint{prefix: endpoint[:start], suffix: endpoint[start+len(seg):]}
}

// tenantTokenEndpoint returns the token endpoint of tenant for a
// multi-tenant token endpoint (one whose first path segment is "common" or
// "organizations"), by replacing that segment; any other endpoint is
// returned unchanged. It fails when tenant is not a tenant id or domain
// name.
func tenantTokenEndpoint(endpoint, tenant string) (string, error) {
	te := splitTenantEndpoint(endpoint)
	if te == nil || tenant == "" {
		return endpoint, nil
	}
	if !validTenant(tenant) {
		return "", fmt.Errorf("obo: tenant %q is not a tenant id or domain name", tenant)
	}
	return te.prefix + tenant + te.suffix, nil
}

// endpointFor returns the token endpoint a request goes to.
func (c *Client) endpointFor(req Request) (string, error) {
	if c.endpoint == nil {
		return c.cfg.TokenEndpoint, nil
	}
	tenant := req.Tenant
	if tenant == "" && req.Flow != FlowClientCredentials && req.Assertion != "" {
		// Token A was validated by the caller (its issuer binds its tid);
		// the tid only selects where to send it.
		var c struct {
			Tid string `json:"tid"`
		}
		if peekClaims(req.Assertion, &c) {
			tenant = c.Tid
		}
	}
	if tenant == "" {
		tenant = c.cfg.DefaultTenant
	}
	if tenant == "" {
		return c.cfg.TokenEndpoint, nil
	}
	if !validTenant(tenant) {
		return "", fmt.Errorf("obo: tenant %q is not a tenant id or domain name", tenant)
	}
	return c.endpoint.prefix + tenant + c.endpoint.suffix, nil
}
