package config

import (
	"fmt"
	"net/url"
	"path"
	"strings"
	"unicode"

	"github.com/obo-gateway/obo-gateway/obo"
)

func (c *Config) validateRoutes(v *validator) {
	if len(c.Routes) == 0 {
		v.add("routes", "at least one route must be configured")
	}
	names := make(map[string]int)
	prefixes := make(map[string]int)
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		switch {
		case r.Name == "":
			v.add(key+".name", "must be set")
		case !routeName.MatchString(r.Name):
			v.add(key+".name", "%q must contain only lowercase letters, digits, \"_\" and \"-\"", r.Name)
		}
		if j, dup := names[r.Name]; dup && r.Name != "" {
			v.add(key+".name", "%q is already used by routes[%d]", r.Name, j)
		} else if r.Name != "" {
			names[r.Name] = i
		}

		v.pathPrefix(key+".path_prefix", r.PathPrefix)
		if j, dup := prefixes[r.PathPrefix]; dup && r.PathPrefix != "" {
			v.add(key+".path_prefix", "%q is already used by routes[%d]", r.PathPrefix, j)
		} else if r.PathPrefix != "" {
			prefixes[r.PathPrefix] = i
		}

		v.upstream(key+".upstream", r.Upstream)

		rfc8693 := c.Authority.Protocol == obo.ProtocolRFC8693
		if len(r.Scopes) == 0 && (!rfc8693 || r.Audience == "") {
			if rfc8693 {
				v.add(key+".scopes", "must not be empty unless the route has an audience")
			} else {
				v.add(key+".scopes", "must not be empty")
			}
		}
		v.tokens(key+".scopes", r.Scopes)
		switch r.Flow {
		case obo.FlowOnBehalfOf:
		case obo.FlowClientCredentials:
			for j, s := range r.Scopes {
				if s != "" && !strings.HasSuffix(s, "/.default") && !rfc8693 {
					v.add(fmt.Sprintf("%s.scopes[%d]", key, j), "client_credentials scopes must end in \"/.default\"")
				}
			}
			if c.Authority.MultiTenant() && c.Client.TenantID == "" && !rfc8693 {
				v.add("client.tenant_id", "must be set: the authority is multi-tenant and %s uses client_credentials, whose app-only tokens come from the application's home tenant (or set %s)",
					key, EnvAzureTenantID)
			}
		case obo.FlowAgentApp, obo.FlowAgentUser, obo.FlowAgentOnBehalfOf: // validateAgentRoute
		default:
			v.add(key+".flow", "%q is not a valid flow (use %s, %s, %s, %s or %s)", r.Flow,
				obo.FlowOnBehalfOf, obo.FlowClientCredentials, obo.FlowAgentApp, obo.FlowAgentUser, obo.FlowAgentOnBehalfOf)
		}
		c.validateTokenType(v, key, r)
		v.positive(key+".timeout", r.Timeout)
	}
}

// validateTokenType checks the keys that say which token B a route asks
// for and how it is presented.
func (c *Config) validateTokenType(v *validator, key string, r Route) {
	rfc8693 := c.Authority.Protocol == obo.ProtocolRFC8693
	switch r.TokenType {
	case "", TokenTypeAccessToken:
	case TokenTypeSAML2:
		if r.Flow == obo.FlowClientCredentials {
			v.add(key+".token_type", "saml2 needs flow on_behalf_of: SAML assertions are issued for a user")
		}
	default:
		v.add(key+".token_type", "%q is not a token type (use %s or %s)", r.TokenType, TokenTypeAccessToken, TokenTypeSAML2)
	}
	if r.Audience != "" {
		switch {
		case !rfc8693:
			v.add(key+".audience", "is an RFC 8693 parameter: set authority.protocol: rfc8693, or name the resource in scopes instead")
		case strings.IndexFunc(r.Audience, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
			v.add(key+".audience", "%q must not contain white space", r.Audience)
		}
	}
	if t := r.RequestedTokenType; t != "" {
		u, err := url.Parse(t)
		switch {
		case !rfc8693:
			v.add(key+".requested_token_type", "is an RFC 8693 parameter: set authority.protocol: rfc8693 (for a SAML assertion from Entra use token_type: saml2)")
		case err != nil || u.Scheme == "" || strings.ContainsAny(t, " \t\r\n"):
			v.add(key+".requested_token_type", "%q must be a token type URI such as %s", t, obo.TokenTypeAccessToken)
		case r.TokenType == TokenTypeSAML2 && t != obo.TokenTypeSAML2:
			v.add(key+".requested_token_type", "%q contradicts token_type saml2 (which asks for %s); remove one of them", t, obo.TokenTypeSAML2)
		case r.Flow == obo.FlowClientCredentials:
			v.add(key+".requested_token_type", "is only sent on behalf of a user (flow on_behalf_of)")
		}
	}
	typ := r.RequestedTokenTypeURI()
	if _, err := obo.NewPresentation(r.AuthHeader, "", typ); err != nil {
		v.add(key+".auth_header", "%s", err)
	}
	if _, err := obo.NewPresentation("", r.AuthFormat, typ); err != nil {
		v.add(key+".auth_format", "%s", err)
	}
}

func (v *validator) pathPrefix(key, p string) {
	if p == "" {
		v.add(key, "must be set")
		return
	}
	n := len(v.problems)
	if !strings.HasPrefix(p, "/") {
		v.add(key, "%q must start with \"/\"", p)
	}
	if p == "/" {
		v.add(key, "\"/\" is not allowed: give the route a prefix of its own, such as \"/graph\"")
		return
	}
	if strings.HasSuffix(p, "/") {
		v.add(key, "%q must not end with \"/\"", p)
	}
	if strings.Contains(p, "..") {
		v.add(key, "%q must not contain \"..\"", p)
	}
	if strings.Contains(p, "%") {
		v.add(key, "%q must not contain \"%%\" (percent-encoding is not allowed)", p)
	}
	if strings.Contains(p, "//") {
		v.add(key, "%q must not contain \"//\"", p)
	}
	if strings.ContainsAny(p, "?#\\") || strings.IndexFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		v.add(key, "%q must not contain \"?\", \"#\", \"\\\", white space or control characters", p)
	}
	if len(v.problems) == n && path.Clean(p) != p {
		v.add(key, "%q must not contain \".\" segments", p)
	}
}

func (v *validator) upstream(key, raw string) {
	if raw == "" {
		v.add(key, "must be set")
		return
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") {
		v.add(key, "must be an absolute http(s) URL")
		return
	}
	v.urlParts(key, raw, u, false)
}
