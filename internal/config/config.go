package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/inbound"
	"github.com/obo-gateway/obo-gateway/internal/smallfile"
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

// Load reads the configuration file at path and parses it with Parse,
// expanding ${VAR} references from the process environment. It returns
// Problems when the content is not a valid configuration, and another error
// when the file cannot be read.
func Load(path string) (*Config, error) {
	data, err := smallfile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return Parse(data, path, nil)
}

// Parse parses the YAML configuration data. file names the source in the
// problems reported and may be empty. lookupEnv resolves ${NAME} references
// in string values; when nil, os.LookupEnv is used.
//
// Parse expands the references, decodes strictly, applies the defaults and
// calls Validate. When anything is wrong it returns a nil Config and a
// Problems error listing every problem found, sorted by line.
func Parse(data []byte, file string, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	root, problems := parseDocument(data, file)
	if root == nil {
		return nil, problems
	}
	d := newDecoder(file, lookupEnv)
	d.problems = problems
	var c Config
	d.decode(root, reflect.ValueOf(&c).Elem(), "")
	c.applyManagedIdentity(d.lines["client.managed_identity"] > 0, lookupEnv)
	c.applyEnvDefaults(lookupEnv)
	c.applyDefaults(func(key string) bool { return d.set[key] })
	for _, p := range c.validate() {
		if d.hasFailed(p.Key) {
			continue
		}
		if v, ok := c.fromEnv[p.Key]; ok {
			p.Message += " (the value comes from the environment variable " + v + ")"
		}
		p.File = file
		p.Line = d.lineOf(p.Key)
		d.problems = append(d.problems, p)
	}
	if len(d.problems) > 0 {
		sortProblems(d.problems)
		return nil, Problems(d.problems)
	}
	return &c, nil
}

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

// applyEnvDefaults fills in what the file leaves out from the AKS workload
// identity variables: client.id (AZURE_CLIENT_ID), client.tenant_id
// (AZURE_TENANT_ID), client.assertion_file (AZURE_FEDERATED_TOKEN_FILE,
// only when no credential is configured) and authority.url
// (AZURE_AUTHORITY_HOST + AZURE_TENANT_ID + "/v2.0", only when no authority
// endpoint is configured and the protocol is entra).
func (c *Config) applyEnvDefaults(lookupEnv func(string) (string, bool)) {
	get := func(name string) string {
		v, _ := lookupEnv(name)
		return strings.TrimSpace(v)
	}
	set := func(key string, dst *string, name string) {
		if *dst != "" {
			return
		}
		if v := get(name); v != "" {
			*dst = v
			if c.fromEnv == nil {
				c.fromEnv = make(map[string]string)
			}
			c.fromEnv[key] = name
		}
	}
	set("client.id", &c.Client.ID, EnvAzureClientID)
	set("client.tenant_id", &c.Client.TenantID, EnvAzureTenantID)
	cl := c.Client
	if cl.Secret == "" && cl.SecretFile == "" && !cl.Certificate.Configured() && cl.ManagedIdentity == nil {
		set("client.assertion_file", &c.Client.AssertionFile, EnvAzureFederatedTokenFile)
	}
	a := c.Authority
	if a.URL == "" && a.Issuer == "" && a.JWKSURI == "" && a.TokenEndpoint == "" &&
		(a.Protocol == "" || a.Protocol == obo.ProtocolEntra) && c.Client.TenantID != "" {
		host := get(EnvAzureAuthorityHost)
		if host == "" {
			host = defaultAuthorityHost
		}
		c.Authority.URL = strings.TrimRight(host, "/") + "/" + c.Client.TenantID + "/v2.0"
		if c.fromEnv == nil {
			c.fromEnv = make(map[string]string)
		}
		c.fromEnv["authority.url"] = EnvAzureAuthorityHost + " and " + EnvAzureTenantID
	}
}

// Warnings returns what is valid but risky in the configuration, one
// sentence each, for check and the startup log: accepting every tenant, a
// certificate close to its expiry.
func (c *Config) Warnings() []string {
	var w []string
	if slices.Contains(c.Inbound.AllowedTenants, "*") {
		w = append(w, `inbound.allowed_tenants: "*" accepts tokens of users of every Microsoft Entra tenant, `+
			`so any organisation's users can call through the gateway; list the tenant ids instead unless that is intended`)
	}
	w = append(w, c.agentWarnings()...)
	for i, r := range c.Routes {
		if u, err := url.Parse(r.Upstream); err == nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
			w = append(w, fmt.Sprintf("routes[%d].upstream: %s sends token B without TLS to a host that is not loopback; "+
				"use https unless something else encrypts the hop (a service mesh with mutual TLS)", i, u.Redacted()))
		}
	}
	if c.Client.Certificate.File != "" {
		if ck, err := obo.LoadCertificateKey(c.Client.Certificate.File, c.Client.Certificate.KeyFile); err == nil {
			if left := time.Until(ck.Leaf().NotAfter); left > 0 && left < 30*24*time.Hour {
				w = append(w, fmt.Sprintf("client.certificate.file: the certificate (x5t#S256 %s) expires on %s, in less than 30 days",
					ck.Thumbprint(), ck.Leaf().NotAfter.UTC().Format(time.RFC3339)))
			}
		}
	}
	return w
}

var yamlErrorLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseDocument parses data into a node tree and returns its root content
// node, or nil with the problems when there is nothing usable.
func parseDocument(data []byte, file string) (*yaml.Node, Problems) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Problems{{File: file, Message: "the configuration file is empty"}}
		}
		return nil, Problems{yamlProblem(file, err)}
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, Problems{{File: file, Line: doc.Line, Message: "the configuration file is empty"}}
	}
	var problems Problems
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		problems = append(problems, Problem{File: file, Line: next.Line,
			Message: "the file holds more than one YAML document (separated by ---); put the whole configuration in one"})
	case !errors.Is(err, io.EOF):
		problems = append(problems, yamlProblem(file, err))
	}
	return doc.Content[0], problems
}

