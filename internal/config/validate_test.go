package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/obo"
	"github.com/obo-gateway/obo-gateway/proxy"
)

// validConfig returns a valid configuration with every default filled in,
// as Parse would return it.
func validConfig() *Config {
	return &Config{
		Listen:          "127.0.0.1:8080",
		AdminListen:     "127.0.0.1:9090",
		ShutdownTimeout: Duration(15 * time.Second),
		Log:             Log{Level: "info", Format: "text", Requests: "failures"},
		Authority: Authority{
			URL:         "https://login.microsoftonline.com/tenant/v2.0",
			Timeout:     Duration(10 * time.Second),
			JWKSRefresh: Duration(time.Hour),
			Protocol:    obo.ProtocolEntra,
			Retries:     2,
			Breaker:     Breaker{Failures: 5, OpenFor: Duration(30 * time.Second)},

			MaxConcurrentExchanges: 32,
			QueueTimeout:           Duration(2 * time.Second),
		},
		Client: Client{ID: "client-id", Secret: "s3cr3t"},
		Inbound: Inbound{
			Audiences:  []string{"api://api-a"},
			ClockSkew:  Duration(time.Minute),
			Algorithms: []string{"RS256"},

			VerifiedCacheBytes: 16 * MiB,
		},
		Routes: []Route{{
			Name:       "graph",
			PathPrefix: "/graph",
			Upstream:   "https://graph.microsoft.com/v1.0",
			Scopes:     []string{"https://graph.microsoft.com/User.Read"},
			Flow:       obo.FlowOnBehalfOf,
			TokenType:  TokenTypeAccessToken,
			Timeout:    Duration(30 * time.Second),

			ReplayMaxBytes: 64 * KiB,
		}},
		Cache: Cache{MaxBytes: 64 * MiB, Key: proxy.KeyUser},
	}
}

// addRoute appends a valid route named name with path prefix prefix.
func addRoute(c *Config, name, prefix string) {
	r := c.Routes[0]
	r.Name, r.PathPrefix = name, prefix
	r.Scopes = []string{"api://other/read"}
	c.Routes = append(c.Routes, r)
}

