package localidp

import (
	"fmt"
	"net/url"
	"time"
)

// DefaultMFAClaims is the claims challenge BehaviorMFA answers with when
// Behavior.Claims is empty.
const DefaultMFAClaims = `{"access_token":{"capolids":{"essential":true,"values":["c1b2a3d4-0000-0000-0000-000000000001"]}}}`

// BehaviorKind selects how the token endpoint answers a request that is
// otherwise valid.
type BehaviorKind int

const (
	// BehaviorNormal issues the token.
	BehaviorNormal BehaviorKind = iota
	// BehaviorMFA answers 400 invalid_grant, error_codes [50076], suberror
	// "basic_action" and a claims challenge, like a conditional access
	// policy demanding multi-factor authentication.
	BehaviorMFA
	// BehaviorInteractionRequired answers 400 interaction_required,
	// error_codes [50079], without claims.
	BehaviorInteractionRequired
	// BehaviorConsentRequired answers 400 consent_required, error_codes
	// [65001], suberror "consent_required".
	BehaviorConsentRequired
	// BehaviorThrottle answers 429 temporarily_unavailable with a
	// Retry-After header.
	BehaviorThrottle
	// BehaviorServerError answers 503 temporarily_unavailable (error_codes
	// [90033]), with a Retry-After header when Behavior.RetryAfter is set.
	BehaviorServerError
	// BehaviorInvalidClient answers 401 invalid_client, error_codes
	// [7000222]: the client's credential is refused (an expired secret).
	BehaviorInvalidClient
)

// String returns the name of the kind, for example "MFA".
func (k BehaviorKind) String() string {
	switch k {
	case BehaviorNormal:
		return "Normal"
	case BehaviorMFA:
		return "MFA"
	case BehaviorInteractionRequired:
		return "InteractionRequired"
	case BehaviorConsentRequired:
		return "ConsentRequired"
	case BehaviorThrottle:
		return "Throttle"
	case BehaviorServerError:
		return "ServerError"
	case BehaviorInvalidClient:
		return "InvalidClient"
	default:
		return fmt.Sprintf("BehaviorKind(%d)", int(k))
	}
}

// Behavior programs the answer of the token endpoint. Behaviours are applied
// after the client, the assertion and the scopes have been validated, so a
// broken request still gets the error a healthy authority would give it.
type Behavior struct {
	// Kind selects the answer.
	Kind BehaviorKind
	// Claims is the claims challenge (a JSON string) of BehaviorMFA. The
	// default is DefaultMFAClaims.
	Claims string
	// RetryAfter is the delay announced in the Retry-After header (whole
	// seconds, rounded up) by BehaviorThrottle (default one second) and
	// BehaviorServerError (no header when zero).
	RetryAfter time.Duration
}

// SetUserBehavior programs the answer to On-Behalf-Of requests whose
// (valid) assertion carries the object ID oid, and to user_fic requests for
// the agent user oid. It takes precedence over
// SetDefaultBehavior, so Behavior{Kind: BehaviorNormal} exempts a user from a
// default behaviour. ClearUserBehavior removes the setting.
func (s *Server) SetUserBehavior(oid string, b Behavior) {
	s.behaviorMu.Lock()
	defer s.behaviorMu.Unlock()
	s.userBehaviors[oid] = b
}

// ClearUserBehavior removes what SetUserBehavior programmed for oid.
func (s *Server) ClearUserBehavior(oid string) {
	s.behaviorMu.Lock()
	defer s.behaviorMu.Unlock()
	delete(s.userBehaviors, oid)
}

// SetDefaultBehavior programs the answer to every token request (On-Behalf-Of
// and client credentials) not covered by SetUserBehavior.
func (s *Server) SetDefaultBehavior(b Behavior) {
	s.behaviorMu.Lock()
	defer s.behaviorMu.Unlock()
	s.defaultBehavior = b
}

// ResetBehaviors forgets every behaviour, latency and hang: the token endpoint
// answers normally and at once again.
func (s *Server) ResetBehaviors() {
	s.behaviorMu.Lock()
	s.defaultBehavior = Behavior{}
	clear(s.userBehaviors)
	clear(s.legBehaviors)
	s.nextBehavior, s.nextCount = Behavior{}, 0
	s.behaviorMu.Unlock()
	s.latency.Store(0)
	s.hang.Store(false)
}

// behaviorFor returns the behaviour for a request of leg ("" outside the
// agent flows); oid is empty for app-only grants.
func (s *Server) behaviorFor(leg AgentLeg, oid string) Behavior {
	s.behaviorMu.Lock()
	defer s.behaviorMu.Unlock()
	if s.nextCount > 0 {
		s.nextCount--
		return s.nextBehavior
	}
	if b, ok := s.legBehaviors[leg]; ok && leg != "" {
		return b
	}
	if oid != "" {
		if b, ok := s.userBehaviors[oid]; ok {
			return b
		}
	}
	return s.defaultBehavior
}

