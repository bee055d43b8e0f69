package obo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/cache"
	"go.opentelemetry.io/otel/trace"
)

// Grant types and parameters of the token requests.
const (
	GrantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	GrantClientCredentials = "client_credentials"
)

// DefaultTimeout bounds one token request when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Config configures a Client.
type Config struct {
	// ClientID is the application (client) id of API A, the gateway's own
	// identity. Required.
	ClientID string
	// TokenEndpoint is the authority's token endpoint. Required.
	TokenEndpoint string
	// Credential authenticates the gateway to the token endpoint. Required.
	Credential Credential
	// HTTPClient sends the requests; nil means a client with its own
	// transport. Its Timeout, if any, applies in addition to Timeout.
	HTTPClient *http.Client
	// Timeout is the deadline of each exchange (each call of Token): the
	// wait for a free slot (MaxConcurrent), every attempt including
	// reading the answer, and the pauses between attempts. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
	// Capabilities are client capabilities declared on every request
	// ("cp1" enables continuous access evaluation); they are sent in the
	// "claims" parameter as {"access_token":{"xms_cc":{"values":[...]}}}.
	Capabilities []string
	// Protocol selects the exchange grant: ProtocolEntra (the default, also
	// for "") sends the Microsoft On-Behalf-Of request; ProtocolRFC8693
	// sends an RFC 8693 token exchange.
	Protocol string
	// DefaultTenant is the tenant used when TokenEndpoint is multi-tenant
	// (its first path segment is "common" or "organizations") and a
	// Request names no tenant: the home tenant of the application, where
	// its app-only tokens come from.
	DefaultTenant string

	// Retries is how many times a token request that failed with a
	// temporary fault (connection error, timeout, 429 or 5xx) is sent
	// again, within Timeout; OAuth refusals such as invalid_grant,
	// interaction_required or invalid_client are never retried. Zero means
	// DefaultRetries; a negative value turns retries off.
	Retries int
	// RetryBaseDelay and RetryMaxDelay shape the pause before retry n: a
	// random time below min(RetryMaxDelay, RetryBaseDelay·2ⁿ⁻¹) (full
	// jitter), or the authority's Retry-After when it sent one. A pause
	// that would not end before the deadline is not taken: the fault is
	// returned at once, with the Retry-After. Zero means
	// DefaultRetryBaseDelay and DefaultRetryMaxDelay.
	RetryBaseDelay, RetryMaxDelay time.Duration
	// BreakerFailures is the number of consecutive token requests failing
	// with a temporary fault (retries included) that open the Client's
	// circuit breaker: for BreakerOpenFor, Token fails at once with an
	// *UnavailableError wrapping ErrCircuitOpen, whose RetryAfter is the
	// time left; then one probe request is let through, whose success
	// closes the breaker and whose failure opens it again. Zero means
	// DefaultBreakerFailures; a negative value turns the breaker off.
	BreakerFailures int
	// BreakerOpenFor is the open period of the circuit breaker. Zero
	// means DefaultBreakerOpenFor.
	BreakerOpenFor time.Duration
	// MaxConcurrent bounds the exchanges in progress at once, so that a
	// burst of new users cannot exceed the authority's rate limit; an
	// exchange keeps its slot through its retries. Zero means
	// DefaultMaxConcurrent; a negative value means no bound.
	MaxConcurrent int
	// QueueTimeout bounds the wait for a free slot when MaxConcurrent
	// exchanges are in progress (never past Timeout); then Token fails with
	// an *UnavailableError wrapping ErrOverloaded. Zero means
	// DefaultQueueTimeout; a negative value means no wait.
	QueueTimeout time.Duration

	// AgentCache holds the tokens of the agent flows (AgentToken): T1 and
	// T2 always, the last leg's token with CachedAgentToken. It may be the
	// cache of token B: agent keys never equal other keys. The agent
	// methods fail without it.
	AgentCache *cache.Cache

	// OnRetry, when set, is called before each retry with the outcome of
	// the failed attempt ("throttled", "unavailable" or "timeout").
	OnRetry func(reason string)
	// OnBreakerState, when set, is called with each new state of the
	// circuit breaker, starting with BreakerClosed in NewClient. It is
	// called with the breaker locked and must not call the Client.
	OnBreakerState func(BreakerState)
	// OnQueueReject, when set, is called for each exchange refused with
	// ErrOverloaded.
	OnQueueReject func()
	// TracerProvider makes the span of each exchange; nil means none.
	TracerProvider trace.TracerProvider
}

// Client asks one authority's token endpoint for tokens. It is safe for
// concurrent use.
type Client struct {
	cfg Config
	// endpoint is cfg.TokenEndpoint split around its tenant segment when
	// it is multi-tenant; nil otherwise.
	endpoint *tenantEndpoint
	// breaker is the authority's circuit breaker; nil when turned off.
	breaker *breaker
	// slots bounds the exchanges in progress; nil when unbounded.
	slots  *slots
	retry  retryPolicy
	tracer trace.Tracer
}

