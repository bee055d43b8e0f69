package localidp

import (
	"encoding/json"
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
}

// Server is a running local identity provider. Create it with New and stop
// it with Close. All methods are safe for concurrent use.
type Server struct {
	tenant        string
	clients       map[string]Client
	firstClient   Client
	tokenLifetime time.Duration
	refreshIn     time.Duration
	clockSkew     time.Duration
	logger        *slog.Logger

	baseURL   string
	srv       *http.Server
	served    chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	keysMu sync.RWMutex
	keys   []*signingKey // published keys, oldest first
	signer *signingKey   // the key new tokens are signed with

	behaviorMu      sync.Mutex
	defaultBehavior Behavior
	userBehaviors   map[string]Behavior

	latency atomic.Int64 // time.Duration
	hang    atomic.Bool

	tokenRequests             atomic.Int64
	onBehalfOfRequests        atomic.Int64
	clientCredentialsRequests atomic.Int64

	recordMu      sync.Mutex
	oboRequestsBy map[string]int64
	issued        []IssuedToken
	lastForm      url.Values
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
		served:        make(chan struct{}),
		done:          make(chan struct{}),
		userBehaviors: make(map[string]Behavior),
		oboRequestsBy: make(map[string]int64),
	}
	if s.tenant == "" {
		s.tenant = DefaultTenantID
	}
	if strings.ContainsAny(s.tenant, "/{}% \t\r\n") {
		return nil, fmt.Errorf("localidp: invalid tenant ID %q", s.tenant)
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
	s.baseURL = "http://" + dialableAddr(ln.Addr())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /"+s.tenant+"/v2.0/.well-known/openid-configuration", s.handleDiscovery)
	mux.HandleFunc("GET /"+s.tenant+"/discovery/v2.0/keys", s.handleJWKS)
	mux.HandleFunc("/"+s.tenant+"/oauth2/v2.0/token", s.handleToken)
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("localidp: serve", "error", err)
		}
	}()
	s.logger.Info("localidp: listening", "base_url", s.baseURL, "tenant", s.tenant)
	return s, nil
}

// dialableAddr turns a listener address into a host:port a client can dial:
// an unspecified IP (0.0.0.0 or ::) becomes 127.0.0.1.
func dialableAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port))
}

// Close stops the server: it closes the listener and every connection,
// releases token requests blocked by SetHang or SetLatency, and waits for
// the serving goroutine to finish. Calling Close again returns the first
// result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.closeErr = s.srv.Close()
		<-s.served
	})
	return s.closeErr
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

func (s *Server) handleDiscovery(w http.ResponseWriter, _ *http.Request) {
	base := s.baseURL + "/" + s.tenant
	doc := map[string]any{
		"issuer":                                s.Issuer(),
		"jwks_uri":                              s.JWKSURL(),
		"token_endpoint":                        s.TokenEndpoint(),
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"subject_types_supported":               []string{"pairwise"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"claims_supported": []string{
			"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
			"msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
			"name", "tid", "ver", "at_hash", "c_hash", "email",
		},
		"request_uri_parameter_supported": false,
		"tenant_region_scope":             nil,
		"cloud_instance_name":             "microsoftonline.com",
	}
	writeJSON(w, http.StatusOK, doc)
}

func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	body, err := s.jwksJSON()
	if err != nil {
		s.logger.Error("localidp: marshal JWKS", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
