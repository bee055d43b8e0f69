package config

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/obo"
)

const (
	testAgent  = "11111111-2222-3333-4444-555555555555"
	otherAgent = "99999999-2222-3333-4444-555555555555"
)

// agentConfig returns validConfig with one agent_app route.
func agentConfig() *Config {
	c := validConfig()
	c.Agents.Identities = []string{testAgent}
	c.Routes = append(c.Routes, Route{Name: "agent", PathPrefix: "/agent", Upstream: "https://graph.microsoft.com/v1.0",
		Scopes: []string{"https://graph.microsoft.com/.default"}, Flow: obo.FlowAgentApp, TokenType: TokenTypeAccessToken,
		Timeout: c.Routes[0].Timeout, ReplayMaxBytes: c.Routes[0].ReplayMaxBytes})
	return c
}

func TestValidateAgents(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   Problems
	}{
		{"valid", func(c *Config) {}, nil},
		{"valid fixed identity and user", func(c *Config) {
			c.Routes[1].Flow, c.Routes[1].AgentIdentity, c.Routes[1].AgentUser = obo.FlowAgentUser, testAgent, "agent@contoso.com"
			c.Routes[1].Scopes = []string{"User.Read"}
		}, nil},
		{"valid token api", func(c *Config) {
			c.TokenAPI = TokenAPI{Listen: "127.0.0.1:5178", AllowOverrides: []string{OverrideScopes}}
			c.Agents.Tenants = []string{"contoso.onmicrosoft.com"}
		}, nil},
		{"no identities", func(c *Config) { c.Agents.Identities = nil },
			Problems{{Key: "agents.identities", Message: `must list the agent identities callers may use (or "*"): routes[1] uses flow agent_app`}}},
		{"identity not a guid", func(c *Config) { c.Agents.Identities = []string{"bot"} },
			Problems{{Key: "agents.identities[0]", Message: `"bot" must be an agent identity's application (client) id, a GUID, or "*"`}}},
		{"tenant bad", func(c *Config) { c.Agents.Tenants = []string{"a/b"} },
			Problems{{Key: "agents.tenants[0]", Message: `"a/b" must be a tenant id (GUID), a tenant domain, or "*"`}}},
		{"fixed identity not listed", func(c *Config) { c.Routes[1].AgentIdentity = otherAgent },
			Problems{{Key: "routes[1].agent_identity", Message: `"` + otherAgent + `" is not listed in agents.identities`}}},
		{"fixed identity not a guid", func(c *Config) { c.Routes[1].AgentIdentity = "bot" },
			Problems{{Key: "routes[1].agent_identity", Message: `"bot" must be an agent identity's application (client) id, a GUID`}}},
		{"agent user on agent_app", func(c *Config) { c.Routes[1].AgentUser = "a@b.c" },
			Problems{{Key: "routes[1].agent_user", Message: "is only used by flow agent_user, not agent_app"}}},
		{"agent user malformed", func(c *Config) {
			c.Routes[1].Flow, c.Routes[1].AgentUser = obo.FlowAgentUser, "agent"
		}, Problems{{Key: "routes[1].agent_user", Message: "must be the agent user's user principal name (name@domain) or object id (GUID)"}}},
		{"agent identity on obo route", func(c *Config) { c.Routes[0].AgentIdentity = testAgent },
			Problems{{Key: "routes[0].agent_identity", Message: "is only used by the agent flows (agent_app, agent_user, agent_on_behalf_of), not on_behalf_of"}}},
		{"agent_app scope", func(c *Config) { c.Routes[1].Scopes = []string{"User.Read"} },
			Problems{{Key: "routes[1].scopes[0]", Message: `agent_app scopes must end in "/.default"`}}},
		{"no token A on a listener that is not loopback", func(c *Config) { c.Listen = "0.0.0.0:8080" },
			Problems{{Key: "routes[1].flow", Message: `agent_app takes no token A, so anyone who can reach listen ("0.0.0.0:8080") would get the agent's tokens; listen must be a loopback address, or use agent_on_behalf_of`}}},
		{"agent obo on any listener", func(c *Config) {
			c.Listen = "0.0.0.0:8080"
			c.Routes[1].Flow, c.Routes[1].Scopes = obo.FlowAgentOnBehalfOf, []string{"User.Read"}
		}, nil},
		{"token api not loopback", func(c *Config) { c.TokenAPI.Listen = "0.0.0.0:5178" },
			Problems{{Key: "token_api.listen", Message: `"0.0.0.0:5178" must be a loopback address (127.0.0.1, ::1 or localhost): the token API's unauthenticated endpoints give tokens to whoever can connect`}}},
		{"token api all interfaces", func(c *Config) { c.TokenAPI.Listen = ":5178" },
			Problems{{Key: "token_api.listen", Message: `":5178" must be a loopback address (127.0.0.1, ::1 or localhost): the token API's unauthenticated endpoints give tokens to whoever can connect`}}},
		{"token api same as listen", func(c *Config) { c.TokenAPI.Listen = c.Listen },
			Problems{{Key: "token_api.listen", Message: `"127.0.0.1:8080" must differ from listen and admin_listen`}}},
		{"override unknown", func(c *Config) {
			c.TokenAPI.AllowOverrides = []string{"tenant"}
			c.Routes[1].AllowOverrides = []string{"all"}
		}, Problems{
			{Key: "routes[1].allow_overrides[0]", Message: `"all" is not an override (use scopes, request_app_token, agent_identity or agent_user)`},
			{Key: "token_api.allow_overrides[0]", Message: `"tenant" is not an override (use scopes, request_app_token, agent_identity or agent_user)`},
		}},
		{"rfc8693", func(c *Config) { c.Authority.Protocol = obo.ProtocolRFC8693 },
			Problems{{Key: "routes[1].flow", Message: "agent_app is a Microsoft identity platform flow; it cannot be used with authority.protocol rfc8693"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := agentConfig()
			tt.mutate(c)
			err := c.Validate()
			var got Problems
			if err != nil && !errors.As(err, &got) {
				t.Fatalf("Validate() = %v, want Problems", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate() problems:\n%v\nwant:\n%v", got, tt.want)
			}
		})
	}
}

func TestParseAgents(t *testing.T) {
	yml := `
authority: {url: https://login.microsoftonline.com/contoso/v2.0}
client: {id: client-id, secret: s}
inbound: {audiences: [api://a]}
agents:
  identities: ["*"]
token_api:
  listen: 127.0.0.1:5178
routes:
  - name: agent-graph
    path_prefix: /agent-graph
    upstream: https://graph.microsoft.com/v1.0
    scopes: [User.Read]
    flow: agent_user
    agent_identity: ` + testAgent + `
    agent_user: agent@contoso.com
`
	c, err := Parse([]byte(yml), "gw.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	r := c.Routes[0]
	if r.Flow != obo.FlowAgentUser || r.AgentIdentity != testAgent || r.AgentUser != "agent@contoso.com" || c.TokenAPI.Listen != "127.0.0.1:5178" {
		t.Errorf("parsed %+v, token_api %+v", r, c.TokenAPI)
	}
	if !slices.ContainsFunc(c.Warnings(), func(w string) bool { return strings.HasPrefix(w, "agents.identities:") }) {
		t.Errorf("Warnings() = %q, want one for agents.identities", c.Warnings())
	}
	if !c.Agents.AllowsIdentity(otherAgent) {
		t.Error(`"*" does not allow every agent identity`)
	}
	if (Agents{Identities: []string{testAgent}}).AllowsIdentity(otherAgent) {
		t.Error("an identity not listed is allowed")
	}
}
