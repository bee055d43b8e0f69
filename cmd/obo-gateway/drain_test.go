package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/echo"
	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

const (
	drainClientID = "11111111-2222-4333-8444-000000000d1a"
	drainSecret   = "drain-Secret~0123456789abcdef"
	drainAPI      = "api://drain-api"
	// streamChunks makes a request last about chunks × 10 ms at the echo API.
	streamChunks = 25
)

// gatewayProcess is the obo-gateway binary serving a configuration.
type gatewayProcess struct {
	cmd         *exec.Cmd
	addr, admin string
	logs        *lockedBuffer
	exited      chan struct{} // closed when the process has exited
	exitErr     error         // how it exited; read after exited is closed
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s + "\n")
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startGateway runs "obo-gateway serve" with yaml as its configuration and
// waits until it is ready.
func startGateway(t *testing.T, yaml string, env ...string) *gatewayProcess {
	t.Helper()
	path := filepath.Join(t.TempDir(), "obo-gateway.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return startServe(t, []string{"--config", path}, env...)
}

// startServe runs "obo-gateway serve" with args and waits until it is
// ready.
func startServe(t *testing.T, args []string, env ...string) *gatewayProcess {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &gatewayProcess{cmd: cmd, logs: &lockedBuffer{}, exited: make(chan struct{})}
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		var once sync.Once
		for sc.Scan() {
			line := sc.Text()
			g.logs.add(line)
			var rec struct {
				Msg         string `json:"msg"`
				Listen      string `json:"listen"`
				AdminListen string `json:"admin_listen"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "gateway listening" {
				g.addr, g.admin = rec.Listen, rec.AdminListen
				once.Do(func() { close(listening) })
			}
		}
		g.exitErr = cmd.Wait()
		close(g.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		g.exitsWithin(10 * time.Second)
	})
	select {
	case <-listening:
	case <-time.After(20 * time.Second):
		t.Fatalf("the gateway did not start; its log:\n%s", g.logs)
	}
	if !eventually(20*time.Second, func() bool {
		res, err := http.Get("http://" + g.admin + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}) {
		t.Fatalf("the gateway did not become ready; its log:\n%s", g.logs)
	}
	return g
}

// exitsWithin waits up to d for the process to exit and reports whether
// it did.
func (g *gatewayProcess) exitsWithin(d time.Duration) bool {
	select {
	case <-g.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// outcome is how one request under load ended.
type outcome struct {
	kind                string // "cached", "new", "stream"
	start, end          time.Time
	status              int
	err                 error
	problem             string // why the answer is not acceptable; "" when it is
	refused             bool   // the connection was refused
	reused              bool   // sent on a kept-alive connection
	inFlightAtTerminate bool
}

// TestDrainUnderLoadWithAuthorityRestart runs the real binary under steady
// concurrent load — users whose token B is cached, new users who need an
// exchange, and slow streamed answers — kills the identity provider, starts
// it again on the same address, and sends the gateway SIGTERM while
// requests are in flight. Every request must end with a complete answer:
// 200, or 503 with the JSON error body while the authority is down (never
// for a cached user); after SIGTERM, new connections may be refused, but no
// request already sent is cut, reset or left hanging, and the process exits
// cleanly.
func TestDrainUnderLoadWithAuthorityRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	idp, err := localidp.New(localidp.Options{
		Clients: []localidp.Client{{ID: drainClientID, Secret: drainSecret, IdentifierURI: drainAPI}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	echoSrv := httptest.NewServer(echo.NewHandler())
	defer echoSrv.Close()

	g := startGateway(t, fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
shutdown_timeout: 10s
log: {level: debug, format: json}
authority:
  url: %s
  timeout: 2s
client:
  id: %s
  secret: ${DRAIN_TEST_SECRET}
inbound:
  audiences: [%s]
  required_scopes: [access_as_user]
routes:
  - name: echo
    path_prefix: /echo
    upstream: %s/api
    scopes: [api://echo-api/Echo.Read]
`, idp.Authority(), drainClientID, drainAPI, echoSrv.URL), "DRAIN_TEST_SECRET="+drainSecret)

	mint := func(oid string) string {
		tok, err := idp.IssueToken(localidp.UserToken{ObjectID: oid, Audience: drainAPI, Scopes: []string{"access_as_user"}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tr := &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	// The bound on every request: nothing may hang.
	client := &http.Client{Transport: tr, Timeout: 15 * time.Second}

	const cachedUsers = 8
	cached := make([]string, cachedUsers)
	for i := range cached {
		cached[i] = mint(fmt.Sprintf("cached-%d", i))
		res, err := client.Do(newRequest(t, g.addr, cached[i], false))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("warm-up: %d", res.StatusCode)
		}
	}

	var (
		terminateAt atomic.Int64 // UnixNano of SIGTERM, 0 before
		outcomes    []outcome
		mu          sync.Mutex
		stop        = make(chan struct{})
		wg          sync.WaitGroup
		newUsers    atomic.Int64
	)
	const workers = 16
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				kind, tok := "cached", cached[(w+i)%cachedUsers]
				switch {
				case w < 3:
					kind = "stream"
				case i%2 == 1:
					kind, tok = "new", mint(fmt.Sprintf("new-%d", newUsers.Add(1)))
				}
				o := send(client, g.addr, kind, tok)
				if ta := terminateAt.Load(); ta != 0 && o.start.UnixNano() < ta && o.end.UnixNano() > ta {
					o.inFlightAtTerminate = true
				}
				if o.refused {
					time.Sleep(10 * time.Millisecond)
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
			}
		})
	}

	// The script: 1.5 s steady, 1.5 s without the authority, 1.5 s with
	// it back, then SIGTERM; the load goes on until the process is gone.
	phase := func(d time.Duration) { time.Sleep(d) }
	phase(1500 * time.Millisecond)
	killAt := time.Now()
	if err := idp.Kill(); err != nil {
		t.Fatal(err)
	}
	phase(1500 * time.Millisecond)
	restartAt := time.Now()
	if err := idp.Restart(); err != nil {
		t.Fatal(err)
	}
	phase(1500 * time.Millisecond)
	terminateAt.Store(time.Now().UnixNano())
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !g.exitsWithin(20 * time.Second) {
		t.Error("the gateway did not exit within 20 s of SIGTERM")
	}
	exitedAt := time.Now()
	phase(300 * time.Millisecond) // requests against the stopped gateway
	close(stop)
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(20 * time.Second):
		t.Fatal("load workers hung")
	}
	if g.exitErr != nil {
		t.Errorf("the gateway exited with %v after SIGTERM", g.exitErr)
	}

	term := time.Unix(0, terminateAt.Load())
	counts := map[string]int{}
	var inFlightDone, outage503, outageCached200 int
	for _, o := range outcomes {
		label := o.kind + " "
		switch {
		case o.refused:
			label += "refused"
		case o.err != nil:
			label += "error"
		default:
			label += fmt.Sprint(o.status)
		}
		counts[label]++
		switch {
		case o.problem != "":
			t.Errorf("%s request %s–%s (SIGTERM at %s): %s", o.kind, o.start.Format("15:04:05.000"), o.end.Format("15:04:05.000"), term.Format("15:04:05.000"), o.problem)
		case o.refused && o.end.Before(term):
			t.Errorf("%s request refused before SIGTERM: %v", o.kind, o.err)
		case o.kind != "new" && o.status == http.StatusServiceUnavailable:
			t.Errorf("%s request got 503: a user with a cached token B must not depend on the authority", o.kind)
		}
		if o.inFlightAtTerminate && o.status == http.StatusOK && o.problem == "" {
			inFlightDone++
		}
		if o.start.After(killAt) && o.end.Before(restartAt) {
			if o.kind == "new" && o.status == http.StatusServiceUnavailable {
				outage503++
			}
			if o.kind == "cached" && o.status == http.StatusOK {
				outageCached200++
			}
		}
	}
	t.Logf("%d requests: %v; %d in flight at SIGTERM completed; the process exited %v after SIGTERM",
		len(outcomes), counts, inFlightDone, exitedAt.Sub(term).Round(time.Millisecond))
	if outage503 == 0 || outageCached200 == 0 {
		t.Errorf("while the authority was down: %d new users got 503, %d cached users got 200; want both", outage503, outageCached200)
	}
	if inFlightDone == 0 {
		t.Error("no request was in flight at SIGTERM, so the drain was not exercised")
	}
	for _, secret := range []string{drainSecret, cached[0]} {
		if strings.Contains(g.logs.String(), secret) {
			t.Error("the gateway's log holds the client secret or a token A")
		}
	}
}

