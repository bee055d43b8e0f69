package obo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/internal/idshape"
)

// The agent flows of AgentRequest.Flow (Microsoft Entra Agent ID): the
// gateway is configured as an agent identity blueprint and obtains tokens
// as one of the blueprint's agent identities.
const (
	// FlowAgentApp is the autonomous agent's app-only token: client
	// credentials as the agent identity, authenticated by T1.
	FlowAgentApp = "agent_app"
	// FlowAgentUser is a token of the agent's own user account (agent
	// user): T2, then the user_fic grant for the agent user.
	FlowAgentUser = "agent_user"
	// FlowAgentOnBehalfOf is the interactive agent's On-Behalf-Of
	// exchange of the calling user's token A, authenticated by T1.
	FlowAgentOnBehalfOf = "agent_on_behalf_of"
)

// The legs of the agent flows, as AgentLegError.Leg names them.
const (
	// LegBlueprint is T1: the blueprint's client credentials request with
	// fmi_path, authenticated by Config.Credential.
	LegBlueprint = "blueprint"
	// LegAgentExchange is T2: the agent identity's client credentials
	// request for AgentExchangeScope (agent user tokens only).
	LegAgentExchange = "agent_exchange"
)

// AgentExchangeScope is the scope of T1 and T2, the tokens the agent legs
// present as credentials.
const AgentExchangeScope = "api://AzureADTokenExchange/.default"

// GrantUserFIC is the grant type of an agent user token: the agent identity
// presents T2 as the agent user's federated identity credential.
const GrantUserFIC = "user_fic"

// AgentRequest describes one token request as an agent identity.
type AgentRequest struct {
	// Flow is FlowAgentApp, FlowAgentUser or FlowAgentOnBehalfOf.
	// Required.
	Flow string
	// AgentID is the agent identity's application (client) id; the
	// identity must belong to the blueprint Config.ClientID. Required.
	AgentID string
	// Tenant is the tenant of the agent identity, used as Request.Tenant
	// is: it selects the token endpoint of a multi-tenant authority. Empty
	// means the "tid" of Assertion, or Config.DefaultTenant.
	Tenant string
	// Scopes are requested for the resulting token: "<resource>/.default"
	// for FlowAgentApp, delegated scopes for the other flows. Required.
	Scopes []string
	// Claims is a claims request for the last leg, merged with the client
	// capabilities as Request.Claims is.
	Claims string
	// Assertion is token A, the calling user's token, already validated
	// by the caller (FlowAgentOnBehalfOf only).
	Assertion string
	// Username is the agent user's user principal name, UserID its object
	// id (FlowAgentUser only, exactly one of the two).
	Username, UserID string
	// ForceRefresh makes CachedAgentToken exchange again instead of
	// serving the cached token of the last leg; T1 and T2 stay cached.
	ForceRefresh bool
}

// AgentLegError is the failure of one leg of an agent flow. Err is the leg's
// own error (an *Error, *UnavailableError or *CredentialError), so Outcome
// and errors.As classify it as they classify a token request: a refused
// blueprint credential is invalid_client, interaction required on the last
// leg carries the claims challenge, a failing authority is unavailable. An
// earlier leg that needs interaction (consent for the blueprint or the
// agent) is the operator's to fix, not the user's: relay a claims challenge
// only when Final reports true.
type AgentLegError struct {
	// Leg is LegBlueprint, LegAgentExchange or the request's Flow (the
	// last leg).
	Leg string
	// Err is the leg's error.
	Err error
}

// Error names the leg and its error; it never contains a token.
func (e *AgentLegError) Error() string { return "obo: agent leg " + e.Leg + ": " + e.Err.Error() }

// Unwrap returns the leg's error.
func (e *AgentLegError) Unwrap() error { return e.Err }

// Final reports whether the failed leg was the flow's last one, whose
// interaction-required answer the user can satisfy.
func (e *AgentLegError) Final() bool { return e.Leg != LegBlueprint && e.Leg != LegAgentExchange }

// errNoAgentCache is returned by the agent methods of a Client without
// Config.AgentCache.
var errNoAgentCache = errors.New("obo: agent flows need Config.AgentCache")

