package obo

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

func TestTenantTokenEndpoint(t *testing.T) {
	tests := []struct {
		endpoint, tenant, want, err string
	}{
		{"https://login.microsoftonline.com/common/oauth2/v2.0/token", "72f988bf-86f1-41af-91ab-2d7cd011db47", "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token", ""},
		{"https://login.microsoftonline.com/organizations/oauth2/v2.0/token", "contoso.onmicrosoft.com", "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token", ""},
		{"https://login.chinacloudapi.cn/Common/oauth2/v2.0/token", "t1", "https://login.chinacloudapi.cn/t1/oauth2/v2.0/token", ""},
		{"https://common.example/common/oauth2/v2.0/token", "t1", "https://common.example/t1/oauth2/v2.0/token", ""},
		{"http://127.0.0.1:5555/common/oauth2/v2.0/token?x=common", "t1", "http://127.0.0.1:5555/t1/oauth2/v2.0/token?x=common", ""},
		{"https://login.microsoftonline.com/fixed-tenant/oauth2/v2.0/token", "t1", "https://login.microsoftonline.com/fixed-tenant/oauth2/v2.0/token", ""},
		{"https://login.microsoftonline.com/common/oauth2/v2.0/token", "", "https://login.microsoftonline.com/common/oauth2/v2.0/token", ""},
		{"https://login.microsoftonline.com/common/oauth2/v2.0/token", "../evil", "", "not a tenant"},
		{"https://login.microsoftonline.com/common/oauth2/v2.0/token", "a/b", "", "not a tenant"},
		{"https://login.microsoftonline.com/common/oauth2/v2.0/token", "t?x=1", "", "not a tenant"},
		{"https://login.microsoftonline.com/common/oauth2/v2.0/token", "organizations", "", "not a tenant"},
	}
	for _, tc := range tests {
		t.Run(tc.endpoint+" "+tc.tenant, func(t *testing.T) {
			got, err := tenantTokenEndpoint(tc.endpoint, tc.tenant)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// jwtWithTenant returns an unsigned JWT-shaped token carrying tid.
func jwtWithTenant(tid string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(`{"tid":"`+tid+`","oid":"u"}`)) + ".sig"
}

func TestMultiTenantRequestsGoToTheUsersTenant(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	var auds []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		_, _ = w.Write([]byte(`{"expires_in":600,"access_token":"x"}`))
	}))
	defer srv.Close()
	cred := credentialFunc(func(_ context.Context, endpoint string, form url.Values) error {
		auds = append(auds, endpoint)
		form.Set("client_secret", "s")
		return nil
	})
	newClient := func(endpoint, home string) *Client {
		c, err := NewClient(Config{ClientID: "c", TokenEndpoint: endpoint, Credential: cred, DefaultTenant: home})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	multi := newClient(srv.URL+"/organizations/oauth2/v2.0/token", "home-tenant")
	single := newClient(srv.URL+"/home-tenant/oauth2/v2.0/token", "")
	tests := []struct {
		name   string
		c      *Client
		req    Request
		path   string
		errSub string
	}{
		{"tenant named by the request", multi, Request{Assertion: jwtWithTenant("t-from-token"), Tenant: "guest-1", Scopes: []string{"s/x"}}, "/guest-1/oauth2/v2.0/token", ""},
		{"tenant of token A", multi, Request{Assertion: jwtWithTenant("guest-2"), Scopes: []string{"s/x"}}, "/guest-2/oauth2/v2.0/token", ""},
		{"app-only token from the home tenant", multi, Request{Flow: FlowClientCredentials, Scopes: []string{"s/.default"}}, "/home-tenant/oauth2/v2.0/token", ""},
		{"hostile tid", multi, Request{Assertion: jwtWithTenant("x/../../y"), Scopes: []string{"s/x"}}, "", "not a tenant"},
		{"single-tenant endpoint ignores the tenant", single, Request{Assertion: jwtWithTenant("guest-2"), Tenant: "guest-2", Scopes: []string{"s/x"}}, "/home-tenant/oauth2/v2.0/token", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			paths, auds = nil, nil
			mu.Unlock()
			_, err := tc.c.Token(context.Background(), tc.req)
			if tc.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSub) || len(paths) != 0 {
					t.Fatalf("err = %v, paths %v", err, paths)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(paths) != 1 || paths[0] != tc.path || auds[0] != srv.URL+tc.path {
				t.Errorf("request to %v (credential for %v), want %s", paths, auds, tc.path)
			}
		})
	}
}

