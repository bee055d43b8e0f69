package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/app"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/echo"
	"github.com/obo-gateway/obo-gateway/internal/localidp"
	"github.com/obo-gateway/obo-gateway/internal/otlptest"
	"github.com/obo-gateway/obo-gateway/internal/syncbuf"
)

const (
	clientID     = "11111111-2222-4333-8444-555555555555"
	clientSecret = "e2e-Secret~value.0123456789"
	apiURI       = "api://api-a"
	echoScope    = "api://echo-api/Echo.Read"
)

// syncBuffer is the log destination the gateway and the test share.
type syncBuffer = syncbuf.Buffer

// env is one running set: identity provider, echo API, gateway.
type env struct {
	t       *testing.T
	idp     *localidp.Server
	echoURL string
	// echoHits counts requests that reached the echo API.
	echoHits atomic.Int64
	gw       string
	admin    string
	logs     *syncBuffer
	app      *app.App
	stop     context.CancelFunc
	done     chan error
	// seen holds the answers e.do read, for the secret hygiene check.
	seen seenAnswers
	// traces receives the gateway's spans, for the tests of traces and
	// for the secret hygiene check; nil with options.noTraces.
	traces *otlptest.Collector
}

type options struct {
	secret           string // client secret the gateway presents; default clientSecret
	authorityTimeout string
	extraRoutes      string
	idp              func(*localidp.Options)
	// secretFile makes the gateway read its secret from a file.
	secretFile bool
	// authorityURL replaces the identity provider's authority URL.
	authorityURL string
	// noWait skips waiting for readiness.
	noWait bool
	// tokenEndpoint overrides the authority's token endpoint.
	tokenEndpoint string
	// cae declares the cp1 client capability.
	cae bool
	// cacheKey sets cache.key.
	cacheKey string
	// verifiedCacheBytes sets inbound.verified_cache_bytes ("0" turns the cache off).
	verifiedCacheBytes string
	// credential replaces the client secret line under client: (for
	// example "certificate: {file: ..., key_file: ...}").
	credential string
	// clientExtra, authorityExtra and inboundExtra are further lines under
	// client:, authority: and inbound:, without the indentation.
	clientExtra, authorityExtra, inboundExtra []string
	// env holds further environment variables the configuration sees;
	// ${ECHO_URL} is always the echo API's base URL.
	env map[string]string
	// authorityOf, when set, chooses authority.url from the identity
	// provider (for example its organizations authority).
	authorityOf func(*localidp.Server) string
	// envOf, when set, adds environment variables that need the running
	// identity provider (a managed identity endpoint's IDENTITY_ENDPOINT).
	envOf func(*localidp.Server) map[string]string
	// noTraces turns off the export of the gateway's spans to a collector
	// on loopback (telemetry.otlp.endpoint), env.traces.
	noTraces bool
	// cacheExtra are further lines under cache:, without the indentation.
	cacheExtra []string
}

