package localidp

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

const (
	agentID     = "a9e00000-0000-4000-8000-0000000000a1"
	agent2ID    = "a9e00000-0000-4000-8000-0000000000a2"
	orphanID    = "a9e00000-0000-4000-8000-0000000000a3" // an agent of the other blueprint
	agentUser   = "a9e0aaaa-0000-4000-8000-000000000001"
	agentUPN    = "agent-one@contoso.example"
	agent2User  = "a9e0aaaa-0000-4000-8000-000000000002"
	exchangeScp = "api://AzureADTokenExchange/.default"
)

// newAgentServer registers apiAID as the blueprint of two agent identities,
// each with one agent user, and otherID as the blueprint of a third.
func newAgentServer(t *testing.T) *Server {
	return newTestServer(t, func(o *Options) {
		o.AgentIdentities = []AgentIdentity{
			{ID: agentID, Blueprint: apiAID, Users: []AgentUser{{ObjectID: agentUser, UPN: agentUPN, Name: "Agent One"}}},
			{ID: agent2ID, Blueprint: apiAID, Users: []AgentUser{{ObjectID: agent2User, UPN: "agent-two@contoso.example"}}},
			{ID: orphanID, Blueprint: otherID},
		}
	})
}

func t1Form(agent string) url.Values {
	f := ccForm(exchangeScp)
	f.Set("fmi_path", agent)
	return f
}

func asAgent(agent, t1 string, form url.Values) url.Values {
	form.Del("client_secret")
	form.Set("client_id", agent)
	form.Set("client_assertion_type", clientAssertionTypeJWT)
	form.Set("client_assertion", t1)
	return form
}

func userFICForm(agent, t1, t2 string) url.Values {
	return asAgent(agent, t1, url.Values{
		"grant_type":                         {GrantUserFIC},
		"user_federated_identity_credential": {t2},
		"scope":                              {graphScope},
	})
}

// mustToken posts form and returns the issued access token.
func mustToken(t *testing.T, s *Server, form url.Values) string {
	t.Helper()
	a := post(t, s, form)
	if a.status != http.StatusOK {
		t.Fatalf("%s: %d %v", form.Get("grant_type"), a.status, a.body)
	}
	return a.str("access_token")
}

func TestAgentLegs(t *testing.T) {
	s := newAgentServer(t)
	t1 := mustToken(t, s, t1Form(agentID))
	c := claimsOf(t, t1)
	if c["aud"] != TokenExchangeAppID || c["azp"] != apiAID || c["sub"] != fmiSubject(s.TenantID(), apiAID, agentID) || c["roles"] != nil {
		t.Errorf("T1 claims = %v", c)
	}

	// T2: MSAL writes the scope as api://AzureAdTokenExchange; Entra
	// compares without case.
	t2 := mustToken(t, s, asAgent(agentID, t1, ccForm("api://AzureAdTokenExchange/.default")))
	c = claimsOf(t, t2)
	if c["aud"] != TokenExchangeAppID || c["azp"] != agentID || c["oid"] != agentID || c["xms_par_app_azp"] != apiAID || c["idtyp"] != "app" {
		t.Errorf("T2 claims = %v", c)
	}

	app := claimsOf(t, mustToken(t, s, asAgent(agentID, t1, ccForm("https://graph.microsoft.com/.default"))))
	if app["aud"] != "https://graph.microsoft.com" || app["azp"] != agentID || app["idtyp"] != "app" || app["scp"] != nil {
		t.Errorf("agent app token claims = %v", app)
	}
	if roles, _ := app["roles"].([]any); len(roles) != 1 {
		t.Errorf("agent app token roles = %v", app["roles"])
	}

	for _, name := range []string{"username", "user_id"} {
		t.Run("user_fic by "+name, func(t *testing.T) {
			f := userFICForm(agentID, t1, t2)
			f.Set(name, map[string]string{"username": "Agent-One@Contoso.example", "user_id": agentUser}[name])
			c := claimsOf(t, mustToken(t, s, f))
			want := map[string]any{"aud": "https://graph.microsoft.com", "scp": "User.Read", "oid": agentUser, "upn": agentUPN,
				"azp": agentID, "tid": s.TenantID(), "idtyp": "user", "name": "Agent One", "xms_par_app_azp": apiAID}
			for k, v := range want {
				if c[k] != v {
					t.Errorf("%s = %v, want %v", k, c[k], v)
				}
			}
		})
	}

	tokenA := userToken(t, s, UserToken{Audience: apiAURI})
	obo := asAgent(agentID, t1, oboForm(tokenA, graphScope))
	c = claimsOf(t, mustToken(t, s, obo))
	if c["oid"] != userOID || c["azp"] != agentID || c["scp"] != "User.Read" || c["xms_par_app_azp"] != apiAID {
		t.Errorf("agent OBO claims = %v", c)
	}

	for leg, n := range map[AgentLeg]int64{LegBlueprint: 1, LegAgentExchange: 1, LegAgentApp: 1, LegAgentUser: 2, LegAgentOnBehalfOf: 1} {
		if got := s.LegRequests(leg); got != n {
			t.Errorf("LegRequests(%s) = %d, want %d", leg, got, n)
		}
	}
}