func TestValidateAcceptsValid(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"as is", func(*Config) {}},
		{"listen on all interfaces", func(c *Config) { c.Listen = ":8080" }},
		{"IPv6 listen", func(c *Config) { c.Listen = "[::1]:8080" }},
		{"host name listen", func(c *Config) { c.Listen = "localhost:8080" }},
		{"both on port 0", func(c *Config) { c.Listen, c.AdminListen = "127.0.0.1:0", "127.0.0.1:0" }},
		{"zero shutdown timeout", func(c *Config) { c.ShutdownTimeout = 0 }},
		{"debug json logs", func(c *Config) { c.Log = Log{Level: "debug", Format: "json"} }},
		{"overrides without url", func(c *Config) {
			c.Authority.URL = ""
			c.Authority.Issuer = "https://sts.windows.net/tenant/"
			c.Authority.JWKSURI = "https://login.microsoftonline.com/tenant/discovery/v2.0/keys"
			c.Authority.TokenEndpoint = "https://login.microsoftonline.com/tenant/oauth2/v2.0/token"
		}},
		{"http on localhost", func(c *Config) { c.Authority.URL = "http://localhost:5556/tenant" }},
		{"http on 127.0.0.0/8", func(c *Config) { c.Authority.URL = "http://127.0.0.5:5556" }},
		{"http on ::1", func(c *Config) { c.Authority.URL = "http://[::1]:5556" }},
		{"B2C token endpoint with query", func(c *Config) {
			c.Authority.TokenEndpoint = "https://t.b2clogin.com/t.onmicrosoft.com/oauth2/v2.0/token?p=b2c_1_signin"
		}},
		{"jwks refresh of a minute", func(c *Config) { c.Authority.JWKSRefresh = Duration(time.Minute) }},
		{"secret file", func(c *Config) { c.Client.Secret, c.Client.SecretFile = "", secretFile }},
		{"no clock skew", func(c *Config) { c.Inbound.ClockSkew = 0 }},
		{"maximum clock skew", func(c *Config) { c.Inbound.ClockSkew = Duration(10 * time.Minute) }},
		{"every allowed algorithm", func(c *Config) { c.Inbound.Algorithms = allowedAlgorithms() }},
		{"required scopes", func(c *Config) { c.Inbound.RequiredScopes = []string{"access_as_user"} }},
		{"client credentials", func(c *Config) {
			c.Routes[0].Flow = obo.FlowClientCredentials
			c.Routes[0].Scopes = []string{"https://graph.microsoft.com/.default"}
		}},
		{"plain http upstream with port", func(c *Config) { c.Routes[0].Upstream = "http://10.0.0.1:8080/api/" }},
		{"nested prefixes", func(c *Config) { addRoute(c, "beta", "/graph/beta") }},
		{"route name characters", func(c *Config) { c.Routes[0].Name = "graph_v1-0" }},
		{"minimum cache", func(c *Config) { c.Cache.MaxBytes = MiB }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(c)
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestValidateRules(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	emptyFile := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(emptyFile, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   Problems
	}{
		{"listen without port", func(c *Config) { c.Listen = "8080" },
			Problems{{Key: "listen", Message: `"8080" must be host:port, such as "127.0.0.1:8080"`}}},
		{"shutdown delay over five minutes", func(c *Config) { c.ShutdownDelay = Duration(6 * time.Minute) },
			Problems{{Key: "shutdown_delay", Message: "must be between 0 and 5m, not 6m0s"}}},
		{"negative shutdown delay", func(c *Config) { c.ShutdownDelay = Duration(-time.Second) },
			Problems{{Key: "shutdown_delay", Message: "must be between 0 and 5m, not -1s"}}},
		{"listen empty", func(c *Config) { c.Listen = "" },
			Problems{{Key: "listen", Message: `"" must be host:port, such as "127.0.0.1:8080"`}}},
		{"listen port out of range", func(c *Config) { c.Listen = "127.0.0.1:99999" },
			Problems{{Key: "listen", Message: `"127.0.0.1:99999" must have a numeric port from 0 to 65535`}}},
		{"listen named port", func(c *Config) { c.Listen = "127.0.0.1:http" },
			Problems{{Key: "listen", Message: `"127.0.0.1:http" must have a numeric port from 0 to 65535`}}},
		{"admin listen bad host", func(c *Config) { c.AdminListen = "bad_host!:9090" },
			Problems{{Key: "admin_listen", Message: `"bad_host!:9090" must have a valid host name or IP address`}}},
		{"admin listen same as listen", func(c *Config) { c.AdminListen = c.Listen },
			Problems{{Key: "admin_listen", Message: `must differ from listen (both are "127.0.0.1:8080")`}}},
		{"negative shutdown timeout", func(c *Config) { c.ShutdownTimeout = Duration(-time.Second) },
			Problems{{Key: "shutdown_timeout", Message: "must not be negative"}}},
		{"log level", func(c *Config) { c.Log.Level = "verbose" },
			Problems{{Key: "log.level", Message: `"verbose" is not one of debug, info, warn, error`}}},
		{"log format", func(c *Config) { c.Log.Format = "xml" },
			Problems{{Key: "log.format", Message: `"xml" is not one of text, json`}}},
		{"request log", func(c *Config) { c.Log.Requests = "some" },
			Problems{{Key: "log.requests", Message: `"some" is not one of failures, all, none`}}},
		{"authority url missing", func(c *Config) { c.Authority.URL = "" },
			Problems{{Key: "authority.url", Message: "must be set, unless issuer, jwks_uri and token_endpoint are all set"}}},
		{"authority url missing with partial overrides", func(c *Config) {
			c.Authority.URL = ""
			c.Authority.Issuer = "https://sts.windows.net/t/"
			c.Authority.JWKSURI = "https://login.microsoftonline.com/t/discovery/v2.0/keys"
		}, Problems{{Key: "authority.url", Message: "must be set, unless issuer, jwks_uri and token_endpoint are all set"}}},
		{"authority url http", func(c *Config) { c.Authority.URL = "http://login.microsoftonline.com/t/v2.0" },
			Problems{{Key: "authority.url", Message: "must use https (http is allowed only for loopback hosts)"}}},
		{"authority url http on private address", func(c *Config) { c.Authority.URL = "http://10.1.2.3/t" },
			Problems{{Key: "authority.url", Message: "must use https (http is allowed only for loopback hosts)"}}},
		{"authority url localhost look-alike", func(c *Config) { c.Authority.URL = "http://localhost.example.com/t" },
			Problems{{Key: "authority.url", Message: "must use https (http is allowed only for loopback hosts)"}}},
		{"authority url relative", func(c *Config) { c.Authority.URL = "login.microsoftonline.com/t/v2.0" },
			Problems{{Key: "authority.url", Message: "must be an absolute https URL"}}},
		{"authority url other scheme", func(c *Config) { c.Authority.URL = "ftp://login.microsoftonline.com/t" },
			Problems{{Key: "authority.url", Message: "must be an absolute https URL"}}},
		{"authority url query", func(c *Config) { c.Authority.URL = "https://login.microsoftonline.com/t/v2.0?x=1" },
			Problems{{Key: "authority.url", Message: "must not contain a query"}}},
		{"authority url fragment", func(c *Config) { c.Authority.URL = "https://login.microsoftonline.com/t/v2.0#x" },
			Problems{{Key: "authority.url", Message: "must not contain a fragment"}}},
		{"authority url user info", func(c *Config) { c.Authority.URL = "https://u:p@login.microsoftonline.com/t" },
			Problems{{Key: "authority.url", Message: "must not contain user information"}}},
		{"jwks uri http", func(c *Config) { c.Authority.JWKSURI = "http://keys.example.com/keys" },
			Problems{{Key: "authority.jwks_uri", Message: "must use https (http is allowed only for loopback hosts)"}}},
		{"token endpoint http", func(c *Config) { c.Authority.TokenEndpoint = "http://login.example.com/token" },
			Problems{{Key: "authority.token_endpoint", Message: "must use https (http is allowed only for loopback hosts)"}}},
		{"token endpoint relative", func(c *Config) { c.Authority.TokenEndpoint = "/token" },
			Problems{{Key: "authority.token_endpoint", Message: "must be an absolute https URL"}}},
		{"issuer with white space", func(c *Config) { c.Authority.Issuer = "https://sts.windows.net/t/ " },
			Problems{{Key: "authority.issuer", Message: "must not start or end with white space"}}},
		{"authority timeout zero", func(c *Config) { c.Authority.Timeout = 0 },
			Problems{{Key: "authority.timeout", Message: "must be positive, not 0s"}}},
		{"jwks refresh too short", func(c *Config) { c.Authority.JWKSRefresh = Duration(30 * time.Second) },
			Problems{{Key: "authority.jwks_refresh", Message: "must be at least 1m, not 30s"}}},
		{"client id missing", func(c *Config) { c.Client.ID = "" },
			Problems{{Key: "client.id", Message: "must be set (or set the environment variable AZURE_CLIENT_ID)"}}},
		{"no credential", func(c *Config) { c.Client.Secret = "" },
			Problems{{Key: "client", Message: "exactly one credential must be set (secret, secret_file, certificate, assertion_file or managed_identity), found 0"}}},
		{"two credentials", func(c *Config) { c.Client.SecretFile = emptyFile },
			Problems{
				{Key: "client", Message: "exactly one credential must be set (secret, secret_file, certificate, assertion_file or managed_identity), found 2"},
				{Key: "client.secret_file", Message: emptyFile + " is empty"},
			}},
		{"secret file missing", func(c *Config) { c.Client.Secret, c.Client.SecretFile = "", missing },
			Problems{{Key: "client.secret_file", Message: "open " + missing + ": no such file or directory"}}},
		{"secret file empty", func(c *Config) { c.Client.Secret, c.Client.SecretFile = "", emptyFile },
			Problems{{Key: "client.secret_file", Message: emptyFile + " is empty"}}},
		{"audiences empty", func(c *Config) { c.Inbound.Audiences = nil },
			Problems{{Key: "inbound.audiences", Message: "must not be empty"}}},
		{"audience empty item", func(c *Config) { c.Inbound.Audiences = []string{"api://a", ""} },
			Problems{{Key: "inbound.audiences[1]", Message: "must not be empty"}}},
		{"audience with space", func(c *Config) { c.Inbound.Audiences = []string{"api://a "} },
			Problems{{Key: "inbound.audiences[0]", Message: `"api://a " must not contain white space`}}},
		{"required scope empty", func(c *Config) { c.Inbound.RequiredScopes = []string{""} },
			Problems{{Key: "inbound.required_scopes[0]", Message: "must not be empty"}}},
		{"negative clock skew", func(c *Config) { c.Inbound.ClockSkew = Duration(-time.Second) },
			Problems{{Key: "inbound.clock_skew", Message: "must not be negative"}}},
		{"clock skew too large", func(c *Config) { c.Inbound.ClockSkew = Duration(11 * time.Minute) },
			Problems{{Key: "inbound.clock_skew", Message: "must be at most 10m, not 11m0s"}}},
		{"HS256", func(c *Config) { c.Inbound.Algorithms = []string{"HS256"} },
			Problems{{Key: "inbound.algorithms[0]", Message: `"HS256" is not allowed (symmetric algorithms are never accepted)`}}},
		{"hs512 in lower case", func(c *Config) { c.Inbound.Algorithms = []string{"RS256", "hs512"} },
			Problems{{Key: "inbound.algorithms[1]", Message: `"hs512" is not allowed (symmetric algorithms are never accepted)`}}},
		{"none", func(c *Config) { c.Inbound.Algorithms = []string{"none"} },
			Problems{{Key: "inbound.algorithms[0]", Message: `"none" is not allowed (unsigned tokens are never accepted)`}}},
		{"unknown algorithm", func(c *Config) { c.Inbound.Algorithms = []string{"EdDSA"} },
			Problems{{Key: "inbound.algorithms[0]", Message: `"EdDSA" is not supported (use one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512)`}}},
		{"no algorithms", func(c *Config) { c.Inbound.Algorithms = nil },
			Problems{{Key: "inbound.algorithms", Message: "must not be empty"}}},
		{"no routes", func(c *Config) { c.Routes = nil },
			Problems{{Key: "routes", Message: "at least one route must be configured"}}},
		{"route name missing", func(c *Config) { c.Routes[0].Name = "" },
			Problems{{Key: "routes[0].name", Message: "must be set"}}},
		{"route name upper case", func(c *Config) { c.Routes[0].Name = "Graph" },
			Problems{{Key: "routes[0].name", Message: `"Graph" must contain only lowercase letters, digits, "_" and "-"`}}},
		{"route name with dot", func(c *Config) { c.Routes[0].Name = "graph.v1" },
			Problems{{Key: "routes[0].name", Message: `"graph.v1" must contain only lowercase letters, digits, "_" and "-"`}}},
		{"route name duplicate", func(c *Config) { addRoute(c, "graph", "/other") },
			Problems{{Key: "routes[1].name", Message: `"graph" is already used by routes[0]`}}},
		{"path prefix missing", func(c *Config) { c.Routes[0].PathPrefix = "" },
			Problems{{Key: "routes[0].path_prefix", Message: "must be set"}}},
		{"path prefix relative", func(c *Config) { c.Routes[0].PathPrefix = "graph" },
			Problems{{Key: "routes[0].path_prefix", Message: `"graph" must start with "/"`}}},
		{"path prefix root", func(c *Config) { c.Routes[0].PathPrefix = "/" },
			Problems{{Key: "routes[0].path_prefix", Message: `"/" is not allowed: give the route a prefix of its own, such as "/graph"`}}},
		{"path prefix trailing slash", func(c *Config) { c.Routes[0].PathPrefix = "/graph/" },
			Problems{{Key: "routes[0].path_prefix", Message: `"/graph/" must not end with "/"`}}},
		{"path prefix dot dot", func(c *Config) { c.Routes[0].PathPrefix = "/a/../graph" },
			Problems{{Key: "routes[0].path_prefix", Message: `"/a/../graph" must not contain ".."`}}},
		{"path prefix percent", func(c *Config) { c.Routes[0].PathPrefix = "/a%2Fb" },
			Problems{{Key: "routes[0].path_prefix", Message: `"/a%2Fb" must not contain "%" (percent-encoding is not allowed)`}}},
		{"path prefix double slash", func(c *Config) { c.Routes[0].PathPrefix = "/a//b" },
			Problems{{Key: "routes[0].path_prefix", Message: `"/a//b" must not contain "//"`}}},
		{"path prefix query", func(c *Config) { c.Routes[0].PathPrefix = "/a?b" },
			Problems{{Key: "routes[0].path_prefix", Message: `"/a?b" must not contain "?", "#", "\", white space or control characters`}}},
		{"path prefix space", func(c *Config) { c.Routes[0].PathPrefix = "/a b" },
			Problems{{Key: "routes[0].path_prefix", Message: `"/a b" must not contain "?", "#", "\", white space or control characters`}}},
		{"path prefix dot segment", func(c *Config) { c.Routes[0].PathPrefix = "/a/./b" },
			Problems{{Key: "routes[0].path_prefix", Message: `"/a/./b" must not contain "." segments`}}},
		{"path prefix duplicate", func(c *Config) { addRoute(c, "two", "/two"); addRoute(c, "three", "/graph") },
			Problems{{Key: "routes[2].path_prefix", Message: `"/graph" is already used by routes[0]`}}},
		{"upstream missing", func(c *Config) { c.Routes[0].Upstream = "" },
			Problems{{Key: "routes[0].upstream", Message: "must be set"}}},
		{"upstream relative", func(c *Config) { c.Routes[0].Upstream = "graph.microsoft.com/v1.0" },
			Problems{{Key: "routes[0].upstream", Message: "must be an absolute http(s) URL"}}},
		{"upstream other scheme", func(c *Config) { c.Routes[0].Upstream = "ftp://files.example.com" },
			Problems{{Key: "routes[0].upstream", Message: "must be an absolute http(s) URL"}}},
		{"upstream without host", func(c *Config) { c.Routes[0].Upstream = "https:///v1.0" },
			Problems{{Key: "routes[0].upstream", Message: "must be an absolute http(s) URL"}}},
		{"upstream query", func(c *Config) { c.Routes[0].Upstream = "https://graph.microsoft.com/v1.0?a=b" },
			Problems{{Key: "routes[0].upstream", Message: "must not contain a query"}}},
		{"upstream fragment", func(c *Config) { c.Routes[0].Upstream = "https://graph.microsoft.com/v1.0#x" },
			Problems{{Key: "routes[0].upstream", Message: "must not contain a fragment"}}},
		{"upstream user info", func(c *Config) { c.Routes[0].Upstream = "https://user@graph.microsoft.com/v1.0" },
			Problems{{Key: "routes[0].upstream", Message: "must not contain user information"}}},
		{"scopes empty", func(c *Config) { c.Routes[0].Scopes = nil },
			Problems{{Key: "routes[0].scopes", Message: "must not be empty"}}},
		{"scope empty item", func(c *Config) { c.Routes[0].Scopes = []string{"a", ""} },
			Problems{{Key: "routes[0].scopes[1]", Message: "must not be empty"}}},
		{"scope with space", func(c *Config) { c.Routes[0].Scopes = []string{"User.Read Mail.Read"} },
			Problems{{Key: "routes[0].scopes[0]", Message: `"User.Read Mail.Read" must not contain white space`}}},
		{"client credentials scope", func(c *Config) { c.Routes[0].Flow = obo.FlowClientCredentials },
			Problems{{Key: "routes[0].scopes[0]", Message: `client_credentials scopes must end in "/.default"`}}},
		{"flow unknown", func(c *Config) { c.Routes[0].Flow = "obo" },
			Problems{{Key: "routes[0].flow", Message: `"obo" is not a valid flow (use on_behalf_of, client_credentials, agent_app, agent_user or agent_on_behalf_of)`}}},
		{"route timeout zero", func(c *Config) { c.Routes[0].Timeout = 0 },
			Problems{{Key: "routes[0].timeout", Message: "must be positive, not 0s"}}},
		{"cache too small", func(c *Config) { c.Cache.MaxBytes = 512 * KiB },
			Problems{{Key: "cache.max_bytes", Message: "must be at least 1MiB, not 512KiB"}}},
		{"cache zero", func(c *Config) { c.Cache.MaxBytes = 0 },
			Problems{{Key: "cache.max_bytes", Message: "must be at least 1MiB, not 0B"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(c)
			err := c.Validate()
			var got Problems
			if !errors.As(err, &got) {
				t.Fatalf("Validate() = %v, want Problems", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate() problems:\n%v\nwant:\n%v", got, tt.want)
			}
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := validConfig()
	c.Log.Format = "xml"
	c.Client.ID = ""
	c.Inbound.Audiences = nil
	for i := 0; i < 10; i++ {
		addRoute(c, "r"+string(rune('a'+i)), "/r"+string(rune('a'+i)))
	}
	c.Routes[10].Upstream = "nope"
	c.Routes[2].Upstream = "nope"
	err := c.Validate()
	want := Problems{
		{Key: "client.id", Message: "must be set (or set the environment variable AZURE_CLIENT_ID)"},
		{Key: "inbound.audiences", Message: "must not be empty"},
		{Key: "log.format", Message: `"xml" is not one of text, json`},
		{Key: "routes[2].upstream", Message: "must be an absolute http(s) URL"},
		{Key: "routes[10].upstream", Message: "must be an absolute http(s) URL"},
	}
	var got Problems
	if !errors.As(err, &got) || !reflect.DeepEqual(got, want) {
		t.Fatalf("Validate() =\n%v\nwant\n%v", err, want)
	}
	const text = "client.id: must be set (or set the environment variable AZURE_CLIENT_ID)\n" +
		"inbound.audiences: must not be empty\n" +
		`log.format: "xml" is not one of text, json` + "\n" +
		"routes[2].upstream: must be an absolute http(s) URL\n" +
		"routes[10].upstream: must be an absolute http(s) URL"
	if err.Error() != text {
		t.Errorf("Error() =\n%s\nwant\n%s", err, text)
	}
}

func TestValidateFastPathKeys(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		key  string
	}{
		{"unknown cache key mode", func(c *Config) { c.Cache.Key = "session" }, "cache.key"},
		{"unknown capability", func(c *Config) { c.Client.Capabilities = []string{"cp1", "cp2"} }, "client.capabilities[1]"},
		{"negative verified cache", func(c *Config) { c.Inbound.VerifiedCacheBytes = -1 }, "inbound.verified_cache_bytes"},
		{"verified cache too small to hold a token per map", func(c *Config) { c.Inbound.VerifiedCacheBytes = 4 * KiB }, "inbound.verified_cache_bytes"},
		{"huge replay buffer", func(c *Config) { c.Routes[0].ReplayMaxBytes = 32 * MiB }, "routes[0].replay_max_bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.edit(c)
			err := c.Validate()
			ps, ok := err.(Problems)
			if !ok || len(ps) != 1 || ps[0].Key != tc.key {
				t.Errorf("Validate() = %v, want one problem at %s", err, tc.key)
			}
		})
	}
	c := validConfig()
	c.Cache.Key, c.Client.Capabilities, c.Inbound.VerifiedCacheBytes = proxy.KeyAssertion, []string{"cp1"}, 0
	if err := c.Validate(); err != nil {
		t.Errorf("valid fast-path settings refused: %v", err)
	}
}
