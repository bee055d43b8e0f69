package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/localidp"
	"github.com/obo-gateway/obo-gateway/internal/otlptest"
)

// api calls the token API; the answers of errors join those the secret
// hygiene check reads (a success carries a token by design).
func (e *env) api(method, path, token string, body io.Reader, hdr ...string) answer {
	e.t.Helper()
	req, err := http.NewRequest(method, "http://"+e.app.TokenAPIAddr()+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		e.seen.mu.Lock()
		e.seen.gateway = append(e.seen.gateway, string(b))
		e.seen.mu.Unlock()
	}
	return answer{status: res.StatusCode, header: res.Header, body: b}
}

// headerToken returns the claims of the token of an /AuthorizationHeader
// answer.
func headerToken(t *testing.T, a answer) map[string]any {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var v struct {
		AuthorizationHeader string `json:"authorizationHeader"`
	}
	if err := json.Unmarshal(a.body, &v); err != nil || !strings.HasPrefix(v.AuthorizationHeader, "Bearer ") {
		t.Fatalf("answer %s (%v)", a.body, err)
	}
	return jwtClaims(t, strings.TrimPrefix(v.AuthorizationHeader, "Bearer "))
}

func TestTokenAPIEveryFlow(t *testing.T) {
	e := startAgents(t, options{})
	const user = "99999999-0000-4000-8000-000000000002"
	tokenA := e.token(user)
	tests := []struct {
		name, path, token string
		azp, oid, aud     string
	}{
		{"on behalf of", "/AuthorizationHeader/echo", tokenA, clientID, user, "api://echo-api"},
		{"client credentials", "/AuthorizationHeaderUnauthenticated/app", "", clientID, "", "api://echo-api"},
		{"agent app", "/AuthorizationHeaderUnauthenticated/agent-app?AgentIdentity=" + agentA, "", agentA, "", "api://echo-api"},
		{"agent app on an app route", "/AuthorizationHeaderUnauthenticated/app?AgentIdentity=" + agentB + "&optionsOverride.RequestAppToken=true", "", agentB, "", "api://echo-api"},
		{"agent user by username", "/AuthorizationHeaderUnauthenticated/agent-user?AgentIdentity=" + agentA + "&AgentUsername=" + url.QueryEscape(upnA), "", agentA, userA, "api://echo-api"},
		{"agent user by object id", "/AuthorizationHeaderUnauthenticated/agent-user?AgentIdentity=" + agentA + "&AgentUserId=" + userA2, "", agentA, userA2, "api://echo-api"},
		{"agent user fixed by the route", "/AuthorizationHeaderUnauthenticated/agent-fixed", "", agentB, userB, "api://echo-api"},
		{"agent on behalf of an OBO route", "/AuthorizationHeader/echo?AgentIdentity=" + agentB, tokenA, agentB, user, "api://echo-api"},
		{"agent on behalf of", "/AuthorizationHeader/agent-obo?AgentIdentity=" + agentA + "&optionsOverride.AcquireTokenOptions.Tenant=" + e.idp.TenantID(), tokenA, agentA, user, "api://echo-api"},
		{"same scopes are no widening", "/AuthorizationHeaderUnauthenticated/agent-app?AgentIdentity=" + agentA + "&optionsOverride.Scopes=" + url.QueryEscape(graphScope), "", agentA, "", "api://echo-api"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := headerToken(t, e.api(http.MethodGet, tt.path, tt.token, nil))
			if c["azp"] != tt.azp || c["aud"] != tt.aud {
				t.Errorf("azp %v aud %v, want %s %s", c["azp"], c["aud"], tt.azp, tt.aud)
			}
			if c["oid"] != tt.oid && tt.oid != "" {
				t.Errorf("oid %v, want %s", c["oid"], tt.oid)
			}
		})
	}

	t.Run("validate", func(t *testing.T) {
		a := e.api(http.MethodGet, "/Validate", tokenA, nil)
		var v struct {
			Protocol, Token string
			Claims          map[string]any
		}
		if err := json.Unmarshal(a.body, &v); err != nil || a.status != http.StatusOK {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
		if v.Protocol != "Bearer" || v.Token != tokenA || v.Claims["oid"] != user {
			t.Errorf("validate answered %s", a.body)
		}
	})
	t.Run("healthz", func(t *testing.T) {
		if a := e.api(http.MethodGet, "/healthz", "", nil); a.status != http.StatusOK {
			t.Errorf("status %d", a.status)
		}
	})
	t.Run("downstream api", func(t *testing.T) {
		a := e.api(http.MethodPost, "/DownstreamApiUnauthenticated/agent-app?AgentIdentity="+agentA+
			"&optionsOverride.RelativePath="+url.QueryEscape("../../me?$top=5")+"&optionsOverride.HttpMethod=PUT",
			"", strings.NewReader(`{"x":1}`), "Content-Type", "application/json", "X-Agent-User", upnA)
		var v struct {
			StatusCode int                 `json:"statusCode"`
			Headers    map[string][]string `json:"headers"`
			Content    string              `json:"content"`
		}
		if err := json.Unmarshal(a.body, &v); err != nil || a.status != http.StatusOK || v.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
		seen := answer{status: v.StatusCode, body: []byte(v.Content)}.echoed(t)
		if seen.Method != http.MethodPut || seen.Path != "/agent/me" || seen.Query != "$top=5" || seen.Body != `{"x":1}` {
			t.Errorf("downstream saw %s %s ? %s body %q", seen.Method, seen.Path, seen.Query, seen.Body)
		}
		if c := downstreamToken(t, answer{status: 200, body: []byte(v.Content)}); c["azp"] != agentA {
			t.Errorf("downstream token azp %v", c["azp"])
		}
		if len(v.Headers["Content-Type"]) != 1 {
			t.Errorf("headers %v", v.Headers)
		}
	})
	t.Run("downstream api on behalf of", func(t *testing.T) {
		a := e.api(http.MethodPost, "/DownstreamApi/echo?optionsOverride.RelativePath=a/b", tokenA, nil)
		var v struct {
			Content string `json:"content"`
		}
		_ = json.Unmarshal(a.body, &v)
		seen := answer{status: 200, body: []byte(v.Content)}.echoed(t)
		if seen.Method != http.MethodGet || seen.Path != "/base/a/b" {
			t.Errorf("downstream saw %s %s", seen.Method, seen.Path)
		}
		for _, h := range seen.Headers["Authorization"] {
			if strings.Contains(h, tokenA) {
				t.Error("token A reached the downstream")
			}
		}
	})
	if m := e.metric(`obo_gateway_token_api_requests_total{code="2xx",endpoint="authorization_header_unauthenticated",route="agent-user"}`); len(m) != 1 {
		t.Errorf("token API requests not counted: %q", e.metric("obo_gateway_token_api_requests_total"))
	}
}

