package agentclients

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/echo"
	"github.com/obo-gateway/obo-gateway/internal/localidp"
	"github.com/obo-gateway/obo-gateway/internal/syncbuf"
)

// sidecarConfig is the gateway's configuration for SidecarAuthProvider, in
// the keys of issue 23: the blueprint's credential, the agent identity
// callers may use, the token API on loopback and the two downstream API
// names the provider uses by default. The provider overrides the scopes
// and asks for app tokens on "default" (getAccessToken,
// getAgenticInstanceToken), which Microsoft's sidecar allows with
// Sidecar:AllowOverrides:GetAuthorizationHeaderUnauthenticated=true and the
// gateway with that route's allow_overrides; the tenant it names is
// client.tenant_id, which is no widening.
// Arguments: authority, tenant, token API address, upstream base URL.
const sidecarConfig = `listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
log: {format: json, level: debug, requests: all}
authority: {url: %[1]q}
client:
  id: ` + blueprintID + `
  tenant_id: %[2]s
  secret: ` + blueprintSecret + `
inbound:
  audiences: [api://blueprint]
agents:
  identities: [` + agentID + `]
token_api:
  listen: %[3]s
routes:
  - name: default
    path_prefix: /default
    upstream: %[4]s/graph
    scopes: [` + userScope + `]
    flow: agent_user
    allow_overrides: [scopes, request_app_token]
  - name: agenticblueprint
    path_prefix: /agenticblueprint
    upstream: %[4]s/exchange
    scopes: [api://AzureADTokenExchange/.default]
    flow: agent_app
`

// sidecarResult is what sidecar.js printed for one call.
type sidecarResult struct {
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
}

// sidecarCall is one call of SidecarAuthProvider: the request it must send
// to the token API, and the claims of the token localidp must have issued
// for it (nil: the claim must be absent).
type sidecarCall struct {
	name, method string
	path         string
	query        url.Values
	claims       map[string]any
}

// sidecarCalls are the calls sidecar.js makes, in its order, for a tenant.
func sidecarCalls(tenant string) []sidecarCall {
	userClaims := map[string]any{"aud": "https://graph.microsoft.com", "azp": agentID, "idtyp": "user", "oid": agentUserID,
		"upn": agentUPN, "scp": "User.Read", "xms_par_app_azp": blueprintID, "tid": tenant}
	userQuery := func(key, value string) url.Values {
		return url.Values{"AgentIdentity": {agentID}, key: {value}, "optionsOverride.Scopes": {userScope},
			"optionsOverride.AcquireTokenOptions.Tenant": {tenant}}
	}
	return []sidecarCall{
		{name: "healthy", method: "isHealthy", path: "/healthz"},
		// The blueprint's own app token: no agent identity.
		{name: "access", method: "getAccessToken", path: "/AuthorizationHeaderUnauthenticated/default",
			query:  url.Values{"optionsOverride.Scopes": {appScope}, "optionsOverride.RequestAppToken": {"true"}},
			claims: map[string]any{"aud": "https://graph.microsoft.com", "azp": blueprintID, "idtyp": "app", "xms_par_app_azp": nil, "tid": tenant}},
		// Microsoft's sidecar answers this one with the agent identity's
		// token for the token exchange resource (T2): AgentIdentity makes
		// it act as the agent (WithAgentIdentity: client_id = the agent,
		// client_assertion = T1), whatever the downstream API's scopes.
		{name: "application", method: "getAgenticApplicationToken", path: "/AuthorizationHeaderUnauthenticated/agenticblueprint",
			query:  url.Values{"AgentIdentity": {agentID}, "optionsOverride.AcquireTokenOptions.Tenant": {tenant}},
			claims: map[string]any{"aud": localidp.TokenExchangeAppID, "azp": agentID, "oid": agentID, "idtyp": "app", "xms_par_app_azp": blueprintID, "tid": tenant}},
		{name: "instance", method: "getAgenticInstanceToken", path: "/AuthorizationHeaderUnauthenticated/default",
			query: url.Values{"AgentIdentity": {agentID}, "optionsOverride.Scopes": {appScope}, "optionsOverride.RequestAppToken": {"true"},
				"optionsOverride.AcquireTokenOptions.Tenant": {tenant}},
			claims: map[string]any{"aud": "https://graph.microsoft.com", "azp": agentID, "idtyp": "app", "xms_par_app_azp": blueprintID, "tid": tenant}},
		{name: "userById", method: "getAgenticUserToken (object id)", path: "/AuthorizationHeaderUnauthenticated/default",
			query: userQuery("AgentUserId", agentUserID), claims: userClaims},
		{name: "userByName", method: "getAgenticUserToken (UPN)", path: "/AuthorizationHeaderUnauthenticated/default",
			query: userQuery("AgentUsername", agentUPN), claims: userClaims},
	}
}

