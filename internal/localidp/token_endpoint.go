package localidp

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	clientAssertionTypeJWT = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	tokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
	// TokenTypeJWT is the RFC 8693 type of a JWT.
	TokenTypeJWT = "urn:ietf:params:oauth:token-type:jwt"
	// TokenTypeSAML2 is the requested_token_type that asks for a SAML 2.0
	// assertion instead of an access token.
	TokenTypeSAML2 = "urn:ietf:params:oauth:token-type:saml2"
)

// oidcScopes are the OpenID Connect scopes MSAL adds to every request. They
// name no resource and are accepted and ignored next to resource scopes.
var oidcScopes = map[string]bool{"openid": true, "profile": true, "email": true, "offline_access": true}

// tokenResponse is the JSON body of a successful token answer.
type tokenResponse struct {
	TokenType       string `json:"token_type"`
	Scope           string `json:"scope"`
	ExpiresIn       int64  `json:"expires_in"`
	ExtExpiresIn    int64  `json:"ext_expires_in"`
	RefreshIn       int64  `json:"refresh_in,omitempty"`
	AccessToken     string `json:"access_token"`
	RefreshToken    string `json:"refresh_token,omitempty"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	ClientInfo      string `json:"client_info,omitempty"`
}

// tokenOutcome carries what a grant handler produced, for the answer and the
// log line.
type tokenOutcome struct {
	clientID string
	oid      string
	resp     *tokenResponse
	err      *oauthError
}

// tokenRequest is one token request being served.
type tokenRequest struct {
	r        *http.Request
	form     url.Values
	grant    string
	tenant   string // the tenant of the URL, a hosted one
	endpoint string // the URL the request was sent to, the aud of client assertions
	client   Client
	auth     string         // how the client authenticated, for IssuedToken.ClientAuth
	leg      AgentLeg       // the agent leg, or ""
	agent    *AgentIdentity // the agent identity that is the client, or nil
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.writeError(w, r, &oauthError{
			status: http.StatusMethodNotAllowed, code: "invalid_request", aadsts: 900561,
			message: fmt.Sprintf("The endpoint only accepts POST requests. Received a %s request.", r.Method),
		})
		return
	}
	s.tokenRequests.Add(1)
	defer s.trackInFlight()()
	form, formErr := readTokenForm(w, r)
	grant := form.Get("grant_type")
	leg := s.legOf(form)
	s.recordRequest(form, grant, leg)

	if !s.wait(r.Context()) {
		return
	}

	tenant := r.PathValue("tenant")
	var out tokenOutcome
	switch {
	case isMultiTenant(tenant):
		out.err = badRequest("invalid_request", 90133,
			"The tenant-independent endpoint '%s' cannot be used for this request: send it to the token endpoint of the tenant, %s.",
			tenant, s.TokenEndpointFor("<tenant>"))
	case !s.tenants[strings.ToLower(tenant)]:
		out.err = badRequest("invalid_tenant", 90002,
			"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant)
	case formErr != nil:
		out.err = formErr
	case grant == "":
		out.err = missingParameter("grant_type")
	case grant != GrantOnBehalfOf && grant != GrantClientCredentials && grant != GrantTokenExchange && grant != GrantUserFIC:
		out.err = badRequest("unsupported_grant_type", 70003, "The app requested an unsupported grant type '%s'.", grant)
	default:
		out = s.grant(&tokenRequest{r: r, form: form, grant: grant, tenant: tenant, endpoint: s.baseURL + r.URL.Path, leg: leg})
	}

	attrs := []any{"grant", grant, "client_id", out.clientID, "oid", out.oid}
	if out.err != nil {
		s.logger.Debug("localidp: token request refused",
			append(attrs, "status", out.err.status, "error", out.err.code, "aadsts", out.err.aadsts)...)
		s.writeError(w, r, out.err)
		return
	}
	s.logger.Debug("localidp: token issued", attrs...)
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, out.resp)
}

// readTokenForm reads the form-encoded body of a token request. The returned
// values are never nil.
func readTokenForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType != "application/x-www-form-urlencoded" {
		return url.Values{}, badRequest("invalid_request", 900144,
			"The request body must contain the following parameter: 'grant_type'. [Reason - the body is not application/x-www-form-urlencoded.]")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return url.Values{}, badRequest("invalid_request", 9002313, "Invalid request. Request is malformed or invalid.")
	}
	return r.PostForm, nil
}

// recordRequest updates the request counters and remembers the form.
func (s *Server) recordRequest(form url.Values, grant string, leg AgentLeg) {
	var oid string
	switch grant {
	case GrantOnBehalfOf:
		s.onBehalfOfRequests.Add(1)
		if claims, ok := peekClaims(form.Get("assertion")); ok {
			oid, _ = claims["oid"].(string)
		}
	case GrantClientCredentials:
		s.clientCredentialsRequests.Add(1)
	case GrantTokenExchange:
		s.tokenExchangeRequests.Add(1)
		if claims, ok := peekClaims(form.Get("subject_token")); ok {
			oid, _ = claims["oid"].(string)
		}
	}
	s.recordMu.Lock()
	defer s.recordMu.Unlock()
	s.lastForm = cloneValues(form)
	s.forms = append(s.forms, cloneValues(form))
	if leg != "" {
		s.legRequests[leg]++
	}
	if oid != "" {
		s.oboRequestsBy[oid]++
	}
}

// wait applies SetHang and SetLatency. It reports false when the request
// must not be answered (the client gave up or the server is closing).
func (s *Server) wait(ctx context.Context) bool {
	if s.hang.Load() {
		select {
		case <-ctx.Done():
		case <-s.done:
		}
		return false
	}
	d := time.Duration(s.latency.Load())
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

// grant authenticates the client and runs the grant.
func (s *Server) grant(tr *tokenRequest) tokenOutcome {
	cred, err := readClientCredential(tr.r, tr.form)
	if err != nil {
		return tokenOutcome{err: err}
	}
	var client Client
	var auth string
	if agent, ok := s.agents[cred.clientID]; ok {
		tr.agent = &agent
		client, auth, err = s.authenticateAgent(agent, cred, tr.tenant)
	} else {
		client, auth, err = s.authenticateClient(cred, tr.endpoint)
	}
	if err != nil {
		return tokenOutcome{clientID: cred.clientID, err: err}
	}
	tr.client, tr.auth = client, auth
	switch tr.grant {
	case GrantOnBehalfOf:
		return s.onBehalfOf(tr)
	case GrantTokenExchange:
		return s.tokenExchange(tr)
	case GrantUserFIC:
		return s.userFIC(tr)
	}
	return s.clientCredentials(tr)
}

// clientCredential is the credential a client presented, in whatever form.
type clientCredential struct {
	clientID      string
	secret        string
	hasSecret     bool
	assertionType string
	assertion     string
}

// readClientCredential extracts the client ID and credential from the form
// (client_id, client_secret, client_assertion_type, client_assertion) or
// from HTTP Basic authentication (RFC 6749 section 2.3.1).
func readClientCredential(r *http.Request, form url.Values) (clientCredential, *oauthError) {
	cred := clientCredential{
		clientID:      form.Get("client_id"),
		secret:        form.Get("client_secret"),
		hasSecret:     form.Has("client_secret"),
		assertionType: form.Get("client_assertion_type"),
		assertion:     form.Get("client_assertion"),
	}
	if user, pass, ok := r.BasicAuth(); ok {
		id, err1 := url.QueryUnescape(user)
		secret, err2 := url.QueryUnescape(pass)
		switch {
		case err1 != nil || err2 != nil:
			return cred, badRequest("invalid_request", 9002313, "Invalid request. Request is malformed or invalid. [Reason - malformed HTTP Basic credentials.]")
		case cred.hasSecret || cred.assertion != "":
			return cred, badRequest("invalid_request", 9002313, "Invalid request. Request is malformed or invalid. [Reason - more than one client authentication method was used.]")
		case cred.clientID != "" && cred.clientID != id:
			return cred, badRequest("invalid_request", 9002313, "Invalid request. Request is malformed or invalid. [Reason - client_id does not match the HTTP Basic user name.]")
		}
		cred.clientID, cred.secret, cred.hasSecret = id, secret, true
	}
	if cred.clientID == "" {
		return cred, missingParameter("client_id")
	}
	if cred.hasSecret && (cred.assertion != "" || cred.assertionType != "") {
		return cred, badRequest("invalid_request", 9002313, "Invalid request. Request is malformed or invalid. [Reason - more than one client authentication method was used.]")
	}
	return cred, nil
}

// authenticateClient checks a presented credential against the registered
// clients and says how the client authenticated ("client_secret",
// "certificate <x5t#S256>" or "federated <issuer> <subject>"). It is the
// single place client authentication is decided. endpoint is the token
// endpoint the request was sent to, the required aud of a client
// assertion.
func (s *Server) authenticateClient(cred clientCredential, endpoint string) (Client, string, *oauthError) {
	client, ok := s.clients[cred.clientID]
	if !ok {
		return Client{}, "", invalidClient(700016,
			"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
			cred.clientID, s.tenant)
	}
	switch {
	case cred.assertion != "" || cred.assertionType != "":
		auth, err := s.verifyClientAssertion(client, cred, endpoint)
		return client, auth, err
	case cred.hasSecret:
		if client.Secret == "" || subtle.ConstantTimeCompare([]byte(cred.secret), []byte(client.Secret)) != 1 {
			return client, "", invalidClient(7000215,
				"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.",
				client.ID)
		}
		return client, "client_secret", nil
	default:
		return client, "", invalidClient(7000218,
			"The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	}
}

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

// validateAssertion checks token A presented by client in an On-Behalf-Of
// or token exchange request sent to tenant's token endpoint and returns its
// claims. v1 tokens (iss V1IssuerFor) are accepted like v2 tokens; the
// token's tenant must be the tenant of the endpoint.
func (s *Server) validateAssertion(assertion string, client Client, tenant string) (map[string]any, *oauthError) {
	claims, err := s.verifySignature(assertion)
	switch {
	case errors.Is(err, errMalformed):
		return nil, badRequest("invalid_grant", 50027, "JWT token is invalid or malformed. [Reason - %s.]", strings.TrimPrefix(err.Error(), errMalformed.Error()+": "))
	case err != nil:
		return nil, invalidGrant("Assertion failed signature validation. [Reason - %s.]", err)
	}

	if iss, _ := claims["iss"].(string); iss != s.IssuerFor(tenant) && iss != s.V1IssuerFor(tenant) {
		return nil, invalidGrant("Assertion is not valid: the issuer '%s' is not an issuer of tenant '%s' ('%s' or '%s'). A token of another tenant must be sent to the token endpoint of its own tenant.",
			iss, tenant, s.IssuerFor(tenant), s.V1IssuerFor(tenant))
	}
	if tid, _ := claims["tid"].(string); tid != "" && !strings.EqualFold(tid, tenant) {
		return nil, invalidGrant("Assertion is not valid: its tenant '%s' is not the tenant of this endpoint, '%s'.", tid, tenant)
	}

	now := time.Now()
	exp, ok := numericDate(claims["exp"])
	if !ok {
		return nil, badRequest("invalid_grant", 50027, "JWT token is invalid or malformed. [Reason - the exp claim is missing or not a number.]")
	}
	if now.After(exp.Add(s.clockSkew)) {
		return nil, badRequest("invalid_grant", 500133,
			"Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token. Current time: %s, expiry time of assertion %s.",
			now.UTC().Format(time.RFC3339), exp.UTC().Format(time.RFC3339))
	}
	if raw, present := claims["nbf"]; present {
		nbf, ok := numericDate(raw)
		if !ok {
			return nil, badRequest("invalid_grant", 50027, "JWT token is invalid or malformed. [Reason - the nbf claim is not a number.]")
		}
		if now.Add(s.clockSkew).Before(nbf) {
			return nil, badRequest("invalid_grant", 500133,
				"Assertion is not within its valid time range. Current time: %s, assertion not valid before %s.",
				now.UTC().Format(time.RFC3339), nbf.UTC().Format(time.RFC3339))
		}
	}

	if !audienceMatches(claims["aud"], client) {
		expected := client.ID
		if client.IdentifierURI != "" {
			expected += "' or '" + client.IdentifierURI
		}
		return nil, invalidGrant("Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was '%v' and the expected audience is '%s' or one of the Application Id URIs of this web API.",
			claims["aud"], expected)
	}

	scp, _ := claims["scp"].(string)
	if idtyp, _ := claims["idtyp"].(string); idtyp == "app" || strings.TrimSpace(scp) == "" {
		return nil, invalidGrant("Assertion is not a delegated user token: it has no scp claim. The On-Behalf-Of flow requires a token issued to a user, not to an application.")
	}
	if oid, _ := claims["oid"].(string); oid == "" {
		return nil, invalidGrant("Assertion contains no oid claim.")
	}
	return claims, nil
}

// audienceMatches reports whether the aud claim (a string or an array of
// strings) names the client.
func audienceMatches(aud any, client Client) bool {
	match := func(v any) bool {
		s, _ := v.(string)
		return s != "" && (s == client.ID || (client.IdentifierURI != "" && s == client.IdentifierURI))
	}
	if list, ok := aud.([]any); ok {
		for _, v := range list {
			if match(v) {
				return true
			}
		}
		return false
	}
	return match(aud)
}

// numericDate converts a NumericDate claim value decoded with UseNumber.
func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}

// scopeSet is a parsed, valid scope parameter.
type scopeSet struct {
	resource    string   // the resource every scope names
	permissions []string // the permission names, without the resource
	requested   []string // every requested scope, as sent
	isDefault   bool     // the request is for <resource>/.default
}

// scp returns the scp claim of a token for the scopes. A .default request
// yields "default": the local identity provider has no consent records to
// expand it from.
func (ss scopeSet) scp() string {
	if ss.isDefault {
		return "default"
	}
	return strings.Join(ss.permissions, " ")
}

// parseScopes validates a space-separated scope parameter: every scope is
// <resource>/<permission> (OpenID Connect scopes are ignored), all name the
// same resource, and .default stands alone.
func parseScopes(raw string) (scopeSet, *oauthError) {
	var ss scopeSet
	ss.requested = strings.Fields(raw)
	for _, scope := range ss.requested {
		if oidcScopes[scope] {
			continue
		}
		i := strings.LastIndex(scope, "/")
		if i <= 0 || i == len(scope)-1 || strings.HasSuffix(scope[:i], "/") || strings.HasSuffix(scope[:i], ":") {
			return ss, badRequest("invalid_scope", 70011,
				"The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", raw)
		}
		resource, permission := scope[:i], scope[i+1:]
		if ss.resource != "" && ss.resource != resource {
			return ss, badRequest("invalid_scope", 28000,
				"Provided value for the input parameter scope is not valid because it contains more than one resource. Scope %s is not valid.", raw)
		}
		ss.resource = resource
		if permission == ".default" {
			ss.isDefault = true
		}
		ss.permissions = append(ss.permissions, permission)
	}
	switch {
	case ss.resource == "":
		return ss, badRequest("invalid_scope", 70011,
			"The provided value for the input parameter 'scope' is not valid. The scope %s does not name a resource.", raw)
	case ss.isDefault && len(ss.permissions) > 1:
		return ss, badRequest("invalid_scope", 70011,
			"The provided value for the input parameter 'scope' is not valid. The scope %s is not valid: .default scope can't be combined with resource-specific scopes.", raw)
	}
	return ss, nil
}

// behaviorError returns the answer a programmed behaviour demands, or nil to
// issue the token.
func behaviorError(b Behavior, client Client, resource string) *oauthError {
	switch b.Kind {
	case BehaviorMFA:
		claims := b.Claims
		if claims == "" {
			claims = DefaultMFAClaims
		}
		e := badRequest("invalid_grant", 50076,
			"Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '%s'.", resource)
		e.suberror, e.claims = "basic_action", claims
		return e
	case BehaviorInteractionRequired:
		return badRequest("interaction_required", 50079,
			"Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '%s'.", resource)
	case BehaviorConsentRequired:
		e := badRequest("consent_required", 65001,
			"The user or administrator has not consented to use the application with ID '%s'. Send an interactive authorization request for this user and resource.", client.ID)
		e.suberror = "consent_required"
		return e
	case BehaviorThrottle:
		retry := b.RetryAfter
		if retry <= 0 {
			retry = time.Second
		}
		return &oauthError{
			status: http.StatusTooManyRequests, code: "temporarily_unavailable", aadsts: 50196,
			message:    fmt.Sprintf("The server is throttling requests from app '%s'. Retry after %d seconds.", client.ID, ceilSeconds(retry)),
			retryAfter: retry,
		}
	case BehaviorInvalidClient:
		return invalidClient(7000222, "The provided client secret keys for app '%s' are expired. Create new keys for your app, or consider using certificate credentials for added security.", client.ID)
	case BehaviorServerError:
		return &oauthError{
			status: http.StatusServiceUnavailable, code: "temporarily_unavailable", aadsts: 90033,
			message:    "A transient error has occurred. Please try again.",
			retryAfter: b.RetryAfter,
		}
	default:
		return nil
	}
}
