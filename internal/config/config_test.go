package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/obo"
	"github.com/obo-gateway/obo-gateway/proxy"
)

// envMap returns a lookupEnv function backed by m.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

var testEnv = envMap(map[string]string{"OBO_CLIENT_SECRET": "s3cr3t"})

// minimal is the smallest valid configuration.
const minimal = `authority:
  url: https://login.microsoftonline.com/tenant/v2.0
client:
  id: client-id
  secret: ${OBO_CLIENT_SECRET}
inbound:
  audiences: [api://api-a]
routes:
  - name: graph
    path_prefix: /graph
    upstream: https://graph.microsoft.com/v1.0
    scopes: [https://graph.microsoft.com/User.Read]
`

func mustParse(t *testing.T, data string, env func(string) (string, bool)) *Config {
	t.Helper()
	c, err := Parse([]byte(data), "test.yaml", env)
	if err != nil {
		t.Fatalf("Parse() error:\n%v", err)
	}
	return c
}

func TestParseValidFile(t *testing.T) {
	want := &Config{
		Listen:          "127.0.0.1:8080",
		AdminListen:     "127.0.0.1:9090",
		ShutdownTimeout: Duration(15 * time.Second),
		Log:             Log{Level: "info", Format: "json", Requests: "failures"},
		Authority: Authority{
			URL:         "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0",
			Timeout:     Duration(10 * time.Second),
			JWKSRefresh: Duration(time.Hour),
			Protocol:    obo.ProtocolEntra,
			Retries:     2,
			Breaker:     Breaker{Failures: 5, OpenFor: Duration(30 * time.Second)},

			MaxConcurrentExchanges: 32,
			QueueTimeout:           Duration(2 * time.Second),
		},
		Client: Client{ID: "00000000-aaaa-bbbb-cccc-000000000001", Secret: "s3cr3t"},
		Inbound: Inbound{
			Audiences:      []string{"api://api-a", "00000000-aaaa-bbbb-cccc-000000000001"},
			RequiredScopes: []string{"access_as_user"},
			ClockSkew:      Duration(time.Minute),
			Algorithms:     []string{"RS256"},

			VerifiedCacheBytes: 16 * MiB,
		},
		Routes: []Route{
			{
				Name:       "graph",
				PathPrefix: "/graph",
				Upstream:   "https://graph.microsoft.com/v1.0",
				Scopes:     []string{"https://graph.microsoft.com/User.Read"},
				Flow:       obo.FlowOnBehalfOf,
				TokenType:  TokenTypeAccessToken,
				Timeout:    Duration(30 * time.Second),

				ReplayMaxBytes: 64 * KiB,
			},
			{
				Name:       "reports",
				PathPrefix: "/reports",
				Upstream:   "https://reports.example.com/api",
				Scopes:     []string{"api://reports-api/.default"},
				Flow:       obo.FlowClientCredentials,
				TokenType:  TokenTypeAccessToken,
				Timeout:    Duration(time.Minute),

				ReplayMaxBytes: 64 * KiB,
			},
		},
		Cache: Cache{MaxBytes: 64 * MiB, Key: proxy.KeyUser},
	}

	t.Run("Parse", func(t *testing.T) {
		data, err := os.ReadFile("testdata/valid.yaml")
		if err != nil {
			t.Fatal(err)
		}
		got := mustParse(t, string(data), testEnv)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Parse() =\n%+v\nwant\n%+v", got, want)
		}
	})
	t.Run("Load", func(t *testing.T) {
		t.Setenv("OBO_CLIENT_SECRET", "s3cr3t")
		got, err := Load("testdata/valid.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Load() =\n%+v\nwant\n%+v", got, want)
		}
	})
}

