package config

import (
	"time"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/inbound"
	"github.com/obo-gateway/obo-gateway/obo"
	"github.com/obo-gateway/obo-gateway/proxy"
)

// Config is the whole configuration of obo-gateway, as read from its YAML
// file. Parse and Load return it with defaults applied and validated.
type Config struct {
	// Listen is the address the application calls the gateway on, as
	// host:port. Default "127.0.0.1:8080".
	Listen string `yaml:"listen"`
	// AdminListen is the address of /metrics, /healthz and /readyz, as
	// host:port. Default "127.0.0.1:9090".
	AdminListen string `yaml:"admin_listen"`
	// ShutdownTimeout is the grace period for draining requests after
	// SIGTERM. Default 15s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// ShutdownDelay is how long the gateway keeps accepting new requests
	// after SIGTERM, with /readyz answering 503, before it drains: an
	// application stopped at the same moment (an ordinary sidecar, not a
	// native one) can still call it while it finishes its own requests.
	// Default 0.
	ShutdownDelay Duration `yaml:"shutdown_delay"`
	// Log configures logging.
	Log Log `yaml:"log"`
	// Authority describes the identity provider that issues token A and
	// performs the exchanges.
	Authority Authority `yaml:"authority"`
	// Client is the gateway's own application registration (API A).
	Client Client `yaml:"client"`
	// Inbound configures the validation of token A.
	Inbound Inbound `yaml:"inbound"`
	// Routes maps path prefixes to downstream APIs. At least one is needed.
	Routes []Route `yaml:"routes"`
	// Cache configures the token B cache.
	Cache Cache `yaml:"cache"`
	// Agents configures the agent identities (see agents.go).
	Agents Agents `yaml:"agents"`
	// TokenAPI configures the Microsoft-compatible token API.
	TokenAPI TokenAPI `yaml:"token_api"`
	// Telemetry configures OpenTelemetry traces.
	Telemetry Telemetry `yaml:"telemetry"`

	// fromEnv maps the keys that Parse filled from the AKS workload
	// identity variables to the variable's name, for the problems.
	fromEnv map[string]string
}

// Log configures logging.
type Log struct {
	// Level is one of debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
	// Requests says which requests get a log line (at info level):
	// failures (status 400 and above; the default), all, or none.
	Requests string `yaml:"requests"`
}

// Authority describes the identity provider. Either URL is set, and the
// other endpoints are discovered from URL + "/.well-known/openid-configuration",
// or all of Issuer, JWKSURI and TokenEndpoint are set. Values set next to URL
// override the discovered ones. Every URL must use https, except for
// loopback hosts (127.0.0.0/8, ::1, localhost).
type Authority struct {
	// URL is the discovery base, such as
	// https://login.microsoftonline.com/<tenant-id>/v2.0.
	URL string `yaml:"url"`
	// Issuer overrides the discovered issuer. It is compared as a string.
	Issuer string `yaml:"issuer"`
	// JWKSURI overrides the discovered jwks_uri.
	JWKSURI string `yaml:"jwks_uri"`
	// TokenEndpoint overrides the discovered token_endpoint.
	TokenEndpoint string `yaml:"token_endpoint"`
	// Timeout bounds each HTTP call to the authority. For a token exchange
	// it is the deadline of the whole exchange: the wait for an exchange
	// slot, every attempt and the pauses between them. Default 10s.
	Timeout Duration `yaml:"timeout"`
	// JWKSRefresh is the interval of the background JWKS refresh.
	// Default 1h, at least 1m.
	JWKSRefresh Duration `yaml:"jwks_refresh"`
	// Protocol is the exchange protocol: obo.ProtocolEntra (the default), the
	// Microsoft On-Behalf-Of request, or obo.ProtocolRFC8693, an OAuth 2.0
	// token exchange (Keycloak, Okta and other authorities).
	Protocol string `yaml:"protocol"`
	// Retries is how many times a token request that failed with a
	// temporary fault (connection error, timeout, 429 or 5xx) is sent
	// again, after a jittered exponential backoff or the authority's
	// Retry-After, within Timeout. Refusals such as invalid_grant,
	// interaction_required or invalid_client are never retried. Default 2,
	// at most 5; 0 turns retries off.
	Retries int `yaml:"retries"`
	// Breaker configures the authority's circuit breaker.
	Breaker Breaker `yaml:"breaker"`
	// MaxConcurrentExchanges bounds the token requests in progress at once
	// (retries included), so that many new users arriving together cannot
	// exceed the authority's rate limit. Default 32, at most 10000; 0
	// means no bound.
	MaxConcurrentExchanges int `yaml:"max_concurrent_exchanges"`
	// QueueTimeout bounds the wait for a free exchange slot when
	// MaxConcurrentExchanges are in progress; then the caller gets 503
	// with Retry-After: 1. The wait counts against Timeout. Default 2s, at
	// most 1m; 0s refuses at once.
	QueueTimeout Duration `yaml:"queue_timeout"`
}

