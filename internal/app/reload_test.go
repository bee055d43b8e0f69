package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/echo"
	"github.com/obo-gateway/obo-gateway/internal/localidp"
	"github.com/obo-gateway/obo-gateway/internal/smallfile"
	"github.com/obo-gateway/obo-gateway/internal/syncbuf"
)

const (
	reloadClientID = "11111111-2222-4333-8444-00000000e10d"
	reloadSecret   = "reload-Secret~0123456789abcdef"
	reloadAPI      = "api://reload-api"
)

// syncBuffer is the log destination the gateway and the test share.
type syncBuffer = syncbuf.Buffer

// reloadEnv is a running App serving a configuration file, with the local
// identity provider and an echo API behind it.
type reloadEnv struct {
	t    *testing.T
	app  *App
	idp  *localidp.Server
	echo string // the echo API's URL
	path string // the configuration file
	logs *syncBuffer
}

// reloadConfig is a configuration of the reloadEnv: its routes (YAML list
// items) and further top-level lines.
func (e *reloadEnv) config(audience string, routes []string, extra ...string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
log: {format: json, level: info}
authority: {url: %s}
client: {id: %s, secret: %s}
inbound: {audiences: [%s]}
routes:
  - %s
%s
`, e.idp.Authority(), reloadClientID, reloadSecret, audience, strings.Join(routes, "\n  - "), strings.Join(extra, "\n"))
}

func (e *reloadEnv) route(name, prefix, base string) string {
	return fmt.Sprintf("{name: %s, path_prefix: %s, upstream: %s%s, scopes: [api://echo-api/Echo.Read]}", name, prefix, e.echo, base)
}

// startReload starts an App on the configuration that config returns.
func startReload(t *testing.T, poll time.Duration, config func(e *reloadEnv) string) *reloadEnv {
	t.Helper()
	idp, err := localidp.New(localidp.Options{Clients: []localidp.Client{{ID: reloadClientID, Secret: reloadSecret, IdentifierURI: reloadAPI}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Close() })
	echoSrv := httptest.NewServer(echo.NewHandler())
	t.Cleanup(echoSrv.Close)
	e := &reloadEnv{t: t, idp: idp, echo: echoSrv.URL, path: filepath.Join(t.TempDir(), "obo-gateway.yaml"), logs: &syncBuffer{}}
	e.write(config(e))
	cfg, file, err := LoadConfigFile(ConfigFile{Path: e.path, Poll: poll})
	if err != nil {
		t.Fatal(err)
	}
	level, _ := NewLevel(cfg.Log.Level)
	log, _ := NewLoggerAt(e.logs, level, "json")
	a, err := New(Options{Config: cfg, Logger: log, File: file, LogLevel: level})
	if err != nil {
		t.Fatal(err)
	}
	e.app = a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	if !waitFor(10*time.Second, a.Ready) {
		t.Fatalf("the gateway did not become ready; its log:\n%s", e.logs)
	}
	return e
}

func (e *reloadEnv) write(yaml string) {
	e.t.Helper()
	if err := smallfile.Replace(e.path, []byte(yaml)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *reloadEnv) token(oid, audience string) string {
	e.t.Helper()
	tok, err := e.idp.IssueToken(localidp.UserToken{ObjectID: oid, Audience: audience, Scopes: []string{"access_as_user"}})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// get calls the gateway and returns the status and the path the echo API
// saw ("" when it did not answer).
func (e *reloadEnv) get(path, tok string, header ...string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+e.app.Addr()+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var ans echo.Answer
	if res.StatusCode == http.StatusOK && json.Unmarshal(body, &ans) == nil {
		return res.StatusCode, ans.Path
	}
	return res.StatusCode, ""
}

func (e *reloadEnv) reloads(outcome string) float64 {
	return testutil.ToFloat64(e.app.metrics.ConfigReloads.WithLabelValues(outcome))
}

// infoSums returns the sha256 labels of obo_gateway_config_info.
func (e *reloadEnv) infoSums() []string {
	e.t.Helper()
	mfs, err := e.app.metrics.Registry.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	var sums []string
	for _, mf := range mfs {
		if mf.GetName() != "obo_gateway_config_info" {
			continue
		}
		for _, m := range mf.GetMetric() {
			sums = append(sums, m.GetLabel()[0].GetValue())
		}
	}
	return sums
}

func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// TestReloadAppliesRoutesAndKeepsTokens: a reload that moves a route to
// another upstream and adds one applies both, while the moved route's
// cached token B is served without a new exchange (its scopes stay); the
// counter, the info series and the log say what happened.
func TestReloadAppliesRoutesAndKeepsTokens(t *testing.T) {
	e := startReload(t, time.Hour, func(e *reloadEnv) string {
		return e.config(reloadAPI, []string{e.route("echo", "/echo", "/v1")})
	})
	tok := e.token("user-1", reloadAPI)
	if s, p := e.get("/echo/items", tok); s != http.StatusOK || p != "/v1/items" {
		t.Fatalf("before the reload: %d %q", s, p)
	}
	if s, _ := e.get("/two/items", tok); s != http.StatusNotFound {
		t.Fatalf("route two before it exists: %d", s)
	}
	exchanges := e.idp.OnBehalfOfRequests()
	before := e.infoSums()

	e.write(e.config(reloadAPI, []string{e.route("echo", "/echo", "/v2"), e.route("two", "/two", "/second")}))
	e.app.reload(triggerSignal)

	if s, p := e.get("/echo/items", tok); s != http.StatusOK || p != "/v2/items" {
		t.Errorf("the moved route after the reload: %d %q, want 200 from /v2/items", s, p)
	}
	if n := e.idp.OnBehalfOfRequests(); n != exchanges {
		t.Errorf("the moved route exchanged again (%d exchanges, %d before): its cached token B was lost", n, exchanges)
	}
	if s, p := e.get("/two/items", tok); s != http.StatusOK || p != "/second/items" {
		t.Errorf("the added route: %d %q", s, p)
	}
	if got := e.reloads("success"); got != 1 {
		t.Errorf("reloads{success} = %v, want 1", got)
	}
	after := e.infoSums()
	if len(before) != 1 || len(after) != 1 || before[0] == after[0] {
		t.Errorf("config_info sha256 before %v, after %v: want one series each, changed", before, after)
	}
	if !strings.Contains(e.logs.String(), `"msg":"configuration reloaded"`) {
		t.Errorf("no reload line in the log:\n%s", e.logs)
	}

	// The same content again is no reload: not counted.
	e.app.reload(triggerSignal)
	if got := e.reloads("success"); got != 1 {
		t.Errorf("an unchanged file counted: reloads{success} = %v, want 1", got)
	}
}

// TestReloadRefusesAnInvalidFile: a file that fails check's rules is
// refused, logged with the keys the problems name and counted, and the
// running configuration keeps serving.
func TestReloadRefusesAnInvalidFile(t *testing.T) {
	e := startReload(t, time.Hour, func(e *reloadEnv) string {
		return e.config(reloadAPI, []string{e.route("echo", "/echo", "/v1")})
	})
	before := e.infoSums()
	e.write(e.config(reloadAPI, []string{e.route("echo", "/echo", "/v2"),
		"{name: bad, path_prefix: /bad, upstream: ftp://nowhere, scopes: [x]}"}, "unknown_key: 1"))
	e.app.reload(triggerSignal)

	if got := e.reloads("failure"); got != 1 {
		t.Errorf("reloads{failure} = %v, want 1", got)
	}
	if got := e.reloads("success"); got != 0 {
		t.Errorf("reloads{success} = %v, want 0", got)
	}
	if s, p := e.get("/echo/items", e.token("user-1", reloadAPI)); s != http.StatusOK || p != "/v1/items" {
		t.Errorf("after the refusal: %d %q, want the old route (/v1/items)", s, p)
	}
	if after := e.infoSums(); !slices.Equal(before, after) {
		t.Errorf("config_info changed from %v to %v on a refused file", before, after)
	}
	var refused struct {
		Keys []string `json:"keys"`
	}
	for line := range strings.Lines(e.logs.String()) {
		if strings.Contains(line, "configuration refused") {
			_ = json.Unmarshal([]byte(line), &refused)
		}
	}
	for _, want := range []string{"routes[1].upstream", "unknown_key"} {
		if !slices.Contains(refused.Keys, want) {
			t.Errorf("the refusal's keys %q lack %q; log:\n%s", refused.Keys, want, e.logs)
		}
	}
}

// TestReloadKeepsRestartKeys: a change of listen or cache.max_bytes is
// logged as needing a restart and keeps its running value, while the rest
// of the file applies.
func TestReloadKeepsRestartKeys(t *testing.T) {
	e := startReload(t, time.Hour, func(e *reloadEnv) string {
		return e.config(reloadAPI, []string{e.route("echo", "/echo", "/v1")})
	})
	running := e.app.live.Load().cfg
	next := strings.Replace(e.config(reloadAPI, []string{e.route("echo", "/echo", "/v2")}, "cache: {max_bytes: 8MiB}"),
		"listen: 127.0.0.1:0", "listen: 127.0.0.1:1", 1)
	e.write(next)
	e.app.reload(triggerSignal)

	if s, p := e.get("/echo/items", e.token("user-1", reloadAPI)); s != http.StatusOK || p != "/v2/items" {
		t.Errorf("the route change did not apply: %d %q", s, p)
	}
	live := e.app.live.Load().cfg
	if live.Listen != running.Listen || live.Cache.MaxBytes != running.Cache.MaxBytes {
		t.Errorf("running listen %q, cache.max_bytes %v; want the old %q, %v", live.Listen, live.Cache.MaxBytes, running.Listen, running.Cache.MaxBytes)
	}
	if got := testutil.ToFloat64(e.app.metrics.ConfigRestartPending); got != 1 {
		t.Errorf("config_restart_pending = %v, want 1", got)
	}
	var kept struct {
		Keys []string `json:"keys"`
	}
	for line := range strings.Lines(e.logs.String()) {
		if strings.Contains(line, "need a restart") {
			_ = json.Unmarshal([]byte(line), &kept)
		}
	}
	if !slices.Equal(kept.Keys, []string{"listen", "cache.max_bytes"}) {
		t.Errorf("keys logged as needing a restart: %q, want [listen cache.max_bytes]; log:\n%s", kept.Keys, e.logs)
	}
}

// TestReloadOfAudiencesForgetsVerifiedTokens: tokens A verified under the
// previous audiences are not accepted once the audiences change, though
// the verified-token cache remembered them; a reload that leaves the
// inbound validation alone keeps the cache.
func TestReloadOfAudiencesForgetsVerifiedTokens(t *testing.T) {
	const other = reloadClientID // the other name of API A that tokens carry
	e := startReload(t, time.Hour, func(e *reloadEnv) string {
		return e.config(reloadAPI, []string{e.route("echo", "/echo", "/v1")})
	})
	tok := e.token("user-1", reloadAPI)
	if s, _ := e.get("/echo/items", tok); s != http.StatusOK {
		t.Fatalf("before: %d", s)
	}
	tokens := e.app.tokens

	e.write(e.config(reloadAPI, []string{e.route("echo", "/echo", "/v2")}))
	e.app.reload(triggerSignal)
	if e.app.tokens != tokens {
		t.Error("a reload of routes alone replaced token A's validation and its verified tokens")
	}

	e.write(e.config(other, []string{e.route("echo", "/echo", "/v2")}))
	e.app.reload(triggerSignal)
	if s, _ := e.get("/echo/items", tok); s != http.StatusUnauthorized {
		t.Errorf("a token of the removed audience, verified before: %d, want 401", s)
	}
	if s, _ := e.get("/echo/items", e.token("user-2", other)); s != http.StatusOK {
		t.Errorf("a token of the new audience: %d, want 200", s)
	}
}

// TestReloadLetsInFlightRequestsFinish: a request that started before a
// reload that removes its route finishes on the configuration it started
// with; the next one gets the new configuration.
func TestReloadLetsInFlightRequestsFinish(t *testing.T) {
	e := startReload(t, time.Hour, func(e *reloadEnv) string {
		return e.config(reloadAPI, []string{e.route("echo", "/echo", "/v1"), e.route("slow", "/slow", "/v1")})
	})
	tok := e.token("user-1", reloadAPI)
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+e.app.Addr()+"/slow/items", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Echo-Stream", "30") // about 300 ms
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		done <- result{res.StatusCode, string(body), err}
	}()
	if !waitFor(5*time.Second, func() bool { return testutil.ToFloat64(e.app.metrics.InFlight) == 1 }) {
		t.Fatal("the slow request did not start")
	}
	e.write(e.config(reloadAPI, []string{e.route("echo", "/echo", "/v1")}))
	e.app.reload(triggerSignal)
	if s, _ := e.get("/slow/items", tok); s != http.StatusNotFound {
		t.Errorf("a new request to the removed route: %d, want 404", s)
	}
	r := <-done
	if r.err != nil || r.status != http.StatusOK || strings.Count(r.body, "chunk ") != 30 {
		t.Errorf("the request in flight: %d, %d chunks, %v; want 200 with 30", r.status, strings.Count(r.body, "chunk "), r.err)
	}
}

// TestReloadWatchesTheFile: a file replaced by rename, as editors save, is
// picked up without a signal, and so is its removal (refused once, not at
// every look); log.level applies.
func TestReloadWatchesTheFile(t *testing.T) {
	e := startReload(t, 10*time.Millisecond, func(e *reloadEnv) string {
		return e.config(reloadAPI, []string{e.route("echo", "/echo", "/v1")})
	})
	e.write(strings.Replace(e.config(reloadAPI, []string{e.route("echo", "/echo", "/v2")}), "level: info", "level: debug", 1))
	if !waitFor(5*time.Second, func() bool { return e.reloads("success") == 1 }) {
		t.Fatalf("the changed file was not reloaded; log:\n%s", e.logs)
	}
	if s, p := e.get("/echo/items", e.token("user-1", reloadAPI)); s != http.StatusOK || p != "/v2/items" {
		t.Errorf("after the file changed: %d %q", s, p)
	}
	if e.app.level.Level() != slog.LevelDebug {
		t.Errorf("log level %v, want debug", e.app.level.Level())
	}
	if err := os.Remove(e.path); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return e.reloads("failure") == 1 }) {
		t.Fatalf("the removed file was not refused; log:\n%s", e.logs)
	}
	time.Sleep(100 * time.Millisecond) // ten looks more
	if got := e.reloads("failure"); got != 1 {
		t.Errorf("reloads{failure} = %v after the file stayed away, want 1", got)
	}
}

// TestKeepRestartKeys names the changed restart keys to the innermost key
// and restores their running values, leaving the live keys as read.
func TestKeepRestartKeys(t *testing.T) {
	base := func() *config.Config {
		c := &config.Config{Listen: "127.0.0.1:8080"}
		c.Authority.Timeout = config.Duration(time.Second)
		c.Client.Secret = "s1"
		c.Cache.Key = "user"
		c.Routes = []config.Route{{Name: "a"}}
		return c
	}
	tests := []struct {
		name string
		edit func(*config.Config)
		want []string
	}{
		{"nothing", func(*config.Config) {}, nil},
		{"live keys only", func(c *config.Config) { c.Routes[0].Name = "b"; c.Cache.Key = "assertion"; c.Log.Level = "debug" }, nil},
		{"listen", func(c *config.Config) { c.Listen = "127.0.0.1:8081" }, []string{"listen"}},
		{"nested", func(c *config.Config) {
			c.Authority.Timeout = config.Duration(2 * time.Second)
			c.Client.Secret = "s2"
			c.Cache.Redis.URL = "redis://127.0.0.1:6379"
		}, []string{"authority.timeout", "client.secret", "cache.redis.url"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			running, next := base(), base()
			tc.edit(next)
			live := next.Routes[0].Name
			if got := keepRestartKeys(running, next); !slices.Equal(got, tc.want) {
				t.Errorf("kept %q, want %q", got, tc.want)
			}
			if next.Listen != running.Listen || next.Authority != running.Authority || next.Client.Secret != running.Client.Secret ||
				next.Cache.Redis != running.Cache.Redis {
				t.Errorf("a restart key kept the file's value: %+v", next)
			}
			if next.Routes[0].Name != live {
				t.Errorf("a live key was reset")
			}
		})
	}
}