func newRequest(t *testing.T, addr, tok string, stream bool) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/echo/items", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if stream {
		req.Header.Set("X-Echo-Stream", fmt.Sprint(streamChunks))
	}
	return req
}

// send makes one request and judges how it ended.
func send(client *http.Client, addr, kind, tok string) outcome {
	o := outcome{kind: kind, start: time.Now()}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/echo/items", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if kind == "stream" {
		req.Header.Set("X-Echo-Stream", fmt.Sprint(streamChunks))
	}
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { o.reused = i.Reused }}
	req = req.WithContext(httptrace.WithClientTrace(context.Background(), trace))
	res, err := client.Do(req)
	if err != nil {
		o.end, o.err = time.Now(), err
		o.refused = errors.Is(err, syscall.ECONNREFUSED)
		if !o.refused {
			o.problem = describeFailure(err, o.reused)
		}
		return o
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	o.end, o.status = time.Now(), res.StatusCode
	if err != nil {
		o.problem = "the answer was cut: " + describeFailure(err, o.reused)
		return o
	}
	switch {
	case res.StatusCode == http.StatusOK && kind == "stream":
		if n := strings.Count(string(body), "chunk "); n != streamChunks {
			o.problem = fmt.Sprintf("streamed answer incomplete: %d of %d chunks", n, streamChunks)
		}
	case res.StatusCode == http.StatusOK:
		var e struct {
			Path string `json:"path"`
		}
		if json.Unmarshal(body, &e) != nil || e.Path != "/api/items" {
			o.problem = fmt.Sprintf("200 with an unexpected body: %.200q", body)
		}
	case res.StatusCode == http.StatusServiceUnavailable:
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) != nil || e.Error != "temporarily_unavailable" || res.Header.Get("Cache-Control") != "no-store" {
			o.problem = fmt.Sprintf("503 without the JSON error: %.200q", body)
		}
	default:
		o.problem = fmt.Sprintf("unexpected status %d: %.200q", res.StatusCode, body)
	}
	return o
}