// Breaker configures the circuit breaker of the authority: after Failures
// consecutive token requests failing with a temporary fault, exchanges fail
// at once (503 with Retry-After) for OpenFor without calling the authority;
// then one probe request is let through, whose success closes the breaker
// and whose failure opens it for OpenFor again. Cached tokens are served
// throughout.
type Breaker struct {
	// Failures is the number of consecutive faults that open the breaker.
	// Default 5, at most 1000; 0 turns the breaker off.
	Failures int `yaml:"failures"`
	// OpenFor is how long the breaker stays open. Default 30s, at most 1h.
	OpenFor Duration `yaml:"open_for"`
}

// Client is the gateway's own application registration. Exactly one
// credential must be set: Secret, SecretFile, Certificate, AssertionFile or
// ManagedIdentity.
//
// The variables the AKS workload identity webhook injects are defaults: ID
// from AZURE_CLIENT_ID, TenantID from AZURE_TENANT_ID and, when no
// credential is configured, AssertionFile from AZURE_FEDERATED_TOKEN_FILE.
type Client struct {
	// ID is the application (client) id. Required; the default is the
	// environment variable AZURE_CLIENT_ID.
	ID string `yaml:"id"`
	// TenantID is the application's home tenant (a GUID or domain). The
	// default is AZURE_TENANT_ID. With a multi-tenant authority (common or
	// organizations) it is where app-only (client_credentials) tokens come
	// from, and it is required when a route uses them.
	TenantID string `yaml:"tenant_id"`
	// Certificate is a certificate credential: each exchange carries a
	// client assertion signed with the certificate's key.
	Certificate Certificate `yaml:"certificate"`
	// AssertionFile is the path of a federated token presented as the
	// client assertion (workload identity federation). The file is read on
	// every exchange, because the token rotates. The default, when no other
	// credential is configured, is AZURE_FEDERATED_TOKEN_FILE.
	AssertionFile string `yaml:"assertion_file"`
	// ManagedIdentity is the managed identity credential (Container Apps,
	// App Service, VMs); nil when not configured.
	ManagedIdentity *ManagedIdentity `yaml:"managed_identity"`
	// Secret is the client secret itself, usually written as
	// ${OBO_CLIENT_SECRET}. Use Config.ClientSecret to read the credential.
	Secret string `yaml:"secret"`
	// SecretFile is the path of a file holding the client secret. It is
	// read again on every call of Config.ClientSecret, so that a rotated
	// secret is picked up; surrounding white space is ignored.
	SecretFile string `yaml:"secret_file"`
	// Capabilities are the client capabilities declared on every exchange.
	// ["cp1"] turns on continuous access evaluation: the authority issues
	// long-lived tokens B that downstream APIs revoke with a claims
	// challenge, which the gateway answers by exchanging again with the
	// challenge's claims and retrying the request once.
	Capabilities []string `yaml:"capabilities"`
}

// Certificate is a certificate credential. The files are read again when
// they change, so a renewed certificate is used without a restart.
type Certificate struct {
	// File is the PEM file with the certificate, optionally followed by
	// its chain (and the key, when KeyFile is empty). Required.
	File string `yaml:"file"`
	// KeyFile is the PEM file with the unencrypted private key: RSA
	// (PKCS#1 or PKCS#8, at least 2048 bits) or EC P-256/P-384/P-521
	// (SEC 1 or PKCS#8). Empty means the key is in File.
	KeyFile string `yaml:"key_file"`
	// SendX5C sends the certificate chain in each assertion (x5c), for
	// subject name and issuer authentication.
	SendX5C Bool `yaml:"send_x5c"`
}

// Configured reports whether a certificate credential is configured.
func (c Certificate) Configured() bool { return c.File != "" || c.KeyFile != "" || bool(c.SendX5C) }

