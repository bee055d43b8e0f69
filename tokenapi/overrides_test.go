package tokenapi

import (
	"github.com/obo-gateway/obo-gateway/obo"
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
	oboRoute := proxy.RouteInfo{Name: "graph", Flow: obo.FlowOnBehalfOf, Scopes: []string{"User.Read"}}
	app := proxy.RouteInfo{Name: "app", Flow: obo.FlowClientCredentials, Scopes: []string{"api://x/.default"}}
	fixed := proxy.RouteInfo{Name: "fixed", Flow: obo.FlowAgentUser, Scopes: []string{"User.Read"}, AgentIdentity: agent, AgentUser: "a@b.c"}
	tests := []struct {
		name   string
		route  proxy.RouteInfo
		query  string
		allow  []string // "route:override" for a route's allow_overrides
		flow   string   // want; "" = the route's
		refuse string   // a part of the refusal's detail
	}{
		{"route's flow", oboRoute, "", nil, "", ""},
		{"agent on behalf of", oboRoute, "AgentIdentity=" + agent, nil, obo.FlowAgentOnBehalfOf, ""},
		{"agent user by upn wins over id", oboRoute, "AgentIdentity=" + agent + "&AgentUsername=u@x&AgentUserId=" + oid, nil, obo.FlowAgentUser, ""},
		{"agent user by id", app, "AgentIdentity=" + agent + "&AgentUserId=" + oid, nil, obo.FlowAgentUser, ""},
		{"agent app", app, "AgentIdentity=" + agent, nil, obo.FlowAgentApp, ""},
		{"agent app by RequestAppToken", app, "AgentIdentity=" + agent + "&optionsOverride.RequestAppToken=true", nil, obo.FlowAgentApp, ""},
		{"user without identity is ignored", app, "AgentUsername=u@x", nil, "", ""},
		{"app token on an OBO route", oboRoute, "optionsOverride.RequestAppToken=true", nil, "", "token_api.allow_overrides"},
		{"app token on an OBO route, allowed", oboRoute, "optionsOverride.RequestAppToken=true", []string{"request_app_token"}, obo.FlowClientCredentials, ""},
		{"agent app token on an OBO route", oboRoute, "AgentIdentity=" + agent + "&optionsOverride.RequestAppToken=TRUE", nil, "", "request_app_token"},
		{"other scopes", app, "optionsOverride.Scopes=api://y/.default", nil, "", "scopes"},
		{"other scopes, allowed", app, "optionsOverride.Scopes=api://y/.default", []string{"scopes"}, "", ""},
		{"other scopes, allowed for another route", oboRoute, "optionsOverride.Scopes=Mail.Read", []string{"app:scopes"}, "", "scopes"},
		{"other scopes, allowed for the route", app, "optionsOverride.Scopes=api://y/.default", []string{"app:scopes"}, "", ""},
		{"same scopes", oboRoute, "optionsOverride.Scopes=user.read", nil, "", ""},
		{"fixed identity and user", fixed, "", nil, obo.FlowAgentUser, ""},
		{"same identity", fixed, "AgentIdentity=" + strings.ToUpper(agent), nil, obo.FlowAgentUser, ""},
		{"other identity", fixed, "AgentIdentity=" + other, nil, "", "agent_identity"},
		{"other user", fixed, "AgentUsername=x@y", nil, "", "agent_user"},
		{"other user, allowed", fixed, "AgentUsername=x@y", []string{"agent_user"}, obo.FlowAgentUser, ""},
		{"user id not a GUID", app, "AgentIdentity=" + agent + "&AgentUserId=u@x", nil, "", "GUID"},
		{"base url", app, "optionsOverride.BaseUrl=https://x", nil, "", "not supported"},
		{"bad boolean", app, "optionsOverride.AcquireTokenOptions.ForceRefresh=1x", nil, "", "true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ov := Overrides{ByRoute: map[string][]string{}}
			for _, a := range tt.allow {
				if route, o, ok := strings.Cut(a, ":"); ok {
					ov.ByRoute[route] = append(ov.ByRoute[route], o)
				} else {
					ov.All = append(ov.All, a)
				}
			}
			s := &Server{cfg: Config{Overrides: func() Overrides { return ov }}}
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
