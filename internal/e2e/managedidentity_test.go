package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

// The managed identities of the tests: their client ids and object ids.
const (
	miSystemClient = "5e5e5e5e-0000-4000-8000-00000000005e"
	miSystemObject = "0c0c0c0c-0000-4000-8000-0000000000c0"
	miUserClient   = "ca11ab1e-0000-4000-8000-0000000000ca"
	miUserObject   = "0b0b0b0b-0000-4000-8000-0000000000b0"
	miUnknown      = "deadbeef-0000-4000-8000-000000000000"
)

// managedIdentityHost is the Azure host of a test: its managed identity
// endpoint, started with the identity provider, and the environment
// App Service sets for it.
type managedIdentityHost struct {
	mi *localidp.ManagedIdentityEndpoint
	// closed makes IDENTITY_ENDPOINT name an endpoint that is gone.
	closed bool
}

func (h *managedIdentityHost) envOf(t *testing.T) func(*localidp.Server) map[string]string {
	return func(idp *localidp.Server) map[string]string {
		mi, err := idp.StartManagedIdentityEndpoint(localidp.ManagedIdentityOptions{
			SystemAssigned: localidp.ManagedIdentity{ClientID: miSystemClient, ObjectID: miSystemObject},
			UserAssigned:   []localidp.ManagedIdentity{{ClientID: miUserClient, ObjectID: miUserObject}},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mi.Close() })
		if h.closed {
			mi.Close()
		}
		h.mi = mi
		return map[string]string{"IDENTITY_ENDPOINT": mi.AppServiceURL(), "IDENTITY_HEADER": mi.Header()}
	}
}

// trustManagedIdentities registers the gateway's application with federated
// credentials for both identities only: no secret.
var trustManagedIdentities = registerOnly(nil, []localidp.FederatedCredential{
	{TenantIssuer: true, Subject: miSystemObject}, {TenantIssuer: true, Subject: miUserObject},
})

// checkNoManagedIdentitySecrets fails when the logs show the identity
// header or a token of the endpoint.
func (e *env) checkNoManagedIdentitySecrets(h *managedIdentityHost) {
	e.t.Helper()
	logs := e.logs.String()
	if strings.Contains(logs, h.mi.Header()) {
		e.t.Error("IDENTITY_HEADER is in the logs")
	}
	for _, tok := range h.mi.IssuedTokens() {
		if strings.Contains(logs, tok) {
			e.t.Error("a managed identity token is in the logs")
		}
	}
}

func TestManagedIdentityCredential(t *testing.T) {
	tests := []struct {
		name       string
		credential string
		subject    string
	}{
		{"system-assigned", "managed_identity: {}", miSystemObject},
		{"user-assigned", "managed_identity: {client_id: " + miUserClient + "}", miUserObject},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &managedIdentityHost{}
			e := start(t, options{credential: tc.credential, idp: trustManagedIdentities, envOf: h.envOf(t)})
			for i, path := range []string{"/echo/me", "/app/jobs", "/echo/me"} {
				a := e.get(path, e.token("mi-user-"+string(rune('a'+i))))
				if a.status != http.StatusOK {
					t.Fatalf("%s: %d %s", path, a.status, a.body)
				}
				if got, want := e.lastIssued().ClientAuth, "federated "+e.idp.Issuer()+" "+tc.subject; got != want {
					t.Errorf("%s: client authenticated as %q, want %q", path, got, want)
				}
				form := e.idp.LastTokenRequest()
				minted := h.mi.IssuedTokens()
				if form.Has("client_secret") || form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" ||
					len(minted) == 0 || form.Get("client_assertion") != minted[len(minted)-1] {
					t.Errorf("%s: the client assertion is not the managed identity's token", path)
				}
				if path == "/app/jobs" {
					authz := a.echoed(t).Headers["Authorization"][0]
					if c := jwtClaims(t, strings.TrimPrefix(authz, "Bearer ")); c["idtyp"] != "app" || c["scp"] != nil {
						t.Errorf("token B is not app-only: %v", c)
					}
				}
			}
			if c := jwtClaims(t, h.mi.IssuedTokens()[0]); c["aud"] != "api://AzureADTokenExchange" || c["sub"] != tc.subject {
				t.Errorf("the managed identity token has aud %v, sub %v", c["aud"], c["sub"])
			}
			if n := h.mi.Requests(); n != 1 {
				t.Errorf("%d requests to the managed identity endpoint for three exchanges, want 1", n)
			}
			e.checkNoManagedIdentitySecrets(h)
		})
	}
}

