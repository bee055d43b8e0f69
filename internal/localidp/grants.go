package localidp

import (
	"net/http"
	"strings"
	"time"
)

// onBehalfOf runs the On-Behalf-Of grant for an authenticated client.
func (s *Server) onBehalfOf(tr *tokenRequest) tokenOutcome {
	client, form := tr.client, tr.form
	out := tokenOutcome{clientID: client.ID}
	requestedType := form.Get("requested_token_type")
	assertion := form.Get("assertion")
	rawScope := form.Get("scope")
	switch use := form.Get("requested_token_use"); {
	case assertion == "":
		out.err = missingParameter("assertion")
	case use == "":
		out.err = missingParameter("requested_token_use")
	case use != "on_behalf_of":
		out.err = badRequest("invalid_request", 9002313,
			"Invalid request. Request is malformed or invalid. [Reason - requested_token_use must be 'on_behalf_of', not '%s'.]", use)
	case requestedType != "" && requestedType != tokenTypeAccessToken && requestedType != TokenTypeSAML2:
		out.err = badRequest("invalid_request", 9002313,
			"Invalid request. Request is malformed or invalid. [Reason - requested_token_type '%s' is not supported by this local identity provider.]",
			requestedType)
	case strings.TrimSpace(rawScope) == "":
		out.err = missingParameter("scope")
	}
	if out.err != nil {
		return out
	}

	user, err := s.validateAssertion(assertion, client, tr.tenant)
	if err != nil {
		out.err = err
		return out
	}
	out.oid, _ = user["oid"].(string)
	scopes, err := parseScopes(rawScope)
	if err != nil {
		out.err = err
		return out
	}
	if out.err = behaviorError(s.behaviorFor(tr.leg, out.oid), client, scopes.resource); out.err != nil {
		return out
	}
	if requestedType == TokenTypeSAML2 {
		out.resp, out.err = s.issueSAML(tr, user, scopes)
		return out
	}

	tid := tr.tenant
	claims, exp := s.tokenClaims(tr, scopes.resource)
	claims["azpacr"] = "1"
	claims["oid"] = out.oid
	claims["sub"] = user["sub"]
	claims["scp"] = scopes.scp()
	if tr.agent != nil {
		claims["xms_par_app_azp"] = tr.agent.Blueprint
	}
	for _, name := range []string{"name", "preferred_username", "upn"} {
		if v, ok := user[name].(string); ok {
			claims[name] = v
		}
	}
	out.resp, out.err = s.issue(tr, out.oid, scopes.requested, claims, exp)
	if out.resp != nil && form.Get("client_info") == "1" {
		out.resp.ClientInfo = clientInfo(out.oid, tid)
	}
	return out
}

// clientCredentials runs the client credentials grant for an authenticated
// client.
func (s *Server) clientCredentials(tr *tokenRequest) tokenOutcome {
	client, form := tr.client, tr.form
	out := tokenOutcome{clientID: client.ID}
	rawScope := form.Get("scope")
	fields := strings.Fields(rawScope)
	if len(fields) == 0 {
		out.err = missingParameter("scope")
		return out
	}
	// MSAL adds the OpenID Connect scopes to every request; like Entra,
	// accept and ignore them next to the one <resource>/.default scope.
	resourceScopes := 0
	for _, f := range fields {
		if !oidcScopes[f] {
			resourceScopes++
		}
	}
	scopes, err := parseScopes(rawScope)
	if err != nil || resourceScopes != 1 || !scopes.isDefault {
		out.err = badRequest("invalid_scope", 1002012,
			"The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
			rawScope)
		return out
	}
	out.oid = s.servicePrincipalIDIn(tr.tenant, client)
	if out.err = behaviorError(s.behaviorFor(tr.leg, ""), client, scopes.resource); out.err != nil {
		return out
	}
	claims, exp := s.tokenClaims(tr, scopes.resource)
	claims["azpacr"] = "1"
	claims["idtyp"] = "app"
	claims["oid"] = out.oid
	claims["sub"] = out.oid
	claims["roles"] = []string{"Default.Access"}
	var legClaims map[string]any
	switch {
	case tr.leg == LegBlueprint:
		legClaims, out.err = s.blueprintToken(tr, scopes)
	case tr.agent != nil && tr.leg == LegAgentExchange:
		legClaims = s.agentExchangeClaims(tr)
	case tr.agent != nil:
		legClaims = map[string]any{"xms_par_app_azp": tr.agent.Blueprint}
	}
	if out.err != nil {
		return out
	}
	for k, v := range legClaims {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	out.resp, out.err = s.issue(tr, out.oid, scopes.requested, claims, exp)
	return out
}

// tokenClaims returns the claims of every access token the token endpoint
// issues for resource to tr's client in tr's tenant, from now until the
// returned expiry.
func (s *Server) tokenClaims(tr *tokenRequest, resource string) (map[string]any, time.Time) {
	now := time.Now()
	exp := now.Add(s.tokenLifetime)
	return map[string]any{
		"iss": s.IssuerFor(tr.tenant),
		"aud": resource,
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": exp.Unix(),
		"azp": tr.client.ID,
		"tid": tr.tenant,
		"uti": randomUTI(),
		"ver": "2.0",
		"rh":  "0.localidp.",
	}, exp
}

// servicePrincipalID returns the stable object ID of a client's service
// principal in the home tenant, the oid and sub of its app-only tokens.
func (s *Server) servicePrincipalID(client Client) string {
	return s.servicePrincipalIDIn(s.tenant, client)
}

// servicePrincipalIDIn returns the object ID of a client's service
// principal in tenant.
func (s *Server) servicePrincipalIDIn(tenant string, client Client) string {
	return stableGUID("service-principal", tenant, client.ID)
}

// issue signs claims, records the token and builds the answer.
func (s *Server) issue(tr *tokenRequest, oid string, requested []string, claims map[string]any, exp time.Time) (*tokenResponse, *oauthError) {
	token, err := s.SignClaims(claims)
	if err != nil {
		s.logger.Error("localidp: sign token", "error", err)
		return nil, &oauthError{status: http.StatusInternalServerError, code: "server_error", aadsts: 90033, message: "A transient error has occurred. Please try again."}
	}
	return s.record(tr, oid, requested, token, tokenTypeAccessToken, exp), nil
}

// record remembers an issued token and builds the answer.
func (s *Server) record(tr *tokenRequest, oid string, requested []string, token, tokenType string, exp time.Time) *tokenResponse {
	scope := strings.Join(requested, " ")
	var refresh string
	if s.refreshTokens {
		refresh = "rt." + randomUTI() + randomUTI()
	}
	s.recordMu.Lock()
	s.issued = append(s.issued, IssuedToken{
		Grant: tr.grant, ObjectID: oid, ClientID: tr.client.ID, Scope: scope, Token: token, ExpiresAt: time.Unix(exp.Unix(), 0),
		TenantID: tr.tenant, TokenType: tokenType, ClientAuth: tr.auth, Audience: tr.form.Get("audience"),
		RefreshToken: refresh,
	})
	s.recordMu.Unlock()
	lifetime := int64(s.tokenLifetime / time.Second)
	resp := &tokenResponse{
		TokenType:    "Bearer",
		Scope:        scope,
		ExpiresIn:    lifetime,
		ExtExpiresIn: lifetime,
		AccessToken:  token,
		RefreshToken: refresh,
	}
	if s.refreshIn > 0 {
		resp.RefreshIn = ceilSeconds(s.refreshIn)
	}
	if tokenType != tokenTypeAccessToken || tr.grant == GrantTokenExchange {
		resp.IssuedTokenType = tokenType
	}
	return resp
}
