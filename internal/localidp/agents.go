package localidp

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// GrantUserFIC is the grant type of an agent user token: the agent identity,
// authenticated by its blueprint's token, presents T2 as the agent user's
// federated identity credential.
const GrantUserFIC = "user_fic"

// TokenExchangeAppID is the application id of Entra's token exchange
// resource (api://AzureADTokenExchange): the aud of T1 and T2.
const TokenExchangeAppID = "fb60f99c-7a34-4190-8149-302f77469936"

// tokenExchangeResource is the resource of the scope of T1 and T2.
const tokenExchangeResource = "api://AzureADTokenExchange"

// AgentIdentity is an agent identity (Microsoft Entra Agent ID): a service
// principal created from an agent identity blueprint, which is a registered
// Client holding the real credential. The identity has no credential of its
// own: it authenticates with T1, the blueprint's client credentials token
// requested with fmi_path = ID.
type AgentIdentity struct {
	// ID is the agent identity's application (client) id, a GUID that no
	// Client uses.
	ID string
	// Blueprint is the ID of the registered Client that is the identity's
	// blueprint.
	Blueprint string
	// Users are the agent users (user accounts of the agent) that belong
	// to this identity; user_fic issues their tokens to it only.
	Users []AgentUser
}

// AgentUser is the user account of an agent identity.
type AgentUser struct {
	// ObjectID is the user's object id, the oid of its tokens and the
	// user_id of user_fic requests.
	ObjectID string
	// UPN is the user principal name, the username of user_fic requests
	// and the upn and preferred_username of its tokens.
	UPN string
	// Name is the name claim; omitted when empty.
	Name string
}

// AgentLeg names one request of the agent flows, for SetLegBehavior and
// LegRequests.
type AgentLeg string

// The legs of the agent flows.
const (
	// LegBlueprint is T1: client credentials of a blueprint with fmi_path.
	LegBlueprint AgentLeg = "blueprint"
	// LegAgentExchange is T2: client credentials of an agent identity for
	// api://AzureADTokenExchange/.default.
	LegAgentExchange AgentLeg = "agent_exchange"
	// LegAgentApp is client credentials of an agent identity for another
	// resource: the autonomous agent's app token.
	LegAgentApp AgentLeg = "agent_app"
	// LegAgentUser is the user_fic grant: an agent user's token.
	LegAgentUser AgentLeg = "agent_user"
	// LegAgentOnBehalfOf is the On-Behalf-Of grant of an agent identity.
	LegAgentOnBehalfOf AgentLeg = "agent_on_behalf_of"
)

// registerAgents checks and stores the agent identities of opts; the
// clients must be registered already.
func (s *Server) registerAgents(agents []AgentIdentity) error {
	s.agents = make(map[string]AgentIdentity, len(agents))
	users := make(map[string]bool)
	for i, a := range agents {
		switch {
		case a.ID == "":
			return fmt.Errorf("localidp: agent identity %d has no ID", i)
		case s.clients[a.ID].ID != "":
			return fmt.Errorf("localidp: agent identity %q is also a client", a.ID)
		case s.agents[a.ID].ID != "":
			return fmt.Errorf("localidp: duplicate agent identity %q", a.ID)
		case s.clients[a.Blueprint].ID == "":
			return fmt.Errorf("localidp: agent identity %q: blueprint %q is not a registered client", a.ID, a.Blueprint)
		}
		for j, u := range a.Users {
			oid, upn := strings.ToLower(u.ObjectID), strings.ToLower(u.UPN)
			if oid == "" || upn == "" {
				return fmt.Errorf("localidp: agent identity %q: user %d needs an object id and a UPN", a.ID, j)
			}
			if users["oid "+oid] || users["upn "+upn] {
				return fmt.Errorf("localidp: agent identity %q: user %d is registered twice", a.ID, j)
			}
			users["oid "+oid], users["upn "+upn] = true, true
		}
		s.agents[a.ID] = a
	}
	return nil
}