// AgentToken performs req: it obtains T1 for the agent identity (and, for
// an agent user token, T2), each served from Config.AgentCache and
// refreshed ahead like token B, one exchange per key however many callers
// ask at once, then sends the flow's last request, which it does not cache
// (CachedAgentToken does). Only the last request declares the client
// capabilities and carries req.Claims. Failures are *AgentLegError values;
// when the authority refuses T1 or T2 as a credential (invalid_client),
// both are dropped from the cache so that the next request fetches them
// again.
func (c *Client) AgentToken(ctx context.Context, req AgentRequest) (*Token, error) {
	endpoint, err := c.checkAgentRequest(req)
	if err != nil {
		return nil, err
	}
	claims, err := MergeClaims(c.capabilityClaims(), req.Claims)
	if err != nil {
		return nil, fmt.Errorf("obo: claims: %w", err)
	}
	tok, err := c.agentToken(ctx, endpoint, claims, req)
	var le *AgentLegError
	var ae *Error
	if errors.As(err, &le) && le.Leg != LegBlueprint && errors.As(err, &ae) && ae.ClientRejected() {
		c.cfg.AgentCache.Delete(legKey(LegBlueprint, endpoint, req.AgentID))
		c.cfg.AgentCache.Delete(legKey(LegAgentExchange, endpoint, req.AgentID))
	}
	return tok, err
}

// agentToken runs the legs of req at endpoint; claims is the claims
// parameter of the last leg.
func (c *Client) agentToken(ctx context.Context, endpoint, claims string, req AgentRequest) (*Token, error) {
	t1, err := c.legToken(ctx, LegBlueprint, endpoint, req.AgentID, func(ctx context.Context) (*Token, error) {
		return c.traced(ctx, req.Flow, LegBlueprint, func(ctx context.Context) (*Token, error) {
			return c.blueprintToken(ctx, endpoint, req.AgentID)
		})
	})
	if err != nil {
		return nil, err
	}
	asAgent := AgentAssertion(t1)
	form := url.Values{}
	switch req.Flow {
	case FlowAgentApp:
		form.Set("grant_type", GrantClientCredentials)
	case FlowAgentOnBehalfOf:
		form.Set("grant_type", GrantJWTBearer)
		form.Set("assertion", req.Assertion)
		form.Set("requested_token_use", "on_behalf_of")
	case FlowAgentUser:
		t2, err := c.legToken(ctx, LegAgentExchange, endpoint, req.AgentID, func(ctx context.Context) (*Token, error) {
			return c.traced(ctx, req.Flow, LegAgentExchange, func(ctx context.Context) (*Token, error) {
				return c.postAs(ctx, endpoint, req.AgentID, asAgent,
					url.Values{"grant_type": {GrantClientCredentials}}, []string{AgentExchangeScope})
			})
		})
		if err != nil {
			return nil, err
		}
		form.Set("grant_type", GrantUserFIC)
		form.Set("user_federated_identity_credential", t2)
		if req.Username != "" {
			form.Set("username", req.Username)
		} else {
			form.Set("user_id", req.UserID)
		}
	}
	if claims != "" {
		form.Set("claims", claims)
	}
	tok, err := c.traced(ctx, req.Flow, "", func(ctx context.Context) (*Token, error) {
		return c.postAs(ctx, endpoint, req.AgentID, asAgent, form, req.Scopes)
	})
	if err != nil {
		return nil, &AgentLegError{Leg: req.Flow, Err: err}
	}
	return tok, nil
}

// CachedAgentToken is AgentToken with the last leg's token cached too, in
// Config.AgentCache under AgentCacheKey(req): it returns the usable entry,
// whether it came from the cache, and AgentToken's error on a failed
// exchange. A due entry is served and refreshed ahead.
func (c *Client) CachedAgentToken(ctx context.Context, req AgentRequest) (*cache.Entry, cache.Result, error) {
	key, err := c.AgentCacheKey(req)
	if err != nil {
		return nil, cache.Miss, err
	}
	store := c.cfg.AgentCache
	if req.ForceRefresh {
		store.Delete(key)
	}
	return store.Fetch(ctx, key, func(ctx context.Context) (*cache.Entry, error) {
		tok, err := c.AgentToken(ctx, req)
		if err != nil {
			return nil, err
		}
		return cache.NewEntry(key, tok.AccessToken, tok.TokenType, tok.IssuedAt, tok.ExpiresAt, tok.RefreshIn), nil
	})
}

// AgentCacheKey returns the cache key of the last leg's token of req: the
// flow, the token endpoint (which names the tenant), the agent identity,
// the normalised scope set and, for FlowAgentUser, a SHA-256 fingerprint of
// the agent user, for FlowAgentOnBehalfOf one of the calling user (tid,
// oid and acrs of token A) — never the user's name or id itself.
func (c *Client) AgentCacheKey(req AgentRequest) (string, error) {
	endpoint, err := c.checkAgentRequest(req)
	if err != nil {
		return "", err
	}
	var subject string
	switch req.Flow {
	case FlowAgentUser:
		if req.Username != "" {
			subject = fingerprint("upn", strings.ToLower(req.Username))
		} else {
			subject = fingerprint("oid", strings.ToLower(req.UserID))
		}
	case FlowAgentOnBehalfOf:
		var u struct {
			Tid  string   `json:"tid"`
			Oid  string   `json:"oid"`
			Acrs []string `json:"acrs"`
		}
		if !peekClaims(req.Assertion, &u) || u.Oid == "" {
			// No user to name: bind the entry to token A itself.
			subject = fingerprint("assertion", req.Assertion)
			break
		}
		acrs := slices.Clone(u.Acrs)
		slices.Sort(acrs)
		subject = fingerprint("user", u.Tid, strings.ToLower(u.Oid), strings.Join(slices.Compact(acrs), ","))
	}
	return cache.AgentKey(req.Flow, endpoint, req.AgentID, subject, cache.NormalizeScopes(req.Scopes)), nil
}

