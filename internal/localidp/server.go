package localidp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTenantID is the tenant ID a Server uses when Options.TenantID is
// empty.
const DefaultTenantID = "72f988bf-0000-4000-8000-000000000001"

// DefaultClientAppID is the application ID of the (imaginary) client
// application that requested the user tokens minted by IssueToken. It is the
// default value of their azp claim.
const DefaultClientAppID = "c0ffee00-0000-4000-8000-00000000c11e"

// Grant type values, as they appear in the grant_type form field and in
// IssuedToken.Grant.
const (
	// GrantOnBehalfOf is the grant type of the On-Behalf-Of exchange.
	GrantOnBehalfOf = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// GrantClientCredentials is the grant type of the app-only client
	// credentials flow.
	GrantClientCredentials = "client_credentials"
	// GrantTokenExchange is the grant type of an RFC 8693 token exchange.
	GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
)

const (
	defaultAddr          = "127.0.0.1:0"
	defaultTokenLifetime = time.Hour
	maxFormBytes         = 1 << 20
)

// Options configures a Server. The zero value of each field selects the
// documented default, but Clients must name at least one client.
type Options struct {
	// Addr is the TCP address the server listens on. The default is
	// "127.0.0.1:0", a free port on the IPv4 loopback interface.
	Addr string
	// TenantID is the directory (tenant) ID that appears in every URL and
	// in the tid claim. The default is DefaultTenantID. It must not contain
	// '/', '{', '}' or white space.
	TenantID string
	// Clients are the registered confidential clients (the "API A" of the
	// On-Behalf-Of flow) that may call the token endpoint. At least one is
	// required; their IDs must be unique and non-empty.
	Clients []Client
	// TokenLifetime is the lifetime of the tokens issued by the token
	// endpoint (On-Behalf-Of and client credentials). The default is one
	// hour.
	TokenLifetime time.Duration
	// RefreshIn, when positive, makes token responses carry refresh_in,
	// this duration in whole seconds.
	RefreshIn time.Duration
	// ClockSkew is the tolerance applied to the exp and nbf claims of
	// assertions presented to the token endpoint. The default is zero:
	// an assertion is refused from the second it expires.
	ClockSkew time.Duration
	// Logger receives one debug record per token request (never tokens or
	// secrets) and the errors of the HTTP server. The default discards
	// everything.
	Logger *slog.Logger
	// GuestTenants are further tenants the server hosts, for multi-tenant
	// applications: every registered client is available in each of them,
	// and each has its own URLs, issuer and token endpoint. The same rules
	// as for TenantID apply.
	GuestTenants []string
	// TLS makes the server serve HTTPS with a self-signed certificate for
	// 127.0.0.1, ::1 and localhost; HTTPClient returns a client that trusts
	// it. Libraries that insist on an https authority (MSAL) need it.
	TLS bool
	// RejectAssertionReplay makes the token endpoint refuse a client
	// assertion whose jti it has already accepted. Entra accepts a signed
	// assertion again until it expires, so this is off by default.
	RejectAssertionReplay bool
	// AgentIdentities are the agent identities (Microsoft Entra Agent ID)
	// of the registered clients that are their blueprints, with their
	// agent users.
	AgentIdentities []AgentIdentity
	// IssueRefreshTokens makes token answers carry a refresh_token (an
	// opaque random string, recorded in IssuedToken.RefreshToken), as
	// Entra does when offline_access is granted, so that tests can check
	// the client never leaks it. It is never accepted back.
	IssueRefreshTokens bool
}

// Client is a confidential client application registered with the Server.
type Client struct {
	// ID is the application (client) ID, for example a GUID.
	ID string
	// Secret is the client secret the client authenticates with, sent as
	// the client_secret form field or with HTTP Basic authentication. An
	// empty Secret means the client has no secret and can never
	// authenticate with one.
	Secret string
	// IdentifierURI is the application ID URI of the API the client
	// exposes, for example "api://api-a". Assertions presented by this
	// client may carry aud = ID or aud = IdentifierURI.
	IdentifierURI string
	// Certificates are the certificates registered as credentials of the
	// client. A client assertion signed with the key of one of them (and
	// naming it with x5t#S256 or x5t) authenticates the client.
	Certificates []*x509.Certificate
	// FederatedCredentials are the federated identity credentials of the
	// client (workload identity federation): a token of a trusted issuer
	// presented as the client assertion authenticates the client.
	FederatedCredentials []FederatedCredential
}