func TestManagedIdentityFailures(t *testing.T) {
	tests := []struct {
		name       string
		credential string
		closed     bool
		fault      string
		faults     int
		// wantLog is in the log line of the failed exchange.
		wantLog string
		// wantRequests is how many requests the endpoint saw for one
		// exchange (-1: not checked).
		wantRequests int64
	}{
		{name: "endpoint unreachable", credential: "managed_identity: {}", closed: true,
			wantLog: "could not be reached", wantRequests: -1},
		{name: "unknown identity", credential: "managed_identity: {client_id: " + miUnknown + "}",
			wantLog:      "answered 400: No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId. (is the user-assigned identity " + miUnknown + " assigned to this resource?)",
			wantRequests: 1},
		{name: "5xx, retried within the deadline", credential: "managed_identity: {}", fault: localidp.MIFaultServerError, faults: -1,
			wantLog: "answered 500: The managed identity service is temporarily unavailable. (after 3 attempts)", wantRequests: 3},
		{name: "malformed answer", credential: "managed_identity: {}", fault: localidp.MIFaultMalformed, faults: -1,
			wantLog: "answered 200 but not with a token: not valid JSON", wantRequests: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &managedIdentityHost{closed: tc.closed}
			e := start(t, options{credential: tc.credential, idp: trustManagedIdentities, envOf: h.envOf(t)})
			h.mi.SetFault(tc.fault, tc.faults)
			for _, rt := range []struct{ path, counter string }{
				{"/echo/x", `obo_gateway_exchanges_total{flow="on_behalf_of",outcome="credential_error",route="echo"}`},
				{"/app/x", `obo_gateway_exchanges_total{flow="client_credentials",outcome="credential_error",route="app"}`},
			} {
				before := h.mi.Requests()
				if a := e.get(rt.path, e.token("mi-fail")); a.status != http.StatusBadGateway {
					t.Errorf("%s: %d %s, want 502", rt.path, a.status, a.body)
				}
				if n := h.mi.Requests() - before; tc.wantRequests >= 0 && n != tc.wantRequests {
					t.Errorf("%s: %d requests to the endpoint, want %d", rt.path, n, tc.wantRequests)
				}
				if m := e.metric(rt.counter); len(m) != 1 || !strings.HasSuffix(m[0], " 1") {
					t.Errorf("%s: credential errors counted: %v", rt.path, m)
				}
			}
			if n := e.idp.TokenRequests(); n != 0 {
				t.Errorf("%d token requests sent without a credential", n)
			}
			var failed []string
			for _, l := range strings.Split(e.logs.String(), "\n") {
				if strings.Contains(l, `"msg":"exchange failed"`) {
					failed = append(failed, l)
				}
			}
			if len(failed) != 2 {
				t.Fatalf("%d exchange failures logged, want 2", len(failed))
			}
			for _, l := range failed {
				if !strings.Contains(l, `"outcome":"credential_error"`) || !strings.Contains(l, "client credential (managed_identity): the App Service endpoint") ||
					!strings.Contains(l, tc.wantLog) {
					t.Errorf("log line %s\nwant %q in it", l, tc.wantLog)
				}
			}
			e.checkNoManagedIdentitySecrets(h)
		})
	}
}

func TestManagedIdentityPassingFault(t *testing.T) {
	h := &managedIdentityHost{}
	e := start(t, options{credential: "managed_identity: {}", idp: trustManagedIdentities, envOf: h.envOf(t)})
	h.mi.SetFault(localidp.MIFaultServerError, 1)
	if a := e.get("/echo/x", e.token("mi-retry")); a.status != http.StatusOK {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if n := h.mi.Requests(); n != 2 {
		t.Errorf("%d requests to the endpoint, want 2 (a 500, then the token)", n)
	}
}