// SetLegBehavior programs the answer to the requests of one agent leg that
// are otherwise valid, before SetUserBehavior and SetDefaultBehavior (and
// after SetNextBehavior) apply; Behavior{} clears it, as does
// ResetBehaviors. BehaviorInvalidClient on LegBlueprint is the blueprint's
// credential refused; BehaviorConsentRequired or BehaviorMFA on
// LegAgentUser or LegAgentOnBehalfOf is interaction required on the last
// leg.
func (s *Server) SetLegBehavior(leg AgentLeg, b Behavior) {
	s.behaviorMu.Lock()
	defer s.behaviorMu.Unlock()
	if b == (Behavior{}) {
		delete(s.legBehaviors, leg)
		return
	}
	s.legBehaviors[leg] = b
}

// LegRequests returns the number of token requests of leg received, whatever
// their outcome.
func (s *Server) LegRequests(leg AgentLeg) int64 {
	s.recordMu.Lock()
	defer s.recordMu.Unlock()
	return s.legRequests[leg]
}

// legOf classifies a token request form as a leg of the agent flows, or "".
func (s *Server) legOf(form url.Values) AgentLeg {
	grant := form.Get("grant_type")
	_, agent := s.agents[form.Get("client_id")]
	switch {
	case grant == GrantUserFIC:
		return LegAgentUser
	case grant == GrantClientCredentials && form.Has("fmi_path"):
		return LegBlueprint
	case !agent:
		return ""
	case grant == GrantOnBehalfOf:
		return LegAgentOnBehalfOf
	case grant == GrantClientCredentials && isExchangeScope(form.Get("scope")):
		return LegAgentExchange
	case grant == GrantClientCredentials:
		return LegAgentApp
	}
	return ""
}

// isExchangeScope reports whether a scope parameter asks for the token
// exchange resource (api://AzureADTokenExchange/.default, in any case, as
// Entra compares it), OpenID Connect scopes aside.
func isExchangeScope(raw string) bool {
	found := false
	for _, f := range strings.Fields(raw) {
		switch {
		case oidcScopes[f]:
		case strings.EqualFold(f, tokenExchangeResource+"/.default"):
			found = true
		default:
			return false
		}
	}
	return found
}

// fmiSubject is the sub of T1 for agentID, requested by blueprint in tenant:
// Entra's federated managed identity path.
func fmiSubject(tenant, blueprint, agentID string) string {
	return "/eid1/c/pub/t/" + guidSegment(tenant) + "/a/" + guidSegment(blueprint) + "/" + agentID
}