// SetLatency makes the token endpoint wait d before answering each request.
// The wait ends early, without an answer, when the client gives up. Zero
// turns the latency off.
func (s *Server) SetLatency(d time.Duration) { s.latency.Store(int64(d)) }

// SetHang, when on, makes the token endpoint never answer: each request
// blocks until the client gives up (its context is done) or the server is
// closed, like an authority that accepts connections but is unreachable
// behind them.
func (s *Server) SetHang(on bool) { s.hang.Store(on) }

// IssuedToken records one token issued by the token endpoint.
type IssuedToken struct {
	// Grant is the grant type: GrantOnBehalfOf, GrantClientCredentials or
	// GrantTokenExchange.
	Grant string
	// ObjectID is the oid claim of the issued token: the user's object ID
	// for On-Behalf-Of, the service principal ID for client credentials.
	ObjectID string
	// ClientID is the ID of the client that requested the token.
	ClientID string
	// Scope is the scope string of the request, normalised to single
	// spaces.
	Scope string
	// Token is the issued access token.
	Token string
	// ExpiresAt is the exp claim of the token.
	ExpiresAt time.Time
	// TenantID is the tenant whose token endpoint issued the token.
	TenantID string
	// TokenType is the type of the issued token: an access token
	// ("urn:ietf:params:oauth:token-type:access_token") or TokenTypeSAML2.
	TokenType string
	// ClientAuth says how the client authenticated: "client_secret",
	// "certificate <x5t#S256 of the certificate>" or
	// "federated <issuer> <subject>".
	ClientAuth string
	// Audience is the audience parameter of a token exchange request.
	Audience string
	// RefreshToken is the refresh token issued with the token, with
	// Options.IssueRefreshTokens; empty otherwise.
	RefreshToken string
}

// TokenRequests returns the number of POST requests the token endpoint has
// received, whatever their outcome.
func (s *Server) TokenRequests() int64 { return s.tokenRequests.Load() }

// OnBehalfOfRequests returns the number of token requests with the
// On-Behalf-Of grant type, whatever their outcome.
func (s *Server) OnBehalfOfRequests() int64 { return s.onBehalfOfRequests.Load() }

// OnBehalfOfRequestsFor returns the number of On-Behalf-Of and token
// exchange requests whose assertion (subject token) carried the object ID
// oid, whether it was valid or not.
func (s *Server) OnBehalfOfRequestsFor(oid string) int64 {
	s.recordMu.Lock()
	defer s.recordMu.Unlock()
	return s.oboRequestsBy[oid]
}

// TokenExchangeRequests returns the number of token requests with the RFC
// 8693 token exchange grant type, whatever their outcome.
func (s *Server) TokenExchangeRequests() int64 { return s.tokenExchangeRequests.Load() }

// ClientCredentialsRequests returns the number of token requests with the
// client credentials grant type, whatever their outcome.
func (s *Server) ClientCredentialsRequests() int64 { return s.clientCredentialsRequests.Load() }

// IssuedTokens returns every token the token endpoint has issued, oldest
// first.
func (s *Server) IssuedTokens() []IssuedToken {
	s.recordMu.Lock()
	defer s.recordMu.Unlock()
	return append([]IssuedToken(nil), s.issued...)
}

// LastTokenRequest returns a copy of the form of the last token request
// (nil before the first one). It contains the credentials the client sent,
// which is the point for a test and the reason it is never logged.
func (s *Server) LastTokenRequest() url.Values {
	s.recordMu.Lock()
	defer s.recordMu.Unlock()
	if s.lastForm == nil {
		return nil
	}
	return cloneValues(s.lastForm)
}

// TokenRequestForms returns a copy of the form of every token request
// received, oldest first, whatever its outcome. Like LastTokenRequest it
// holds the credentials clients sent (client_secret, client_assertion,
// assertion, subject_token), so that tests can check none of them leaks.
func (s *Server) TokenRequestForms() []url.Values {
	s.recordMu.Lock()
	defer s.recordMu.Unlock()
	out := make([]url.Values, len(s.forms))
	for i, f := range s.forms {
		out[i] = cloneValues(f)
	}
	return out
}

// MintedTokens returns every token IssueToken has signed (the users'
// tokens A), oldest first.
func (s *Server) MintedTokens() []string {
	s.recordMu.Lock()
	defer s.recordMu.Unlock()
	return append([]string(nil), s.minted...)
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
