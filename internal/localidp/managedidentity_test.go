package localidp

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"
)

const (
	miClient = "ca11ab1e-0000-4000-8000-0000000000ca"
	miObject = "0b0b0b0b-0000-4000-8000-0000000000b0"
)

func newMIEndpoint(t *testing.T, s *Server) *ManagedIdentityEndpoint {
	t.Helper()
	m, err := s.StartManagedIdentityEndpoint(ManagedIdentityOptions{
		UserAssigned: []ManagedIdentity{{ClientID: miClient, ObjectID: miObject}},
		Header:       "the-header",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// miGet sends a GET with the query and headers and decodes the JSON answer.
func miGet(t *testing.T, u string, query url.Values, header map[string]string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u+"?"+query.Encode(), nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	return readAnswer(t, res, err)
}

func TestManagedIdentityEndpointShapes(t *testing.T) {
	s := newTestServer(t)
	m := newMIEndpoint(t, s)
	q := func(version, clientID string) url.Values {
		v := url.Values{"api-version": {version}, "resource": {DefaultFederatedAudience}}
		if clientID != "" {
			v.Set("client_id", clientID)
		}
		return v
	}
	appService := map[string]string{"X-IDENTITY-HEADER": "the-header"}
	imds := map[string]string{"Metadata": "true"}
	tests := []struct {
		name   string
		url    string
		query  url.Values
		header map[string]string
		status int
		// field is a field of the answer that must be present: the error
		// text of a refusal ("message" or "error_description").
		field, want string
	}{
		{"App Service token", m.AppServiceURL(), q("2019-08-01", miClient), appService, 200, "client_id", miClient},
		{"App Service without the header", m.AppServiceURL(), q("2019-08-01", miClient), nil, 401, "message", "The X-IDENTITY-HEADER is missing or does not match."},
		{"App Service, old API version", m.AppServiceURL(), q("2017-09-01", miClient), appService, 400, "message", `Invalid or unsupported api-version "2017-09-01"`},
		{"App Service, no system-assigned identity", m.AppServiceURL(), q("2019-08-01", ""), appService, 400, "message",
			"No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId."},
		{"IMDS token", m.IMDSURL(), q("2018-02-01", miClient), imds, 200, "client_id", miClient},
		{"IMDS without Metadata", m.IMDSURL(), q("2018-02-01", miClient), nil, 400, "error_description", "Required metadata header not specified"},
		{"IMDS, unknown identity", m.IMDSURL(), q("2018-02-01", "deadbeef-0000-4000-8000-000000000000"), imds, 400, "error_description", "Identity not found"},
		{"IMDS without resource", m.IMDSURL(), url.Values{"api-version": {"2018-02-01"}}, imds, 400, "error_description", "Required query variable 'resource' is missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := miGet(t, tc.url, tc.query, tc.header)
			if a.status != tc.status || a.str(tc.field) != tc.want {
				t.Fatalf("%d %v, want %d with %s %q", a.status, a.body, tc.status, tc.field, tc.want)
			}
			if a.status != 200 {
				return
			}
			exp, err := strconv.ParseInt(a.str("expires_on"), 10, 64)
			if err != nil || time.Until(time.Unix(exp, 0)) < 23*time.Hour {
				t.Errorf("expires_on %q", a.str("expires_on"))
			}
			if _, err := strconv.Atoi(a.str("expires_in")); (tc.url == m.IMDSURL()) != (err == nil) {
				t.Errorf("expires_in %v (IMDS sends it as a string, App Service not at all)", a.body["expires_in"])
			}
			claims, ok := PeekClaims(a.str("access_token"))
			if !ok || claims["iss"] != s.Issuer() || claims["sub"] != miObject || claims["aud"] != DefaultFederatedAudience {
				t.Errorf("token claims %v", claims)
			}
		})
	}
	if n := m.Requests(); n != int64(len(tests)) {
		t.Errorf("Requests() = %d, want %d", n, len(tests))
	}
}

func TestManagedIdentityTokenAsFederatedAssertion(t *testing.T) {
	s := newTestServer(t, func(o *Options) {
		o.Clients[0].FederatedCredentials = []FederatedCredential{{TenantIssuer: true, Subject: miObject}}
	})
	m, err := s.StartManagedIdentityEndpoint(ManagedIdentityOptions{
		SystemAssigned: ManagedIdentity{ClientID: "5e5e5e5e-0000-4000-8000-00000000005e", ObjectID: "0c0c0c0c-0000-4000-8000-0000000000c0"},
		UserAssigned:   []ManagedIdentity{{ClientID: miClient, ObjectID: miObject}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	token := func(clientID, resource string) string {
		v := url.Values{"api-version": {"2018-02-01"}, "resource": {resource}}
		if clientID != "" {
			v.Set("client_id", clientID)
		}
		return miGet(t, m.IMDSURL(), v, map[string]string{"Metadata": "true"}).str("access_token")
	}
	user := userToken(t, s, UserToken{Audience: apiAURI})
	tests := []struct {
		name      string
		assertion string
		status    int
		code      int
	}{
		{"the trusted identity", token(miClient, DefaultFederatedAudience), 200, 0},
		{"another identity of the tenant", token("", DefaultFederatedAudience), 401, 700213},
		{"a token for another resource", token(miClient, "https://management.azure.com"), 401, 700212},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkFederatedAssertion(t, s, tc.assertion, user, tc.status, tc.code, "federated "+s.Issuer()+" "+miObject)
		})
	}
}
