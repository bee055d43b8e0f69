package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
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
}

// Log configures logging.
type Log struct {
	// Level is one of debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
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
	// Timeout bounds each HTTP call to the authority. Default 10s.
	Timeout Duration `yaml:"timeout"`
	// JWKSRefresh is the interval of the background JWKS refresh.
	// Default 1h, at least 1m.
	JWKSRefresh Duration `yaml:"jwks_refresh"`
}

// Client is the gateway's own application registration. Exactly one of
// Secret and SecretFile must be set.
type Client struct {
	// ID is the application (client) id. Required.
	ID string `yaml:"id"`
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

// Inbound configures the validation of token A.
type Inbound struct {
	// Audiences lists the accepted aud values of token A. Required.
	Audiences []string `yaml:"audiences"`
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
}

// The values of Route.Flow.
const (
	// FlowOnBehalfOf exchanges the user's token A for token B with the
	// On-Behalf-Of flow. It is the default.
	FlowOnBehalfOf = "on_behalf_of"
	// FlowClientCredentials obtains an app-only token with the client
	// credentials flow; its scopes must end in "/.default".
	FlowClientCredentials = "client_credentials"
)

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
	// Flow is FlowOnBehalfOf (the default) or FlowClientCredentials.
	Flow string `yaml:"flow"`
	// Timeout bounds the wait for the downstream response headers.
	// Default 30s.
	Timeout Duration `yaml:"timeout"`
	// ReplayMaxBytes is the largest request body kept in memory so that
	// the request can be sent again after a continuous access evaluation
	// challenge (client.capabilities: [cp1]). Larger bodies stream and are
	// not retried. Default 64KiB; 0 disables the retry for the route.
	ReplayMaxBytes ByteSize `yaml:"replay_max_bytes"`
}

// Cache configures the token B cache.
type Cache struct {
	// MaxBytes bounds the memory the cache uses. Default 64MiB, at least
	// 1MiB.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// Key selects what token B is cached per: CacheKeyUser (the default:
	// tenant, user, scopes and the token's authentication contexts) or
	// CacheKeyAssertion (the SHA-256 of token A itself, as MSAL does).
	Key string `yaml:"key"`
}

// The values of Cache.Key.
const (
	CacheKeyUser      = "user"
	CacheKeyAssertion = "assertion"
)

// Default values applied by Parse to what the file leaves out.
const (
	defaultListen          = "127.0.0.1:8080"
	defaultAdminListen     = "127.0.0.1:9090"
	defaultShutdownTimeout = Duration(15 * time.Second)
	defaultLogLevel        = "info"
	defaultLogFormat       = "text"
	defaultAuthTimeout     = Duration(10 * time.Second)
	defaultJWKSRefresh     = Duration(time.Hour)
	defaultClockSkew       = Duration(60 * time.Second)
	defaultAlgorithm       = "RS256"
	defaultRouteTimeout    = Duration(30 * time.Second)
	defaultCacheMaxBytes   = 64 * MiB
	defaultVerifiedBytes   = 16 * MiB
	defaultReplayMaxBytes  = 64 * KiB
)

// Load reads the configuration file at path and parses it with Parse,
// expanding ${VAR} references from the process environment. It returns
// Problems when the content is not a valid configuration, and another error
// when the file cannot be read.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
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
	c.applyDefaults(func(key string) bool { return d.set[key] })
	for _, p := range c.validate() {
		if d.hasFailed(p.Key) {
			continue
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
	setDuration("authority.timeout", &c.Authority.Timeout, defaultAuthTimeout)
	setDuration("authority.jwks_refresh", &c.Authority.JWKSRefresh, defaultJWKSRefresh)
	setDuration("inbound.clock_skew", &c.Inbound.ClockSkew, defaultClockSkew)
	if len(c.Inbound.Algorithms) == 0 {
		c.Inbound.Algorithms = []string{defaultAlgorithm}
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		setString(&r.Flow, FlowOnBehalfOf)
		setDuration("routes["+strconv.Itoa(i)+"].timeout", &r.Timeout, defaultRouteTimeout)
		if !isSet("routes[" + strconv.Itoa(i) + "].replay_max_bytes") {
			r.ReplayMaxBytes = defaultReplayMaxBytes
		}
	}
	if !isSet("inbound.verified_cache_bytes") {
		c.Inbound.VerifiedCacheBytes = defaultVerifiedBytes
	}
	setString(&c.Cache.Key, CacheKeyUser)
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
	data, err := os.ReadFile(c.Client.SecretFile)
	if err != nil {
		return "", fmt.Errorf("client.secret_file: %w", err)
	}
	secret := strings.TrimSpace(string(data))
	if secret == "" {
		return "", fmt.Errorf("client.secret_file: %s is empty", c.Client.SecretFile)
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
	r.Inbound.Audiences = cloneStrings(c.Inbound.Audiences)
	r.Inbound.RequiredScopes = cloneStrings(c.Inbound.RequiredScopes)
	r.Inbound.Algorithms = cloneStrings(c.Inbound.Algorithms)
	if c.Routes != nil {
		r.Routes = make([]Route, len(c.Routes))
		for i, route := range c.Routes {
			route.Scopes = cloneStrings(route.Scopes)
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