func TestAgentLegsRefused(t *testing.T) {
	s := newAgentServer(t)
	t1 := mustToken(t, s, t1Form(agentID))
	t1Other := mustToken(t, s, t1Form(agent2ID))
	t2 := mustToken(t, s, asAgent(agentID, t1, ccForm(exchangeScp)))
	t2Other := mustToken(t, s, asAgent(agent2ID, t1Other, ccForm(exchangeScp)))
	plain := mustToken(t, s, ccForm(exchangeScp)) // the blueprint's own token, no fmi_path
	expired, err := s.SignClaims(with(claimsOf(t, t1), "exp", time.Now().Add(-time.Minute).Unix()))
	if err != nil {
		t.Fatal(err)
	}
	forged := t1[:len(t1)-4] + "AAAA"

	withUser := func(f url.Values, k, v string) url.Values { f.Set(k, v); return f }
	tests := []struct {
		name   string
		form   url.Values
		status int
		code   string
		aadsts int
	}{
		{"fmi_path of another blueprint's agent", t1Form(orphanID), 400, "unauthorized_client", 82001},
		{"fmi_path of no agent", t1Form("a9e00000-0000-4000-8000-0000000000ff"), 400, "unauthorized_client", 82001},
		{"fmi_path with another scope", with1(t1Form(agentID), "scope", "https://graph.microsoft.com/.default"), 400, "invalid_scope", 1002012},
		{"agent with a secret", with1(ccForm(exchangeScp), "client_id", agentID), 401, "invalid_client", 7000218},
		{"T1 of another agent", asAgent(agentID, t1Other, ccForm(exchangeScp)), 401, "invalid_client", 700213},
		{"the blueprint's token without fmi_path", asAgent(agentID, plain, ccForm(exchangeScp)), 401, "invalid_client", 700212},
		{"expired T1", asAgent(agentID, expired, ccForm(exchangeScp)), 401, "invalid_client", 700024},
		{"forged T1", asAgent(agentID, forged, ccForm(exchangeScp)), 401, "invalid_client", 700027},
		{"user_fic without user", userFICForm(agentID, t1, t2), 400, "invalid_request", 900144},
		{"user_fic with both", withUser(withUser(userFICForm(agentID, t1, t2), "username", agentUPN), "user_id", agentUser), 400, "invalid_request", 9002313},
		{"user_fic for another agent's user", withUser(userFICForm(agentID, t1, t2), "user_id", agent2User), 400, "invalid_grant", 50034},
		{"user_fic with another agent's T2", withUser(userFICForm(agentID, t1, t2Other), "user_id", agentUser), 400, "invalid_grant", 50013},
		{"user_fic with T1 as T2", withUser(userFICForm(agentID, t1, t1), "user_id", agentUser), 400, "invalid_grant", 50013},
		{"user_fic by the blueprint", url.Values{"grant_type": {GrantUserFIC}, "client_id": {apiAID}, "client_secret": {apiASecret},
			"user_federated_identity_credential": {t2}, "user_id": {agentUser}, "scope": {graphScope}}, 400, "unauthorized_client", 82001},
		{"user_fic without T2", withUser(userFICForm(agentID, t1, ""), "user_id", agentUser), 400, "invalid_request", 900144},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := post(t, s, tc.form)
			if a.status != tc.status || a.str("error") != tc.code {
				t.Fatalf("%d %s, want %d %s: %v", a.status, a.str("error"), tc.status, tc.code, a.body)
			}
			checkEntraError(t, a, tc.aadsts)
		})
	}
}

