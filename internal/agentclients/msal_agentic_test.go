package agentclients

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/internal/localidp"
	"github.com/obo-gateway/obo-gateway/obo"
)

const (
	blueprintID     = "b1e00000-0000-4000-8000-0000000000b1"
	blueprintSecret = "blueprint-secret"
	agentID         = "a9e00000-0000-4000-8000-0000000000a1"
	agentUserID     = "a9e0aaaa-0000-4000-8000-000000000001"
	agentUPN        = "agent-one@contoso.example"
	userScope       = "https://graph.microsoft.com/User.Read"
	appScope        = "https://graph.microsoft.com/.default"
)

// difference is a field in which the gateway's requests for some legs
// differ from Microsoft's on purpose.
type difference struct {
	legs          []string
	field, reason string
}

// msalNode are the legs Microsoft's code sends through MSAL for Node (the
// others it sends with fetch itself); agent_app is compared with T2.
var msalNode = []string{"agent_exchange", "agent_app"}

// deliberate lists where the gateway's requests differ from those of
// Microsoft's MsalTokenProvider, and why. The comparison skips exactly
// these, and fails when one of them no longer differs.
var deliberate = []difference{
	{[]string{"blueprint"}, "client_info", "Microsoft's code asks for client_info=2 on the requests it sends itself (MSAL's " +
		"account cache format); the gateway keeps no account cache and keys its cache on tenant and agent identity"},
	{[]string{"blueprint", "agent_exchange"}, "scope", "Microsoft's code writes api://AzureAdTokenExchange/.default, the " +
		"gateway the spelling of Entra's documentation, api://AzureADTokenExchange/.default; Entra compares scopes " +
		"without case, and the normalised scope sets must be equal"},
	{[]string{"agent_app"}, "scope", "the autonomous agent's token is the T2 request (getAgenticInstanceToken) for the " +
		"route's resource instead of the token exchange resource; Microsoft's JavaScript client has no call for it"},
	{[]string{"blueprint"}, "client_assertion.iat", "Microsoft's certificate assertion (getAssertionFromCert) carries iat, " +
		"equal to nbf; the gateway's carries nbf and exp, as MSAL's does (compared in internal/conformance); RFC 7523 " +
		"leaves iat optional and Entra does not require it"},
	{msalNode, "x-client-SKU", msalTelemetry},
	{msalNode, "x-client-VER", msalTelemetry},
	{msalNode, "x-client-OS", msalTelemetry},
	{msalNode, "x-client-CPU", msalTelemetry},
	{msalNode, "x-client-current-telemetry", "MSAL's server telemetry of its own API calls (and, below, of its last " +
		"failures), for Microsoft's library diagnostics; the gateway reports to its own metrics instead"},
	{msalNode, "x-client-last-telemetry", "see x-client-current-telemetry: MSAL's report of its earlier failed calls"},
	{msalNode, "client-request-id", "MSAL's own correlation GUID per request, which Entra echoes; the gateway sends none " +
		"(neither do its On-Behalf-Of requests) and keeps Entra's trace_id and correlation_id from every error answer"},
	{msalNode, "x-ms-lib-capability", "MSAL declares that it honours Retry-After on 429 answers; the gateway honours " +
		"Retry-After too (obo's retries) but sends no MSAL library markers on any request, as for On-Behalf-Of"},
}

// msalTelemetry is the reason for MSAL's library and platform fields.
const msalTelemetry = "MSAL names its library, version, operating system and CPU for Microsoft's telemetry; the " +
	"gateway is not MSAL and does not claim to be"

// legOf names the agent leg a recorded form belongs to, or "".
func legOf(f url.Values) string {
	switch {
	case f.Has("fmi_path"):
		return "blueprint"
	case f.Get("grant_type") == localidp.GrantUserFIC:
		return "agent_user"
	case f.Get("grant_type") == localidp.GrantClientCredentials && f.Get("client_id") == agentID:
		if strings.EqualFold(strings.Join(nonOIDC(f.Get("scope")), " "), "api://AzureADTokenExchange/.default") {
			return "agent_exchange"
		}
		return "agent_app"
	}
	return ""
}

// nonOIDC returns the scopes of a scope parameter without the OpenID
// Connect ones MSAL may add.
func nonOIDC(scope string) []string {
	var out []string
	for _, s := range strings.Fields(scope) {
		if !slices.Contains([]string{"openid", "profile", "offline_access"}, s) {
			out = append(out, s)
		}
	}
	return out
}

