package config

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"unicode"

	"github.com/obo-gateway/obo-gateway/internal/idshape"
	"github.com/obo-gateway/obo-gateway/obo"
)

// Agents configures the agent identities (Microsoft Entra Agent ID) the
// gateway, configured as their blueprint, obtains tokens as.
type Agents struct {
	// Identities lists the application ids of the agent identities
	// callers may ask for (routes[].agent_identity, the X-Agent-Identity
	// header, the token API's AgentIdentity); ["*"] allows every one, with
	// a warning. Any other is refused with 403 and no exchange.
	Identities []string `yaml:"identities"`
	// Tenants lists the tenants (GUIDs or domains) an agent request may
	// name besides client.tenant_id (X-Agent-Tenant,
	// optionsOverride.AcquireTokenOptions.Tenant); ["*"] allows every one,
	// with a warning. Any other is refused with 403 and no exchange.
	Tenants []string `yaml:"tenants"`
}

// AllowsIdentity reports whether agent identity id may be used.
func (a Agents) AllowsIdentity(id string) bool {
	return id != "" && (slices.Contains(a.Identities, "*") || slices.ContainsFunc(a.Identities, func(s string) bool {
		return strings.EqualFold(s, id)
	}))
}

// TokenAPI configures the Microsoft-compatible token API, the HTTP API of
// Microsoft's Entra SDK for AgentID sidecar.
type TokenAPI struct {
	// Listen is the token API's loopback address, as host:port; empty (the
	// default) turns the API off. Its unauthenticated endpoints hand out
	// tokens to whoever connects, so any address that is not loopback is
	// refused.
	Listen string `yaml:"listen"`
	// AllowOverrides names the token API overrides that may widen what a
	// route grants, for every route (OverrideScopes, OverrideAppToken,
	// OverrideAgentIdentity, OverrideAgentUser). An override equal to the
	// route's own value is never a widening.
	AllowOverrides []string `yaml:"allow_overrides"`
}

// The values of TokenAPI.AllowOverrides and Route.AllowOverrides.
const (
	// OverrideScopes allows optionsOverride.Scopes other than the route's.
	OverrideScopes = "scopes"
	// OverrideAppToken allows optionsOverride.RequestAppToken=true on a
	// route whose tokens are a user's.
	OverrideAppToken = "request_app_token"
	// OverrideAgentIdentity allows an AgentIdentity other than the route's
	// fixed agent_identity (still one of agents.identities).
	OverrideAgentIdentity = "agent_identity"
	// OverrideAgentUser allows an agent user other than the route's fixed
	// agent_user.
	OverrideAgentUser = "agent_user"
)

// IsAgentFlow reports whether flow is one of the agent flows.
func IsAgentFlow(flow string) bool {
	return flow == obo.FlowAgentApp || flow == obo.FlowAgentUser || flow == obo.FlowAgentOnBehalfOf
}

func (c *Config) validateAgents(v *validator) {
	for i, id := range c.Agents.Identities {
		if id != "*" && !idshape.IsGUID(id) {
			v.add(fmt.Sprintf("agents.identities[%d]", i), "%q must be an agent identity's application (client) id, a GUID, or \"*\"", id)
		}
	}
	for i, t := range c.Agents.Tenants {
		if t != "*" && !idshape.IsTenantName(t) {
			v.add(fmt.Sprintf("agents.tenants[%d]", i), "%q must be a tenant id (GUID), a tenant domain, or \"*\"", t)
		}
	}
	if c.TokenAPI.Listen != "" {
		v.hostPort("token_api.listen", c.TokenAPI.Listen)
		if host, _, err := net.SplitHostPort(c.TokenAPI.Listen); err == nil && !isLoopback(host) {
			v.add("token_api.listen", "%q must be a loopback address (127.0.0.1, ::1 or localhost): the token API's unauthenticated endpoints give tokens to whoever can connect", c.TokenAPI.Listen)
		}
		if !strings.HasSuffix(c.TokenAPI.Listen, ":0") && (c.TokenAPI.Listen == c.Listen || c.TokenAPI.Listen == c.AdminListen) {
			v.add("token_api.listen", "%q must differ from listen and admin_listen", c.TokenAPI.Listen)
		}
	}
	v.overrides("token_api.allow_overrides", c.TokenAPI.AllowOverrides)
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		v.overrides(key+".allow_overrides", r.AllowOverrides)
		if !IsAgentFlow(r.Flow) {
			if r.AgentIdentity != "" {
				v.add(key+".agent_identity", "is only used by the agent flows (%s, %s, %s), not %s", obo.FlowAgentApp, obo.FlowAgentUser, obo.FlowAgentOnBehalfOf, r.Flow)
			}
			if r.AgentUser != "" {
				v.add(key+".agent_user", "is only used by flow %s, not %s", obo.FlowAgentUser, r.Flow)
			}
			continue
		}
		c.validateAgentRoute(v, key, r)
	}
}