func TestParseDefaults(t *testing.T) {
	got := mustParse(t, minimal, testEnv)
	want := validConfig()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(minimal) =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseDefaultsOnlyWhatIsMissing(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		check func(*Config) bool
	}{
		{"explicit zero clock skew is kept", "inbound:\n  audiences: [a]\n  clock_skew: 0s\n",
			func(c *Config) bool { return c.Inbound.ClockSkew == 0 }},
		{"explicit zero shutdown timeout is kept", "shutdown_timeout: 0s\n",
			func(c *Config) bool { return c.ShutdownTimeout == 0 }},
		{"null value takes the default", "shutdown_timeout: ~\n",
			func(c *Config) bool { return c.ShutdownTimeout.D() == 15*time.Second }},
		{"empty string takes the default", "listen: \"\"\n",
			func(c *Config) bool { return c.Listen == "127.0.0.1:8080" }},
		{"empty algorithm list takes the default", "inbound:\n  audiences: [a]\n  algorithms: []\n",
			func(c *Config) bool { return reflect.DeepEqual(c.Inbound.Algorithms, []string{"RS256"}) }},
		{"values set are kept", "listen: 0.0.0.0:8081\nlog: {level: debug}\ncache: {max_bytes: 1GiB}\n",
			func(c *Config) bool {
				return c.Listen == "0.0.0.0:8081" && c.Log.Level == "debug" && c.Log.Format == "text" && c.Cache.MaxBytes == GiB
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.extra + strings.Replace(minimal, "inbound:\n  audiences: [api://api-a]\n", "", strings.Count(tt.extra, "inbound:"))
			c := mustParse(t, data, testEnv)
			if !tt.check(c) {
				t.Errorf("unexpected result: %+v", c)
			}
		})
	}
}