func TestTokenAPIRefusals(t *testing.T) {
	e := startAgents(t, options{})
	tokenA := e.token("99999999-0000-4000-8000-000000000003")
	tests := []struct {
		name, path, token string
		status            int
		detail            string // a part of the problem's detail
	}{
		{"unknown name", "/AuthorizationHeaderUnauthenticated/nope", "", 404, "no route"},
		{"no token A", "/AuthorizationHeader/echo", "", 401, ""},
		{"OBO without token A", "/AuthorizationHeaderUnauthenticated/echo", "", 401, "token A"},
		{"other scopes", "/AuthorizationHeaderUnauthenticated/agent-app?AgentIdentity=" + agentA + "&optionsOverride.Scopes=api://other/.default", "", 400, "token_api.allow_overrides"},
		{"app token on an OBO route", "/AuthorizationHeader/echo?optionsOverride.RequestAppToken=true", tokenA, 400, "optionsOverride.RequestAppToken widens"},
		{"agent app token on an agent user route", "/AuthorizationHeaderUnauthenticated/agent-fixed?optionsOverride.RequestAppToken=true", "", 400, "request_app_token"},
		{"another identity than the route's", "/AuthorizationHeaderUnauthenticated/agent-fixed?AgentIdentity=" + agentA, "", 400, "agent_identity"},
		{"another user than the route's", "/AuthorizationHeaderUnauthenticated/agent-fixed?AgentUsername=" + url.QueryEscape(upnA), "", 400, "agent_user"},
		{"identity not listed", "/AuthorizationHeaderUnauthenticated/agent-app?AgentIdentity=" + agentLocked, "", 403, "agents.identities"},
		{"tenant not allowed", "/AuthorizationHeaderUnauthenticated/agent-app?AgentIdentity=" + agentA + "&optionsOverride.AcquireTokenOptions.Tenant=fabrikam.example", "", 403, "agents.tenants"},
		{"override not supported", "/AuthorizationHeaderUnauthenticated/agent-app?AgentIdentity=" + agentA + "&optionsOverride.BaseUrl=https://evil.example", "", 400, "not supported"},
		{"bad user id", "/AuthorizationHeaderUnauthenticated/agent-user?AgentIdentity=" + agentA + "&AgentUserId=" + url.QueryEscape(upnA), "", 400, "GUID"},
		{"bad boolean", "/AuthorizationHeaderUnauthenticated/app?optionsOverride.RequestAppToken=yes", "", 400, "true or false"},
		{"bad claims", "/AuthorizationHeaderUnauthenticated/app?optionsOverride.AcquireTokenOptions.Claims=x", "", 400, "JSON"},
		{"path escapes", "/AuthorizationHeaderUnauthenticated/app?optionsOverride.RelativePath=%255c", "", 200, ""},
		{"endpoint unknown", "/Token/app", "", 404, "endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.api(http.MethodGet, tt.path, tt.token, nil)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if tt.status == 200 {
				return
			}
			var p map[string]any
			if err := json.Unmarshal(a.body, &p); err != nil || a.header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("not a problem (%v): %s", err, a.body)
			}
			if p["status"] != float64(tt.status) || p["title"] == "" || p["type"] == "" || !strings.Contains(p["detail"].(string), tt.detail) {
				t.Errorf("problem %s, want detail with %q", a.body, tt.detail)
			}
			if tt.status == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if strings.Contains(string(a.body), upnA) || strings.Contains(string(a.body), userA) {
				t.Errorf("the problem names the agent user: %s", a.body)
			}
		})
	}
	if n := e.idp.TokenRequests(); n != 1 { // the path escape's app token
		t.Errorf("%d token requests, want 1", n)
	}
	t.Run("relative path stays under the upstream", func(t *testing.T) {
		a := e.api(http.MethodPost, "/DownstreamApiUnauthenticated/app?optionsOverride.RelativePath="+url.QueryEscape("%2e%2e/%2e%2e/x"), "", nil)
		if a.status != http.StatusBadRequest {
			t.Errorf("status %d: %s", a.status, a.body)
		}
		a = e.api(http.MethodPost, "/DownstreamApiUnauthenticated/app?optionsOverride.RelativePath="+url.QueryEscape("../../../x"), "", nil)
		var v struct {
			Content string `json:"content"`
		}
		_ = json.Unmarshal(a.body, &v)
		if p := (answer{status: 200, body: []byte(v.Content)}).echoed(t).Path; p != "/app/x" {
			t.Errorf("downstream path %q", p)
		}
	})
}

