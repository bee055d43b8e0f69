package tokenapi

import (
	"net/url"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/proxy"
)

const (
	agent = "aaaaaaaa-0000-4000-8000-00000000000a"
	other = "bbbbbbbb-0000-4000-8000-00000000000b"
	oid   = "cccccccc-0000-4000-8000-00000000000c"
)

func TestTokenRequestSelectsTheFlowAndRefusesWidening(t *testing.T) {
	obo := proxy.RouteInfo{Name: "graph", Flow: proxy.FlowOnBehalfOf, Scopes: []string{"User.Read"}}
	app := proxy.RouteInfo{Name: "app", Flow: proxy.FlowClientCredentials, Scopes: []string{"api://x/.default"}}
	fixed := proxy.RouteInfo{Name: "fixed", Flow: proxy.FlowAgentUser, Scopes: []string{"User.Read"}, AgentIdentity: agent, AgentUser: "a@b.c"}
	tests := []struct {
		name   string
		route  proxy.RouteInfo
		query  string
		allow  []string // "route:override" for a route's allow_overrides
		flow   string   // want; "" = the route's
		refuse string   // a part of the refusal's detail
	}{
		{"route's flow", obo, "", nil, "", ""},
		{"agent on behalf of", obo, "AgentIdentity=" + agent, nil, proxy.FlowAgentOnBehalfOf, ""},
		{"agent user by upn wins over id", obo, "AgentIdentity=" + agent + "&AgentUsername=u@x&AgentUserId=" + oid, nil, proxy.FlowAgentUser, ""},
		{"agent user by id", app, "AgentIdentity=" + agent + "&AgentUserId=" + oid, nil, proxy.FlowAgentUser, ""},
		{"agent app", app, "AgentIdentity=" + agent, nil, proxy.FlowAgentApp, ""},
		{"agent app by RequestAppToken", app, "AgentIdentity=" + agent + "&optionsOverride.RequestAppToken=true", nil, proxy.FlowAgentApp, ""},
		{"user without identity is ignored", app, "AgentUsername=u@x", nil, "", ""},
		{"app token on an OBO route", obo, "optionsOverride.RequestAppToken=true", nil, "", "token_api.allow_overrides"},
		{"app token on an OBO route, allowed", obo, "optionsOverride.RequestAppToken=true", []string{"request_app_token"}, proxy.FlowClientCredentials, ""},
		{"agent app token on an OBO route", obo, "AgentIdentity=" + agent + "&optionsOverride.RequestAppToken=TRUE", nil, "", "request_app_token"},
		{"other scopes", app, "optionsOverride.Scopes=api://y/.default", nil, "", "scopes"},
		{"other scopes, allowed", app, "optionsOverride.Scopes=api://y/.default", []string{"scopes"}, "", ""},
		{"other scopes, allowed for another route", obo, "optionsOverride.Scopes=Mail.Read", []string{"app:scopes"}, "", "scopes"},
		{"other scopes, allowed for the route", app, "optionsOverride.Scopes=api://y/.default", []string{"app:scopes"}, "", ""},
		{"same scopes", obo, "optionsOverride.Scopes=user.read", nil, "", ""},
		{"fixed identity and user", fixed, "", nil, proxy.FlowAgentUser, ""},
		{"same identity", fixed, "AgentIdentity=" + strings.ToUpper(agent), nil, proxy.FlowAgentUser, ""},
		{"other identity", fixed, "AgentIdentity=" + other, nil, "", "agent_identity"},
		{"other user", fixed, "AgentUsername=x@y", nil, "", "agent_user"},
		{"other user, allowed", fixed, "AgentUsername=x@y", []string{"agent_user"}, proxy.FlowAgentUser, ""},
		{"user id not a GUID", app, "AgentIdentity=" + agent + "&AgentUserId=u@x", nil, "", "GUID"},
		{"base url", app, "optionsOverride.BaseUrl=https://x", nil, "", "not supported"},
		{"bad boolean", app, "optionsOverride.AcquireTokenOptions.ForceRefresh=1x", nil, "", "true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{RouteOverrides: map[string][]string{}}
			for _, a := range tt.allow {
				if route, o, ok := strings.Cut(a, ":"); ok {
					cfg.RouteOverrides[route] = append(cfg.RouteOverrides[route], o)
				} else {
					cfg.AllowOverrides = append(cfg.AllowOverrides, a)
				}
			}
			s := &Server{cfg: cfg}
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			req, refused := s.tokenRequest(tt.route, q, nil)
			switch {
			case tt.refuse != "":
				if refused == nil || !strings.Contains(refused.detail, tt.refuse) {
					t.Errorf("refusal %+v, want one with %q", refused, tt.refuse)
				}
			case refused != nil:
				t.Errorf("refused: %s", refused.detail)
			case req.Flow != tt.flow:
				t.Errorf("flow %q, want %q", req.Flow, tt.flow)
			}
		})
	}
}
