package obo

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

const (
	miAppID    = "0a0a0a0a-0000-4000-8000-00000000a0a0"
	miSystemID = "5e5e5e5e-0000-4000-8000-00000000005e"
	miUserID   = "ca11ab1e-0000-4000-8000-0000000000ca"
	miUserObj  = "0b0b0b0b-0000-4000-8000-0000000000b0"
	miSysObj   = "0c0c0c0c-0000-4000-8000-0000000000c0"
)

// miSetup is an identity provider whose application trusts a system- and
// a user-assigned managed identity, and their endpoint.
type miSetup struct {
	idp *localidp.Server
	mi  *localidp.ManagedIdentityEndpoint
}

func newMISetup(t *testing.T, opts localidp.ManagedIdentityOptions) miSetup {
	t.Helper()
	idp, err := localidp.New(localidp.Options{Clients: []localidp.Client{{
		ID: miAppID, IdentifierURI: "api://mi-app",
		FederatedCredentials: []localidp.FederatedCredential{
			{TenantIssuer: true, Subject: miSysObj}, {TenantIssuer: true, Subject: miUserObj},
		},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	opts.SystemAssigned = localidp.ManagedIdentity{ClientID: miSystemID, ObjectID: miSysObj}
	opts.UserAssigned = []localidp.ManagedIdentity{{ClientID: miUserID, ObjectID: miUserObj}}
	mi, err := idp.StartManagedIdentityEndpoint(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mi.Close() })
	return miSetup{idp: idp, mi: mi}
}

func TestManagedIdentityExchanges(t *testing.T) {
	s := newMISetup(t, localidp.ManagedIdentityOptions{})
	tests := []struct {
		name    string
		cfg     ManagedIdentityConfig
		subject string
	}{
		{"App Service, system-assigned", ManagedIdentityConfig{Endpoint: s.mi.AppServiceURL(), Header: s.mi.Header()}, miSysObj},
		{"App Service, user-assigned", ManagedIdentityConfig{Endpoint: s.mi.AppServiceURL(), Header: s.mi.Header(), ClientID: miUserID}, miUserObj},
		{"IMDS, system-assigned", ManagedIdentityConfig{IMDSEndpoint: s.mi.IMDSURL()}, miSysObj},
		{"IMDS, user-assigned", ManagedIdentityConfig{IMDSEndpoint: s.mi.IMDSURL(), ClientID: miUserID}, miUserObj},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cred, err := NewManagedIdentity(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			c, err := NewClient(Config{ClientID: miAppID, TokenEndpoint: s.idp.TokenEndpoint(), Credential: cred})
			if err != nil {
				t.Fatal(err)
			}
			before := s.mi.Requests()
			userA, err := s.idp.IssueToken(localidp.UserToken{ObjectID: "mi-user", Audience: "api://mi-app"})
			if err != nil {
				t.Fatal(err)
			}
			for i, call := range []func() (*Token, error){
				func() (*Token, error) { return c.OnBehalfOf(context.Background(), userA, []string{"api://b/read"}) },
				func() (*Token, error) { return c.ClientCredentials(context.Background(), []string{"api://b/.default"}) },
				func() (*Token, error) { return c.OnBehalfOf(context.Background(), userA, []string{"api://c/read"}) },
			} {
				if _, err := call(); err != nil {
					t.Fatalf("exchange %d: %v", i, err)
				}
				issued := s.idp.IssuedTokens()
				if got, want := issued[len(issued)-1].ClientAuth, "federated "+s.idp.Issuer()+" "+tc.subject; got != want {
					t.Errorf("exchange %d: client authenticated as %q, want %q", i, got, want)
				}
			}
			form := s.idp.LastTokenRequest()
			minted := s.mi.IssuedTokens()
			if form.Get("client_assertion_type") != ClientAssertionType || form.Get("client_assertion") != minted[len(minted)-1] {
				t.Errorf("the client assertion is not the managed identity's token")
			}
			if n := s.mi.Requests() - before; n != 1 {
				t.Errorf("%d requests to the managed identity endpoint for three exchanges, want 1 (cached)", n)
			}
		})
	}
}

func TestManagedIdentityRequest(t *testing.T) {
	tests := []struct {
		name       string
		cfg        ManagedIdentityConfig
		audience   string
		wantURL    string
		wantHeader [2]string
	}{
		{
			name:       "IMDS by default, system-assigned",
			audience:   FederatedAudiencePublic,
			wantURL:    "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=api%3A%2F%2FAzureADTokenExchange",
			wantHeader: [2]string{"Metadata", "true"},
		},
		{
			name:       "IMDS, user-assigned, US Government",
			cfg:        ManagedIdentityConfig{ClientID: miUserID},
			audience:   FederatedAudienceUSGov,
			wantURL:    "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&client_id=" + miUserID + "&resource=api%3A%2F%2FAzureADTokenExchangeUSGov",
			wantHeader: [2]string{"Metadata", "true"},
		},
		{
			name:       "IDENTITY_ENDPOINT without IDENTITY_HEADER is not App Service",
			cfg:        ManagedIdentityConfig{Endpoint: "http://localhost:42356/msi/token"},
			audience:   FederatedAudiencePublic,
			wantURL:    "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=api%3A%2F%2FAzureADTokenExchange",
			wantHeader: [2]string{"Metadata", "true"},
		},
		{
			name:       "App Service, user-assigned",
			cfg:        ManagedIdentityConfig{Endpoint: "http://localhost:42356/msi/token", Header: "hdr-secret", ClientID: miUserID},
			audience:   FederatedAudiencePublic,
			wantURL:    "http://localhost:42356/msi/token?api-version=2019-08-01&client_id=" + miUserID + "&resource=api%3A%2F%2FAzureADTokenExchange",
			wantHeader: [2]string{"X-Identity-Header", "hdr-secret"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewManagedIdentity(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			req, err := m.Request(context.Background(), tc.audience)
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != http.MethodGet || req.URL.String() != tc.wantURL {
				t.Errorf("request %s %s, want GET %s", req.Method, req.URL, tc.wantURL)
			}
			if got := req.Header.Get(tc.wantHeader[0]); got != tc.wantHeader[1] {
				t.Errorf("header %s = %q, want %q", tc.wantHeader[0], got, tc.wantHeader[1])
			}
			other := map[string]string{"Metadata": "X-Identity-Header", "X-Identity-Header": "Metadata"}[tc.wantHeader[0]]
			if req.Header.Get(other) != "" {
				t.Errorf("the request also carries %s", other)
			}
		})
	}
}

// refusingTransport records the requests it is given and sends none.
type refusingTransport struct {
	mu    sync.Mutex
	hosts []string
}

func (r *refusingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.hosts = append(r.hosts, req.URL.Host)
	r.mu.Unlock()
	return nil, errors.New("refused by the test: nothing is sent to the metadata service")
}

func TestManagedIdentityDefaultsToIMDSWithoutDialling(t *testing.T) {
	rt := &refusingTransport{}
	m, err := NewManagedIdentity(ManagedIdentityConfig{HTTPClient: &http.Client{Transport: rt}, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Apply(context.Background(), "https://login.microsoftonline.com/t/oauth2/v2.0/token", map[string][]string{})
	var ce *CredentialError
	if !errors.As(err, &ce) || ce.Credential != "managed_identity" || Outcome(err) != "credential_error" {
		t.Fatalf("error %v (%T), outcome %s", err, err, Outcome(err))
	}
	if len(rt.hosts) != 1 || rt.hosts[0] != "169.254.169.254" {
		t.Errorf("requests for %v, want one for 169.254.169.254", rt.hosts)
	}
	if !strings.Contains(err.Error(), "IMDS endpoint http://169.254.169.254/metadata/identity/oauth2/token could not be reached") {
		t.Errorf("error %q", err)
	}
	// The default client goes to the host's endpoint directly.
	d, _ := NewManagedIdentity(ManagedIdentityConfig{})
	if tr, ok := d.cfg.HTTPClient.Transport.(*http.Transport); !ok || tr.Proxy != nil || d.cfg.HTTPClient.CheckRedirect == nil {
		t.Error("the default client may use a proxy or follow redirects")
	}
}

func TestFederatedAudience(t *testing.T) {
	for endpoint, want := range map[string]string{
		"https://login.microsoftonline.com/t/oauth2/v2.0/token":   "api://AzureADTokenExchange",
		"https://login.microsoftonline.us/t/oauth2/v2.0/token":    "api://AzureADTokenExchangeUSGov",
		"https://LOGIN.chinacloudapi.cn/t/oauth2/v2.0/token":      "api://AzureADTokenExchangeChina",
		"http://127.0.0.1:8080/t/oauth2/v2.0/token":               "api://AzureADTokenExchange",
		"https://login.microsoftonline.us.example/t/oauth2/token": "api://AzureADTokenExchange",
	} {
		if got := FederatedAudience(endpoint); got != want {
			t.Errorf("FederatedAudience(%s) = %s, want %s", endpoint, got, want)
		}
	}
}

func TestManagedIdentityAnswers(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	exp := now.Add(time.Hour)
	jwt := func(claims string) string {
		return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".c2ln"
	}
	tests := []struct {
		name    string
		body    string
		wantExp time.Time
		wantErr string
	}{
		{"expires_on a string (IMDS, App Service 2019-08-01)", fmt.Sprintf(`{"access_token":"t","expires_on":"%d"}`, exp.Unix()), exp, ""},
		{"expires_on a number", fmt.Sprintf(`{"access_token":"t","expires_on":%d}`, exp.Unix()), exp, ""},
		{"expires_on App Service's date", `{"access_token":"t","expires_on":"` + exp.UTC().Format("01/02/2006 15:04:05 -07:00") + `"}`, exp, ""},
		{"expires_in only, a string", `{"access_token":"t","expires_in":"3600"}`, exp, ""},
		{"expires_in only, a number", `{"access_token":"t","expires_in":3600}`, exp, ""},
		{"neither: the token's exp", fmt.Sprintf(`{"access_token":%q}`, jwt(fmt.Sprintf(`{"exp":%d}`, exp.Unix()))), exp, ""},
		{"not JSON", `<html>bad gateway</html>`, time.Time{}, "answered 200 but not with a token: not valid JSON"},
		{"no access_token", `{"expires_on":"1900003600"}`, time.Time{}, "without an access_token"},
		{"no expiry", `{"access_token":"opaque"}`, time.Time{}, "without a usable expires_on or expires_in"},
		{"expired", `{"access_token":"t","expires_on":"1800000000"}`, time.Time{}, "with a token that expired at"},
	}
	m, err := NewManagedIdentity(ManagedIdentityConfig{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := m.parse([]byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if life := tc.wantExp.Sub(now); !tok.refreshAt.Equal(tc.wantExp.Add(-min(miRefreshBefore, life/2))) {
				t.Errorf("refresh at %s for a token expiring at %s", tok.refreshAt, tc.wantExp)
			}
		})
	}
}

func TestManagedIdentityOneFetchUnderConcurrency(t *testing.T) {
	s := newMISetup(t, localidp.ManagedIdentityOptions{Latency: 100 * time.Millisecond})
	m, err := NewManagedIdentity(ManagedIdentityConfig{Endpoint: s.mi.AppServiceURL(), Header: s.mi.Header()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	toks := make([]string, 20)
	errs := make([]error, 20)
	for i := range toks {
		wg.Go(func() { toks[i], errs[i] = m.Token(context.Background(), FederatedAudiencePublic) })
	}
	wg.Wait()
	for i := range toks {
		if errs[i] != nil || toks[i] != toks[0] {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
	}
	if n := s.mi.Requests(); n != 1 {
		t.Errorf("%d requests to the endpoint for 20 concurrent callers, want 1", n)
	}
}

func TestManagedIdentityRefresh(t *testing.T) {
	s := newMISetup(t, localidp.ManagedIdentityOptions{})
	start := time.Now()
	now := start
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = start.Add(d); mu.Unlock() }
	m, err := NewManagedIdentity(ManagedIdentityConfig{Endpoint: s.mi.AppServiceURL(), Header: s.mi.Header(), Now: clock, Retries: -1,
		Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	get := func() (string, error) { return m.Token(context.Background(), FederatedAudiencePublic) }
	first, err := get()
	if err != nil {
		t.Fatal(err)
	}
	// The endpoint's tokens live 24 hours: cached until 5 minutes before.
	advance(23*time.Hour + 54*time.Minute)
	if tok, err := get(); err != nil || tok != first || s.mi.Requests() != 1 {
		t.Fatalf("before the refresh time: %v, new token %t, %d requests", err, tok != first, s.mi.Requests())
	}
	// Past the refresh time the token is returned at once, and a failed
	// refresh keeps it while it is usable ...
	s.mi.SetFault(localidp.MIFaultHang, -1)
	advance(23*time.Hour + 57*time.Minute)
	begin := time.Now()
	if tok, err := get(); err != nil || tok != first || time.Since(begin) > 500*time.Millisecond {
		t.Fatalf("refresh time: %v after %s, new token %t", err, time.Since(begin), tok != first)
	}
	if !waitFor(func() bool { return s.mi.Requests() == 2 }) {
		t.Fatalf("%d requests: no refresh in the background", s.mi.Requests())
	}
	if tok, err := get(); err != nil || tok != first || s.mi.Requests() != 2 {
		t.Fatalf("refresh in progress: %v, new token %t, %d requests", err, tok != first, s.mi.Requests())
	}
	// ... and not in its last minute.
	s.mi.SetFault(localidp.MIFaultServerError, -1)
	advance(23*time.Hour + 59*time.Minute + 30*time.Second)
	if _, err := get(); Outcome(err) != "credential_error" {
		t.Fatalf("failed refresh of an expiring token: %v", err)
	}
	s.mi.SetFault("", 0)
	if tok, err := get(); err != nil || tok == first {
		t.Fatalf("refresh: %v, new token %t", err, tok != first)
	}
}

// waitFor reports whether cond holds within two seconds.
func waitFor(cond func() bool) bool {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

func TestManagedIdentityFailures(t *testing.T) {
	s := newMISetup(t, localidp.ManagedIdentityOptions{})
	closed := newMISetup(t, localidp.ManagedIdentityOptions{})
	closed.mi.Close()
	fast := ManagedIdentityConfig{RetryBaseDelay: time.Millisecond, RetryMaxDelay: time.Millisecond, Timeout: 2 * time.Second}
	with := func(f func(*ManagedIdentityConfig)) ManagedIdentityConfig {
		c := fast
		c.Endpoint, c.Header = s.mi.AppServiceURL(), s.mi.Header()
		f(&c)
		return c
	}
	tests := []struct {
		name      string
		cfg       ManagedIdentityConfig
		fault     string
		faults    int
		want      string
		wantCalls int64 // requests to s.mi
		ok        bool
	}{
		{name: "unreachable", cfg: with(func(c *ManagedIdentityConfig) { c.Endpoint = closed.mi.AppServiceURL() }),
			want: "the App Service endpoint " + closed.mi.AppServiceURL() + " could not be reached"},
		{name: "unknown user-assigned identity", cfg: with(func(c *ManagedIdentityConfig) { c.ClientID = "deadbeef-0000-4000-8000-000000000000" }),
			want: "answered 400: No User Assigned or Delegated Managed Identity found", wantCalls: 1},
		{name: "unknown identity, IMDS", cfg: with(func(c *ManagedIdentityConfig) {
			c.Endpoint, c.IMDSEndpoint, c.ClientID = "", s.mi.IMDSURL(), "deadbeef-0000-4000-8000-000000000000"
		}), want: "the IMDS endpoint " + s.mi.IMDSURL() + " answered 400: invalid_request: Identity not found", wantCalls: 1},
		{name: "wrong identity header", cfg: with(func(c *ManagedIdentityConfig) { c.Header = "wrong" }), want: "answered 401", wantCalls: 1},
		{name: "5xx, retried until the retries run out", cfg: with(func(*ManagedIdentityConfig) {}), fault: localidp.MIFaultServerError, faults: -1,
			want: fmt.Sprintf("answered 500: The managed identity service is temporarily unavailable. (after %d attempts)", DefaultRetries+1), wantCalls: DefaultRetries + 1},
		{name: "5xx once, then a token", cfg: with(func(*ManagedIdentityConfig) {}), fault: localidp.MIFaultServerError, faults: 1, wantCalls: 2, ok: true},
		{name: "malformed answer", cfg: with(func(*ManagedIdentityConfig) {}), fault: localidp.MIFaultMalformed, faults: -1,
			want: "answered 200 but not with a token: not valid JSON", wantCalls: 1},
		{name: "no answer within the deadline", cfg: with(func(c *ManagedIdentityConfig) { c.Timeout = 300 * time.Millisecond }), fault: localidp.MIFaultHang, faults: -1,
			want: "context deadline exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.mi.SetFault(tc.fault, tc.faults)
			defer s.mi.SetFault("", 0)
			m, err := NewManagedIdentity(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			before := s.mi.Requests()
			start := time.Now()
			tok, err := m.Token(context.Background(), FederatedAudiencePublic)
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("took %s", took)
			}
			if calls := s.mi.Requests() - before; tc.wantCalls != 0 && calls != tc.wantCalls {
				t.Errorf("%d requests to the endpoint, want %d", calls, tc.wantCalls)
			}
			if tc.ok {
				if err != nil || tok == "" {
					t.Fatalf("%v", err)
				}
				return
			}
			var ce *CredentialError
			if !errors.As(err, &ce) || Outcome(err) != "credential_error" || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a credential error with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), s.mi.Header()) {
				t.Error("the error shows the identity header")
			}
		})
	}
}

func TestManagedIdentityCallerDeadline(t *testing.T) {
	s := newMISetup(t, localidp.ManagedIdentityOptions{})
	s.mi.SetFault(localidp.MIFaultHang, -1)
	m, err := NewManagedIdentity(ManagedIdentityConfig{Endpoint: s.mi.AppServiceURL(), Header: s.mi.Header(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = m.Token(ctx, FederatedAudiencePublic)
	if Outcome(err) != "credential_error" || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("after %s: %v", time.Since(start), err)
	}
}