// withRoute returns minimal with the graph route replaced by route, which is
// written with four spaces of indentation for its keys.
func withRoute(route string) string {
	i := strings.Index(minimal, "routes:\n")
	return minimal[:i] + "routes:\n" + route
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		data string
		env  map[string]string
		want Problems
	}{
		{
			name: "empty file",
			data: "",
			want: Problems{{File: "test.yaml", Message: "the configuration file is empty"}},
		},
		{
			name: "only comments",
			data: "# nothing here\n",
			want: Problems{{File: "test.yaml", Message: "the configuration file is empty"}},
		},
		{
			name: "null document",
			data: "---\n~\n",
			want: Problems{{File: "test.yaml", Line: 1, Message: "the configuration file is empty"}},
		},
		{
			name: "two documents",
			data: minimal + "---\nlisten: 127.0.0.1:1\n",
			want: Problems{{File: "test.yaml", Line: 13, Message: "the file holds more than one YAML document (separated by ---); put the whole configuration in one"}},
		},
		{
			name: "syntax error",
			data: "listen: 127.0.0.1:8080\nroutes:\n  - name: a\n bad: 1\n",
			want: Problems{{File: "test.yaml", Line: 3, Message: "invalid YAML: did not find expected key"}},
		},
		{
			name: "tab indentation",
			data: "log:\n\tlevel: info\n",
			want: Problems{{File: "test.yaml", Line: 2, Message: "invalid YAML: found character that cannot start any token"}},
		},
		{
			name: "top level list",
			data: "- a\n- b\n",
			want: Problems{{File: "test.yaml", Line: 1, Message: "the configuration must be a mapping of keys to values, not a list"}},
		},
		{
			name: "unknown top-level key",
			data: minimal + "listen_addr: 127.0.0.1:1\n",
			want: Problems{{File: "test.yaml", Line: 13, Key: "listen_addr", Message: "unknown key"}},
		},
		{
			name: "unknown key in a route, with its path",
			data: withRoute("  - name: graph\n    path_prefix: /graph\n    upstrem: https://x.example.com\n    upstream: https://graph.microsoft.com\n    scopes: [a]\n"),
			want: Problems{{File: "test.yaml", Line: 11, Key: "routes[0].upstrem", Message: `unknown key (did you mean "upstream"?)`}},
		},
		{
			name: "unknown key in the second route",
			data: withRoute("  - name: graph\n    path_prefix: /graph\n    upstream: https://graph.microsoft.com\n    scopes: [a]\n" +
				"  - name: two\n    path_prefix: /two\n    upstream: https://two.example.com\n    scopes: [b]\n    retries: 3\n"),
			want: Problems{{File: "test.yaml", Line: 17, Key: "routes[1].retries", Message: "unknown key"}},
		},
		{
			name: "unknown nested key with a camel case suggestion",
			data: minimal + "cache:\n  maxBytes: 1GiB\n",
			want: Problems{{File: "test.yaml", Line: 14, Key: "cache.maxBytes", Message: `unknown key (did you mean "max_bytes"?)`}},
		},
		{
			name: "certificate next to a secret",
			data: strings.Replace(minimal, "  secret: ${OBO_CLIENT_SECRET}\n", "  certificate: {file: /nonexistent/tls.crt}\n  secret: x\n", 1),
			want: Problems{
				{File: "test.yaml", Line: 3, Key: "client", Message: "exactly one credential must be set (secret, secret_file, certificate, assertion_file or managed_identity), found 2"},
				{File: "test.yaml", Line: 5, Key: "client.certificate.file", Message: "read certificate file: open /nonexistent/tls.crt: no such file or directory"},
			},
		},
		{
			name: "duplicate key",
			data: minimal + "listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n",
			want: Problems{{File: "test.yaml", Line: 14, Key: "listen", Message: "duplicate key (first defined on line 13)"}},
		},
		{
			name: "list where a string is expected",
			data: minimal + "listen: [a, b]\n",
			want: Problems{{File: "test.yaml", Line: 13, Key: "listen", Message: "must be a string, not a list"}},
		},
		{
			name: "string where a list is expected",
			data: strings.Replace(minimal, "audiences: [api://api-a]", "audiences: api://api-a", 1),
			want: Problems{{File: "test.yaml", Line: 7, Key: "inbound.audiences", Message: "must be a list, not a scalar"}},
		},
		{
			name: "scalar where a mapping is expected",
			data: minimal + "log: debug\n",
			want: Problems{{File: "test.yaml", Line: 13, Key: "log", Message: "must be a mapping of keys to values, not a scalar"}},
		},
		{
			name: "route that is not a mapping",
			data: withRoute("  - graph\n"),
			want: Problems{{File: "test.yaml", Line: 9, Key: "routes[0]", Message: "must be a mapping of keys to values, not a scalar"}},
		},
		{
			name: "duplicate section",
			data: minimal + "inbound:\n  clock_skew: 30s\n",
			want: Problems{{File: "test.yaml", Line: 13, Key: "inbound", Message: "duplicate key (first defined on line 6)"}},
		},
		{
			name: "duration without unit",
			data: minimal + "shutdown_timeout: 30\n",
			want: Problems{{File: "test.yaml", Line: 13, Key: "shutdown_timeout", Message: `"30" has no unit; add one, such as "30s" or "30ms"`}},
		},
		{
			name: "invalid duration",
			data: withRoute("  - name: graph\n    path_prefix: /graph\n    upstream: https://graph.microsoft.com\n    scopes: [a]\n    timeout: soon\n"),
			want: Problems{{File: "test.yaml", Line: 13, Key: "routes[0].timeout",
				Message: `"soon" is not a valid duration; use a number with a unit, such as "30s", "1m30s" or "250ms"`}},
		},
		{
			name: "syntax error without a line",
			data: "listen: a: b\n",
			want: Problems{{File: "test.yaml", Message: "invalid YAML: mapping values are not allowed in this context"}},
		},
		{
			name: "syntax error in a second document",
			data: minimal + "---\na: [\n",
			want: Problems{{File: "test.yaml", Line: 14, Message: "invalid YAML: did not find expected node content"}},
		},
		{
			name: "decode problems are not reported again by validation",
			data: withRoute("  - name: graph\n    path_prefix: [/graph]\n    upstream: ${UP}\n    scopes: a\n    timeout: {}\n"),
			want: Problems{
				{File: "test.yaml", Line: 10, Key: "routes[0].path_prefix", Message: "must be a string, not a list"},
				{File: "test.yaml", Line: 11, Key: "routes[0].upstream", Message: "environment variable UP is not set"},
				{File: "test.yaml", Line: 12, Key: "routes[0].scopes", Message: "must be a list, not a scalar"},
				{File: "test.yaml", Line: 13, Key: "routes[0].timeout", Message: `must be a duration such as "30s", not a mapping`},
			},
		},
		{
			name: "merge key with a scalar",
			data: minimal + "log:\n  <<: 1\n",
			want: Problems{{File: "test.yaml", Line: 14, Key: "log.<<", Message: "a merge key needs a mapping or a list of mappings"}},
		},
		{
			name: "duration without unit in a route",
			data: withRoute("  - name: graph\n    path_prefix: /graph\n    upstream: https://graph.microsoft.com\n    scopes: [a]\n    timeout: 30\n"),
			want: Problems{{File: "test.yaml", Line: 13, Key: "routes[0].timeout", Message: `"30" has no unit; add one, such as "30s" or "30ms"`}},
		},
		{
			name: "invalid size",
			data: minimal + "cache:\n  max_bytes: lots\n",
			want: Problems{{File: "test.yaml", Line: 14, Key: "cache.max_bytes",
				Message: `"lots" is not a valid size; use a number of bytes or a number with a unit, such as "64MiB", "512KiB", "1GiB" or "10MB"`}},
		},
		{
			name: "negative size",
			data: minimal + "cache:\n  max_bytes: -1MiB\n",
			want: Problems{{File: "test.yaml", Line: 14, Key: "cache.max_bytes", Message: `"-1MiB" is negative; a size must not be negative`}},
		},
		{
			name: "unset variable",
			data: minimal,
			env:  map[string]string{},
			want: Problems{{File: "test.yaml", Line: 5, Key: "client.secret", Message: "environment variable OBO_CLIENT_SECRET is not set"}},
		},
		{
			name: "unset variable in a list item",
			data: strings.Replace(minimal, "[api://api-a]", "[api://api-a, \"${AUD2}\"]", 1),
			want: Problems{{File: "test.yaml", Line: 7, Key: "inbound.audiences[1]", Message: "environment variable AUD2 is not set"}},
		},
		{
			name: "unset variable in a duration",
			data: minimal + "shutdown_timeout: ${GRACE}\n",
			want: Problems{{File: "test.yaml", Line: 13, Key: "shutdown_timeout", Message: "environment variable GRACE is not set"}},
		},
		{
			name: "variable holding a bare number for a duration",
			data: minimal + "shutdown_timeout: ${GRACE}\n",
			env:  map[string]string{"OBO_CLIENT_SECRET": "x", "GRACE": "30"},
			want: Problems{{File: "test.yaml", Line: 13, Key: "shutdown_timeout", Message: `"30" has no unit; add one, such as "30s" or "30ms"`}},
		},
		{
			name: "malformed reference",
			data: minimal + "listen: ${LISTEN:-127.0.0.1:8080}\n",
			want: Problems{{File: "test.yaml", Line: 13, Key: "listen",
				Message: `invalid variable reference "${LISTEN:-127.0.0.1:8080}": only ${NAME} is supported, where NAME is made of letters, digits and underscores (write $$ for a literal $)`}},
		},
		{
			name: "validation problems carry lines",
			data: minimal + "log:\n  level: loud\n",
			want: Problems{{File: "test.yaml", Line: 14, Key: "log.level", Message: `"loud" is not one of debug, info, warn, error`}},
		},
		{
			name: "missing key reported at its parent's line",
			data: withRoute("  - name: graph\n    path_prefix: /graph\n    upstream: https://graph.microsoft.com\n"),
			want: Problems{{File: "test.yaml", Line: 9, Key: "routes[0].scopes", Message: "must not be empty"}},
		},
		{
			name: "missing section has no line",
			data: strings.Replace(minimal, "inbound:\n  audiences: [api://api-a]\n", "", 1),
			want: Problems{{File: "test.yaml", Key: "inbound.audiences", Message: "must not be empty"}},
		},
		{
			name: "merge keys are decoded strictly",
			data: strings.Replace(minimal, "routes:\n", "routes:\n  - &base\n    name: base\n    path_prefix: /base\n    upstream: https://graph.microsoft.com\n    scopes: [a]\n    retries: 2\n  - <<: *base\n    name: other\n    path_prefix: /other\n", 1),
			want: Problems{
				{File: "test.yaml", Line: 14, Key: "routes[0].retries", Message: "unknown key"},
				{File: "test.yaml", Line: 14, Key: "routes[1].retries", Message: "unknown key"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv
			if tt.env != nil {
				env = envMap(tt.env)
			}
			c, err := Parse([]byte(tt.data), "test.yaml", env)
			var got Problems
			if !errors.As(err, &got) {
				t.Fatalf("Parse() = %+v, %v; want Problems", c, err)
			}
			if c != nil {
				t.Errorf("Parse() returned a config along with problems")
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse() problems:\n%v\nwant:\n%v", got, tt.want)
			}
		})
	}
}