func TestTokenAPIFailuresAndConcurrency(t *testing.T) {
	e := startAgents(t, options{authorityExtra: []string{"retries: 0", "breaker: {failures: 0}"}})
	path := "/AuthorizationHeaderUnauthenticated/agent-user?AgentIdentity=" + agentB + "&AgentUsername=" + url.QueryEscape(upnB)
	for _, tt := range []struct {
		name     string
		leg      localidp.AgentLeg
		behavior localidp.Behavior
		status   int
		error    string
	}{
		// First: T1 is not cached yet.
		{"blueprint refused", localidp.LegBlueprint, localidp.Behavior{Kind: localidp.BehaviorInvalidClient}, 502, ""},
		{"blueprint leg 5xx", localidp.LegBlueprint, localidp.Behavior{Kind: localidp.BehaviorServerError, RetryAfter: 7 * time.Second}, 503, ""},
		{"consent on user_fic", localidp.LegAgentUser, localidp.Behavior{Kind: localidp.BehaviorConsentRequired}, 401, "consent_required"},
		{"MFA on user_fic", localidp.LegAgentUser, localidp.Behavior{Kind: localidp.BehaviorMFA}, 401, "invalid_grant"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.idp.SetLegBehavior(tt.leg, tt.behavior)
			defer e.idp.SetLegBehavior(tt.leg, localidp.Behavior{})
			a := e.api(http.MethodGet, path, "", nil)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			var p map[string]any
			_ = json.Unmarshal(a.body, &p)
			if tt.status == 401 {
				if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer error=") || p["error"] != tt.error || p["trace_id"] == nil || p["error_codes"] == nil {
					t.Errorf("challenge %q, problem %s", a.header.Get("WWW-Authenticate"), a.body)
				}
				if tt.behavior.Kind == localidp.BehaviorMFA && (p["claims"] == nil || p["suberror"] == nil) {
					t.Errorf("problem without claims or suberror: %s", a.body)
				}
			}
			if tt.status == 503 && a.header.Get("Retry-After") != "7" {
				t.Errorf("Retry-After %q", a.header.Get("Retry-After"))
			}
		})
	}

	before := map[localidp.AgentLeg]int64{}
	for _, leg := range []localidp.AgentLeg{localidp.LegBlueprint, localidp.LegAgentExchange, localidp.LegAgentUser} {
		before[leg] = e.idp.LegRequests(leg)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if a := e.api(http.MethodGet, "/AuthorizationHeaderUnauthenticated/agent-user?AgentIdentity="+agentA+"&AgentUserId="+userA, "", nil); a.status != 200 {
				t.Errorf("status %d: %s", a.status, a.body)
			}
		})
	}
	wg.Wait()
	for leg, n := range before {
		if got := e.idp.LegRequests(leg) - n; got != 1 {
			t.Errorf("%s: %d requests for 50 concurrent first requests, want 1", leg, got)
		}
	}
}

