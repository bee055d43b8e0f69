package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/obo"
)

// writeCert writes a self-signed certificate valid until notAfter and its
// key (PKCS#8) to dir and returns the two paths.
func writeCert(t *testing.T, dir, name string, key crypto.Signer, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestValidateCredentialsAndModes(t *testing.T) {
	dir := t.TempDir()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certFile, keyFile := writeCert(t, dir, "good", rsaKey, time.Now().Add(365*24*time.Hour))
	ecCert, ecKeyFile := writeCert(t, dir, "ec", ecKey, time.Now().Add(365*24*time.Hour))
	oldCert, oldKey := writeCert(t, dir, "old", rsaKey, time.Now().Add(-time.Hour))
	encrypted := filepath.Join(dir, "encrypted.key")
	_ = os.WriteFile(encrypted, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), 0o600)
	token := filepath.Join(dir, "azure-identity-token")
	_ = os.WriteFile(token, []byte("eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n"), 0o600)
	emptyToken := filepath.Join(dir, "empty-token")
	_ = os.WriteFile(emptyToken, nil, 0o600)
	const guid = "72f988bf-86f1-41af-91ab-2d7cd011db47"

	cert := func(c *Config) {
		c.Client.Secret, c.Client.Certificate = "", Certificate{File: certFile, KeyFile: keyFile}
	}
	common := func(c *Config) { c.Authority.URL = "https://login.microsoftonline.com/common/v2.0" }
	rfc := func(c *Config) {
		c.Authority.URL, c.Authority.Protocol = "https://keycloak.example/realms/r", obo.ProtocolRFC8693
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   Problems // nil: valid
	}{
		{"certificate", cert, nil},
		{"EC certificate with x5c", func(c *Config) {
			c.Client.Secret, c.Client.Certificate = "", Certificate{File: ecCert, KeyFile: ecKeyFile, SendX5C: true}
		}, nil},
		{"assertion file", func(c *Config) { c.Client.Secret, c.Client.AssertionFile = "", token }, nil},
		{"certificate and secret", func(c *Config) { c.Client.Certificate = Certificate{File: certFile, KeyFile: keyFile} },
			Problems{{Key: "client", Message: "exactly one credential must be set (secret, secret_file, certificate, assertion_file or managed_identity), found 2"}}},
		{"certificate without file", func(c *Config) { c.Client.Secret, c.Client.Certificate = "", Certificate{KeyFile: keyFile} },
			Problems{{Key: "client.certificate.file", Message: "must be set: the PEM file with the certificate (and its chain)"}}},
		{"encrypted key", func(c *Config) {
			c.Client.Secret, c.Client.Certificate = "", Certificate{File: certFile, KeyFile: encrypted}
		},
			Problems{{Key: "client.certificate.key_file", Message: encrypted + ": the private key is encrypted, which the gateway does not support: " +
				"decrypt it (openssl pkey -in key.pem -out key-decrypted.pem) and protect the file with permissions or a Kubernetes Secret instead"}}},
		{"key of another certificate", func(c *Config) {
			c.Client.Secret, c.Client.Certificate = "", Certificate{File: ecCert, KeyFile: keyFile}
		},
			Problems{{Key: "client.certificate.key_file", Message: keyFile + ": the private key belongs to none of the certificates in the certificate file"}}},
		{"expired certificate", func(c *Config) {
			c.Client.Secret, c.Client.Certificate = "", Certificate{File: oldCert, KeyFile: oldKey}
		}, nil /* checked below */},
		{"missing assertion file", func(c *Config) { c.Client.Secret, c.Client.AssertionFile = "", filepath.Join(dir, "missing") }, nil},
		{"empty assertion file", func(c *Config) { c.Client.Secret, c.Client.AssertionFile = "", emptyToken },
			Problems{{Key: "client.assertion_file", Message: emptyToken + " is empty"}}},
		{"multi-tenant with tenants", func(c *Config) { common(c); c.Inbound.AllowedTenants = []string{guid} }, nil},
		{"multi-tenant with any tenant", func(c *Config) { common(c); c.Inbound.AllowedTenants = []string{"*"} }, nil},
		{"multi-tenant without tenants", common,
			Problems{{Key: "inbound.allowed_tenants", Message: `must be set: the authority "common" is multi-tenant, so list the tenant ids whose users may call, or ["*"] to accept every tenant`}}},
		{"star with others", func(c *Config) { common(c); c.Inbound.AllowedTenants = []string{"*", guid} },
			Problems{{Key: "inbound.allowed_tenants", Message: `"*" accepts every tenant and must stand alone`}}},
		{"tenant domain", func(c *Config) { c.Inbound.AllowedTenants = []string{"contoso.com"} },
			Problems{{Key: "inbound.allowed_tenants[0]", Message: `"contoso.com" must be a tenant id (a GUID, as in the tid claim of tokens) or "*"`}}},
		{"multi-tenant app-only route needs the home tenant", func(c *Config) {
			common(c)
			c.Inbound.AllowedTenants = []string{guid}
			c.Routes[0].Flow, c.Routes[0].Scopes = obo.FlowClientCredentials, []string{"https://graph.microsoft.com/.default"}
		}, Problems{{Key: "client.tenant_id", Message: "must be set: the authority is multi-tenant and routes[0] uses client_credentials, whose app-only tokens come from the application's home tenant (or set AZURE_TENANT_ID)"}}},
		{"multi-tenant app-only route with the home tenant", func(c *Config) {
			common(c)
			c.Inbound.AllowedTenants, c.Client.TenantID = []string{guid}, guid
			c.Routes[0].Flow, c.Routes[0].Scopes = obo.FlowClientCredentials, []string{"https://graph.microsoft.com/.default"}
		}, nil},
		{"tenant id common", func(c *Config) { c.Client.TenantID = "common" },
			Problems{{Key: "client.tenant_id", Message: `"common" must be the application's home tenant: a tenant id (GUID) or domain name, not common or organizations`}}},
		{"tenant domain with an empty label", func(c *Config) { c.Client.TenantID = "contoso..com" },
			Problems{{Key: "client.tenant_id", Message: `"contoso..com" must be the application's home tenant: a tenant id (GUID) or domain name, not common or organizations`}}},
		{"unknown protocol", func(c *Config) { c.Authority.Protocol = "saml" },
			Problems{{Key: "authority.protocol", Message: `"saml" is not a protocol (use entra, the Microsoft On-Behalf-Of request, or rfc8693, an OAuth 2.0 token exchange)`}}},
		{"rfc8693 with audience and no scopes", func(c *Config) { rfc(c); c.Routes[0].Audience, c.Routes[0].Scopes = "api-b", nil }, nil},
		{"rfc8693 requested token type", func(c *Config) { rfc(c); c.Routes[0].RequestedTokenType = obo.TokenTypeJWT }, nil},
		{"rfc8693 plain client credentials scopes", func(c *Config) {
			rfc(c)
			c.Routes[0].Flow, c.Routes[0].Scopes = obo.FlowClientCredentials, []string{"jobs"}
		}, nil},
		{"rfc8693 without audience or scopes", func(c *Config) { rfc(c); c.Routes[0].Scopes = nil },
			Problems{{Key: "routes[0].scopes", Message: "must not be empty unless the route has an audience"}}},
		{"audience in entra mode", func(c *Config) { c.Routes[0].Audience = "api-b" },
			Problems{{Key: "routes[0].audience", Message: "is an RFC 8693 parameter: set authority.protocol: rfc8693, or name the resource in scopes instead"}}},
		{"requested token type in entra mode", func(c *Config) { c.Routes[0].RequestedTokenType = obo.TokenTypeSAML2 },
			Problems{{Key: "routes[0].requested_token_type", Message: "is an RFC 8693 parameter: set authority.protocol: rfc8693 (for a SAML assertion from Entra use token_type: saml2)"}}},
		{"requested token type not a URI", func(c *Config) { rfc(c); c.Routes[0].RequestedTokenType = "jwt" },
			Problems{{Key: "routes[0].requested_token_type", Message: `"jwt" must be a token type URI such as urn:ietf:params:oauth:token-type:access_token`}}},
		{"SAML route", func(c *Config) { c.Routes[0].TokenType = TokenTypeSAML2 }, nil},
		{"SAML route with custom header", func(c *Config) {
			c.Routes[0].TokenType, c.Routes[0].AuthHeader, c.Routes[0].AuthFormat = TokenTypeSAML2, "X-SAML-Token", "{base64url}"
		}, nil},
		{"SAML app-only route", func(c *Config) {
			c.Routes[0].TokenType, c.Routes[0].Flow, c.Routes[0].Scopes = TokenTypeSAML2, obo.FlowClientCredentials, []string{"api://b/.default"}
		}, Problems{{Key: "routes[0].token_type", Message: "saml2 needs flow on_behalf_of: SAML assertions are issued for a user"}}},
		{"unknown token type", func(c *Config) { c.Routes[0].TokenType = "jwt" },
			Problems{{Key: "routes[0].token_type", Message: `"jwt" is not a token type (use access_token or saml2)`}}},
		{"SAML contradicted", func(c *Config) {
			rfc(c)
			c.Routes[0].TokenType, c.Routes[0].RequestedTokenType = TokenTypeSAML2, obo.TokenTypeJWT
		},
			Problems{{Key: "routes[0].requested_token_type", Message: `"urn:ietf:params:oauth:token-type:jwt" contradicts token_type saml2 (which asks for urn:ietf:params:oauth:token-type:saml2); remove one of them`}}},
		{"reserved header", func(c *Config) { c.Routes[0].AuthHeader = "Host" },
			Problems{{Key: "routes[0].auth_header", Message: `header "Host" cannot carry the token: it is hop-by-hop, describes the body or is set by the gateway`}}},
		{"format without placeholder", func(c *Config) { c.Routes[0].AuthFormat = "Bearer" },
			Problems{{Key: "routes[0].auth_format", Message: `format "Bearer" must hold exactly one of {token}, {base64} or {base64url}, not 0`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(c)
			err := c.Validate()
			switch tt.name {
			case "expired certificate":
				if err == nil || !strings.Contains(err.Error(), "client.certificate.file: the certificate (x5t#S256 ") || !strings.Contains(err.Error(), "expired on") {
					t.Errorf("Validate() = %v", err)
				}
				return
			case "missing assertion file":
				if err == nil || !strings.Contains(err.Error(), "client.assertion_file: open ") || !strings.Contains(err.Error(), "azure.workload.identity/use") {
					t.Errorf("Validate() = %v", err)
				}
				return
			}
			var got Problems
			if err != nil {
				got = err.(Problems)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Validate() =\n%v\nwant\n%v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("problem %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestWorkloadIdentityEnvironment(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "azure-identity-token")
	_ = os.WriteFile(token, []byte("federated"), 0o600)
	const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	env := map[string]string{
		"AZURE_CLIENT_ID":            "11111111-2222-4333-8444-555555555555",
		"AZURE_TENANT_ID":            tenant,
		"AZURE_FEDERATED_TOKEN_FILE": token,
		"AZURE_AUTHORITY_HOST":       "https://login.microsoftonline.us/",
	}
	const routes = "inbound:\n  audiences: [api://api-a]\nroutes:\n  - {name: g, path_prefix: /g, upstream: https://g.example, scopes: [api://g/read]}\n"
	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		check func(t *testing.T, c *Config)
		err   string
	}{
		{name: "everything from the webhook's variables", yaml: routes, env: env, check: func(t *testing.T, c *Config) {
			if c.Client.ID != env["AZURE_CLIENT_ID"] || c.Client.TenantID != tenant || c.Client.AssertionFile != token ||
				c.Authority.URL != "https://login.microsoftonline.us/"+tenant+"/v2.0" {
				t.Errorf("client %+v authority %q", c.Client, c.Authority.URL)
			}
			if cred, err := c.Credential(nil); err != nil || cred != obo.AssertionFile(token) {
				t.Errorf("Credential() = %v, %v", cred, err)
			}
		}},
		{name: "the file wins", yaml: "authority: {url: https://login.microsoftonline.com/other/v2.0}\nclient: {id: file-id, secret: s}\n" + routes, env: env,
			check: func(t *testing.T, c *Config) {
				if c.Client.ID != "file-id" || c.Client.AssertionFile != "" || c.Authority.URL != "https://login.microsoftonline.com/other/v2.0" {
					t.Errorf("client %+v authority %q", c.Client, c.Authority.URL)
				}
			}},
		{name: "public cloud by default", yaml: routes, env: map[string]string{"AZURE_CLIENT_ID": "c", "AZURE_TENANT_ID": tenant, "AZURE_FEDERATED_TOKEN_FILE": token},
			check: func(t *testing.T, c *Config) {
				if c.Authority.URL != "https://login.microsoftonline.com/"+tenant+"/v2.0" {
					t.Errorf("authority %q", c.Authority.URL)
				}
			}},
		{name: "problem names the variable", yaml: routes, env: map[string]string{"AZURE_CLIENT_ID": "c", "AZURE_TENANT_ID": tenant, "AZURE_FEDERATED_TOKEN_FILE": filepath.Join(dir, "missing")},
			err: "(the value comes from the environment variable AZURE_FEDERATED_TOKEN_FILE)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), "test.yaml", envMap(tc.env))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestParseNewKeysAndWarnings(t *testing.T) {
	dir := t.TempDir()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	certFile, keyFile := writeCert(t, dir, "soon", key, time.Now().Add(10*24*time.Hour))
	yaml := `authority:
  url: https://login.microsoftonline.com/organizations/v2.0
client:
  id: c
  tenant_id: 72f988bf-86f1-41af-91ab-2d7cd011db47
  certificate:
    file: ` + certFile + `
    key_file: ` + keyFile + `
    send_x5c: true
inbound:
  audiences: [api://api-a]
  allowed_tenants: ["*"]
routes:
  - name: saml
    path_prefix: /saml
    upstream: https://saml.example
    scopes: [https://saml.example/.default]
    token_type: saml2
    auth_header: X-SAML
    auth_format: "SAML2 {base64}"
  - name: mesh
    path_prefix: /mesh
    upstream: http://orders.shop.svc.cluster.local/api
    scopes: [api://orders/.default]
  - name: local
    path_prefix: /local
    upstream: http://127.0.0.1:8081
    scopes: [api://local/.default]
`
	c, err := Parse([]byte(yaml), "test.yaml", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !bool(c.Client.Certificate.SendX5C) || c.Routes[0].RequestedTokenTypeURI() != obo.TokenTypeSAML2 {
		t.Errorf("parsed %+v %+v", c.Client, c.Routes[0])
	}
	if p := c.Routes[0].Presentation(); p.Header != "X-Saml" || p.Format != "SAML2 {base64}" {
		t.Errorf("Presentation() = %+v", p)
	}
	if r := c.Routes[0]; r.Flow != obo.FlowOnBehalfOf || len(r.Scopes) != 1 {
		t.Errorf("route = %+v", r)
	}
	w := c.Warnings()
	if len(w) != 3 || !strings.Contains(w[0], `"*" accepts tokens of users of every Microsoft Entra tenant`) ||
		!strings.Contains(w[1], "routes[1].upstream: http://orders.shop.svc.cluster.local/api sends token B without TLS") ||
		!strings.Contains(w[2], "in less than 30 days") {
		t.Errorf("Warnings() = %q", w)
	}
	if cred, err := c.Credential(nil); err != nil {
		t.Errorf("Credential() = %v", err)
	} else if _, ok := cred.(*obo.Certificate); !ok {
		t.Errorf("Credential() is %T", cred)
	}
	if c.V1Authority() != "https://login.microsoftonline.com/organizations" {
		t.Errorf("V1Authority() = %q", c.V1Authority())
	}
	bad := strings.Replace(yaml, "send_x5c: true", "send_x5c: yes", 1)
	if _, err := Parse([]byte(bad), "test.yaml", envMap(nil)); err == nil || !strings.Contains(err.Error(), `client.certificate.send_x5c: must be true or false, not "yes"`) {
		t.Errorf("send_x5c: yes: %v", err)
	}
}