// credentialFunc adapts a function to Credential.
type credentialFunc func(ctx context.Context, endpoint string, form url.Values) error

func (f credentialFunc) Apply(ctx context.Context, endpoint string, form url.Values) error {
	return f(ctx, endpoint, form)
}

func TestPresentation(t *testing.T) {
	xml := `<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"><Issuer>i</Issuer></Assertion>`
	samlURL := base64.RawURLEncoding.EncodeToString([]byte(xml))
	std := base64.StdEncoding.EncodeToString([]byte(xml))
	tests := []struct {
		name, header, format, tokenType, token string
		wantHeader, wantValue, err             string
	}{
		{name: "bearer default", token: "eyJ.a.b", wantHeader: "Authorization", wantValue: "Bearer eyJ.a.b"},
		{name: "SAML default from Entra's base64url", tokenType: TokenTypeSAML2, token: samlURL, wantHeader: "Authorization", wantValue: "SAML " + std},
		{name: "SAML raw XML", tokenType: TokenTypeSAML2, token: xml, wantHeader: "Authorization", wantValue: "SAML " + std},
		{name: "SAML std base64 input", tokenType: TokenTypeSAML2, token: std, wantHeader: "Authorization", wantValue: "SAML " + std},
		{name: "custom header and format", header: "x-saml-assertion", format: "{base64url}", tokenType: TokenTypeSAML2, token: samlURL,
			wantHeader: "X-Saml-Assertion", wantValue: base64.RawURLEncoding.EncodeToString([]byte(xml))},
		{name: "token as issued", format: "SAML2 {token}", tokenType: TokenTypeSAML2, token: samlURL, wantHeader: "Authorization", wantValue: "SAML2 " + samlURL},
		{name: "base64 of a non-SAML token", format: "Basic {base64}", token: "abc", wantHeader: "Authorization", wantValue: "Basic " + base64.StdEncoding.EncodeToString([]byte("abc"))},
		{name: "no placeholder", format: "Bearer", err: "exactly one"},
		{name: "two placeholders", format: "{token} {token}", err: "exactly one"},
		{name: "unknown placeholder", format: "Bearer {jwt}", err: "unknown placeholder {jwt}"},
		{name: "unclosed", format: "Bearer {token", err: "unclosed"},
		{name: "header injection", format: "Bearer {token}\r\nX-Evil: 1", err: "printable ASCII"},
		{name: "hop-by-hop header", header: "Connection", err: "hop-by-hop"},
		{name: "forwarding header", header: "x-forwarded-for", err: "set by the gateway"},
		{name: "invalid header name", header: "X Token", err: "not a valid HTTP header name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPresentation(tc.header, tc.format, tc.tokenType)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Header != tc.wantHeader || p.Value(tc.token) != tc.wantValue {
				t.Errorf("%s: %s, want %s: %s", p.Header, p.Value(tc.token), tc.wantHeader, tc.wantValue)
			}
		})
	}
	if b, ok := samlAssertion(samlURL); !ok || string(b) != xml {
		t.Errorf("samlAssertion = %q, %v", b, ok)
	}
	if _, ok := samlAssertion("eyJ.a.b"); ok {
		t.Error("a JWT taken for a SAML assertion")
	}
}

func TestDiscoverIssuer(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/t/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"issuer":"https://sts.windows.net/t/","jwks_uri":"https://k","token_endpoint":"https://t"}`))
	})
	mux.HandleFunc("/down/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if V1Authority(srv.URL+"/t/v2.0") != srv.URL+"/t" || V1Authority(srv.URL+"/t/v2.0/") != srv.URL+"/t" || V1Authority(srv.URL+"/realms/x") != "" {
		t.Error("V1Authority")
	}
	tests := []struct {
		base, issuer string
		found, err   bool
	}{
		{srv.URL + "/t", "https://sts.windows.net/t/", true, false},
		{srv.URL + "/none", "", false, false},
		{srv.URL + "/down", "", false, true},
	}
	for _, tc := range tests {
		iss, found, err := DiscoverIssuer(context.Background(), srv.Client(), tc.base)
		if iss != tc.issuer || found != tc.found || (err != nil) != tc.err {
			t.Errorf("%s: %q %v %v", tc.base, iss, found, err)
		}
	}
}