// NewClient checks cfg and returns a Client.
func NewClient(cfg Config) (*Client, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("obo: Config.ClientID is empty")
	}
	if cfg.Credential == nil {
		return nil, errors.New("obo: Config.Credential is nil")
	}
	if _, err := url.ParseRequestURI(cfg.TokenEndpoint); err != nil {
		return nil, fmt.Errorf("obo: Config.TokenEndpoint: %w", err)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Transport: NewTransport()}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch cfg.Protocol {
	case "":
		cfg.Protocol = ProtocolEntra
	case ProtocolEntra, ProtocolRFC8693:
	default:
		return nil, fmt.Errorf("obo: Config.Protocol %q is not %s or %s", cfg.Protocol, ProtocolEntra, ProtocolRFC8693)
	}
	if cfg.DefaultTenant != "" && !validTenant(cfg.DefaultTenant) {
		return nil, fmt.Errorf("obo: Config.DefaultTenant %q is not a tenant id or domain", cfg.DefaultTenant)
	}
	retry := retryPolicy{
		retries: orDefault(cfg.Retries, DefaultRetries),
		base:    orDefault(cfg.RetryBaseDelay, DefaultRetryBaseDelay),
		maxWait: orDefault(cfg.RetryMaxDelay, DefaultRetryMaxDelay),
	}
	openFor := orDefault(cfg.BreakerOpenFor, DefaultBreakerOpenFor)
	if openFor < 0 {
		return nil, fmt.Errorf("obo: Config.BreakerOpenFor %s is negative", openFor)
	}
	return &Client{
		cfg:      cfg,
		endpoint: splitTenantEndpoint(cfg.TokenEndpoint),
		breaker:  newBreaker(orDefault(cfg.BreakerFailures, DefaultBreakerFailures), openFor, cfg.OnBreakerState),
		slots:    newSlots(orDefault(cfg.MaxConcurrent, DefaultMaxConcurrent), orDefault(cfg.QueueTimeout, DefaultQueueTimeout)),
		retry:    retry,
		tracer:   tracerOf(cfg.TracerProvider),
	}, nil
}

// Off is the value of Config.Retries, BreakerFailures, MaxConcurrent or
// QueueTimeout that turns the setting off; zero means its default.
const Off = -1

// orDefault returns v, or def when v is zero. A negative v (Off) is kept.
func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// NewTransport returns the HTTP transport the gateway uses to talk to the
// authority: keep-alive connections, HTTP/2 when offered, and bounded
// connection set-up.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	t.ResponseHeaderTimeout = 0 // bounded by the per-request context instead
	t.TLSHandshakeTimeout = 5 * time.Second
	t.ForceAttemptHTTP2 = true
	return t
}

// Token is token B as the authority issued it.
type Token struct {
	// AccessToken is the token itself. Never log it.
	AccessToken string
	// TokenType is the scheme to present it with, normally "Bearer".
	TokenType string
	// Scope is the space-separated scope set the token was issued for.
	Scope string
	// IssuedAt is when the answer was received.
	IssuedAt time.Time
	// ExpiresAt is IssuedAt plus expires_in.
	ExpiresAt time.Time
	// ExtExpiresAt is IssuedAt plus ext_expires_in (Entra's extended
	// lifetime during outages), or zero when absent.
	ExtExpiresAt time.Time
	// RefreshIn is the authority's advice on when to renew the token
	// (refresh_in), or zero when absent.
	RefreshIn time.Duration
	// IssuedTokenType is the type of the issued token when the authority
	// said (issued_token_type), such as TokenTypeSAML2, or "".
	IssuedTokenType string
}

// The flows a Request can use.
const (
	FlowOnBehalfOf        = "on_behalf_of"
	FlowClientCredentials = "client_credentials"
)

// Request describes one token request.
type Request struct {
	// Flow is FlowOnBehalfOf (the default) or FlowClientCredentials.
	Flow string
	// Assertion is token A, the user's token for API A (On-Behalf-Of only).
	Assertion string
	// Scopes are requested for token B. Required.
	Scopes []string
	// Claims is a claims request (a JSON object), such as the claims of a
	// downstream API's continuous access evaluation challenge. It is merged
	// with the client capabilities into the "claims" parameter.
	Claims string
	// Tenant is the user's tenant (token A's "tid"). When the configured
	// token endpoint is multi-tenant ("common" or "organizations"), the
	// request goes to this tenant's own endpoint; otherwise it is ignored.
	// Empty means the "tid" of Assertion, or Config.DefaultTenant.
	Tenant string
	// Audience is the RFC 8693 "audience" parameter: the logical name of
	// the downstream service. Only with ProtocolRFC8693.
	Audience string
	// RequestedTokenType is the requested_token_type parameter, such as
	// TokenTypeSAML2 for a SAML assertion; empty asks for an access token.
	RequestedTokenType string
}

