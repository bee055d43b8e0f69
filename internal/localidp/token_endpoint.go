package localidp

import (
	"context"
	"crypto/subtle"
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