// TestTokenAPITraces: a token API request continues the caller's trace in
// a server span naming the endpoint and route (no path, query, agent or
// user), and each agent leg it exchanges is an "exchange" child span.
func TestTokenAPITraces(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50") // ms: export at once
	e := startAgents(t, options{})
	path := "/AuthorizationHeaderUnauthenticated/agent-user?AgentIdentity=" + agentA + "&AgentUsername=" + url.QueryEscape(upnA)
	if a := e.api(http.MethodGet, path, "", nil, "traceparent", "00-"+callerTrace+"-"+callerSpan+"-01"); a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	isServer := func(s otlptest.Span) bool { return s.Kind == 2 }
	spans, ok := e.traces.WaitFor(15*time.Second, func(s []otlptest.Span) bool { return findSpan(s, isServer) != nil })
	if !ok {
		t.Fatalf("no server span exported; got %d spans", len(spans))
	}
	server := findSpan(spans, isServer)
	if server.TraceID() != callerTrace || server.Parent() != callerSpan {
		t.Errorf("server span trace %s parent %s, want the caller's %s and %s", server.TraceID(), server.Parent(), callerTrace, callerSpan)
	}
	if server.Name != "GET authorization_header_unauthenticated" {
		t.Errorf("server span name %q", server.Name)
	}
	for k, want := range map[string]string{"obo_gateway.token_api.endpoint": "authorization_header_unauthenticated",
		"obo_gateway.route": "agent-user", "http.response.status_code": "200"} {
		if got := server.Attr(k); got != want {
			t.Errorf("server span %s = %q, want %q", k, got, want)
		}
	}
	legs := map[string]bool{}
	for _, s := range spans {
		if s.Name == "exchange" && s.TraceID() == callerTrace {
			legs[s.Attr("obo_gateway.agent_leg")] = true
			if s.Attr("obo_gateway.flow") != "agent_user" || s.Attr("obo_gateway.outcome") != "success" {
				t.Errorf("exchange span flow %q outcome %q", s.Attr("obo_gateway.flow"), s.Attr("obo_gateway.outcome"))
			}
		}
	}
	for _, leg := range []string{"blueprint", "agent_exchange", ""} {
		if !legs[leg] {
			t.Errorf("no exchange span for leg %q in the caller's trace; got %v", leg, legs)
		}
	}
}