func start(t *testing.T, o options) *env {
	t.Helper()
	idpOpts := localidp.Options{
		Clients: []localidp.Client{{ID: clientID, Secret: clientSecret, IdentifierURI: apiURI}},
		// The gateway must never keep or show them.
		IssueRefreshTokens: true,
	}
	if o.idp != nil {
		o.idp(&idpOpts)
	}
	idp, err := localidp.New(idpOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })

	e := &env{t: t, idp: idp, logs: &syncBuffer{}}
	telemetry := ""
	if !o.noTraces {
		// Started before the gateway, so that it stops after it.
		e.traces = otlptest.Start(t)
		telemetry = "telemetry:\n  otlp:\n    endpoint: " + e.traces.URL() + "\n"
	}
	if o.secret == "" {
		o.secret = clientSecret
	}
	// Runs after the gateway has stopped (cleanups run last first), so
	// that every log line is written.
	t.Cleanup(func() { e.checkSecretHygiene(o.secret) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	eh := echo.NewHandler()
	echoSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.echoHits.Add(1)
		eh.ServeHTTP(w, r)
	})}
	go func() { _ = echoSrv.Serve(ln) }()
	t.Cleanup(func() { echoSrv.Close() })
	e.echoURL = "http://" + ln.Addr().String()

	if o.secret == "" {
		o.secret = clientSecret
	}
	if o.authorityTimeout == "" {
		o.authorityTimeout = "5s"
	}
	credential := "secret: ${E2E_SECRET}"
	if o.secretFile {
		path := filepath.Join(t.TempDir(), "client-secret")
		if err := os.WriteFile(path, []byte(o.secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		credential = "secret_file: " + path
	}
	if o.credential != "" {
		credential = o.credential
	}
	for _, l := range o.clientExtra {
		credential += "\n  " + l
	}
	authority := idp.Authority()
	if o.authorityURL != "" {
		authority = o.authorityURL
	}
	if o.authorityOf != nil {
		authority = o.authorityOf(idp)
	}
	if o.cae {
		credential += "\n  capabilities: [cp1]"
	}
	tokenEndpoint := ""
	if o.tokenEndpoint != "" {
		tokenEndpoint = "\n  token_endpoint: " + o.tokenEndpoint
	}
	for _, l := range o.authorityExtra {
		tokenEndpoint += "\n  " + l
	}
	if o.cacheKey == "" {
		o.cacheKey = "user"
	}
	if o.verifiedCacheBytes == "" {
		o.verifiedCacheBytes = "16MiB"
	}
	for _, l := range o.inboundExtra {
		o.verifiedCacheBytes += "\n  " + l
	}
	for _, l := range o.cacheExtra {
		o.cacheKey += "\n  " + l
	}
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
shutdown_timeout: 5s
log:
  level: debug
  format: json
  requests: all
authority:
  url: %s
  timeout: %s%s
client:
  id: %s
  %s
inbound:
  audiences: [%s, %s]
  required_scopes: [access_as_user]
  verified_cache_bytes: %s
cache:
  key: %s
routes:
  - name: echo
    path_prefix: /echo
    upstream: %s/base
    scopes: [%s]
  - name: app
    path_prefix: /app
    upstream: %s/app
    scopes: [api://echo-api/.default]
    flow: client_credentials
  - name: dead
    path_prefix: /dead
    upstream: http://127.0.0.1:1/
    scopes: [%s]
%s%s`, authority, o.authorityTimeout, tokenEndpoint, clientID, credential, apiURI, clientID, o.verifiedCacheBytes, o.cacheKey, e.echoURL, echoScope, e.echoURL, echoScope, o.extraRoutes, telemetry)
	if o.envOf != nil {
		o.env = maps.Clone(o.env)
		if o.env == nil {
			o.env = make(map[string]string)
		}
		maps.Copy(o.env, o.envOf(idp))
	}
	cfg, err := config.Parse([]byte(yaml), "e2e.yaml", func(k string) (string, bool) {
		if k == "E2E_SECRET" {
			return o.secret, true
		}
		if k == "ECHO_URL" {
			return e.echoURL, true
		}
		v, ok := o.env[k]
		return v, ok
	})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	log, err := app.NewLogger(e.logs, "debug", "json")
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(app.Options{Config: cfg, Logger: log, Version: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	e.app = a
	e.gw, e.admin = "http://"+a.Addr(), "http://"+a.AdminAddr()
	ctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	e.done = make(chan error, 1)
	go func() { e.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		// The drain waits for kept-alive connections to idle out.
		http.DefaultClient.CloseIdleConnections()
		cancel()
		<-e.done
	})
	if !o.noWait {
		e.waitReady()
	}
	return e
}

func (e *env) waitReady() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(e.admin + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatal("gateway did not become ready")
}

// token issues a token A for user oid with the defaults of a valid call.
func (e *env) token(oid string, edit ...func(*localidp.UserToken)) string {
	e.t.Helper()
	ut := localidp.UserToken{ObjectID: oid, Audience: apiURI, Scopes: []string{"access_as_user"}}
	for _, f := range edit {
		f(&ut)
	}
	tok, err := e.idp.IssueToken(ut)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// answer is a response with its body read.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("body is not JSON (%v): %s", err, a.body)
	}
	return m
}

// echoed is what the echo API saw.
type echoed struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	RawPath string              `json:"raw_path"`
	Query   string              `json:"query"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body"`
}

func (a answer) echoed(t *testing.T) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("echo body (%d): %v: %s", a.status, err, a.body)
	}
	return e
}

func (e *env) do(method, path, token string, body io.Reader, hdr ...string) answer {
	e.t.Helper()
	req, err := http.NewRequest(method, e.gw+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	e.seen.add(res.Header, b)
	return answer{status: res.StatusCode, header: res.Header, body: b}
}

func (e *env) get(path, token string, hdr ...string) answer {
	e.t.Helper()
	return e.do(http.MethodGet, path, token, nil, hdr...)
}

// metric returns the text exposition lines of the admin listener that
// start with prefix.
func (e *env) metric(prefix string) []string {
	e.t.Helper()
	res, err := http.Get(e.admin + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// jwtClaims decodes a JWT's payload without verifying it.
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