func yamlProblem(file string, err error) Problem {
	msg := err.Error()
	if m := yamlErrorLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{File: file, Line: line, Message: "invalid YAML: " + m[2]}
	}
	return Problem{File: file, Message: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

// applyDefaults fills in the defaults. Strings and lists get theirs when
// empty; durations and sizes when isSet reports that the file did not set
// them, so that an explicit 0s is kept (and validated).
func (c *Config) applyDefaults(isSet func(key string) bool) {
	setString := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	setDuration := func(key string, d *Duration, v Duration) {
		if !isSet(key) {
			*d = v
		}
	}
	setString(&c.Listen, defaultListen)
	setString(&c.AdminListen, defaultAdminListen)
	setDuration("shutdown_timeout", &c.ShutdownTimeout, defaultShutdownTimeout)
	setString(&c.Log.Level, defaultLogLevel)
	setString(&c.Log.Format, defaultLogFormat)
	setString(&c.Log.Requests, defaultLogRequests)
	setDuration("authority.timeout", &c.Authority.Timeout, defaultAuthTimeout)
	setDuration("authority.jwks_refresh", &c.Authority.JWKSRefresh, defaultJWKSRefresh)
	setString(&c.Authority.Protocol, obo.ProtocolEntra)
	setInt := func(key string, n *int, v int) {
		if !isSet(key) {
			*n = v
		}
	}
	setInt("authority.retries", &c.Authority.Retries, defaultRetries)
	setInt("authority.breaker.failures", &c.Authority.Breaker.Failures, defaultBreakerFailures)
	setDuration("authority.breaker.open_for", &c.Authority.Breaker.OpenFor, defaultBreakerOpenFor)
	setInt("authority.max_concurrent_exchanges", &c.Authority.MaxConcurrentExchanges, defaultMaxExchanges)
	setDuration("authority.queue_timeout", &c.Authority.QueueTimeout, defaultQueueTimeout)
	setDuration("inbound.clock_skew", &c.Inbound.ClockSkew, defaultClockSkew)
	if len(c.Inbound.Algorithms) == 0 {
		c.Inbound.Algorithms = []string{defaultAlgorithm}
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		setString(&r.Flow, obo.FlowOnBehalfOf)
		setString(&r.TokenType, TokenTypeAccessToken)
		setDuration("routes["+strconv.Itoa(i)+"].timeout", &r.Timeout, defaultRouteTimeout)
		if !isSet("routes[" + strconv.Itoa(i) + "].replay_max_bytes") {
			r.ReplayMaxBytes = defaultReplayMaxBytes
		}
	}
	if !isSet("inbound.verified_cache_bytes") {
		c.Inbound.VerifiedCacheBytes = defaultVerifiedBytes
	}
	setString(&c.Cache.Key, proxy.KeyUser)
	c.applyRedisDefaults(isSet)
	if !isSet("cache.max_bytes") {
		c.Cache.MaxBytes = defaultCacheMaxBytes
	}
}

// ClientSecret returns the client secret: Client.Secret when it is set,
// otherwise the content of Client.SecretFile with surrounding white space
// removed. The file is read on every call, so that a rotated secret is
// picked up. The error never contains the secret.
func (c *Config) ClientSecret() (string, error) {
	if c.Client.Secret != "" {
		return c.Client.Secret, nil
	}
	if c.Client.SecretFile == "" {
		return "", errors.New("client: no client secret is configured (set client.secret or client.secret_file)")
	}
	secret, err := smallfile.ReadSecret(c.Client.SecretFile)
	if err != nil {
		return "", fmt.Errorf("client.secret_file: %w", err)
	}
	return secret, nil
}

// Redacted returns a deep copy of c that is safe to log: Client.Secret is
// replaced by "REDACTED" when it is set. c itself is not modified.
func (c *Config) Redacted() *Config {
	r := *c
	if r.Client.Secret != "" {
		r.Client.Secret = "REDACTED"
	}
	if r.Cache.Redis.Password != "" {
		r.Cache.Redis.Password = "REDACTED"
	}
	// Validation refuses a password in the URL; a configuration that was
	// not validated is still logged without it.
	if u, err := url.Parse(r.Cache.Redis.URL); err == nil && u.User != nil {
		r.Cache.Redis.URL = u.Redacted()
	} else if err != nil && strings.Contains(r.Cache.Redis.URL, "@") {
		r.Cache.Redis.URL = "REDACTED"
	}
	r.Client.Capabilities = cloneStrings(c.Client.Capabilities)
	r.Inbound.Audiences = cloneStrings(c.Inbound.Audiences)
	r.Inbound.AllowedTenants = cloneStrings(c.Inbound.AllowedTenants)
	r.Inbound.RequiredScopes = cloneStrings(c.Inbound.RequiredScopes)
	r.Inbound.Algorithms = cloneStrings(c.Inbound.Algorithms)
	r.Inbound.StripHeaders = cloneStrings(c.Inbound.StripHeaders)
	r.Agents.Identities = cloneStrings(c.Agents.Identities)
	r.Agents.Tenants = cloneStrings(c.Agents.Tenants)
	r.TokenAPI.AllowOverrides = cloneStrings(c.TokenAPI.AllowOverrides)
	if c.Routes != nil {
		r.Routes = make([]Route, len(c.Routes))
		for i, route := range c.Routes {
			route.Scopes = cloneStrings(route.Scopes)
			route.AllowOverrides = cloneStrings(route.AllowOverrides)
			r.Routes[i] = route
		}
	}
	return &r
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s...)
}
