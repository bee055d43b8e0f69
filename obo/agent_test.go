package obo

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

const (
	blueprintID     = "b1e00000-0000-4000-8000-0000000000b1"
	blueprintSecret = "blueprint-secret"
	blueprintURI    = "api://blueprint"
	agentA          = "a9e00000-0000-4000-8000-0000000000a1"
	agentB          = "a9e00000-0000-4000-8000-0000000000a2"
	userA           = "a9e0aaaa-0000-4000-8000-000000000001"
	upnA            = "agent-a@contoso.example"
	userA2          = "a9e0aaaa-0000-4000-8000-000000000003"
	userB           = "a9e0aaaa-0000-4000-8000-000000000002"
	serviceAccount  = "system:serviceaccount:agents:blueprint"
	graphRead       = "https://graph.microsoft.com/User.Read"
	graphDefault    = "https://graph.microsoft.com/.default"
)

// agentIDP is localidp with a blueprint (secret, certificate and federated
// credential) of two agent identities; agent A has two agent users.
type agentIDP struct {
	*localidp.Server
	cert testCert
	dir  string
}

func newAgentIDP(t *testing.T, mutate ...func(*localidp.Options)) *agentIDP {
	t.Helper()
	cert := newTestCert(t, rsaKey(t, 2048), time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	opts := localidp.Options{
		Clients: []localidp.Client{{ID: blueprintID, Secret: blueprintSecret, IdentifierURI: blueprintURI,
			Certificates:         []*x509.Certificate{cert.cert},
			FederatedCredentials: []localidp.FederatedCredential{{Subject: serviceAccount}}}},
		AgentIdentities: []localidp.AgentIdentity{
			{ID: agentA, Blueprint: blueprintID, Users: []localidp.AgentUser{{ObjectID: userA, UPN: upnA}, {ObjectID: userA2, UPN: "agent-a2@contoso.example"}}},
			{ID: agentB, Blueprint: blueprintID, Users: []localidp.AgentUser{{ObjectID: userB, UPN: "agent-b@contoso.example"}}},
		},
	}
	for _, m := range mutate {
		m(&opts)
	}
	s, err := localidp.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &agentIDP{Server: s, cert: cert, dir: t.TempDir()}
}

// credential returns the blueprint's credential of the given kind.
func (p *agentIDP) credential(t *testing.T, kind string) Credential {
	t.Helper()
	switch kind {
	case "certificate":
		c, err := NewCertificate(CertificateConfig{
			CertFile: writeFile(t, p.dir, "tls.crt", certPEM(p.cert.cert)),
			KeyFile:  writeFile(t, p.dir, "tls.key", keyPEM(t, p.cert.key, "pkcs8")),
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	case "assertion_file":
		tok, err := p.IssueServiceAccountToken(localidp.ServiceAccountToken{Subject: serviceAccount})
		if err != nil {
			t.Fatal(err)
		}
		return AssertionFile(writeFile(t, p.dir, "token", []byte(tok)))
	}
	return ClientSecret(blueprintSecret)
}

// agentClient is a Client of the blueprint with its own agent cache.
func agentClient(t *testing.T, p *agentIDP, cred Credential, edit ...func(*Config)) *Client {
	t.Helper()
	store, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	cfg := Config{ClientID: blueprintID, TokenEndpoint: p.TokenEndpoint(), Credential: cred, AgentCache: store,
		Timeout: 5 * time.Second, RetryBaseDelay: time.Millisecond}
	for _, e := range edit {
		e(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// legForms returns the forms localidp received for the grant with client id
// clientID, oldest first.
func legForms(p *agentIDP, match func(url.Values) bool) []url.Values {
	var out []url.Values
	for _, f := range p.TokenRequestForms() {
		if match(f) {
			out = append(out, f)
		}
	}
	return out
}

func claimsOfToken(t *testing.T, tok string) map[string]any {
	t.Helper()
	var c map[string]any
	if !peekClaims(tok, &c) {
		t.Fatalf("not a JWT: %.20q", tok)
	}
	return c
}

func TestAgentFlowsWithEveryCredential(t *testing.T) {
	p := newAgentIDP(t)
	tokenA, err := p.IssueToken(localidp.UserToken{ObjectID: "00000000-0000-4000-8000-0000000000f1", Audience: blueprintURI})
	if err != nil {
		t.Fatal(err)
	}
	flows := []struct {
		req  AgentRequest
		want map[string]any // claims of the token
	}{
		{AgentRequest{Flow: FlowAgentApp, AgentID: agentA, Scopes: []string{graphDefault}},
			map[string]any{"aud": "https://graph.microsoft.com", "azp": agentA, "idtyp": "app"}},
		{AgentRequest{Flow: FlowAgentUser, AgentID: agentA, Scopes: []string{graphRead}, Username: upnA},
			map[string]any{"aud": "https://graph.microsoft.com", "azp": agentA, "oid": userA, "upn": upnA, "scp": "User.Read", "tid": p.TenantID()}},
		{AgentRequest{Flow: FlowAgentUser, AgentID: agentA, Scopes: []string{graphRead}, UserID: userA2},
			map[string]any{"azp": agentA, "oid": userA2, "scp": "User.Read"}},
		{AgentRequest{Flow: FlowAgentOnBehalfOf, AgentID: agentA, Scopes: []string{graphRead}, Assertion: tokenA},
			map[string]any{"azp": agentA, "oid": "00000000-0000-4000-8000-0000000000f1", "scp": "User.Read"}},
	}
	for _, kind := range []string{"secret", "certificate", "assertion_file"} {
		t.Run(kind, func(t *testing.T) {
			c := agentClient(t, p, p.credential(t, kind))
			for _, f := range flows {
				tok, err := c.AgentToken(context.Background(), f.req)
				if err != nil {
					t.Fatalf("%s: %v", f.req.Flow, err)
				}
				claims := claimsOfToken(t, tok.AccessToken)
				for k, v := range f.want {
					if claims[k] != v {
						t.Errorf("%s: %s = %v, want %v", f.req.Flow, k, claims[k], v)
					}
				}
			}
		})
	}

	// The wire: T1 is the blueprint's, with fmi_path; every later leg is
	// the agent's, authenticated by T1.
	t1s := legForms(p, func(f url.Values) bool { return f.Has("fmi_path") })
	if len(t1s) != 3 { // one per credential: every later flow took T1 from the cache
		t.Fatalf("%d T1 requests, want 3", len(t1s))
	}
	for _, f := range t1s {
		if f.Get("client_id") != blueprintID || f.Get("fmi_path") != agentA || f.Get("scope") != AgentExchangeScope || f.Get("grant_type") != GrantClientCredentials {
			t.Errorf("T1 form %v", keysAndValues(f))
		}
	}
	fic := legForms(p, func(f url.Values) bool { return f.Get("grant_type") == GrantUserFIC })
	for _, f := range fic {
		if f.Get("client_id") != agentA || f.Get("client_assertion_type") != ClientAssertionType || f.Get("client_assertion") == "" ||
			f.Get("user_federated_identity_credential") == "" || f.Has("requested_token_use") || f.Has("username") == f.Has("user_id") {
			t.Errorf("user_fic form %v", keysAndValues(f))
		}
	}
}

// keysAndValues describes a form without its tokens, for failure messages.
func keysAndValues(f url.Values) string {
	var b strings.Builder
	for k := range f {
		v := f.Get(k)
		if len(v) > 40 {
			v = v[:8] + "…"
		}
		b.WriteString(k + "=" + v + " ")
	}
	return b.String()
}

func TestAgentLegsAreCachedAndShared(t *testing.T) {
	p := newAgentIDP(t)
	p.SetLatency(50 * time.Millisecond) // the 50 first requests overlap
	c := agentClient(t, p, ClientSecret(blueprintSecret))
	req := AgentRequest{Flow: FlowAgentUser, AgentID: agentA, Scopes: []string{graphRead}, UserID: userA}

	var wg sync.WaitGroup
	tokens := make([]string, 50)
	for i := range tokens {
		wg.Go(func() {
			e, _, err := c.CachedAgentToken(context.Background(), req)
			if err != nil {
				t.Error(err)
				return
			}
			tokens[i] = e.Token
		})
	}
	wg.Wait()
	for leg, want := range map[localidp.AgentLeg]int64{localidp.LegBlueprint: 1, localidp.LegAgentExchange: 1, localidp.LegAgentUser: 1} {
		if got := p.LegRequests(leg); got != want {
			t.Errorf("%s: %d requests for 50 concurrent first requests, want %d", leg, got, want)
		}
	}
	for _, tok := range tokens[1:] {
		if tok != tokens[0] {
			t.Fatal("the callers received different tokens")
		}
	}
	if _, res, err := c.CachedAgentToken(context.Background(), req); err != nil || res != cache.Hit {
		t.Errorf("second request: %v, %v; want a hit", res, err)
	}

	// Another user of the same agent reuses T1 and T2; another agent does
	// not.
	if _, _, err := c.CachedAgentToken(context.Background(), AgentRequest{Flow: FlowAgentUser, AgentID: agentA, Scopes: []string{graphRead}, Username: "agent-a2@contoso.example"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.CachedAgentToken(context.Background(), AgentRequest{Flow: FlowAgentUser, AgentID: agentB, Scopes: []string{graphRead}, UserID: userB}); err != nil {
		t.Fatal(err)
	}
	for leg, want := range map[localidp.AgentLeg]int64{localidp.LegBlueprint: 2, localidp.LegAgentExchange: 2, localidp.LegAgentUser: 3} {
		if got := p.LegRequests(leg); got != want {
			t.Errorf("%s: %d requests, want %d", leg, got, want)
		}
	}
}

func TestAgentsAndUsersNeverShareTokens(t *testing.T) {
	p := newAgentIDP(t)
	c := agentClient(t, p, ClientSecret(blueprintSecret))
	reqs := map[string]AgentRequest{
		"agent A app":     {Flow: FlowAgentApp, AgentID: agentA, Scopes: []string{graphDefault}},
		"agent B app":     {Flow: FlowAgentApp, AgentID: agentB, Scopes: []string{graphDefault}},
		"agent A user 1":  {Flow: FlowAgentUser, AgentID: agentA, Scopes: []string{graphRead}, UserID: userA},
		"agent A user 2":  {Flow: FlowAgentUser, AgentID: agentA, Scopes: []string{graphRead}, UserID: userA2},
		"agent B user":    {Flow: FlowAgentUser, AgentID: agentB, Scopes: []string{graphRead}, UserID: userB},
		"agent A user 1b": {Flow: FlowAgentUser, AgentID: agentA, Scopes: []string{graphRead}, Username: upnA},
	}
	want := map[string]struct{ azp, oid string }{
		"agent A app": {agentA, ""}, "agent B app": {agentB, ""}, "agent A user 1": {agentA, userA}, "agent A user 2": {agentA, userA2},
		"agent B user": {agentB, userB}, "agent A user 1b": {agentA, userA},
	}
	keys := map[string]string{}
	for name, req := range reqs {
		key, err := c.AgentCacheKey(req)
		if err != nil {
			t.Fatal(err)
		}
		if other, dup := keys[key]; dup {
			t.Errorf("%s and %s share a key", name, other)
		}
		keys[key] = name
		if strings.Contains(key, userA) || strings.Contains(strings.ToLower(key), upnA) {
			t.Errorf("%s: the key names the agent user: %q", name, key)
		}
		e, _, err := c.CachedAgentToken(context.Background(), req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		claims := claimsOfToken(t, e.Token)
		if claims["azp"] != want[name].azp || (want[name].oid != "" && claims["oid"] != want[name].oid) {
			t.Errorf("%s: got the token of azp %v oid %v", name, claims["azp"], claims["oid"])
		}
	}
}

func TestAgentTenantSelectsTheEndpoint(t *testing.T) {
	const guest = "9188040d-6c67-4c5b-b112-36a304b66dad"
	p := newAgentIDP(t, func(o *localidp.Options) { o.GuestTenants = []string{guest} })
	multi, err := tenantTokenEndpoint(strings.Replace(p.TokenEndpoint(), p.TenantID(), "organizations", 1), "")
	if err != nil {
		t.Fatal(err)
	}
	c := agentClient(t, p, ClientSecret(blueprintSecret), func(cfg *Config) { cfg.TokenEndpoint, cfg.DefaultTenant = multi, p.TenantID() })
	home, err := c.AgentCacheKey(AgentRequest{Flow: FlowAgentApp, AgentID: agentA, Scopes: []string{graphDefault}})
	if err != nil {
		t.Fatal(err)
	}
	req := AgentRequest{Flow: FlowAgentApp, AgentID: agentA, Scopes: []string{graphDefault}, Tenant: guest}
	guestKey, _ := c.AgentCacheKey(req)
	if home == guestKey {
		t.Error("two tenants share a key")
	}
	tok, err := c.AgentToken(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if tid := claimsOfToken(t, tok.AccessToken)["tid"]; tid != guest {
		t.Errorf("tid = %v, want the guest tenant", tid)
	}
}

func TestAgentLegErrors(t *testing.T) {
	p := newAgentIDP(t)
	user := AgentRequest{Flow: FlowAgentUser, AgentID: agentA, Scopes: []string{graphRead}, UserID: userA}
	tests := []struct {
		name     string
		leg      localidp.AgentLeg
		behavior localidp.Behavior
		wantLeg  string
		outcome  string
		final    bool
	}{
		{"blueprint credential refused", localidp.LegBlueprint, localidp.Behavior{Kind: localidp.BehaviorInvalidClient}, LegBlueprint, "invalid_client", false},
		{"consent required on user_fic", localidp.LegAgentUser, localidp.Behavior{Kind: localidp.BehaviorConsentRequired}, FlowAgentUser, "interaction_required", true},
		{"MFA on user_fic", localidp.LegAgentUser, localidp.Behavior{Kind: localidp.BehaviorMFA}, FlowAgentUser, "interaction_required", true},
		{"consent required on T2", localidp.LegAgentExchange, localidp.Behavior{Kind: localidp.BehaviorConsentRequired}, LegAgentExchange, "interaction_required", false},
		{"T2 unavailable", localidp.LegAgentExchange, localidp.Behavior{Kind: localidp.BehaviorServerError}, LegAgentExchange, "unavailable", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p.ResetBehaviors()
			c := agentClient(t, p, ClientSecret(blueprintSecret), func(cfg *Config) { cfg.Retries = 2 })
			p.SetLegBehavior(tc.leg, tc.behavior)
			before := p.LegRequests(tc.leg)
			_, err := c.AgentToken(context.Background(), user)
			var le *AgentLegError
			if !errors.As(err, &le) || le.Leg != tc.wantLeg {
				t.Fatalf("error %v, want a failure of leg %s", err, tc.wantLeg)
			}
			if le.Final() != tc.final {
				t.Errorf("Final = %v, want %v", le.Final(), tc.final)
			}
			if got := Outcome(err); got != tc.outcome {
				t.Errorf("Outcome = %s, want %s", got, tc.outcome)
			}
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("no *Error in %v", err)
			}
			if tc.behavior.Kind == localidp.BehaviorMFA && ae.Claims != localidp.DefaultMFAClaims {
				t.Errorf("claims challenge = %q", ae.Claims)
			}
			sent := p.LegRequests(tc.leg) - before
			if want := map[bool]int64{true: 3, false: 1}[tc.outcome == "unavailable"]; sent != want {
				t.Errorf("%d requests of the failing leg, want %d (retries only for 5xx)", sent, want)
			}
			if strings.Contains(err.Error(), userA) {
				t.Errorf("the error names the agent user: %v", err)
			}
			// A failure is not cached: the leg answers once the authority does.
			p.SetLegBehavior(tc.leg, localidp.Behavior{})
			if _, err := c.AgentToken(context.Background(), user); err != nil {
				t.Errorf("after the fault: %v", err)
			}
		})
	}
}

func TestAgentLegsRefreshAhead(t *testing.T) {
	p := newAgentIDP(t, func(o *localidp.Options) { o.TokenLifetime = 4 * time.Second })
	c := agentClient(t, p, ClientSecret(blueprintSecret))
	req := AgentRequest{Flow: FlowAgentApp, AgentID: agentA, Scopes: []string{graphDefault}}
	first, _, err := c.CachedAgentToken(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	// Usable for 2s (half the lifetime), refreshed from 1.5s on.
	time.Sleep(1600 * time.Millisecond)
	e, res, err := c.CachedAgentToken(context.Background(), req)
	if err != nil || res != cache.Hit || e.Token != first.Token {
		t.Fatalf("due entry: %v %v; want the cached token at once", res, err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for p.LegRequests(localidp.LegAgentApp) < 2 || p.LegRequests(localidp.LegBlueprint) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no refresh ahead: %d app, %d T1 requests", p.LegRequests(localidp.LegAgentApp), p.LegRequests(localidp.LegBlueprint))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAgentRequestChecks(t *testing.T) {
	p := newAgentIDP(t)
	c := agentClient(t, p, ClientSecret(blueprintSecret))
	ok := AgentRequest{Flow: FlowAgentUser, AgentID: agentA, Scopes: []string{graphRead}, UserID: userA}
	tests := map[string]func(*AgentRequest){
		"unknown flow":           func(r *AgentRequest) { r.Flow = "agent" },
		"agent id not a GUID":    func(r *AgentRequest) { r.AgentID = "agent/../x" },
		"no scopes":              func(r *AgentRequest) { r.Scopes = nil },
		"username and user id":   func(r *AgentRequest) { r.Username = upnA },
		"no agent user":          func(r *AgentRequest) { r.UserID = "" },
		"user on app flow":       func(r *AgentRequest) { r.Flow = FlowAgentApp },
		"obo without assertion":  func(r *AgentRequest) { r.Flow, r.UserID = FlowAgentOnBehalfOf, "" },
		"assertion on user flow": func(r *AgentRequest) { r.Assertion = "tokA" },
	}
	for name, edit := range tests {
		req := ok
		edit(&req)
		if _, err := c.AgentToken(context.Background(), req); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if p.TokenRequests() != 0 {
		t.Errorf("%d token requests for invalid agent requests", p.TokenRequests())
	}
	noCache := agentClient(t, p, ClientSecret(blueprintSecret), func(cfg *Config) { cfg.AgentCache = nil })
	if _, err := noCache.AgentToken(context.Background(), ok); !errors.Is(err, errNoAgentCache) {
		t.Errorf("without a cache: %v", err)
	}
}

func TestAgentClaimsOnTheLastLegOnly(t *testing.T) {
	p := newAgentIDP(t)
	c := agentClient(t, p, ClientSecret(blueprintSecret), func(cfg *Config) { cfg.Capabilities = []string{"cp1"} })
	challenge := `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`
	if _, err := c.AgentToken(context.Background(), AgentRequest{Flow: FlowAgentUser, AgentID: agentA, Scopes: []string{graphRead}, UserID: userA, Claims: challenge}); err != nil {
		t.Fatal(err)
	}
	want, err := MergeClaims(c.capabilityClaims(), challenge)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range p.TokenRequestForms() {
		last := f.Get("grant_type") == GrantUserFIC
		if got := f.Get("claims"); (got == want) != last || (!last && f.Has("claims")) {
			t.Errorf("%s (fmi_path %v): claims %q", f.Get("grant_type"), f.Has("fmi_path"), got)
		}
	}
}

func TestRefusedT1IsFetchedAgain(t *testing.T) {
	p := newAgentIDP(t)
	c := agentClient(t, p, ClientSecret(blueprintSecret))
	req := AgentRequest{Flow: FlowAgentApp, AgentID: agentA, Scopes: []string{graphDefault}}
	first, err := c.AgentToken(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	// Withdraw the key T1 was signed with: the cached T1 is refused.
	if _, err := p.RotateKey(); err != nil {
		t.Fatal(err)
	}
	var head struct {
		Kid string `json:"kid"`
	}
	b, _ := base64.RawURLEncoding.DecodeString(strings.Split(first.AccessToken, ".")[0])
	if err := json.Unmarshal(b, &head); err != nil {
		t.Fatal(err)
	}
	p.RemoveKey(head.Kid)
	if _, err := c.AgentToken(context.Background(), req); Outcome(err) != "invalid_client" {
		t.Fatalf("with a withdrawn T1: %v", err)
	}
	if _, err := c.AgentToken(context.Background(), req); err != nil {
		t.Fatalf("the next request did not fetch T1 again: %v", err)
	}
	if n := p.LegRequests(localidp.LegBlueprint); n != 2 {
		t.Errorf("%d T1 requests, want 2", n)
	}
}

func TestForceRefreshExchangesTheLastLegOnly(t *testing.T) {
	p := newAgentIDP(t)
	c := agentClient(t, p, ClientSecret(blueprintSecret))
	req := AgentRequest{Flow: FlowAgentApp, AgentID: agentA, Scopes: []string{graphDefault}}
	first, _, err := c.CachedAgentToken(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	req.ForceRefresh = true
	again, res, err := c.CachedAgentToken(context.Background(), req)
	if err != nil || res != cache.Miss || again.Token == first.Token {
		t.Fatalf("forced refresh: %v %v; want a new token", res, err)
	}
	if app, t1 := p.LegRequests(localidp.LegAgentApp), p.LegRequests(localidp.LegBlueprint); app != 2 || t1 != 1 {
		t.Errorf("%d app and %d T1 requests, want 2 and 1", app, t1)
	}
}