func TestParseInvalidFile(t *testing.T) {
	_, err := Load("testdata/invalid.yaml")
	const f = "testdata/invalid.yaml"
	want := Problems{
		{f, 3, "listen", `"8080" must be host:port, such as "127.0.0.1:8080"`},
		{f, 5, "log.level", `"verbose" is not one of debug, info, warn, error`},
		{f, 7, "authority.url", "must use https (http is allowed only for loopback hosts)"},
		{f, 8, "authority.timeout", `"10" has no unit; add one, such as "10s" or "10ms"`},
		{f, 9, "client", "exactly one credential must be set (secret, secret_file, certificate, assertion_file or managed_identity), found 2"},
		{f, 12, "client.secret_file", "open /nonexistent/obo-gateway/secret: no such file or directory"},
		{f, 14, "inbound.audiences", "must not be empty"},
		{f, 15, "inbound.algorithms[1]", `"HS256" is not allowed (symmetric algorithms are never accepted)`},
		{f, 17, "routes[0].upstream", "must be set"},
		{f, 19, "routes[0].upstrem", `unknown key (did you mean "upstream"?)`},
		{f, 21, "routes[1].name", `"Reports" must contain only lowercase letters, digits, "_" and "-"`},
		{f, 22, "routes[1].path_prefix", `"/graph" is already used by routes[0]`},
		{f, 23, "routes[1].upstream", "must be an absolute http(s) URL"},
		{f, 24, "routes[1].scopes[0]", `client_credentials scopes must end in "/.default"`},
		{f, 27, "cache.max_bytes", "must be at least 1MiB, not 512KiB"},
	}
	var got Problems
	if !errors.As(err, &got) {
		t.Fatalf("Load() error = %v, want Problems", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load() problems:\n%v\nwant:\n%v", got, want)
	}
	if !strings.Contains(err.Error(), "testdata/invalid.yaml:19: routes[0].upstrem: unknown key") {
		t.Errorf("Error() does not name the unknown key with file and line:\n%v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load() error = %v, want one wrapping fs.ErrNotExist", err)
	}
}

func TestParseMergeKeys(t *testing.T) {
	data := strings.Replace(minimal, "routes:\n", `defaults: &defaults
  timeout: 5s
  scopes: [api://shared/read]
routes:
`, 1)
	// defaults is not a known key: anchors must live inside known keys.
	if _, err := Parse([]byte(data), "test.yaml", testEnv); err == nil || !strings.Contains(err.Error(), "defaults: unknown key") {
		t.Fatalf("Parse() error = %v, want defaults: unknown key", err)
	}

	data = withRoute(`  - &base
    name: one
    path_prefix: /one
    upstream: https://api.example.com
    scopes: [api://shared/read]
    timeout: 5s
  - <<: *base
    name: two
    path_prefix: /two
  - <<: [{timeout: 7s}, *base]
    name: three
    path_prefix: /three
`)
	c := mustParse(t, data, testEnv)
	want := []Route{
		{Name: "one", PathPrefix: "/one", Upstream: "https://api.example.com", Scopes: []string{"api://shared/read"}, Flow: obo.FlowOnBehalfOf, Timeout: Duration(5 * time.Second), ReplayMaxBytes: 64 * KiB, TokenType: TokenTypeAccessToken},
		{Name: "two", PathPrefix: "/two", Upstream: "https://api.example.com", Scopes: []string{"api://shared/read"}, Flow: obo.FlowOnBehalfOf, Timeout: Duration(5 * time.Second), ReplayMaxBytes: 64 * KiB, TokenType: TokenTypeAccessToken},
		{Name: "three", PathPrefix: "/three", Upstream: "https://api.example.com", Scopes: []string{"api://shared/read"}, Flow: obo.FlowOnBehalfOf, Timeout: Duration(7 * time.Second), ReplayMaxBytes: 64 * KiB, TokenType: TokenTypeAccessToken},
	}
	if !reflect.DeepEqual(c.Routes, want) {
		t.Errorf("Routes =\n%+v\nwant\n%+v", c.Routes, want)
	}
}

func TestParseEnvironment(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		env   map[string]string
		check func(*Config) bool
	}{
		{
			name: "whole value",
			data: minimal,
			env:  map[string]string{"OBO_CLIENT_SECRET": "from-env"},
			check: func(c *Config) bool {
				return c.Client.Secret == "from-env"
			},
		},
		{
			name: "newline and colon stay inside the string",
			data: minimal,
			env:  map[string]string{"OBO_CLIENT_SECRET": "x\nlisten: 0.0.0.0:80\nroutes: []"},
			check: func(c *Config) bool {
				return c.Client.Secret == "x\nlisten: 0.0.0.0:80\nroutes: []" && c.Listen == "127.0.0.1:8080" && len(c.Routes) == 1
			},
		},
		{
			name: "flow-style characters stay inside the string",
			data: strings.Replace(minimal, "client-id", "${CLIENT_ID}", 1),
			env:  map[string]string{"OBO_CLIENT_SECRET": "s", "CLIENT_ID": "{a: b}, [c] # d"},
			check: func(c *Config) bool {
				return c.Client.ID == "{a: b}, [c] # d"
			},
		},
		{
			name: "values that look like other types stay strings",
			data: strings.Replace(minimal, "client-id", "${CLIENT_ID}", 1),
			env:  map[string]string{"OBO_CLIENT_SECRET": "null", "CLIENT_ID": "12345"},
			check: func(c *Config) bool {
				return c.Client.ID == "12345" && c.Client.Secret == "null"
			},
		},
		{
			name: "embedded, in a list and in typed values",
			data: strings.Replace(minimal, "[api://api-a]", "[\"api://${APP}\", \"${APP_ID}\"]", 1) +
				"listen: ${HOST}:${PORT}\nshutdown_timeout: ${GRACE}\ncache:\n  max_bytes: ${CACHE}\n",
			env: map[string]string{"OBO_CLIENT_SECRET": "s", "APP": "api-a", "APP_ID": "guid",
				"HOST": "0.0.0.0", "PORT": "8081", "GRACE": "5s", "CACHE": "128MiB"},
			check: func(c *Config) bool {
				return reflect.DeepEqual(c.Inbound.Audiences, []string{"api://api-a", "guid"}) &&
					c.Listen == "0.0.0.0:8081" && c.ShutdownTimeout.D() == 5*time.Second && c.Cache.MaxBytes == 128*MiB
			},
		},
		{
			name: "dollar escape",
			data: strings.Replace(minimal, "${OBO_CLIENT_SECRET}", "pa$$word$${NOT_A_VAR}", 1),
			env:  map[string]string{},
			check: func(c *Config) bool {
				return c.Client.Secret == "pa$word${NOT_A_VAR}"
			},
		},
		{
			name: "anchored value is expanded once",
			data: strings.Replace(minimal, "${OBO_CLIENT_SECRET}", "&s $${X}", 1) + "log:\n  level: *s\n",
			env:  map[string]string{"X": "debug"},
			check: func(c *Config) bool {
				return false
			},
		},
		{
			name: "block scalar",
			data: strings.Replace(minimal, "${OBO_CLIENT_SECRET}", "|-\n    line1 ${A}\n    line2", 1),
			env:  map[string]string{"A": "x"},
			check: func(c *Config) bool {
				return c.Client.Secret == "line1 x\nline2"
			},
		},
		{
			name: "keys are not expanded",
			data: minimal,
			env:  map[string]string{"OBO_CLIENT_SECRET": "s", "listen": "nope"},
			check: func(c *Config) bool {
				return c.Listen == "127.0.0.1:8080"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.data), "test.yaml", envMap(tt.env))
			if tt.name == "anchored value is expanded once" {
				// log.level gets the literal "${X}", which is not a level:
				// proof that the anchored value was not expanded twice.
				want := `test.yaml:14: log.level: "${X}" is not one of debug, info, warn, error`
				if err == nil || err.Error() != want {
					t.Fatalf("Parse() error = %v, want %s", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() error:\n%v", err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected result: %+v", c)
			}
		})
	}
}