// FederatedCredential trusts tokens of another identity provider (such as a
// Kubernetes cluster's service account issuer) as client assertions.
type FederatedCredential struct {
	// Issuer is the iss the token must carry. Empty means the server's own
	// ServiceAccountIssuer, whose tokens IssueServiceAccountToken mints.
	Issuer string
	// TenantIssuer trusts the server's Issuer() instead, as an application
	// trusts a managed identity of its tenant (issuer
	// https://login.microsoftonline.com/{tid}/v2.0, subject the identity's
	// object id): the tokens of a ManagedIdentityEndpoint.
	TenantIssuer bool
	// Subject is the sub the token must carry, such as
	// "system:serviceaccount:<namespace>:<name>".
	Subject string
	// Audiences lists the accepted aud values. Empty means
	// ["api://AzureADTokenExchange"], Entra's default.
	Audiences []string
}

// Server is a running local identity provider. Create it with New and stop
// it with Close. All methods are safe for concurrent use.
type Server struct {
	tenant        string
	tenants       map[string]bool // every hosted tenant, lower-cased
	tenantList    []string        // every hosted tenant, home first
	rejectReplay  bool
	refreshTokens bool
	clients       map[string]Client
	agents        map[string]AgentIdentity
	firstClient   Client
	tokenLifetime time.Duration
	refreshIn     time.Duration
	clockSkew     time.Duration
	logger        *slog.Logger

	baseURL   string
	addr      string // the listener's address, for Restart
	handler   http.Handler
	tlsConfig *tls.Config
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	// srvMu guards srv and served, which Kill and Restart replace.
	srvMu  sync.Mutex
	srv    *http.Server
	served chan struct{} // closed when srv's Serve returns

	keysMu sync.RWMutex
	keys   []*signingKey // published keys, oldest first
	signer *signingKey   // the key new tokens are signed with

	behaviorMu      sync.Mutex
	defaultBehavior Behavior
	userBehaviors   map[string]Behavior
	legBehaviors    map[AgentLeg]Behavior
	nextBehavior    Behavior // for the next nextCount requests (SetNextBehavior)
	nextCount       int

	tokenInFlight    atomic.Int64 // token requests being served
	maxTokenInFlight atomic.Int64 // the most served at once

	latency atomic.Int64 // time.Duration
	hang    atomic.Bool

	tokenRequests             atomic.Int64
	onBehalfOfRequests        atomic.Int64
	clientCredentialsRequests atomic.Int64
	tokenExchangeRequests     atomic.Int64

	tlsCert *x509.Certificate // nil without Options.TLS

	jtiMu sync.Mutex
	jtis  map[string]time.Time // accepted client assertion ids, until they expire

	recordMu      sync.Mutex
	oboRequestsBy map[string]int64
	legRequests   map[AgentLeg]int64
	issued        []IssuedToken
	lastForm      url.Values
	forms         []url.Values // every token request's form, oldest first
	minted        []string     // every token IssueToken signed
}