// TestSidecarAuthProviderAgainstTokenAPI runs Microsoft's SidecarAuthProvider
// against the token API of the real gateway binary, configured as the
// blueprint of an agent identity on localidp, and checks that every call
// gets the token localidp issued for its leg.
func TestSidecarAuthProviderAgainstTokenAPI(t *testing.T) {
	node := requireNode(t)
	binary := buildGateway(t)
	idp, err := localidp.New(localidp.Options{
		Clients: []localidp.Client{{ID: blueprintID, Secret: blueprintSecret, IdentifierURI: "api://blueprint"}},
		AgentIdentities: []localidp.AgentIdentity{{ID: agentID, Blueprint: blueprintID,
			Users: []localidp.AgentUser{{ObjectID: agentUserID, UPN: agentUPN}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	upstream := httptest.NewServer(echo.NewHandler())
	t.Cleanup(upstream.Close)

	tokenAPI := freeLoopbackAddr(t)
	logs := startGateway(t, binary, fmt.Sprintf(sidecarConfig, idp.Authority(), idp.TenantID(), tokenAPI, upstream.URL), tokenAPI)
	front := newRecordingFront(t, tokenAPI)

	calls := sidecarCalls(idp.TenantID())
	before := len(idp.TokenRequestForms())
	out := runSidecar(t, node, front.URL(), idp.TenantID())
	for _, c := range calls {
		r, ok := out[c.name]
		switch {
		case !ok:
			t.Errorf("%s: sidecar.js printed no result", c.method)
		case r.Error != "":
			t.Errorf("%s: %s", c.method, r.Error)
		case c.claims == nil:
			if string(r.Value) != "true" {
				t.Errorf("%s = %s, want true", c.method, r.Value)
			}
		default:
			checkSidecarToken(t, idp, c, r.Value)
		}
	}
	front.check(t, calls)
	checkGatewayLegs(t, idp.TokenRequestForms()[before:])
	if t.Failed() {
		t.Logf("gateway log:\n%s", logs)
	}
}

// checkSidecarToken checks that raw, a token SidecarAuthProvider returned
// for c, is a token localidp issued, with c's claims.
func checkSidecarToken(t *testing.T, idp *localidp.Server, c sidecarCall, raw json.RawMessage) {
	t.Helper()
	var tok string
	if err := json.Unmarshal(raw, &tok); err != nil || tok == "" {
		t.Errorf("%s returned %s, not a token", c.method, raw)
		return
	}
	if !slices.ContainsFunc(idp.IssuedTokens(), func(it localidp.IssuedToken) bool { return it.Token == tok }) {
		t.Errorf("%s returned a token localidp did not issue", c.method)
		return
	}
	got := claims(t, tok)
	for k, want := range c.claims {
		v, present := got[k]
		switch {
		case want == nil && present:
			t.Errorf("%s: the token has %s = %v, want none", c.method, k, v)
		case want != nil && v != want:
			t.Errorf("%s: %s = %v, want %v", c.method, k, v, want)
		}
	}
}

// checkGatewayLegs checks the token requests the gateway sent for the calls:
// each agent leg of the agent identity, both forms of the agent user, and
// the blueprint's own client credentials. It logs them without their
// credentials, as a record of what the gateway sent.
func checkGatewayLegs(t *testing.T, forms []url.Values) {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range forms {
		leg := legOf(f)
		switch {
		case leg == "agent_user" && f.Has("user_id"):
			leg += " (user_id)"
		case leg == "agent_user" && f.Has("username"):
			leg += " (username)"
		case leg == "" && f.Get("grant_type") == localidp.GrantClientCredentials && f.Get("client_id") == blueprintID:
			leg = "blueprint app"
		}
		seen[leg] = true
		var fields []string
		for k := range f {
			fields = append(fields, k)
		}
		slices.Sort(fields)
		t.Logf("gateway sent %s: grant_type=%s client_id=%s scope=%q fields %v", leg, f.Get("grant_type"), f.Get("client_id"), f.Get("scope"), fields)
	}
	for _, leg := range []string{"blueprint app", "blueprint", "agent_exchange", "agent_app", "agent_user (user_id)", "agent_user (username)"} {
		if !seen[leg] {
			t.Errorf("the gateway sent no %s request", leg)
		}
	}
}

// runSidecar runs sidecar.js with SidecarAuthProvider configured from the
// environment, as its documentation says, against baseURL.
func runSidecar(t *testing.T, node, baseURL, tenant string) map[string]sidecarResult {
	t.Helper()
	const prefix = "connections__serviceConnection__settings__"
	out := map[string]sidecarResult{}
	runScript(t, node, "sidecar.js", map[string]any{"tenantId": tenant, "agentId": agentID, "agentUserId": agentUserID,
		"agentUsername": agentUPN, "appScope": appScope, "userScopes": []string{userScope}},
		[]string{"SIDECAR_URL=" + baseURL, prefix + "authType=EntraAuthSideCar", prefix + "clientId=" + blueprintID,
			prefix + "tenantId=" + tenant, prefix + "scopes=" + appScope, prefix + "retryCount=0"}, &out)
	return out
}

// buildGateway builds the gateway binary as the Dockerfile does and returns
// its path.
func buildGateway(t *testing.T) string {
	t.Helper()
	binary := filepath.Join(t.TempDir(), "obo-gateway")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "urfave_cli_no_docs", "-o", binary,
		"github.com/obo-gateway/obo-gateway/cmd/obo-gateway")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return binary
}

// freeLoopbackAddr returns a loopback address with a port that was free a
// moment ago, for a listener the gateway opens itself.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// lockedBuffer is the log destination the gateway and the test share.
type lockedBuffer = syncbuf.Buffer

// startGateway runs `obo-gateway serve` with yaml and waits until the
// token API at tokenAPI answers /healthz; it returns the gateway's log.
func startGateway(t *testing.T, binary, yaml, tokenAPI string) *lockedBuffer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "obo-gateway.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	cmd := exec.Command(binary, "serve", "--config", path)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.After(20 * time.Second)
	for {
		res, err := http.Get("http://" + tokenAPI + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return logs
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the gateway exited (%v) before its token API answered /healthz; its log:\n%s", err, logs)
		case <-deadline:
			t.Fatalf("the gateway's token API did not answer /healthz on %s with 200; its log:\n%s", tokenAPI, logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// recordingFront is a reverse proxy in front of the token API that records
// the requests Microsoft's client sends.
type recordingFront struct {
	srv      *httptest.Server
	mu       sync.Mutex
	requests []*http.Request
}

func newRecordingFront(t *testing.T, tokenAPI string) *recordingFront {
	t.Helper()
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: tokenAPI})
	f := &recordingFront{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Clone(context.Background()))
		f.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the base URL Microsoft's client is given.
func (f *recordingFront) URL() string { return f.srv.URL }

// check compares the recorded requests with those of calls, in order.
func (f *recordingFront) check(t *testing.T, calls []sidecarCall) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.requests {
		t.Logf("SidecarAuthProvider sent %s %s", r.Method, r.URL.Path)
		if i >= len(calls) {
			t.Errorf("SidecarAuthProvider sent a request more than expected: %s %s", r.Method, r.URL.Path)
			continue
		}
		c := calls[i]
		query := r.URL.Query()
		if len(query) == 0 {
			query = nil
		}
		if r.Method != http.MethodGet || r.URL.Path != c.path || !equalValues(query, c.query) {
			t.Errorf("%s sent %s %s?%s, want GET %s?%s", c.method, r.Method, r.URL.Path, r.URL.RawQuery, c.path, c.query.Encode())
		}
		if h := r.Header.Get("Authorization"); h != "" {
			t.Errorf("%s sent an Authorization header to an unauthenticated endpoint", c.method)
		}
	}
	if len(f.requests) < len(calls) {
		t.Errorf("SidecarAuthProvider sent %d requests, want %d", len(f.requests), len(calls))
	}
}

// equalValues reports whether two query value sets are the same, with the
// values of each key in the same order.
func equalValues(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// The test must name every call of sidecar.js, so that a call added there
// is checked here.
func TestSidecarCallsMatchScript(t *testing.T) {
	script, err := os.ReadFile("sidecar.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range sidecarCalls("tenant") {
		if !strings.Contains(string(script), "    "+c.name+": () =>") {
			t.Errorf("sidecar.js makes no call named %s", c.name)
		}
	}
	if n, want := strings.Count(string(script), ": () => provider."), len(sidecarCalls("tenant")); n != want {
		t.Errorf("sidecar.js makes %d calls, the test checks %d", n, want)
	}
}
