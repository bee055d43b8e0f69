package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/echo"
	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

// TestServeWithManagedIdentity runs the binary as a Container Apps sidecar
// would: IDENTITY_ENDPOINT and IDENTITY_HEADER name the platform's managed
// identity endpoint (here localidp's, on loopback), and the application
// trusts the identity through a federated credential.
func TestServeWithManagedIdentity(t *testing.T) {
	const (
		miClient = "ca11ab1e-0000-4000-8000-0000000000ca"
		miObject = "0b0b0b0b-0000-4000-8000-0000000000b0"
	)
	idp, err := localidp.New(localidp.Options{Clients: []localidp.Client{{ID: drainClientID, IdentifierURI: drainAPI,
		FederatedCredentials: []localidp.FederatedCredential{{TenantIssuer: true, Subject: miObject}}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	mi, err := idp.StartManagedIdentityEndpoint(localidp.ManagedIdentityOptions{
		UserAssigned: []localidp.ManagedIdentity{{ClientID: miClient, ObjectID: miObject}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mi.Close() })
	echoSrv := httptest.NewServer(echo.NewHandler())
	t.Cleanup(echoSrv.Close)

	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
log: {format: json, level: debug, requests: all}
authority: {url: %q}
client:
  id: %q
  managed_identity:
    client_id: %s
inbound:
  audiences: [%q]
routes:
  - name: echo
    path_prefix: /echo
    upstream: %s/api
    scopes: [api://echo-api/Echo.Read]
  - name: app
    path_prefix: /app
    upstream: %s/app
    scopes: [api://echo-api/.default]
    flow: client_credentials
`, idp.Authority(), drainClientID, miClient, drainAPI, echoSrv.URL, echoSrv.URL)
	identityEnv := []string{"IDENTITY_ENDPOINT=" + mi.AppServiceURL(), "IDENTITY_HEADER=" + mi.Header()}

	path := filepath.Join(t.TempDir(), "obo-gateway.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runBinary(t, identityEnv, "check", "--config", path)
	if want := "credential: managed identity (user-assigned " + miClient + ") from the App Service endpoint " + mi.AppServiceURL() + "\n"; code != 0 || !strings.Contains(out, want) {
		t.Fatalf("check: exit %d, want %q in\n%s%s", code, want, out, errOut)
	}
	if strings.Contains(out+errOut, mi.Header()) {
		t.Error("check shows IDENTITY_HEADER")
	}
	_, errOut, code = runBinary(t, identityEnv[:1], "check", "--config", path)
	if code != 2 || !strings.Contains(errOut, "client.managed_identity: IDENTITY_ENDPOINT is set but IDENTITY_HEADER is not") {
		t.Errorf("check without IDENTITY_HEADER: exit %d\n%s", code, errOut)
	}

	g := startGateway(t, yaml, identityEnv...)
	tok, err := idp.IssueToken(localidp.UserToken{ObjectID: "mi-binary-user", Audience: drainAPI, Scopes: []string{"access_as_user"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/echo/x", "/app/x"} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+g.addr+p, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: %d; log:\n%s", p, res.StatusCode, g.logs)
		}
		issued := idp.IssuedTokens()
		if got, want := issued[len(issued)-1].ClientAuth, "federated "+idp.Issuer()+" "+miObject; got != want {
			t.Errorf("%s: client authenticated as %q, want %q", p, got, want)
		}
	}
	if n := mi.Requests(); n != 1 {
		t.Errorf("%d requests to the managed identity endpoint, want 1", n)
	}
	logs := g.logs.String()
	if !strings.Contains(logs, `"msg":"client credential","credential":"managed identity (user-assigned `+miClient+`) from the App Service endpoint `+mi.AppServiceURL()+`"`) {
		t.Errorf("the start-up log does not name the managed identity endpoint:\n%s", logs)
	}
	for _, secret := range append(mi.IssuedTokens(), mi.Header()) {
		if strings.Contains(logs, secret) {
			t.Error("the log shows the identity header or a managed identity token")
		}
	}
}