// Inbound configures the validation of token A.
type Inbound struct {
	// Audiences lists the accepted aud values of token A. Required.
	Audiences []string `yaml:"audiences"`
	// AllowedTenants lists the tenant ids (tid) whose tokens are accepted.
	// Required with a multi-tenant authority (common or organizations);
	// ["*"] accepts every tenant, with a warning. With a single-tenant
	// authority it is optional: the issuer already names the tenant.
	AllowedTenants []string `yaml:"allowed_tenants"`
	// RequiredScopes, when not empty, lists scopes of which token A's scp
	// must contain at least one.
	RequiredScopes []string `yaml:"required_scopes"`
	// ClockSkew is the tolerance applied to exp and nbf. Default 60s, at
	// most 10m.
	ClockSkew Duration `yaml:"clock_skew"`
	// Algorithms lists the accepted signature algorithms. Default
	// ["RS256"]. Allowed: RS256, RS384, RS512, PS256, PS384, PS512, ES256,
	// ES384 and ES512; none and the symmetric HS* algorithms never are.
	Algorithms []string `yaml:"algorithms"`
	// VerifiedCacheBytes bounds the cache of verified tokens A (keyed by
	// the token's SHA-256, so a token's signature is verified once). Default
	// 16MiB; 0 turns the cache off.
	VerifiedCacheBytes ByteSize `yaml:"verified_cache_bytes"`
	// StripHeaders names further request headers the gateway removes from
	// every inbound request before proxying it, in addition to the identity
	// headers it always removes (proxy.IdentityHeaders: App Service
	// authentication's X-MS-CLIENT-PRINCIPAL* and X-MS-TOKEN-*, the
	// X-Auth-Request-* of oauth2-proxy, X-Remote-User, client certificate
	// and path override headers). Every X-Forwarded-* header and Forwarded
	// are always replaced by the gateway's own. Names are matched without
	// regard to case, and "_" matches "-" (as CGI-style servers read them).
	StripHeaders []string `yaml:"strip_headers"`
}

// Route maps a path prefix to a downstream API: a request for
// PathPrefix + "/rest" is sent to Upstream + "/rest" with a token for Scopes.
type Route struct {
	// Name identifies the route in logs and metrics labels. Required,
	// unique, made of [a-z0-9_-].
	Name string `yaml:"name"`
	// PathPrefix is the path the route answers under, such as "/graph".
	// Required and unique; it starts with "/", does not end with "/" and
	// contains no "..", "%" or "//".
	PathPrefix string `yaml:"path_prefix"`
	// Upstream is the absolute http(s) base URL of the downstream API,
	// without query, fragment or user information. Required.
	Upstream string `yaml:"upstream"`
	// Scopes are requested for token B. Required and not empty.
	Scopes []string `yaml:"scopes"`
	// Flow is obo.FlowOnBehalfOf (the default), obo.FlowClientCredentials or
	// an agent flow: obo.FlowAgentApp, obo.FlowAgentUser, obo.FlowAgentOnBehalfOf.
	Flow string `yaml:"flow"`
	// AgentIdentity fixes the agent identity of an agent flow; empty means
	// the request names it (X-Agent-Identity, or AgentIdentity on the
	// token API).
	AgentIdentity string `yaml:"agent_identity"`
	// AgentUser fixes the agent user (UPN or object id) of obo.FlowAgentUser;
	// empty means the request names it (X-Agent-User, or AgentUsername or
	// AgentUserId on the token API).
	AgentUser string `yaml:"agent_user"`
	// AllowOverrides names the token API overrides that may widen what
	// this route grants, in addition to TokenAPI.AllowOverrides.
	AllowOverrides []string `yaml:"allow_overrides"`
	// Timeout bounds the wait for the downstream response headers.
	// Default 30s.
	Timeout Duration `yaml:"timeout"`
	// ReplayMaxBytes is the largest request body kept in memory so that
	// the request can be sent again after a continuous access evaluation
	// challenge (client.capabilities: [cp1]). Larger bodies stream and are
	// not retried. Default 64KiB; 0 disables the retry for the route.
	ReplayMaxBytes ByteSize `yaml:"replay_max_bytes"`
	// TokenType is the kind of token B: TokenTypeAccessToken (the
	// default) or TokenTypeSAML2, a SAML 2.0 assertion for SAML-protected
	// services (On-Behalf-Of only), presented as "Authorization: SAML
	// <base64>" unless AuthHeader and AuthFormat say otherwise.
	TokenType string `yaml:"token_type"`
	// Audience is the RFC 8693 audience of token B (authority.protocol
	// rfc8693 only); with it, Scopes may be empty.
	Audience string `yaml:"audience"`
	// RequestedTokenType is the RFC 8693 requested_token_type, a token
	// type URI (authority.protocol rfc8693 only). TokenType saml2 implies
	// urn:ietf:params:oauth:token-type:saml2.
	RequestedTokenType string `yaml:"requested_token_type"`
	// AuthHeader is the request header that carries token B to the
	// upstream. Default "Authorization". Token A is removed either way.
	AuthHeader string `yaml:"auth_header"`
	// AuthFormat is the value of AuthHeader, with one placeholder:
	// {token} (token B as issued), {base64} (the standard base64 of its
	// content; for SAML the assertion XML) or {base64url}. Default
	// "Bearer {token}", or "SAML {base64}" for SAML routes.
	AuthFormat string `yaml:"auth_format"`
	// ForwardCookies sends the inbound Cookie header to the upstream.
	// Default false: cookies are the caller's session with API A, and are
	// removed before proxying.
	ForwardCookies Bool `yaml:"forward_cookies"`
	// WebSocket forwards WebSocket upgrade requests, with token B on the
	// upgrade request. Default false: the Upgrade header is removed and
	// the request goes on as a plain one. h2c is never forwarded.
	WebSocket Bool `yaml:"websocket"`
}