// guidSegment encodes a GUID's bytes in base64url, as Entra writes them in
// FMI paths; anything else is encoded as it is.
func guidSegment(id string) string {
	b, err := hex.DecodeString(strings.ReplaceAll(id, "-", ""))
	if err != nil || len(b) != 16 {
		b = []byte(id)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// blueprintToken finishes T1: the blueprint tr.client asks for the token of
// the agent identity named by fmi_path. It returns the claims of T1.
func (s *Server) blueprintToken(tr *tokenRequest, scopes scopeSet) (map[string]any, *oauthError) {
	agentID := tr.form.Get("fmi_path")
	agent, ok := s.agents[agentID]
	if !ok || agent.Blueprint != tr.client.ID {
		return nil, &oauthError{status: http.StatusBadRequest, code: "unauthorized_client", aadsts: 82001,
			message: fmt.Sprintf("The fmi_path '%s' does not name an agent identity of the agent identity blueprint '%s'.", agentID, tr.client.ID)}
	}
	if !strings.EqualFold(scopes.resource, tokenExchangeResource) {
		return nil, badRequest("invalid_scope", 1002012,
			"The scope of a request with fmi_path must be %s/.default, not %s.", tokenExchangeResource, strings.Join(scopes.requested, " "))
	}
	return map[string]any{
		"aud":   TokenExchangeAppID,
		"azp":   tr.client.ID,
		"idtyp": "app",
		"oid":   s.servicePrincipalIDIn(tr.tenant, tr.client),
		"sub":   fmiSubject(tr.tenant, tr.client.ID, agentID),
		"roles": nil,
	}, nil
}

// authenticateAgent checks the credential of an agent identity: T1 of its
// blueprint for it, issued by this tenant and unexpired, as the client
// assertion. It returns the identity as a Client (with its blueprint's
// identifier URI, the audience of the users' tokens for the agent).
func (s *Server) authenticateAgent(agent AgentIdentity, cred clientCredential, tenant string) (Client, string, *oauthError) {
	blueprint := s.clients[agent.Blueprint]
	client := Client{ID: agent.ID, IdentifierURI: blueprint.IdentifierURI}
	switch {
	case cred.hasSecret:
		return client, "", invalidClient(7000218,
			"Agent identity '%s' has no credential of its own: present the token of its blueprint (fmi_path) as the client_assertion.", agent.ID)
	case cred.assertionType != clientAssertionTypeJWT:
		return client, "", badRequest("invalid_request", 9002313,
			"Invalid request. Request is malformed or invalid. [Reason - client_assertion_type must be '%s'.]", clientAssertionTypeJWT)
	case cred.assertion == "":
		return client, "", missingParameter("client_assertion")
	}
	claims, err := s.verifySignature(cred.assertion)
	if err != nil {
		return client, "", invalidClient(700027, "Client assertion failed signature validation. [Reason - %v.]", err)
	}
	if iss, _ := claims["iss"].(string); iss != s.IssuerFor(tenant) {
		return client, "", invalidClient(700211,
			"No matching federated identity record found for presented assertion issuer '%s'.", iss)
	}
	if !audienceContains(claims["aud"], TokenExchangeAppID) {
		return client, "", invalidClient(700212,
			"No matching federated identity record found for presented assertion audience '%v'.", claims["aud"])
	}
	if sub, _ := claims["sub"].(string); sub != fmiSubject(tenant, blueprint.ID, agent.ID) || claims["azp"] != blueprint.ID {
		return client, "", invalidClient(700213,
			"No matching federated identity record found for presented assertion subject '%s': it is not the token of blueprint '%s' for agent identity '%s'.",
			sub, blueprint.ID, agent.ID)
	}
	if e := s.checkTokenTime(claims, 700024, "Client assertion"); e != nil {
		e.status, e.code = http.StatusUnauthorized, "invalid_client"
		return client, "", e
	}
	return client, "agent " + blueprint.ID, nil
}

// checkTokenTime refuses a token whose exp has passed or whose nbf is still
// ahead (with Options.ClockSkew), answering invalid_grant with aadsts.
func (s *Server) checkTokenTime(claims map[string]any, aadsts int, what string) *oauthError {
	now := time.Now()
	exp, ok := numericDate(claims["exp"])
	if !ok {
		return badRequest("invalid_grant", 50027, "JWT token is invalid or malformed. [Reason - the exp claim is missing or not a number.]")
	}
	nbf, hasNBF := numericDate(claims["nbf"])
	if now.After(exp.Add(s.clockSkew)) || (hasNBF && now.Add(s.clockSkew).Before(nbf)) {
		return badRequest("invalid_grant", aadsts, "%s is not within its valid time range. Current time: %s, expiry time of assertion %s.",
			what, now.UTC().Format(time.RFC3339), exp.UTC().Format(time.RFC3339))
	}
	return nil
}

// agentExchangeClaims are the claims of T2 for the agent identity tr.client.
func (s *Server) agentExchangeClaims(tr *tokenRequest) map[string]any {
	return map[string]any{
		"aud":             TokenExchangeAppID,
		"azp":             tr.client.ID,
		"azpacr":          "2",
		"idtyp":           "app",
		"oid":             tr.client.ID,
		"sub":             tr.client.ID,
		"xms_par_app_azp": tr.agent.Blueprint,
		"roles":           nil,
	}
}

// userFIC runs the user_fic grant: an agent identity (authenticated by T1)
// presents T2 and names one of its agent users; the answer is that user's
// delegated token for the scopes, issued to the agent.
func (s *Server) userFIC(tr *tokenRequest) tokenOutcome {
	out := tokenOutcome{clientID: tr.client.ID}
	form := tr.form
	username, userID := form.Get("username"), form.Get("user_id")
	switch use := form.Get("requested_token_use"); {
	case tr.agent == nil:
		out.err = badRequest("unauthorized_client", 82001, "The user_fic grant is only for agent identities; '%s' is not one.", tr.client.ID)
	case form.Get("user_federated_identity_credential") == "":
		out.err = missingParameter("user_federated_identity_credential")
	case username != "" && userID != "":
		out.err = badRequest("invalid_request", 9002313, "Invalid request. Request is malformed or invalid. [Reason - send username or user_id, not both.]")
	case username == "" && userID == "":
		out.err = missingParameter("username")
	case use != "" && use != "on_behalf_of":
		out.err = badRequest("invalid_request", 9002313,
			"Invalid request. Request is malformed or invalid. [Reason - requested_token_use must be 'on_behalf_of' or absent, not '%s'.]", use)
	case strings.TrimSpace(form.Get("scope")) == "":
		out.err = missingParameter("scope")
	}
	if out.err != nil {
		return out
	}
	if out.err = s.checkAgentExchangeToken(form.Get("user_federated_identity_credential"), tr); out.err != nil {
		return out
	}
	user, ok := tr.agent.user(username, userID)
	if !ok {
		// Like Entra, without the name or id the request gave.
		out.err = badRequest("invalid_grant", 50034,
			"The user account does not exist in the directory or is not an agent user of the agent identity '%s'.", tr.agent.ID)
		return out
	}
	out.oid = user.ObjectID
	scopes, err := parseScopes(form.Get("scope"))
	if err != nil {
		out.err = err
		return out
	}
	if out.err = behaviorError(s.behaviorFor(tr.leg, user.ObjectID), tr.client, scopes.resource); out.err != nil {
		return out
	}
	claims, exp := s.tokenClaims(tr, scopes.resource)
	maps.Copy(claims, map[string]any{
		"azpacr": "2", "idtyp": "user", "oid": user.ObjectID, "sub": pairwiseSubject(user.ObjectID), "scp": scopes.scp(),
		"upn": user.UPN, "preferred_username": user.UPN, "xms_par_app_azp": tr.agent.Blueprint,
	})
	if user.Name != "" {
		claims["name"] = user.Name
	}
	out.resp, out.err = s.issue(tr, user.ObjectID, scopes.requested, claims, exp)
	return out
}

// checkAgentExchangeToken checks T2 presented by the agent identity of tr:
// issued by this tenant to that identity for the token exchange resource,
// and unexpired.
func (s *Server) checkAgentExchangeToken(tok string, tr *tokenRequest) *oauthError {
	claims, err := s.verifySignature(tok)
	if err != nil {
		return invalidGrant("The user_federated_identity_credential failed signature validation. [Reason - %v.]", err)
	}
	iss, _ := claims["iss"].(string)
	if iss != s.IssuerFor(tr.tenant) || !audienceContains(claims["aud"], TokenExchangeAppID) ||
		claims["azp"] != tr.agent.ID || claims["idtyp"] != "app" || claims["xms_par_app_azp"] != tr.agent.Blueprint {
		return invalidGrant("The user_federated_identity_credential is not a token of agent identity '%s' for %s issued by '%s'.",
			tr.agent.ID, tokenExchangeResource, s.IssuerFor(tr.tenant))
	}
	return s.checkTokenTime(claims, 500133, "The user_federated_identity_credential")
}

// user returns the agent user named by username (a UPN, compared without
// case) or userID (an object id).
func (a *AgentIdentity) user(username, userID string) (AgentUser, bool) {
	for _, u := range a.Users {
		if (username != "" && strings.EqualFold(u.UPN, username)) || (userID != "" && strings.EqualFold(u.ObjectID, userID)) {
			return u, true
		}
	}
	return AgentUser{}, false
}