// token is Token without its span.
func (c *Client) token(ctx context.Context, req Request) (*Token, error) {
	rfc8693 := c.cfg.Protocol == ProtocolRFC8693
	if len(req.Scopes) == 0 && (!rfc8693 || req.Audience == "") {
		return nil, errors.New("obo: no scopes requested")
	}
	if req.Audience != "" && !rfc8693 {
		return nil, errors.New("obo: an audience is only sent with the rfc8693 protocol")
	}
	var form url.Values
	switch req.Flow {
	case "", FlowOnBehalfOf:
		if req.Assertion == "" {
			return nil, errors.New("obo: on-behalf-of: empty assertion")
		}
		if rfc8693 {
			form = url.Values{
				"grant_type":         {GrantTokenExchange},
				"subject_token":      {req.Assertion},
				"subject_token_type": {TokenTypeAccessToken},
			}
		} else {
			form = url.Values{
				"grant_type":          {GrantJWTBearer},
				"assertion":           {req.Assertion},
				"requested_token_use": {"on_behalf_of"},
			}
		}
	case FlowClientCredentials:
		if req.RequestedTokenType != "" {
			return nil, errors.New("obo: client credentials: a requested token type is only sent on behalf of a user")
		}
		form = url.Values{"grant_type": {GrantClientCredentials}}
	default:
		return nil, fmt.Errorf("obo: unknown flow %q", req.Flow)
	}
	if req.Audience != "" {
		form.Set("audience", req.Audience)
	}
	if req.RequestedTokenType != "" {
		form.Set("requested_token_type", req.RequestedTokenType)
	}
	endpoint, err := c.endpointFor(req)
	if err != nil {
		return nil, err
	}
	claims, err := MergeClaims(c.capabilityClaims(), req.Claims)
	if err != nil {
		return nil, fmt.Errorf("obo: claims: %w", err)
	}
	if claims != "" {
		form.Set("claims", claims)
	}
	return c.post(ctx, endpoint, form, req.Scopes)
}

// OnBehalfOf exchanges assertion for a token for scopes; it is Token with
// an On-Behalf-Of Request.
func (c *Client) OnBehalfOf(ctx context.Context, assertion string, scopes []string) (*Token, error) {
	return c.Token(ctx, Request{Flow: FlowOnBehalfOf, Assertion: assertion, Scopes: scopes})
}

// ClientCredentials asks for an app-only token for scopes; it is Token with
// a client credentials Request.
func (c *Client) ClientCredentials(ctx context.Context, scopes []string) (*Token, error) {
	return c.Token(ctx, Request{Flow: FlowClientCredentials, Scopes: scopes})
}

// capabilityClaims returns the claims request declaring the client
// capabilities, or "".
func (c *Client) capabilityClaims() string {
	if len(c.cfg.Capabilities) == 0 {
		return ""
	}
	b, _ := json.Marshal(map[string]any{"access_token": map[string]any{"xms_cc": map[string]any{"values": c.cfg.Capabilities}}})
	return string(b)
}

// post sends form as the gateway itself (Config.ClientID with
// Config.Credential).
func (c *Client) post(ctx context.Context, endpoint string, form url.Values, scopes []string) (*Token, error) {
	return c.postAs(ctx, endpoint, c.cfg.ClientID, c.cfg.Credential, form, scopes)
}

// postAs sends form as the client clientID, authenticated by cred: the
// gateway, or an agent identity with its blueprint's token.
func (c *Client) postAs(ctx context.Context, endpoint, clientID string, cred Credential, form url.Values, scopes []string) (*Token, error) {
	form.Set("client_id", clientID)
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	return c.exchange(ctx, func(ctx context.Context) (*Token, bool, error) {
		return c.send(ctx, endpoint, cred, form)
	})
}

// send sends one token request and reports whether it reached the network.
// The credential is applied to every attempt, so that each carries a fresh
// client assertion (a new jti) and a rotated secret or federated token.
func (c *Client) send(ctx context.Context, endpoint string, cred Credential, form url.Values) (*Token, bool, error) {
	if err := cred.Apply(ctx, endpoint, form); err != nil {
		return nil, false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, false, fmt.Errorf("obo: token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")

	res, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, true, &UnavailableError{Op: "token", Err: err}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxDocumentBytes))
	if err != nil {
		return nil, true, &UnavailableError{Op: "token", Err: err}
	}
	now := c.cfg.Now()
	if res.StatusCode != http.StatusOK {
		return nil, true, parseError(res, body, now).scrub(secretScrubber(form))
	}
	tok, err := parseToken(body, now)
	return tok, true, err
}