// The values of Route.TokenType.
const (
	// TokenTypeAccessToken is an OAuth access token. It is the default.
	TokenTypeAccessToken = "access_token"
	// TokenTypeSAML2 is a SAML 2.0 assertion.
	TokenTypeSAML2 = "saml2"
)

// RequestedTokenTypeURI returns the requested_token_type the route's
// exchanges send: RequestedTokenType, or the SAML 2.0 token type URI for a
// saml2 route, or "" for an access token.
func (r Route) RequestedTokenTypeURI() string {
	if r.RequestedTokenType != "" {
		return r.RequestedTokenType
	}
	if r.TokenType == TokenTypeSAML2 {
		return obo.TokenTypeSAML2
	}
	return ""
}

// Presentation returns how the route presents token B to its upstream: the
// header and the format, with the defaults for the route's token type
// filled in. It assumes the route is valid.
func (r Route) Presentation() obo.Presentation {
	p, err := obo.NewPresentation(r.AuthHeader, r.AuthFormat, r.RequestedTokenTypeURI())
	if err != nil {
		return obo.DefaultPresentation(r.RequestedTokenTypeURI())
	}
	return p
}

// Cache configures the token B cache.
type Cache struct {
	// MaxBytes bounds the memory the cache uses. Default 64MiB, at least
	// 1MiB.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// Key selects what token B is cached per: proxy.KeyUser (the default:
	// tenant, user, scopes and the token's authentication contexts) or
	// proxy.KeyAssertion (the SHA-256 of token A itself, as MSAL does).
	Key string `yaml:"key"`
	// Redis, when its URL is set, is a second level shared by the
	// replicas, encrypted at rest.
	Redis Redis `yaml:"redis"`
}

// Default values applied by Parse to what the file leaves out; where a
// package has a default of its own, it is that.
const (
	defaultListen          = "127.0.0.1:8080"
	defaultAdminListen     = "127.0.0.1:9090"
	defaultShutdownTimeout = Duration(15 * time.Second)
	defaultLogLevel        = "info"
	defaultLogFormat       = "text"
	defaultLogRequests     = "failures"
	defaultAuthTimeout     = Duration(obo.DefaultTimeout)
	defaultRetries         = obo.DefaultRetries
	defaultBreakerFailures = obo.DefaultBreakerFailures
	defaultBreakerOpenFor  = Duration(obo.DefaultBreakerOpenFor)
	defaultMaxExchanges    = obo.DefaultMaxConcurrent
	defaultQueueTimeout    = Duration(obo.DefaultQueueTimeout)
	defaultJWKSRefresh     = Duration(inbound.DefaultKeyRefresh)
	defaultClockSkew       = Duration(60 * time.Second)
	defaultAlgorithm       = inbound.DefaultAlgorithm
	defaultRouteTimeout    = Duration(proxy.DefaultTimeout)
	defaultCacheMaxBytes   = ByteSize(cache.DefaultMaxBytes)
	defaultVerifiedBytes   = 16 * MiB
	defaultReplayMaxBytes  = 64 * KiB
)

// The variables the AKS workload identity webhook injects into a pod whose
// service account is annotated with azure.workload.identity/client-id.
const (
	EnvAzureClientID           = "AZURE_CLIENT_ID"
	EnvAzureTenantID           = "AZURE_TENANT_ID"
	EnvAzureFederatedTokenFile = "AZURE_FEDERATED_TOKEN_FILE"
	EnvAzureAuthorityHost      = "AZURE_AUTHORITY_HOST"
)

// defaultAuthorityHost is the Entra authority host of the public cloud,
// used with AZURE_TENANT_ID when AZURE_AUTHORITY_HOST is not set.
const defaultAuthorityHost = "https://login.microsoftonline.com/"