func describeFailure(err error, reused bool) string {
	var ne net.Error
	conn := "a new connection"
	if reused {
		conn = "a kept-alive connection"
	}
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("hung past the client's bound (%v) on %s", err, conn)
	case errors.Is(err, syscall.ECONNRESET):
		return fmt.Sprintf("connection reset on %s: %v", conn, err)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("connection closed without an answer on %s: %v", conn, err)
	}
	return fmt.Sprintf("failed on %s: %v", conn, err)
}

// TestShutdownDelayKeepsServing: with shutdown_delay, the gateway answers
// new requests for that long after SIGTERM while /readyz reports 503, so an
// application stopped at the same moment (an ordinary sidecar) can still
// call it; then it drains and exits. Without the delay, new connections are
// refused at once.
func TestShutdownDelayKeepsServing(t *testing.T) {
	idp, echoURL := drainParts(t)
	tok, err := idp.IssueToken(localidp.UserToken{ObjectID: "late-caller", Audience: drainAPI, Scopes: []string{"access_as_user"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		delay string
	}{{"no delay", "0s"}, {"two second delay", "2s"}, {"second signal during a long delay", "1m"}} {
		t.Run(tc.name, func(t *testing.T) {
			g := startGateway(t, delayedConfig(tc.delay, idp, echoURL))
			// A new connection for every call, as a caller that
			// arrives after SIGTERM would open.
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
			get := func(url string, bearer bool) (int, error) {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				if bearer {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				res, err := client.Do(req)
				if err != nil {
					return 0, err
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				return res.StatusCode, nil
			}
			if s, err := get("http://"+g.addr+"/echo/x", true); s != http.StatusOK {
				t.Fatalf("before SIGTERM: %d %v", s, err)
			}
			sent := time.Now()
			if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if tc.delay == "0s" {
				// New connections are refused once the signal arrives.
				if !eventually(5*time.Second, func() bool { _, err := get("http://"+g.addr+"/echo/x", true); return err != nil }) {
					t.Fatal("without a delay, requests were still answered 5 s after SIGTERM")
				}
				return
			}
			// The delay has begun once /readyz says 503; a new request is
			// answered then.
			var ready int
			var readyErr error
			if !eventually(5*time.Second, func() bool {
				ready, readyErr = get("http://"+g.admin+"/readyz", false)
				return ready == http.StatusServiceUnavailable
			}) {
				t.Fatalf("/readyz still %d %v 5 s after SIGTERM", ready, readyErr)
			}
			if status, err := get("http://"+g.addr+"/echo/x", true); status != http.StatusOK {
				t.Errorf("a request during the delay: %d %v, want 200", status, err)
			}
			if tc.delay == "1m" {
				// Whoever sends a second signal wants the process gone.
				if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				if !g.exitsWithin(5 * time.Second) {
					t.Fatal("a second SIGTERM during the delay did not end the process")
				}
				return
			}
			if !g.exitsWithin(10 * time.Second) {
				t.Fatalf("the gateway did not exit after its delay; its log:\n%s", g.logs)
			}
			if g.exitErr != nil {
				t.Errorf("exit: %v", g.exitErr)
			}
			if took := time.Since(sent); took < 2*time.Second {
				t.Errorf("the gateway exited %v after SIGTERM, before its 2 s delay", took)
			}
		})
	}
}

// drainParts starts an identity provider that knows the gateway and an
// echo API, both closed when t ends.
func drainParts(t *testing.T) (*localidp.Server, string) {
	t.Helper()
	idp, err := localidp.New(localidp.Options{Clients: []localidp.Client{{ID: drainClientID, Secret: drainSecret, IdentifierURI: drainAPI}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	echoSrv := httptest.NewServer(echo.NewHandler())
	t.Cleanup(echoSrv.Close)
	return idp, echoSrv.URL
}

// delayedConfig is the configuration of a gateway with shutdown_delay
// delay in front of the echo API at echoURL.
func delayedConfig(delay string, idp *localidp.Server, echoURL string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
shutdown_delay: %s
shutdown_timeout: 10s
log: {format: json}
authority: {url: %s}
client: {id: %s, secret: %s}
inbound: {audiences: [%s]}
routes:
  - {name: echo, path_prefix: /echo, upstream: %s/api, scopes: [api://echo-api/Echo.Read]}
`, delay, idp.Authority(), drainClientID, drainSecret, drainAPI, echoURL)
}

// eventually polls cond every 20 ms until it holds, for at most d, and
// reports whether it did.
func eventually(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
