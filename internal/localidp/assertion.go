package localidp

import (
	"encoding/json"
	"errors"
	"strings"
	"time"
)

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