// validateAgentRoute checks a route with an agent flow.
func (c *Config) validateAgentRoute(v *validator, key string, r Route) {
	if c.Authority.Protocol == obo.ProtocolRFC8693 {
		v.add(key+".flow", "%s is a Microsoft identity platform flow; it cannot be used with authority.protocol %s", r.Flow, obo.ProtocolRFC8693)
	}
	if len(c.Agents.Identities) == 0 {
		v.add("agents.identities", "must list the agent identities callers may use (or \"*\"): %s uses flow %s", key, r.Flow)
	}
	switch {
	case r.AgentIdentity == "":
	case !idshape.IsGUID(r.AgentIdentity):
		v.add(key+".agent_identity", "%q must be an agent identity's application (client) id, a GUID", r.AgentIdentity)
	case !c.Agents.AllowsIdentity(r.AgentIdentity):
		v.add(key+".agent_identity", "%q is not listed in agents.identities", r.AgentIdentity)
	}
	if r.AgentUser != "" {
		switch {
		case r.Flow != obo.FlowAgentUser:
			v.add(key+".agent_user", "is only used by flow %s, not %s", obo.FlowAgentUser, r.Flow)
		case strings.IndexFunc(r.AgentUser, unicode.IsSpace) >= 0 || (!idshape.IsGUID(r.AgentUser) && !strings.Contains(r.AgentUser, "@")):
			v.add(key+".agent_user", "must be the agent user's user principal name (name@domain) or object id (GUID)")
		}
	}
	if r.Flow == obo.FlowAgentApp {
		for j, s := range r.Scopes {
			if s != "" && !strings.HasSuffix(s, "/.default") {
				v.add(fmt.Sprintf("%s.scopes[%d]", key, j), "%s scopes must end in \"/.default\"", obo.FlowAgentApp)
			}
		}
	}
	if r.TokenType != "" && r.TokenType != TokenTypeAccessToken {
		v.add(key+".token_type", "must be %s with flow %s", TokenTypeAccessToken, r.Flow)
	}
	if c.Authority.MultiTenant() && c.Client.TenantID == "" {
		v.add("client.tenant_id", "must be set: the authority is multi-tenant and %s uses flow %s, whose tokens come from the agent identity's tenant (or set %s)",
			key, r.Flow, EnvAzureTenantID)
	}
	if r.Flow != obo.FlowAgentOnBehalfOf {
		// No token A: whoever reaches the listener gets the agent's token.
		if host, _, err := net.SplitHostPort(c.Listen); err == nil && !isLoopback(host) {
			v.add(key+".flow", "%s takes no token A, so anyone who can reach listen (%q) would get the agent's tokens; listen must be a loopback address, or use %s",
				r.Flow, c.Listen, obo.FlowAgentOnBehalfOf)
		}
	}
}

// overrides checks a list of token API overrides.
func (v *validator) overrides(key string, items []string) {
	for i, s := range items {
		switch s {
		case OverrideScopes, OverrideAppToken, OverrideAgentIdentity, OverrideAgentUser:
		default:
			v.add(fmt.Sprintf("%s[%d]", key, i), "%q is not an override (use %s, %s, %s or %s)", s,
				OverrideScopes, OverrideAppToken, OverrideAgentIdentity, OverrideAgentUser)
		}
	}
}

// agentWarnings are the warnings of the agents section.
func (c *Config) agentWarnings() []string {
	var w []string
	if slices.Contains(c.Agents.Identities, "*") {
		w = append(w, `agents.identities: "*" lets callers obtain tokens as every agent identity of the blueprint; list the agent identities instead unless that is intended`)
	}
	if slices.Contains(c.Agents.Tenants, "*") {
		w = append(w, `agents.tenants: "*" lets agent requests name any tenant; list the tenants instead unless that is intended`)
	}
	return w
}