// New validates opts, generates the first RSA signing key, starts listening
// on opts.Addr and serves requests in the background until Close is called.
func New(opts Options) (*Server, error) {
	s := &Server{
		tenant:        opts.TenantID,
		clients:       make(map[string]Client, len(opts.Clients)),
		tokenLifetime: opts.TokenLifetime,
		refreshIn:     opts.RefreshIn,
		clockSkew:     opts.ClockSkew,
		logger:        opts.Logger,
		done:          make(chan struct{}),
		userBehaviors: make(map[string]Behavior),
		legBehaviors:  make(map[AgentLeg]Behavior),
		oboRequestsBy: make(map[string]int64),
		legRequests:   make(map[AgentLeg]int64),
		tenants:       make(map[string]bool),
		rejectReplay:  opts.RejectAssertionReplay,
		refreshTokens: opts.IssueRefreshTokens,
		jtis:          make(map[string]time.Time),
	}
	if s.tenant == "" {
		s.tenant = DefaultTenantID
	}
	for _, t := range append([]string{s.tenant}, opts.GuestTenants...) {
		if !validTenantID(t) {
			return nil, fmt.Errorf("localidp: invalid tenant ID %q", t)
		}
		if s.tenants[strings.ToLower(t)] {
			return nil, fmt.Errorf("localidp: duplicate tenant ID %q", t)
		}
		s.tenants[strings.ToLower(t)] = true
		s.tenantList = append(s.tenantList, t)
	}
	if len(opts.Clients) == 0 {
		return nil, errors.New("localidp: at least one client is required")
	}
	for i, c := range opts.Clients {
		if c.ID == "" {
			return nil, fmt.Errorf("localidp: client %d has no ID", i)
		}
		if _, dup := s.clients[c.ID]; dup {
			return nil, fmt.Errorf("localidp: duplicate client ID %q", c.ID)
		}
		s.clients[c.ID] = c
	}
	s.firstClient = opts.Clients[0]
	if err := s.registerAgents(opts.AgentIdentities); err != nil {
		return nil, err
	}
	if s.tokenLifetime < 0 || s.refreshIn < 0 || s.clockSkew < 0 {
		return nil, errors.New("localidp: TokenLifetime, RefreshIn and ClockSkew must not be negative")
	}
	if s.tokenLifetime == 0 {
		s.tokenLifetime = defaultTokenLifetime
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if _, err := s.RotateKey(); err != nil {
		return nil, err
	}

	addr := opts.Addr
	if addr == "" {
		addr = defaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("localidp: listen: %w", err)
	}
	scheme := "http"
	var tlsConfig *tls.Config
	if opts.TLS {
		cert, err := selfSignedCertificate()
		if err != nil {
			ln.Close()
			return nil, err
		}
		s.tlsCert = cert.Leaf
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		scheme = "https"
	}
	s.baseURL = scheme + "://" + dialableAddr(ln.Addr())
	s.addr = ln.Addr().String()
	s.tlsConfig = tlsConfig

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.handleDiscovery)
	mux.HandleFunc("GET /{tenant}/.well-known/openid-configuration", s.handleV1Discovery)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", s.handleJWKS)
	mux.HandleFunc("GET /{tenant}/discovery/keys", s.handleJWKS)
	mux.HandleFunc("/{tenant}/oauth2/v2.0/token", s.handleToken)
	mux.HandleFunc("GET /common/discovery/instance", s.handleInstanceDiscovery)
	s.handler = mux
	s.srvMu.Lock()
	s.serve(ln)
	s.srvMu.Unlock()
	s.logger.Info("localidp: listening", "base_url", s.baseURL, "tenant", s.tenant)
	return s, nil
}

// BaseURL returns the root URL of the server, "http://127.0.0.1:PORT".
func (s *Server) BaseURL() string { return s.baseURL }

// Authority returns the authority URL, BaseURL()/{tenant}/v2.0: the value
// for the gateway's authority.url, below which discovery is served.
func (s *Server) Authority() string { return s.baseURL + "/" + s.tenant + "/v2.0" }

// Issuer returns the issuer of every token the server signs. Like Entra ID
// v2 (https://login.microsoftonline.com/{tid}/v2.0) it equals Authority().
func (s *Server) Issuer() string { return s.Authority() }

// JWKSURL returns the URL of the JSON Web Key Set,
// BaseURL()/{tenant}/discovery/v2.0/keys.
func (s *Server) JWKSURL() string { return s.baseURL + "/" + s.tenant + "/discovery/v2.0/keys" }

// TokenEndpoint returns the URL of the token endpoint,
// BaseURL()/{tenant}/oauth2/v2.0/token.
func (s *Server) TokenEndpoint() string {
	return s.baseURL + "/" + s.tenant + "/oauth2/v2.0/token"
}

// TenantID returns the tenant ID of the server.
func (s *Server) TenantID() string { return s.tenant }
