package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/inbound"
)

func TestAuthorize(t *testing.T) {
	h := &Handler{requiredScopes: []string{"access_as_user"}, requiredScope: "access_as_user"}
	obo, app := &route{flow: FlowOnBehalfOf}, &route{flow: FlowClientCredentials}
	delegated := &inbound.Claims{Scopes: []string{"access_as_user", "other"}}
	for _, tc := range []struct {
		name   string
		rt     *route
		claims *inbound.Claims
		reason string // "" for accepted
	}{
		{"delegated", obo, delegated, ""},
		{"delegated on a client credentials route", app, delegated, ""},
		{"missing scope", obo, &inbound.Claims{Scopes: []string{"other"}}, inbound.ReasonScope},
		{"missing scope on a client credentials route", app, &inbound.Claims{Scopes: []string{"other"}}, inbound.ReasonScope},
		{"app-only on an on-behalf-of route", obo, &inbound.Claims{Roles: []string{"Jobs.Run"}}, inbound.ReasonAppOnly},
		{"app-only with a role", app, &inbound.Claims{Roles: []string{"Jobs.Run"}}, ""},
		{"neither scopes nor roles", app, &inbound.Claims{}, inbound.ReasonAppOnly},
	} {
		err := h.authorize(tc.rt, tc.claims)
		if tc.reason == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", tc.name, err)
			}
			continue
		}
		re, ok := err.(*inbound.RejectError)
		if !ok || re.Reason != tc.reason || re.Status() != http.StatusForbidden || re.Scope != "access_as_user" {
			t.Errorf("%s: err = %#v, want a 403 refusal %s naming the required scope", tc.name, err, tc.reason)
		}
	}
	if err := (&Handler{}).authorize(obo, &inbound.Claims{Scopes: []string{"other"}}); err != nil {
		t.Errorf("no required scopes: refused %v", err)
	}
}

// TestHandlerRefusesNonB64Token: a credential outside RFC 6750's b64token
// syntax is answered 401 invalid_token naming the syntax, with the
// verified-token cache warm (inbound's TestValidateRefusesNonB64Token checks
// Validate itself).
func TestHandlerRefusesNonB64Token(t *testing.T) {
	h, good := testHandler(t, true, nil, LogNone)
	bad := []string{
		good + " x",
		`"` + good + `"`,
		good + ",Bearer " + good,
		strings.Replace(good, ".", "=.", 1),
		good + "!",
	}
	serveOK(t, h, "/api/x", good)
	for _, tok := range bad {
		req := httptest.NewRequest(http.MethodGet, "/api/x", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) ||
			!strings.Contains(rec.Body.String(), "b64token") {
			t.Errorf("Bearer %.12q...: status %d, WWW-Authenticate %q, body %s; want 401 invalid_token naming the b64token syntax",
				tok, rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
		}
	}
}
