package localidp

import (
	"strings"
	"time"
)

// Token types a token exchange accepts as subject_token_type.
var subjectTokenTypes = map[string]bool{tokenTypeAccessToken: true, TokenTypeJWT: true}

// tokenExchange runs the RFC 8693 token exchange grant for an authenticated
// client: the subject token (token A, an access token for the client) is
// validated like an On-Behalf-Of assertion, and a token for the audience
// and/or the scopes is issued on the user's behalf. The answer carries
// issued_token_type. Programmed behaviours apply as for On-Behalf-Of.
func (s *Server) tokenExchange(tr *tokenRequest) tokenOutcome {
	client, form := tr.client, tr.form
	out := tokenOutcome{clientID: client.ID}
	subject := form.Get("subject_token")
	requested := form.Get("requested_token_type")
	audiences := form["audience"]
	rawScope := strings.TrimSpace(form.Get("scope"))
	switch {
	case subject == "":
		out.err = missingParameter("subject_token")
	case form.Get("subject_token_type") == "":
		out.err = missingParameter("subject_token_type")
	case !subjectTokenTypes[form.Get("subject_token_type")]:
		out.err = badRequest("invalid_request", 9002313,
			"Invalid request. [Reason - subject_token_type '%s' is not supported; use '%s' or '%s'.]", form.Get("subject_token_type"), tokenTypeAccessToken, TokenTypeJWT)
	case form.Has("actor_token") || form.Has("actor_token_type"):
		out.err = badRequest("invalid_request", 9002313, "Invalid request. [Reason - delegation with an actor_token is not supported.]")
	case requested != "" && requested != tokenTypeAccessToken && requested != TokenTypeJWT && requested != TokenTypeSAML2:
		out.err = badRequest("invalid_request", 9002313,
			"Invalid request. [Reason - requested_token_type '%s' is not supported.]", requested)
	case len(audiences) > 1:
		out.err = badRequest("invalid_target", 9002313, "Invalid target. [Reason - only one audience may be requested.]")
	case len(audiences) == 0 && rawScope == "":
		out.err = badRequest("invalid_target", 9002313, "Invalid target. [Reason - the request names neither an audience nor a scope.]")
	}
	if out.err != nil {
		return out
	}
	user, err := s.validateAssertion(subject, client, tr.tenant)
	if err != nil {
		out.err = err
		return out
	}
	out.oid, _ = user["oid"].(string)

	var ss scopeSet
	if rawScope != "" {
		if strings.Contains(rawScope, "/") {
			if ss, err = parseScopes(rawScope); err != nil {
				out.err = err
				return out
			}
		} else {
			// Plain scope names (Keycloak, Okta): they name no resource.
			ss.requested = strings.Fields(rawScope)
			ss.permissions = ss.requested
		}
	}
	aud := ss.resource
	if len(audiences) == 1 {
		aud = audiences[0]
	}
	if aud == "" {
		out.err = badRequest("invalid_target", 9002313, "Invalid target. [Reason - the scopes name no resource; send an audience.]")
		return out
	}
	if out.err = behaviorError(s.behaviorFor(tr.leg, out.oid), client, aud); out.err != nil {
		return out
	}
	ss.resource = aud
	if requested == TokenTypeSAML2 {
		out.resp, out.err = s.issueSAML(tr, user, ss)
		return out
	}
	now := time.Now()
	exp := now.Add(s.tokenLifetime)
	claims := map[string]any{
		"iss":       s.IssuerFor(tr.tenant),
		"aud":       aud,
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"exp":       exp.Unix(),
		"azp":       client.ID,
		"client_id": client.ID,
		"act":       map[string]any{"sub": client.ID},
		"oid":       out.oid,
		"sub":       user["sub"],
		"tid":       tr.tenant,
		"uti":       randomUTI(),
		"ver":       "2.0",
	}
	if scp := ss.scp(); scp != "" {
		claims["scp"] = scp
	}
	tokenType := tokenTypeAccessToken
	if requested == TokenTypeJWT {
		tokenType = TokenTypeJWT
	}
	token, serr := s.SignClaims(claims)
	if serr != nil {
		out.err = &oauthError{status: 500, code: "server_error", aadsts: 90033, message: "A transient error has occurred. Please try again."}
		return out
	}
	out.resp = s.record(tr, out.oid, ss.requested, token, tokenType, exp)
	return out
}
