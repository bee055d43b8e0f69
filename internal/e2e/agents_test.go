package e2e

import (
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

// The agent identities of the agent tests: two of the gateway's blueprint
// (clientID), each with its agent users, and one that is not allowed.
const (
	agentA      = "aaaaaaaa-0000-4000-8000-00000000000a"
	agentB      = "bbbbbbbb-0000-4000-8000-00000000000b"
	agentLocked = "cccccccc-0000-4000-8000-00000000000c"
	userA       = "aaaaaaaa-1111-4111-8111-00000000000a"
	upnA        = "agent-a@contoso.example"
	userA2      = "aaaaaaaa-2222-4222-8222-00000000000a"
	upnA2       = "agent-a2@contoso.example"
	userB       = "bbbbbbbb-1111-4111-8111-00000000000b"
	upnB        = "agent-b@contoso.example"
	graphScope  = "api://echo-api/.default"
)

// agentRoutes are the agent routes and settings of startAgents, appended to
// the harness's configuration.
const agentRoutes = `  - name: agent-app
    path_prefix: /agent-app
    upstream: ${ECHO_URL}/agent
    scopes: [` + graphScope + `]
    flow: agent_app
  - name: agent-user
    path_prefix: /agent-user
    upstream: ${ECHO_URL}/agent
    scopes: [` + echoScope + `]
    flow: agent_user
  - name: agent-fixed
    path_prefix: /agent-fixed
    upstream: ${ECHO_URL}/agent
    scopes: [` + echoScope + `]
    flow: agent_user
    agent_identity: ` + agentB + `
    agent_user: ` + upnB + `
  - name: agent-obo
    path_prefix: /agent-obo
    upstream: ${ECHO_URL}/agent
    scopes: [` + echoScope + `]
    flow: agent_on_behalf_of
agents:
  identities: [` + agentA + `, ` + agentB + `]
token_api:
  listen: 127.0.0.1:0
`

// agentIdentities registers the agent identities with the identity provider.
func agentIdentities(o *localidp.Options) {
	o.AgentIdentities = []localidp.AgentIdentity{
		{ID: agentA, Blueprint: clientID, Users: []localidp.AgentUser{{ObjectID: userA, UPN: upnA}, {ObjectID: userA2, UPN: upnA2}}},
		{ID: agentB, Blueprint: clientID, Users: []localidp.AgentUser{{ObjectID: userB, UPN: upnB}}},
		{ID: agentLocked, Blueprint: clientID},
	}
}

func startAgents(t *testing.T, o options) *env {
	t.Helper()
	o.extraRoutes += agentRoutes
	idp := o.idp
	o.idp = func(opts *localidp.Options) {
		agentIdentities(opts)
		if idp != nil {
			idp(opts)
		}
	}
	e := start(t, o)
	t.Cleanup(func() { e.checkNoAgentUsers() })
	return e
}

// checkNoAgentUsers fails the test when a log line or metric holds an agent
// user's UPN or object id.
func (e *env) checkNoAgentUsers() {
	metrics := strings.Join(e.metric(""), "\n")
	for _, v := range []string{upnA, upnA2, upnB, userA, userA2, userB} {
		if strings.Contains(strings.ToLower(e.logs.String()), strings.ToLower(v)) {
			e.t.Errorf("the logs hold the agent user %s", v)
		}
		if strings.Contains(metrics, v) {
			e.t.Errorf("the metrics hold the agent user %s", v)
		}
	}
}

// downstreamToken returns the claims of the token the echo API received.
func downstreamToken(t *testing.T, a answer) map[string]any {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	auth := a.echoed(t).Headers["Authorization"]
	if len(auth) != 1 || !strings.HasPrefix(auth[0], "Bearer ") {
		t.Fatalf("downstream Authorization = %q", auth)
	}
	return jwtClaims(t, strings.TrimPrefix(auth[0], "Bearer "))
}

func TestAgentFlowsThroughTheProxy(t *testing.T) {
	e := startAgents(t, options{})
	tokenA := e.token("99999999-0000-4000-8000-000000000001")
	tests := []struct {
		name, path, token string
		hdr               []string
		azp, oid          string
	}{
		{"agent app", "/agent-app/x", "", []string{"X-Agent-Identity", agentA}, agentA, ""},
		{"agent user by upn", "/agent-user/x", "", []string{"X-Agent-Identity", agentA, "X-Agent-User", upnA}, agentA, userA},
		{"agent user by object id", "/agent-user/x", "", []string{"X-Agent-Identity", agentA, "X-Agent-User", userA2}, agentA, userA2},
		{"fixed agent user", "/agent-fixed/x", "", nil, agentB, userB},
		{"agent on behalf of", "/agent-obo/x", tokenA, []string{"X-Agent-Identity", agentB, "X-Agent-Tenant", e.idp.TenantID()}, agentB, "99999999-0000-4000-8000-000000000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.get(tt.path, tt.token, tt.hdr...)
			c := downstreamToken(t, a)
			if c["azp"] != tt.azp {
				t.Errorf("token B azp = %v, want the agent identity %s", c["azp"], tt.azp)
			}
			if tt.oid != "" && c["oid"] != tt.oid {
				t.Errorf("token B oid = %v, want %s", c["oid"], tt.oid)
			}
			for name := range a.echoed(t).Headers {
				if strings.HasPrefix(strings.ToLower(name), "x-agent-") {
					t.Errorf("the downstream received %s", name)
				}
			}
		})
	}
}