func TestAgentLegBehaviors(t *testing.T) {
	s := newAgentServer(t)
	t1 := mustToken(t, s, t1Form(agentID))
	t2 := mustToken(t, s, asAgent(agentID, t1, ccForm(exchangeScp)))
	user := with1(userFICForm(agentID, t1, t2), "user_id", agentUser)

	s.SetLegBehavior(LegBlueprint, Behavior{Kind: BehaviorInvalidClient})
	if a := post(t, s, t1Form(agentID)); a.status != 401 || a.str("error") != "invalid_client" {
		t.Errorf("blueprint refused: %d %v", a.status, a.body)
	}
	// The other legs are not affected.
	mustToken(t, s, user)
	s.SetLegBehavior(LegBlueprint, Behavior{})
	mustToken(t, s, t1Form(agentID))

	s.SetLegBehavior(LegAgentUser, Behavior{Kind: BehaviorMFA})
	a := post(t, s, user)
	if a.status != 400 || a.str("error") != "invalid_grant" || a.str("suberror") != "basic_action" || a.str("claims") != DefaultMFAClaims {
		t.Errorf("MFA on user_fic: %d %v", a.status, a.body)
	}
	s.SetLegBehavior(LegAgentUser, Behavior{Kind: BehaviorConsentRequired})
	if a := post(t, s, user); a.str("error") != "consent_required" {
		t.Errorf("consent on user_fic: %v", a.body)
	}
	mustToken(t, s, asAgent(agentID, t1, ccForm(exchangeScp)))

	s.SetLegBehavior(LegAgentExchange, Behavior{Kind: BehaviorServerError, RetryAfter: 2 * time.Second})
	if a := post(t, s, asAgent(agentID, t1, ccForm(exchangeScp))); a.status != 503 || a.header.Get("Retry-After") != "2" {
		t.Errorf("5xx on T2: %d %v", a.status, a.header)
	}
	s.ResetBehaviors()
	mustToken(t, s, user)
	// A user behaviour follows the agent user.
	s.SetUserBehavior(agentUser, Behavior{Kind: BehaviorConsentRequired})
	if a := post(t, s, user); a.str("error") != "consent_required" {
		t.Errorf("user behaviour on user_fic: %v", a.body)
	}
}

func TestAgentRegistrationChecked(t *testing.T) {
	for name, agents := range map[string][]AgentIdentity{
		"no id":             {{Blueprint: apiAID}},
		"unknown blueprint": {{ID: agentID, Blueprint: "nobody"}},
		"a client's id":     {{ID: otherID, Blueprint: apiAID}},
		"twice":             {{ID: agentID, Blueprint: apiAID}, {ID: agentID, Blueprint: apiAID}},
		"user twice":        {{ID: agentID, Blueprint: apiAID, Users: []AgentUser{{ObjectID: agentUser, UPN: "a@x"}}}, {ID: agent2ID, Blueprint: apiAID, Users: []AgentUser{{ObjectID: agentUser, UPN: "b@x"}}}},
		"user without UPN":  {{ID: agentID, Blueprint: apiAID, Users: []AgentUser{{ObjectID: agentUser}}}},
	} {
		if _, err := New(Options{Clients: []Client{{ID: apiAID, Secret: "s"}, {ID: otherID, Secret: "s"}}, AgentIdentities: agents}); err == nil {
			t.Errorf("%s: New accepted %+v", name, agents)
		}
	}
}

func TestInstanceDiscovery(t *testing.T) {
	s := newTestServer(t)
	doc := getJSON(t, s.BaseURL()+"/common/discovery/instance?api-version=1.1&authorization_endpoint="+
		url.QueryEscape(s.BaseURL()+"/"+s.TenantID()+"/oauth2/v2.0/authorize"))
	if doc["tenant_discovery_endpoint"] != s.Authority()+"/.well-known/openid-configuration" {
		t.Errorf("instance discovery = %v", doc)
	}
}