// checkAgentRequest checks req and returns the token endpoint its legs go
// to.
func (c *Client) checkAgentRequest(req AgentRequest) (string, error) {
	if c.cfg.AgentCache == nil {
		return "", errNoAgentCache
	}
	if c.cfg.Protocol != ProtocolEntra {
		return "", errors.New("obo: agent flows are a Microsoft identity platform protocol, not sent with rfc8693")
	}
	if !idshape.IsGUID(req.AgentID) {
		return "", errors.New("obo: agent identity id is empty or not an application id")
	}
	if len(req.Scopes) == 0 {
		return "", errors.New("obo: no scopes requested")
	}
	flow := FlowClientCredentials
	switch req.Flow {
	case FlowAgentApp:
	case FlowAgentOnBehalfOf:
		if req.Assertion == "" {
			return "", errors.New("obo: agent on-behalf-of: empty assertion")
		}
		flow = FlowOnBehalfOf
	case FlowAgentUser:
		if (req.Username == "") == (req.UserID == "") {
			return "", errors.New("obo: agent user token: exactly one of username and user id is required")
		}
	default:
		return "", fmt.Errorf("obo: unknown agent flow %q", req.Flow)
	}
	if req.Flow != FlowAgentOnBehalfOf && req.Assertion != "" {
		return "", fmt.Errorf("obo: %s: an assertion is only sent on behalf of a user", req.Flow)
	}
	if req.Flow != FlowAgentUser && (req.Username != "" || req.UserID != "") {
		return "", fmt.Errorf("obo: %s: an agent user is only named for %s", req.Flow, FlowAgentUser)
	}
	return c.endpointFor(Request{Flow: flow, Assertion: req.Assertion, Tenant: req.Tenant})
}

// blueprintToken requests T1: the blueprint's client credentials token for
// agentID (fmi_path), with the gateway's own credential.
func (c *Client) blueprintToken(ctx context.Context, endpoint, agentID string) (*Token, error) {
	form := url.Values{"grant_type": {GrantClientCredentials}, "fmi_path": {agentID}}
	return c.post(ctx, endpoint, form, []string{AgentExchangeScope})
}

// legToken returns the token of one intermediate leg (T1 or T2) for
// agentID at endpoint from Config.AgentCache, fetching it on a miss.
func (c *Client) legToken(ctx context.Context, leg, endpoint, agentID string, fetch func(context.Context) (*Token, error)) (string, error) {
	key := legKey(leg, endpoint, agentID)
	e, _, err := c.cfg.AgentCache.Fetch(ctx, key, func(ctx context.Context) (*cache.Entry, error) {
		tok, err := fetch(ctx)
		if err != nil {
			return nil, err
		}
		return cache.NewEntry(key, tok.AccessToken, tok.TokenType, tok.IssuedAt, tok.ExpiresAt, tok.RefreshIn), nil
	})
	if err != nil {
		return "", &AgentLegError{Leg: leg, Err: err}
	}
	return e.Token, nil
}

// legKey is the cache key of T1 (LegBlueprint) or T2 (LegAgentExchange)
// for agentID at endpoint.
func legKey(leg, endpoint, agentID string) string {
	return cache.AgentKey(leg, endpoint, agentID, "", cache.NormalizeScopes([]string{AgentExchangeScope}))
}

// fingerprint returns the hex SHA-256 of parts, each length-prefixed so
// that no choice of values makes two different lists collide.
func fingerprint(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// AgentAssertion is a token the authority issued (T1) presented as the
// client assertion of an agent identity. Its String method never reveals
// the token.
type AgentAssertion string

// Apply sets client_assertion_type and client_assertion.
func (a AgentAssertion) Apply(_ context.Context, _ string, form url.Values) error {
	if a == "" {
		return &CredentialError{Credential: "agent_assertion", Err: errors.New("the blueprint's token is empty")}
	}
	form.Set("client_assertion_type", ClientAssertionType)
	form.Set("client_assertion", string(a))
	return nil
}

// String returns "REDACTED".
func (a AgentAssertion) String() string { return "REDACTED" }
