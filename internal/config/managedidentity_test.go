package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/obo"
)

const (
	miAppID  = "11111111-2222-4333-8444-555555555555"
	miUserID = "ca11ab1e-0000-4000-8000-0000000000ca"
)

// withManagedIdentity replaces the secret of the minimal configuration
// (with a GUID client id) by credential, the text after "client:".
func withManagedIdentity(credential string) string {
	s := strings.Replace(minimal, "  id: client-id\n", "  id: "+miAppID+"\n", 1)
	return strings.Replace(s, "  secret: ${OBO_CLIENT_SECRET}\n", credential, 1)
}

func TestParseManagedIdentity(t *testing.T) {
	appService := map[string]string{"IDENTITY_ENDPOINT": "http://localhost:42356/msi/token", "IDENTITY_HEADER": "hdr"}
	tests := []struct {
		name     string
		yaml     string
		env      map[string]string
		clientID string
		// describes is what the credential's String says.
		describes string
	}{
		{"system-assigned, {}", "  managed_identity: {}\n", nil, "", "managed identity (system-assigned) from the IMDS endpoint " + obo.DefaultIMDSEndpoint},
		{"system-assigned, no value", "  managed_identity:\n", nil, "", "managed identity (system-assigned) from the IMDS endpoint"},
		{"user-assigned", "  managed_identity:\n    client_id: " + miUserID + "\n", nil, miUserID, "managed identity (user-assigned " + miUserID + ")"},
		{"App Service endpoint", "  managed_identity: {}\n", appService, "", "from the App Service endpoint http://localhost:42356/msi/token"},
		{"client id from the environment", "  managed_identity: {client_id: \"${MI_CLIENT_ID}\"}\n", map[string]string{"MI_CLIENT_ID": miUserID}, miUserID, "user-assigned " + miUserID},
		{"AZURE_FEDERATED_TOKEN_FILE does not add a second credential", "  managed_identity: {}\n", map[string]string{"AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token"}, "", "system-assigned"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, withManagedIdentity(tc.yaml), envMap(tc.env))
			mi := c.Client.ManagedIdentity
			if mi == nil || mi.ClientID != tc.clientID || c.Client.AssertionFile != "" {
				t.Fatalf("managed identity %+v, assertion file %q", mi, c.Client.AssertionFile)
			}
			cred, err := c.Credential(nil)
			if err != nil {
				t.Fatal(err)
			}
			m, ok := cred.(*obo.ManagedIdentity)
			if !ok || !strings.Contains(m.String(), tc.describes) {
				t.Errorf("credential %T %v, want one that says %q", cred, cred, tc.describes)
			}
			if strings.Contains(m.String(), "hdr") {
				t.Error("the credential's description shows IDENTITY_HEADER")
			}
		})
	}
}

func TestManagedIdentityProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want string
	}{
		{"with a secret", "  managed_identity: {}\n  secret: s\n", nil,
			"client: exactly one credential must be set (secret, secret_file, certificate, assertion_file or managed_identity), found 2"},
		{"client id not a GUID", "  managed_identity: {client_id: my-identity}\n", nil,
			`client.managed_identity.client_id: "my-identity" must be the client id (a GUID) of a user-assigned managed identity`},
		{"client id of the application", "  managed_identity: {client_id: " + strings.ToUpper(miAppID) + "}\n", nil,
			"client.managed_identity.client_id: is client.id: it must be the managed identity's client id"},
		{"unknown key", "  managed_identity: {object_id: x}\n", nil, `client.managed_identity.object_id: unknown key`},
		{"not a mapping", "  managed_identity: true\n", nil, "client.managed_identity: must be a mapping of keys to values, not a scalar"},
		{"IDENTITY_ENDPOINT without IDENTITY_HEADER", "  managed_identity: {}\n", map[string]string{"IDENTITY_ENDPOINT": "http://localhost:42356/msi/token"},
			"client.managed_identity: IDENTITY_ENDPOINT is set but IDENTITY_HEADER is not"},
		{"IDENTITY_ENDPOINT not a URL", "  managed_identity: {}\n", map[string]string{"IDENTITY_ENDPOINT": "localhost:42356", "IDENTITY_HEADER": "h"},
			`client.managed_identity: IDENTITY_ENDPOINT "localhost:42356" is not an http(s) URL`},
		{"Service Fabric", "  managed_identity: {}\n", map[string]string{"IDENTITY_ENDPOINT": "https://10.0.0.4:2377/metadata/identity/oauth2/token", "IDENTITY_HEADER": "h", "IDENTITY_SERVER_THUMBPRINT": "AB"},
			"Service Fabric's managed identity endpoint is not supported"},
		{"Azure Arc", "  managed_identity: {}\n", map[string]string{"IDENTITY_ENDPOINT": "http://localhost:40342/metadata/identity/oauth2/token", "IMDS_ENDPOINT": "http://localhost:40342"},
			"Azure Arc's managed identity endpoint is not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(withManagedIdentity(tc.yaml)), "test.yaml", envMap(tc.env))
			var ps Problems
			if !errors.As(err, &ps) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%v\nwant %q", err, tc.want)
			}
			if len(ps) != 1 {
				t.Errorf("%d problems, want 1:\n%v", len(ps), err)
			}
		})
	}
}
