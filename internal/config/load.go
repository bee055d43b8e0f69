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

	"github.com/obo-gateway/obo-gateway/internal/smallfile"
	"github.com/obo-gateway/obo-gateway/obo"
	"github.com/obo-gateway/obo-gateway/proxy"
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