// requireNode returns the path of node, or skips the test when node is
// missing outside CI.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is not installed, and CI=true: Microsoft's agent clients must run")
		}
		t.Skip("node is not installed: Microsoft's agent clients (@microsoft/agents-hosting) are not run")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "@microsoft", "agents-hosting", "package.json")); err != nil {
		t.Fatalf("@microsoft/agents-hosting is not installed: run npm ci --prefix internal/agentclients (%v)", err)
	}
	return node
}

// blueprint is the blueprint's registration and credentials: a secret, a
// certificate and a federated credential for a service account token.
type blueprint struct {
	certFile, keyFile, tokenFile string
	cert                         *x509.Certificate
}

const serviceAccount = "system:serviceaccount:agents:blueprint"

func newBlueprint(t *testing.T) *blueprint {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "blueprint"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	b := &blueprint{cert: cert, certFile: filepath.Join(dir, "tls.crt"), keyFile: filepath.Join(dir, "tls.key"), tokenFile: filepath.Join(dir, "token")}
	writePEM(t, b.certFile, "CERTIFICATE", der)
	writePEM(t, b.keyFile, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	return b
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newIDP(t *testing.T, b *blueprint) *localidp.Server {
	t.Helper()
	idp, err := localidp.New(localidp.Options{
		TLS: true,
		Clients: []localidp.Client{{ID: blueprintID, Secret: blueprintSecret, IdentifierURI: "api://blueprint",
			Certificates:         []*x509.Certificate{b.cert},
			FederatedCredentials: []localidp.FederatedCredential{{Subject: serviceAccount}}}},
		AgentIdentities: []localidp.AgentIdentity{{ID: agentID, Blueprint: blueprintID,
			Users: []localidp.AgentUser{{ObjectID: agentUserID, UPN: agentUPN}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	tok, err := idp.IssueServiceAccountToken(localidp.ServiceAccountToken{Subject: serviceAccount})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.tokenFile, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	return idp
}

// credentials are the blueprint credentials both clients are run with: the
// settings of MsalTokenProvider and the gateway's Credential.
func (b *blueprint) credentials(t *testing.T) []struct {
	name      string
	microsoft map[string]string
	gateway   obo.Credential
} {
	t.Helper()
	cert, err := obo.NewCertificate(obo.CertificateConfig{CertFile: b.certFile, KeyFile: b.keyFile})
	if err != nil {
		t.Fatal(err)
	}
	return []struct {
		name      string
		microsoft map[string]string
		gateway   obo.Credential
	}{
		{"secret", map[string]string{"clientSecret": blueprintSecret}, obo.ClientSecret(blueprintSecret)},
		{"certificate", map[string]string{"certPemFile": b.certFile, "certKeyFile": b.keyFile}, cert},
		{"federated token file", map[string]string{"WIDAssertionFile": b.tokenFile}, obo.AssertionFile(b.tokenFile)},
	}
}

// microsoftTokens are the tokens MsalTokenProvider returned.
type microsoftTokens struct {
	Application, Instance, User string
}

// runMicrosoft runs msal-agentic.js against idp with the blueprint's
// credential settings and returns the tokens.
func runMicrosoft(t *testing.T, node string, idp *localidp.Server, credential map[string]string) microsoftTokens {
	t.Helper()
	ca := filepath.Join(t.TempDir(), "localidp-ca.pem")
	writePEM(t, ca, "CERTIFICATE", idp.TLSCertificate().Raw)
	var out microsoftTokens
	runScript(t, node, "msal-agentic.js", map[string]any{
		"authority": idp.BaseURL(), "tenantId": idp.TenantID(), "blueprintId": blueprintID, "credential": credential,
		"agentId": agentID, "agentUserId": agentUserID, "scopes": []string{userScope},
	}, []string{"NODE_EXTRA_CA_CERTS=" + ca}, &out)
	return out
}

// runScript runs a node script of this folder with settings (as JSON, its
// argument) and env added to the environment, and decodes what it prints
// into out.
func runScript(t *testing.T, node, script string, settings any, env []string, out any) {
	t.Helper()
	arg, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, string(arg))
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("%s printed %q: %v", script, stdout.String(), err)
	}
}

// runGateway sends the gateway's requests for every leg (agent user and
// autonomous agent tokens) with cred and returns them by leg.
func runGateway(t *testing.T, idp *localidp.Server, cred obo.Credential) map[string]url.Values {
	t.Helper()
	store, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	c, err := obo.NewClient(obo.Config{ClientID: blueprintID, TokenEndpoint: idp.TokenEndpoint(), Credential: cred,
		HTTPClient: idp.HTTPClient(), AgentCache: store})
	if err != nil {
		t.Fatal(err)
	}
	before := len(idp.TokenRequestForms())
	ctx := context.Background()
	if _, err := c.AgentToken(ctx, obo.AgentRequest{Flow: obo.FlowAgentUser, AgentID: agentID, UserID: agentUserID, Scopes: []string{userScope}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AgentToken(ctx, obo.AgentRequest{Flow: obo.FlowAgentApp, AgentID: agentID, Scopes: []string{appScope}}); err != nil {
		t.Fatal(err)
	}
	return formsByLeg(idp.TokenRequestForms()[before:])
}

// claims decodes the payload of a JWT.
func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	_, c := decodeJWT(t, tok)
	return c
}

// decodeJWT decodes the header and the payload of a JWT.
func decodeJWT(t *testing.T, tok string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT (%d parts)", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, payload
}

// formsByLeg returns the last form of each agent leg among forms.
func formsByLeg(forms []url.Values) map[string]url.Values {
	out := map[string]url.Values{}
	for _, f := range forms {
		if leg := legOf(f); leg != "" {
			out[leg] = f
		}
	}
	return out
}

func TestMicrosoftAgentClientAgainstLocalIDP(t *testing.T) {
	node := requireNode(t)
	b := newBlueprint(t)
	idp := newIDP(t, b)
	for _, cred := range b.credentials(t) {
		t.Run(cred.name, func(t *testing.T) {
			before := len(idp.TokenRequestForms())
			tokens := runMicrosoft(t, node, idp, cred.microsoft)
			checkMicrosoftTokens(t, idp, tokens)
			microsoft := formsByLeg(idp.TokenRequestForms()[before:])
			for _, leg := range []string{"blueprint", "agent_exchange", "agent_user"} {
				if microsoft[leg] == nil {
					t.Fatalf("Microsoft's client sent no %s request", leg)
				}
			}
			// Microsoft's JavaScript client has no autonomous agent call
			// for a resource: its nearest request is T2's.
			microsoft["agent_app"] = microsoft["agent_exchange"]
			compareLegs(t, microsoft, runGateway(t, idp, cred.gateway))
		})
	}
}

// checkMicrosoftTokens checks that each token Microsoft's client returned
// is the one localidp issues for that leg.
func checkMicrosoftTokens(t *testing.T, idp *localidp.Server, tokens microsoftTokens) {
	t.Helper()
	checks := []struct {
		name  string
		token string
		want  map[string]any
	}{
		{"getAgenticApplicationToken (T1)", tokens.Application, map[string]any{"aud": localidp.TokenExchangeAppID, "azp": blueprintID, "idtyp": "app"}},
		{"getAgenticInstanceToken (T2)", tokens.Instance, map[string]any{"aud": localidp.TokenExchangeAppID, "azp": agentID, "oid": agentID, "xms_par_app_azp": blueprintID}},
		{"getAgenticUserToken", tokens.User, map[string]any{"aud": "https://graph.microsoft.com", "azp": agentID, "oid": agentUserID,
			"upn": agentUPN, "scp": "User.Read", "idtyp": "user", "tid": idp.TenantID()}},
	}
	for _, c := range checks {
		got := claims(t, c.token)
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: %s = %v, want %v", c.name, k, got[k], v)
			}
		}
	}
	if sub, _ := claims(t, tokens.Application)["sub"].(string); !strings.HasSuffix(sub, "/"+agentID) {
		t.Errorf("T1 sub %q does not name the agent identity", sub)
	}
}

// compareLegs compares the gateway's request of each leg with Microsoft's,
// field by field.
func compareLegs(t *testing.T, microsoft, gateway map[string]url.Values) {
	t.Helper()
	for _, leg := range []string{"blueprint", "agent_exchange", "agent_user", "agent_app"} {
		ms, gw := microsoft[leg], gateway[leg]
		if gw == nil {
			t.Errorf("the gateway sent no %s request", leg)
			continue
		}
		fields := slices.Sorted(func(yield func(string) bool) {
			for k := range ms {
				yield(k)
			}
			for k := range gw {
				if !ms.Has(k) {
					yield(k)
				}
			}
		})
		for _, k := range fields {
			if deliberateFor(leg, k) != nil {
				if ms.Has(k) == gw.Has(k) && ms.Get(k) == gw.Get(k) {
					t.Errorf("%s %s is listed as a deliberate difference but is the same: %q", leg, k, ms.Get(k))
				}
				checkDeliberate(t, leg, k, ms, gw)
				continue
			}
			if ms.Has(k) != gw.Has(k) {
				t.Errorf("%s %s: Microsoft sends it: %v, the gateway: %v, and no reason is listed", leg, k, ms.Has(k), gw.Has(k))
				continue
			}
			if !sameField(t, leg, k, ms.Get(k), gw.Get(k)) {
				t.Errorf("%s %s: Microsoft %q, gateway %q", leg, k, abbreviate(ms.Get(k)), abbreviate(gw.Get(k)))
			}
		}
		for _, d := range deliberate {
			if slices.Contains(d.legs, leg) && !strings.Contains(d.field, ".") && !ms.Has(d.field) && !gw.Has(d.field) {
				t.Errorf("%s %s is listed as a deliberate difference, but neither request has it", leg, d.field)
			}
		}
	}
}

// checkDeliberate asserts what a deliberate difference still guarantees:
// the same scope set, whatever its letter case, except for agent_app.
func checkDeliberate(t *testing.T, leg, field string, ms, gw url.Values) {
	t.Helper()
	if field != "scope" || leg == "agent_app" {
		return
	}
	if m, g := cache.NormalizeScopes(nonOIDC(ms.Get("scope"))), cache.NormalizeScopes(nonOIDC(gw.Get("scope"))); m != g {
		t.Errorf("scope sets differ: Microsoft %q, gateway %q", m, g)
	}
}

func deliberateFor(leg, field string) *difference {
	for i, d := range deliberate {
		if slices.Contains(d.legs, leg) && d.field == field {
			return &deliberate[i]
		}
	}
	return nil
}

// tokenFields carry a token issued by localidp: the two requests carry
// different tokens, which must be the same token but for their lifetime
// and identifier.
var tokenFields = []string{"client_assertion", "user_federated_identity_credential"}

// sameField compares one form field of the two requests of leg.
func sameField(t *testing.T, leg, field, ms, gw string) bool {
	t.Helper()
	if !slices.Contains(tokenFields, field) || ms == "" || gw == "" {
		return ms == gw
	}
	mh, mc := decodeJWT(t, ms)
	gh, gc := decodeJWT(t, gw)
	if mh["x5t#S256"] != nil || gh["x5t#S256"] != nil {
		return sameCertificateAssertion(t, leg, mh, mc, gh, gc)
	}
	for _, c := range []map[string]any{mc, gc} {
		for _, k := range []string{"iat", "nbf", "exp", "uti"} {
			delete(c, k)
		}
	}
	mb, _ := json.Marshal(mc)
	gb, _ := json.Marshal(gc)
	if !bytes.Equal(mb, gb) {
		t.Logf("%s claims: Microsoft %s, gateway %s", field, mb, gb)
		return false
	}
	return true
}

// sameCertificateAssertion compares two certificate client assertions: the
// same header, naming the same certificate, and the same claims but for
// jti (unique by design), the signing moment and the deliberate
// differences listed as "client_assertion.<claim>".
func sameCertificateAssertion(t *testing.T, leg string, mh, mc, gh, gc map[string]any) bool {
	t.Helper()
	same := true
	mb, _ := json.Marshal(mh)
	gb, _ := json.Marshal(gh)
	if !bytes.Equal(mb, gb) {
		t.Logf("assertion header: Microsoft %s, gateway %s", mb, gb)
		same = false
	}
	for _, k := range slices.Compact(slices.Sorted(func(yield func(string) bool) {
		for k := range mc {
			yield(k)
		}
		for k := range gc {
			yield(k)
		}
	})) {
		_, inM := mc[k]
		_, inG := gc[k]
		switch {
		case deliberateFor(leg, "client_assertion."+k) != nil:
			if inM == inG {
				t.Errorf("client_assertion.%s is listed as a deliberate difference, but both assertions have it or neither", k)
			}
		case inM != inG:
			t.Logf("assertion claim %s: Microsoft has it: %v, the gateway: %v", k, inM, inG)
			same = false
		case k == "jti":
			if mc[k] == gc[k] {
				t.Log("both assertions have the same jti")
				same = false
			}
		case k == "nbf" || k == "exp":
		default:
			if mc[k] != gc[k] {
				t.Logf("assertion claim %s: Microsoft %v, gateway %v", k, mc[k], gc[k])
				same = false
			}
		}
	}
	lifetime := func(c map[string]any) float64 { e, _ := c["exp"].(float64); n, _ := c["nbf"].(float64); return e - n }
	if lifetime(mc) != lifetime(gc) {
		t.Logf("assertion lifetime: Microsoft %vs, gateway %vs", lifetime(mc), lifetime(gc))
		same = false
	}
	return same
}

func abbreviate(v string) string {
	if len(v) > 60 {
		return v[:24] + "…"
	}
	return v
}

func TestDeliberateDifferencesAreExplained(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range deliberate {
		if len(d.reason) < 40 {
			t.Errorf("%v %s: no real reason: %q", d.legs, d.field, d.reason)
		}
		for _, leg := range d.legs {
			if seen[leg+" "+d.field] {
				t.Errorf("%s %s listed twice", leg, d.field)
			}
			seen[leg+" "+d.field] = true
		}
	}
}
