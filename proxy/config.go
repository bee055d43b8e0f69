package proxy

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/inbound"
	"github.com/obo-gateway/obo-gateway/metrics"
	"github.com/obo-gateway/obo-gateway/obo"
)

// Exchanger obtains token B from the authority. *obo.Client implements it.
type Exchanger interface {
	Token(ctx context.Context, req obo.Request) (*obo.Token, error)
}

// RouteConfig describes one downstream API.
type RouteConfig struct {
	// Name identifies the route in logs and metrics.
	Name string
	// PathPrefix selects the route: "/graph" matches "/graph" and
	// "/graph/...". The prefix is replaced by the upstream's path.
	PathPrefix string
	// Upstream is the downstream base URL; its scheme and host are fixed,
	// and requests never leave its path.
	Upstream string
	// Scopes are requested for token B.
	Scopes []string
	// Flow is obo.FlowOnBehalfOf (the default), obo.FlowClientCredentials or
	// an agent flow (obo.FlowAgentApp, obo.FlowAgentUser,
	// obo.FlowAgentOnBehalfOf, which need Config.Agents).
	Flow string
	// AgentIdentity fixes an agent flow's agent identity; empty means the
	// request's X-Agent-Identity.
	AgentIdentity string
	// AgentUser fixes the agent user (UPN or object id) of FlowAgentUser;
	// empty means the request's X-Agent-User.
	AgentUser string
	// Timeout bounds the wait for the downstream's response headers; zero
	// means DefaultTimeout.
	Timeout time.Duration
	// ReplayMaxBytes is the largest request body kept so the request can be
	// retried after a continuous access evaluation challenge (only with
	// Config.CAE). Zero disables the retry for the route.
	ReplayMaxBytes int64
	// Audience is the RFC 8693 "audience" of token B (token-exchange
	// authorities only).
	Audience string
	// ForwardCookies sends the inbound Cookie header to the upstream;
	// otherwise it is removed.
	ForwardCookies bool
	// WebSocket forwards WebSocket upgrades (with token B on the upgrade
	// request); otherwise the Upgrade header is removed and the request
	// goes on as a plain one. Other upgrades, h2c among them, are never
	// forwarded.
	WebSocket bool
	// RequestedTokenType is the token type asked for, such as
	// obo.TokenTypeSAML2; empty means an access token.
	RequestedTokenType string
	// Presentation says which header carries token B downstream and in
	// what form; the zero value means obo.DefaultPresentation of
	// RequestedTokenType ("Authorization: Bearer <token>", or
	// "Authorization: SAML <base64>" for SAML assertions).
	Presentation obo.Presentation
}

// DefaultTimeout is the wait for a downstream's response headers when
// RouteConfig.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Cache key modes.
const (
	// KeyUser caches token B per tenant, user, authentication contexts
	// and scope set (the default).
	KeyUser = "user"
	// KeyAssertion caches token B per token A (its SHA-256) and scope set.
	KeyAssertion = "assertion"
)

// Config configures a Handler. Routes, Validator, Exchanger, Cache and
// Metrics are required.
type Config struct {
	Routes []RouteConfig
	// Validator checks token A: an *inbound.VerifiedCache, or
	// inbound.Uncached(v).
	Validator inbound.TokenValidator
	Exchanger Exchanger
	Cache     *cache.Cache
	Metrics   *metrics.Metrics
	// KeyMode is KeyUser (the default) or KeyAssertion.
	KeyMode string
	// CAE turns on continuous access evaluation handling: the exchanges
	// declare the "cp1" capability (set on the Exchanger), and a downstream
	// 401 with a claims challenge is answered by exchanging again with the
	// challenge's claims and retrying the request once, when its body could
	// be kept (RouteConfig.ReplayMaxBytes). Without CAE the challenge is
	// passed to the caller.
	CAE bool
	// RequiredScopes, when not empty, are the scopes a delegated token A
	// must carry one of.
	RequiredScopes []string
	// Logger receives the request lines RequestLog asks for, at info
	// level; nil discards.
	Logger *slog.Logger
	// RequestLog says which requests get a log line. The zero value,
	// LogFailures, logs the answers of status 400 and above.
	RequestLog RequestLog
	// StripHeaders are further request headers removed before proxying,
	// in addition to IdentityHeaders.
	StripHeaders []string
	// MaxRequestHeaders is the largest number of header fields a request
	// may carry; more are answered with 431. Zero means
	// DefaultMaxRequestHeaders.
	MaxRequestHeaders int
	// Previous, when set, is the handler this one replaces (a reload of
	// the configuration): its transports to the upstreams that stay, with
	// their kept-alive connections, are used again.
	Previous *Handler
	// Agents obtains the agent flows' tokens; nil means the Exchanger, when
	// it implements AgentExchanger.
	Agents AgentExchanger
	// AgentIdentities are the agent identities requests may name ("*":
	// any); AgentTenants the tenants besides DefaultTenant ("*": any).
	AgentIdentities, AgentTenants []string
	// DefaultTenant is the tenant of app-only and agent tokens
	// (client.tenant_id).
	DefaultTenant string
	// TracerProvider makes the server span of each request, which
	// continues the caller's W3C trace context and is the parent the
	// downstream sees; nil means no spans (the caller's trace context is
	// still passed on, and its trace id logged).
	TracerProvider trace.TracerProvider
}