func TestParseUsesProcessEnvironmentByDefault(t *testing.T) {
	t.Setenv("OBO_CLIENT_SECRET", "from-process")
	c, err := Parse([]byte(minimal), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Client.Secret != "from-process" {
		t.Errorf("Secret = %q, want from-process", c.Client.Secret)
	}
}

func TestProblemError(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "c.yaml", Line: 3, Key: "routes[0].upstream", Message: "bad"}, "c.yaml:3: routes[0].upstream: bad"},
		{Problem{File: "c.yaml", Key: "inbound.audiences", Message: "must not be empty"}, "c.yaml: inbound.audiences: must not be empty"},
		{Problem{File: "c.yaml", Line: 1, Message: "empty"}, "c.yaml:1: empty"},
		{Problem{Key: "client.id", Message: "must be set"}, "client.id: must be set"},
		{Problem{Line: 4, Key: "k", Message: "m"}, "line 4: k: m"},
		{Problem{Message: "m"}, "m"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.p.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
	ps := Problems{tests[0].p, tests[1].p}
	if got, want := ps.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Problems.Error() = %q, want %q", got, want)
	}
}

func TestSortProblems(t *testing.T) {
	ps := []Problem{
		{Key: "b"},
		{Line: 9, Key: "z"},
		{Key: "routes[10].name"},
		{Line: 2, Key: "y", Message: "first"},
		{Key: "routes[9].name"},
		{Line: 2, Key: "x"},
		{Line: 2, Key: "y", Message: "second"},
	}
	sortProblems(ps)
	want := []Problem{
		{Line: 2, Key: "x"},
		{Line: 2, Key: "y", Message: "first"},
		{Line: 2, Key: "y", Message: "second"},
		{Line: 9, Key: "z"},
		{Key: "b"},
		{Key: "routes[9].name"},
		{Key: "routes[10].name"},
	}
	if !reflect.DeepEqual(ps, want) {
		t.Errorf("sorted =\n%v\nwant\n%v", ps, want)
	}
}

func TestClientSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := write("secret", "  from-file\n")
	empty := write("empty", "\n\t\n")
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name    string
		client  Client
		want    string
		wantErr string
	}{
		{name: "inline", client: Client{Secret: "inline"}, want: "inline"},
		{name: "file trimmed", client: Client{SecretFile: file}, want: "from-file"},
		{name: "empty file", client: Client{SecretFile: empty}, wantErr: "client.secret_file: " + empty + " is empty"},
		{name: "missing file", client: Client{SecretFile: missing}, wantErr: "client.secret_file: open " + missing + ": no such file or directory"},
		{name: "none", client: Client{}, wantErr: "client: no client secret is configured (set client.secret or client.secret_file)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{Client: tt.client}
			got, err := c.ClientSecret()
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ClientSecret() = %q, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ClientSecret() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}

	t.Run("file is read on every call", func(t *testing.T) {
		p := write("rotating", "first\n")
		c := &Config{Client: Client{SecretFile: p}}
		if s, err := c.ClientSecret(); err != nil || s != "first" {
			t.Fatalf("ClientSecret() = %q, %v; want first", s, err)
		}
		write("rotating", "second\n")
		if s, err := c.ClientSecret(); err != nil || s != "second" {
			t.Fatalf("ClientSecret() after rotation = %q, %v; want second", s, err)
		}
	})
}

