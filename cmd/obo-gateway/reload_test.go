package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/echo"
	"github.com/obo-gateway/obo-gateway/internal/localidp"
	"github.com/obo-gateway/obo-gateway/internal/smallfile"
)

// reloadSetup is what a reloaded gateway runs against: the identity
// provider and two echo APIs, A and B, counting the requests they answer.
type reloadSetup struct {
	idp              *localidp.Server
	echoA, echoB     string
	servedA, servedB atomic.Int64
}

func newReloadSetup(t *testing.T) *reloadSetup {
	t.Helper()
	idp, err := localidp.New(localidp.Options{Clients: []localidp.Client{{ID: drainClientID, Secret: drainSecret, IdentifierURI: drainAPI}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Close() })
	s := &reloadSetup{idp: idp}
	counted := func(n *atomic.Int64) string {
		h := echo.NewHandler()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			h.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	s.echoA, s.echoB = counted(&s.servedA), counted(&s.servedB)
	return s
}

// config returns a configuration whose route echo goes to upstream's /api,
// with routes r1 … rN more (to echo A), and the extra top-level lines.
func (s *reloadSetup) config(upstream string, n int, extra ...string) string {
	var routes strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&routes, "  - {name: r%d, path_prefix: /r%d, upstream: %s/api, scopes: [api://echo-api/Echo.Read]}\n", i, i, s.echoA)
	}
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
log: {format: json}
authority: {url: %s}
client: {id: %s, secret: %s}
inbound: {audiences: [%s]}
routes:
  - {name: echo, path_prefix: /echo, upstream: %s/api, scopes: [api://echo-api/Echo.Read]}
%s%s
`, s.idp.Authority(), drainClientID, drainSecret, drainAPI, upstream, routes.String(), strings.Join(extra, "\n"))
}

// start runs the gateway on a file holding config(echoA, 0), looked at
// every poll ("0": never), and returns it with the file's path.
func (s *reloadSetup) start(t *testing.T, poll string) (*gatewayProcess, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "obo-gateway.yaml")
	if err := os.WriteFile(path, []byte(s.config(s.echoA, 0)), 0o600); err != nil {
		t.Fatal(err)
	}
	return startServe(t, []string{"--config", path, "--config-poll", poll}), path
}

func (s *reloadSetup) token(t *testing.T, oid string) string {
	t.Helper()
	return userToken(t, s.idp, oid)
}

// userToken issues a token A for user oid with the audience and scope the
// gateways of these tests accept.
func userToken(t *testing.T, idp *localidp.Server, oid string) string {
	t.Helper()
	tok, err := idp.IssueToken(localidp.UserToken{ObjectID: oid, Audience: drainAPI, Scopes: []string{"access_as_user"}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// get calls path on the gateway and returns the status.
func get(t *testing.T, addr, path, tok string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// waitReloads waits until obo_gateway_config_reloads_total{outcome} is n.
func (g *gatewayProcess) waitReloads(t *testing.T, outcome string, n int) {
	t.Helper()
	series := `obo_gateway_config_reloads_total{outcome="` + outcome + `"}`
	if !eventually(10*time.Second, func() bool { return metricValue(t, g.admin, series) == fmt.Sprint(n) }) {
		t.Fatalf("%s = %s, want %d; log:\n%s", series, metricValue(t, g.admin, series), n, g.logs)
	}
}

// scrape returns what the gateway's /metrics answers.
func scrape(t *testing.T, admin string) string {
	t.Helper()
	res, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// configInfo returns the obo_gateway_config_info series.
func configInfo(t *testing.T, admin string) []string {
	t.Helper()
	var series []string
	for l := range strings.Lines(scrape(t, admin)) {
		if strings.HasPrefix(l, "obo_gateway_config_info{") {
			series = append(series, strings.TrimSpace(l))
		}
	}
	return series
}

// logRecord returns the last log record with message msg.
func (g *gatewayProcess) logRecord(msg string) map[string]any {
	var last map[string]any
	for l := range strings.Lines(g.logs.String()) {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == msg {
			last = rec
		}
	}
	return last
}

// TestReloadOnSIGHUP: with the file watch off, a changed file applies on
// SIGHUP and not before: route echo moves to another upstream and a route
// is added; the changed listen address is logged as needing a restart and
// the gateway keeps serving where it listens; the info series changes.
func TestReloadOnSIGHUP(t *testing.T) {
	s := newReloadSetup(t)
	g, path := s.start(t, "0")
	tok := s.token(t, "user-1")
	if st := get(t, g.addr, "/echo/items", tok); st != http.StatusOK || s.servedA.Load() != 1 {
		t.Fatalf("before: %d, echo A answered %d", st, s.servedA.Load())
	}
	info := configInfo(t, g.admin)
	next := strings.Replace(s.config(s.echoB, 1), "listen: 127.0.0.1:0", "listen: 127.0.0.1:1", 1)
	if err := smallfile.Replace(path, []byte(next)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if st := get(t, g.addr, "/r1/items", tok); st != http.StatusNotFound {
		t.Fatalf("the new route answered %d before SIGHUP, with the file watch off", st)
	}
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	g.waitReloads(t, "success", 1)

	if st := get(t, g.addr, "/echo/items", tok); st != http.StatusOK || s.servedB.Load() != 1 {
		t.Errorf("after SIGHUP: %d, echo B answered %d, want 200 from B", st, s.servedB.Load())
	}
	if st := get(t, g.addr, "/r1/items", tok); st != http.StatusOK {
		t.Errorf("the added route: %d", st)
	}
	if rec := g.logRecord("configuration reloaded"); rec == nil || rec["trigger"] != "signal" {
		t.Errorf("reload record %v, want trigger signal", rec)
	}
	rec := g.logRecord("configuration keys changed that need a restart; they keep their running values")
	if keys, _ := rec["keys"].([]any); !slices.Equal(keys, []any{"listen"}) {
		t.Errorf("restart record %v, want keys [listen]", rec)
	}
	if v := metricValue(t, g.admin, "obo_gateway_config_restart_pending"); v != "1" {
		t.Errorf("obo_gateway_config_restart_pending = %q, want 1", v)
	}
	if now := configInfo(t, g.admin); len(info) != 1 || len(now) != 1 || now[0] == info[0] {
		t.Errorf("config_info %q before, %q after: want one series, changed", info, now)
	}
}

// TestReloadConfigMapSwap builds a ConfigMap volume as the kubelet does
// (..<timestamp>/config.yaml, ..data linked to it, config.yaml linked to
// ..data/config.yaml) and updates it as the kubelet does, by swapping
// ..data: the gateway picks the change up without a signal.
func TestReloadConfigMapSwap(t *testing.T) {
	s := newReloadSetup(t)
	dir := t.TempDir()
	version := func(name, content string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "config.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		// ..data is replaced by rename, so a reader sees one version or
		// the other.
		if err := os.Symlink(name, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_12_07_23_00_00.000000001", s.config(s.echoA, 0))
	if err := os.Symlink("..data/config.yaml", filepath.Join(dir, "config.yaml")); err != nil {
		t.Fatal(err)
	}
	g := startServe(t, []string{"--config", filepath.Join(dir, "config.yaml")})
	tok := s.token(t, "user-1")
	if st := get(t, g.addr, "/r1/items", tok); st != http.StatusNotFound {
		t.Fatalf("before: %d", st)
	}

	version("..2026_12_07_23_05_00.000000002", s.config(s.echoB, 1))
	if err := os.RemoveAll(filepath.Join(dir, "..2026_12_07_23_00_00.000000001")); err != nil {
		t.Fatal(err)
	}
	g.waitReloads(t, "success", 1)
	if st := get(t, g.addr, "/r1/items", tok); st != http.StatusOK {
		t.Errorf("the added route: %d", st)
	}
	if st := get(t, g.addr, "/echo/items", tok); st != http.StatusOK || s.servedB.Load() != 1 {
		t.Errorf("route echo: %d, echo B answered %d", st, s.servedB.Load())
	}
	if rec := g.logRecord("configuration reloaded"); rec == nil || rec["trigger"] != "file" {
		t.Errorf("reload record %v, want trigger file", rec)
	}
}

// TestReloadRefusesABrokenFile: a file that fails check is refused, logged
// with the keys check names and counted; the running configuration keeps
// serving and config_info still names it. A fixed file applies.
func TestReloadRefusesABrokenFile(t *testing.T) {
	s := newReloadSetup(t)
	g, path := s.start(t, "0")
	tok := s.token(t, "user-1")
	info := configInfo(t, g.admin)
	broken := strings.Replace(s.config(s.echoB, 0), "upstream: "+s.echoB+"/api, scopes: [api://echo-api/Echo.Read]",
		"upstream: not-a-url, scopes: []", 1)
	// Two credentials: a problem about the key that holds the secret.
	broken = strings.Replace(broken, "secret: "+drainSecret+"}", "secret: "+drainSecret+", secret_file: /nonexistent}", 1)
	if err := smallfile.Replace(path, []byte(broken)); err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	g.waitReloads(t, "failure", 1)

	rec := g.logRecord("configuration refused; the running configuration stays")
	keys, _ := rec["keys"].([]any)
	for _, want := range []any{"routes[0].upstream", "routes[0].scopes", "client.secret_file"} {
		if !slices.Contains(keys, want) {
			t.Errorf("the refusal %v does not name %s", rec, want)
		}
	}
	if st := get(t, g.addr, "/echo/items", tok); st != http.StatusOK || s.servedA.Load() != 1 {
		t.Errorf("after the refusal: %d, echo A answered %d; want the running configuration", st, s.servedA.Load())
	}
	if now := configInfo(t, g.admin); !slices.Equal(now, info) {
		t.Errorf("config_info %q after the refusal, want %q", now, info)
	}
	if v := metricValue(t, g.admin, `obo_gateway_config_reloads_total{outcome="success"}`); v != "0" {
		t.Errorf("reloads{success} = %s after a refusal", v)
	}

	if err := smallfile.Replace(path, []byte(s.config(s.echoB, 0))); err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	g.waitReloads(t, "success", 1)
	if st := get(t, g.addr, "/echo/items", tok); st != http.StatusOK || s.servedB.Load() != 1 {
		t.Errorf("after the fix: %d, echo B answered %d", st, s.servedB.Load())
	}
	if strings.Contains(g.logs.String(), drainSecret) {
		t.Error("the gateway's log holds the client secret")
	}
}

// TestReloadUnderLoad sends steady concurrent load over kept-alive
// connections — users whose token B is cached, new users who need an
// exchange, slow streamed answers — through ten reloads, half by SIGHUP
// and half by the file watch, each moving route echo to the other
// upstream and adding a route. Not one request may fail, every added route
// answers once its reload is counted, and the cached users' tokens B
// survive every reload.
func TestReloadUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	s := newReloadSetup(t)
	g, path := s.start(t, "100ms")

	const warmUsers, newUsers = 8, 400
	warm := make([]string, warmUsers)
	for i := range warm {
		warm[i] = s.token(t, fmt.Sprintf("warm-%d", i))
		if st := get(t, g.addr, "/echo/items", warm[i]); st != http.StatusOK {
			t.Fatalf("warming user %d: %d", i, st)
		}
	}
	fresh := make(chan string, newUsers)
	for i := range newUsers {
		fresh <- s.token(t, fmt.Sprintf("new-%d", i))
	}
	close(fresh)

	stop := make(chan struct{})
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		problems []string
		answered atomic.Int64
	)
	worker := func(w int) {
		defer wg.Done()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
		defer client.CloseIdleConnections()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			kind, tok := "cached", warm[(w+n)%warmUsers]
			switch {
			case w%8 == 0:
				kind = "stream"
			case w%8 == 1:
				if t, ok := <-fresh; ok {
					kind, tok = "new", t
				}
			}
			o := send(client, g.addr, kind, tok)
			if o.problem == "" && o.status != http.StatusOK {
				o.problem = fmt.Sprintf("status %d", o.status)
			}
			if o.problem != "" || o.err != nil {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s request at %s: %s %v", kind, o.start.Format("15:04:05.000"), o.problem, o.err))
				mu.Unlock()
				continue
			}
			answered.Add(1)
		}
	}
	const workers = 24
	wg.Add(workers)
	for w := range workers {
		go worker(w)
	}

	upstreams := []string{s.echoB, s.echoA}
	for i := 1; i <= 10; i++ {
		time.Sleep(200 * time.Millisecond)
		if err := smallfile.Replace(path, []byte(s.config(upstreams[i%2], i))); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
		g.waitReloads(t, "success", i)
		if st := get(t, g.addr, fmt.Sprintf("/r%d/items", i), warm[0]); st != http.StatusOK {
			t.Errorf("route r%d after reload %d: %d", i, i, st)
		}
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()

	t.Logf("%d requests answered across 10 reloads; echo A answered %d, echo B %d", answered.Load(), s.servedA.Load(), s.servedB.Load())
	if len(problems) > 0 {
		t.Errorf("%d requests failed during the reloads, the first: %q", len(problems), problems[:min(5, len(problems))])
	}
	if answered.Load() < 500 {
		t.Errorf("only %d requests answered: the load did not run", answered.Load())
	}
	if s.servedB.Load() == 0 {
		t.Error("echo B never answered: the reloads did not move route echo")
	}
	for i := range warmUsers {
		if n := s.idp.OnBehalfOfRequestsFor(fmt.Sprintf("warm-%d", i)); n != 1 {
			t.Errorf("warm user %d needed %d exchanges, want 1: the reloads lost the cached token B", i, n)
		}
	}
	if v := metricValue(t, g.admin, `obo_gateway_config_reloads_total{outcome="failure"}`); v != "0" {
		t.Errorf("reloads{failure} = %s", v)
	}
}
