package obo_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/obo-gateway/obo-gateway/obo"
)

// newAuthority is a stand-in token endpoint: it answers an On-Behalf-Of
// request for user-token with token B, and any other with the interaction
// the user owes.
func newAuthority() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if r.PostForm.Get("requested_token_use") == "on_behalf_of" && r.PostForm.Get("assertion") == "user-token" {
			fmt.Fprint(w, `{"token_type":"Bearer","scope":"User.Read","expires_in":3600,"access_token":"token-b"}`)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"interaction_required","error_description":"AADSTS50079: the user must enroll in MFA.",`+
			`"error_codes":[50079],"suberror":"basic_action","claims":"{\"access_token\":{\"capolids\":{\"essential\":true}}}"}`)
	}))
}

// newClient is API A's client of authority, authenticated by a secret.
func newClient(authority *httptest.Server) *obo.Client {
	c, err := obo.NewClient(obo.Config{
		ClientID:      "api-a-client-id",
		TokenEndpoint: authority.URL + "/tenant/oauth2/v2.0/token",
		Credential:    obo.ClientSecret("api-a-secret"),
	})
	if err != nil {
		panic(err)
	}
	return c
}

// The gateway's exchange: token A (the caller's token for API A) for token B,
// a token for Microsoft Graph on behalf of the same user.
func ExampleClient_OnBehalfOf() {
	authority := newAuthority()
	defer authority.Close()
	c := newClient(authority)
	tok, err := c.OnBehalfOf(context.Background(), "user-token", []string{"https://graph.microsoft.com/User.Read"})
	if err != nil {
		panic(err)
	}
	fmt.Println(tok.TokenType, tok.AccessToken, tok.ExpiresAt.Sub(tok.IssuedAt))
	// Output: Bearer token-b 1h0m0s
}

// A refusal that asks for the user's interaction keeps the authority's
// claims challenge, for the client to act on.
func ExampleError_InteractionRequired() {
	authority := newAuthority()
	defer authority.Close()
	c := newClient(authority)
	_, err := c.OnBehalfOf(context.Background(), "mfa-pending-user-token", []string{"https://graph.microsoft.com/User.Read"})
	var ae *obo.Error
	if errors.As(err, &ae) && ae.InteractionRequired() {
		fmt.Println(ae.Code, ae.SubError, ae.Claims)
	}
	// Output: interaction_required basic_action {"access_token":{"capolids":{"essential":true}}}
}