func TestSecretFileFromYAML(t *testing.T) {
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte("file-secret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := strings.Replace(minimal, "secret: ${OBO_CLIENT_SECRET}", "secret_file: ${SECRET_FILE}", 1)
	c := mustParse(t, data, envMap(map[string]string{"SECRET_FILE": p}))
	if c.Client.SecretFile != p || c.Client.Secret != "" {
		t.Fatalf("Client = %+v", c.Client)
	}
	if s, err := c.ClientSecret(); err != nil || s != "file-secret" {
		t.Errorf("ClientSecret() = %q, %v; want file-secret", s, err)
	}
}

func TestRedacted(t *testing.T) {
	tests := []struct {
		name       string
		client     Client
		wantSecret string
	}{
		{"secret hidden", Client{ID: "id", Secret: "s3cr3t"}, "REDACTED"},
		{"secret file path kept", Client{ID: "id", SecretFile: "/run/secret"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := validConfig()
			orig.Client = tt.client
			orig.Inbound.RequiredScopes = []string{"access_as_user"}
			before := validConfig()
			before.Client = tt.client
			before.Inbound.RequiredScopes = []string{"access_as_user"}

			r := orig.Redacted()
			if r.Client.Secret != tt.wantSecret || r.Client.SecretFile != tt.client.SecretFile || r.Client.ID != tt.client.ID {
				t.Errorf("Redacted().Client = %+v", r.Client)
			}
			// The copy is deep: changing it leaves the original alone.
			r.Inbound.Audiences[0] = "changed"
			r.Inbound.RequiredScopes[0] = "changed"
			r.Inbound.Algorithms[0] = "changed"
			r.Routes[0].Scopes[0] = "changed"
			r.Routes[0].Name = "changed"
			r.Client.ID = "changed"
			if !reflect.DeepEqual(orig, before) {
				t.Errorf("Redacted() modified the original:\n%+v\nwant\n%+v", orig, before)
			}
		})
	}
}

func TestParseMergeFanOutIsLinear(t *testing.T) {
	// Each mapping merges the previous one twice; resolving the merges
	// naively would take 2^40 steps.
	var b strings.Builder
	b.WriteString(minimal)
	b.WriteString("log: &a0 {level: info}\n")
	b.WriteString("cache: {<<: [")
	for i := 1; i <= 40; i++ {
		if i > 1 {
			b.WriteString(", ")
		}
		b.WriteString("&a" + strconv.Itoa(i) + " {<<: [*a" + strconv.Itoa(i-1) + ", *a" + strconv.Itoa(i-1) + "]}")
	}
	b.WriteString("]}\n")
	_, err := Parse([]byte(b.String()), "test.yaml", testEnv)
	want := `test.yaml:13: cache.level: unknown key`
	if err == nil || err.Error() != want {
		t.Fatalf("Parse() error = %v, want %s", err, want)
	}
}