func TestAgentRefusalsCauseNoExchange(t *testing.T) {
	e := startAgents(t, options{})
	tests := []struct {
		name, path string
		hdr        []string
		status     int
	}{
		{"identity not listed", "/agent-app/x", []string{"X-Agent-Identity", agentLocked}, http.StatusForbidden},
		{"identity missing", "/agent-app/x", nil, http.StatusBadRequest},
		{"identity malformed", "/agent-app/x", []string{"X-Agent-Identity", "bot"}, http.StatusBadRequest},
		{"tenant not allowed", "/agent-app/x", []string{"X-Agent-Identity", agentA, "X-Agent-Tenant", "fabrikam.example"}, http.StatusForbidden},
		{"agent user missing", "/agent-user/x", []string{"X-Agent-Identity", agentA}, http.StatusBadRequest},
		{"another identity on a fixed route", "/agent-fixed/x", []string{"X-Agent-Identity", agentA}, http.StatusForbidden},
		{"another user on a fixed route", "/agent-fixed/x", []string{"X-Agent-User", upnA}, http.StatusForbidden},
		{"agent obo without token A", "/agent-obo/x", []string{"X-Agent-Identity", agentA}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.get(tt.path, "", tt.hdr...)
			if a.status != tt.status {
				t.Errorf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
		})
	}
	if n := e.idp.TokenRequests(); n != 0 {
		t.Errorf("%d token requests, want none", n)
	}
	if e.echoHits.Load() != 0 {
		t.Errorf("the downstream was called %d times", e.echoHits.Load())
	}
}

func TestAgentTokensAreNeverShared(t *testing.T) {
	e := startAgents(t, options{})
	seen := map[string]string{}
	for _, tt := range []struct{ id, user, wantOID string }{
		{agentA, upnA, userA}, {agentA, upnA2, userA2}, {agentB, upnB, userB}, {agentA, upnA, userA}, {agentB, upnB, userB},
	} {
		c := downstreamToken(t, e.get("/agent-user/x", "", "X-Agent-Identity", tt.id, "X-Agent-User", tt.user))
		if c["azp"] != tt.id || c["oid"] != tt.wantOID {
			t.Errorf("%s as %s got the token of %v as %v", tt.user, tt.id, c["oid"], c["azp"])
		}
	}
	for _, id := range []string{agentA, agentB, agentA} {
		c := downstreamToken(t, e.get("/agent-app/x", "", "X-Agent-Identity", id))
		if prev, ok := seen[id]; ok && prev != c["azp"] || c["azp"] != id {
			t.Errorf("agent %s got an app token of %v", id, c["azp"])
		}
		seen[id] = c["azp"].(string)
	}
}

func TestAgentConcurrentFirstRequestsExchangeOncePerLeg(t *testing.T) {
	e := startAgents(t, options{})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			a := e.get("/agent-user/x", "", "X-Agent-Identity", agentA, "X-Agent-User", upnA)
			if a.status != http.StatusOK {
				t.Errorf("status %d: %s", a.status, a.body)
			}
		})
	}
	wg.Wait()
	for _, leg := range []localidp.AgentLeg{localidp.LegBlueprint, localidp.LegAgentExchange, localidp.LegAgentUser} {
		if n := e.idp.LegRequests(leg); n != 1 {
			t.Errorf("%s: %d requests, want 1", leg, n)
		}
	}
}

func TestAgentLegFailures(t *testing.T) {
	tests := []struct {
		name      string
		leg       localidp.AgentLeg
		behavior  localidp.Behavior
		status    int
		challenge string // a prefix of WWW-Authenticate
	}{
		{"blueprint credential refused", localidp.LegBlueprint, localidp.Behavior{Kind: localidp.BehaviorInvalidClient}, http.StatusBadGateway, ""},
		{"blueprint leg 5xx", localidp.LegBlueprint, localidp.Behavior{Kind: localidp.BehaviorServerError}, http.StatusServiceUnavailable, ""},
		{"consent required on T2", localidp.LegAgentExchange, localidp.Behavior{Kind: localidp.BehaviorConsentRequired}, http.StatusBadGateway, ""},
		{"consent required on user_fic", localidp.LegAgentUser, localidp.Behavior{Kind: localidp.BehaviorConsentRequired}, http.StatusUnauthorized, `Bearer error="interaction_required"`},
		{"MFA on user_fic", localidp.LegAgentUser, localidp.Behavior{Kind: localidp.BehaviorMFA}, http.StatusUnauthorized, `Bearer error="insufficient_claims", claims="`},
	}
	e := startAgents(t, options{authorityExtra: []string{"retries: 0", "breaker: {failures: 0}"}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.idp.SetLegBehavior(tt.leg, tt.behavior)
			defer e.idp.SetLegBehavior(tt.leg, localidp.Behavior{})
			a := e.get("/agent-user/x", "", "X-Agent-Identity", agentB, "X-Agent-User", upnB)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			ch := a.header.Get("WWW-Authenticate")
			if !strings.HasPrefix(ch, tt.challenge) || (tt.challenge == "") != (ch == "") {
				t.Errorf("WWW-Authenticate = %q, want prefix %q", ch, tt.challenge)
			}
			if tt.behavior.Kind == localidp.BehaviorMFA {
				_, b64, _ := strings.Cut(ch, `claims="`)
				if _, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(b64[:strings.IndexByte(b64, '"')+1], `"`)); err != nil {
					t.Errorf("claims is not base64: %v", err)
				}
			}
			if strings.Contains(string(a.body), upnB) || strings.Contains(string(a.body), userB) {
				t.Errorf("the answer names the agent user: %s", a.body)
			}
		})
	}
	if e.echoHits.Load() != 0 {
		t.Errorf("the downstream was called %d times", e.echoHits.Load())
	}
}
