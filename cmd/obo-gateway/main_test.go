package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/echo"
)

// binary is the obo-gateway built once for these tests, with the same flags
// the Dockerfile uses.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "obo-gateway-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "obo-gateway")
	build := exec.Command("go", "build", "-trimpath", "-tags", "urfave_cli_no_docs",
		"-ldflags", "-s -w -X main.version=v0.0.0-test -X main.commit=abc1234", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestBinaryLeavesOutDocGenerator checks that the urfave_cli_no_docs tag
// keeps urfave/cli's man-page generator, and the Markdown parser it pulls
// in, out of the binary: their package-level tables would otherwise be
// scanned by every garbage collection of a running gateway.
func TestBinaryLeavesOutDocGenerator(t *testing.T) {
	out, err := exec.Command("go", "version", "-m", binary).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/urfave/cli/v2") {
		t.Fatalf("go version -m lists no urfave/cli; is this the gateway?\n%s", out)
	}
	for _, mod := range []string{"github.com/russross/blackfriday", "github.com/cpuguy83/go-md2man"} {
		if strings.Contains(string(out), mod) {
			t.Errorf("the binary links %s; build with -tags urfave_cli_no_docs", mod)
		}
	}
}

func runBinary(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestVersion(t *testing.T) {
	out, _, code := runBinary(t, nil, "version")
	if code != 0 || out != "obo-gateway v0.0.0-test (commit abc1234)\n" {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestCheckValid(t *testing.T) {
	out, errOut, code := runBinary(t, []string{"OBO_CLIENT_SECRET=from-env"}, "check", "--config", "testdata/valid.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"configuration is valid", "graph", "/graph", "https://graph.microsoft.com/v1.0", "on_behalf_of", "reports", "client_credentials"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, "from-env") {
		t.Error("check printed the secret")
	}
}

func TestCheckListsEveryProblem(t *testing.T) {
	out, errOut, code := runBinary(t, nil, "check", "--config", "testdata/invalid.yaml")
	if code != 2 {
		t.Fatalf("exit %d, want 2; stdout %s", code, out)
	}
	for _, want := range []string{
		"testdata/invalid.yaml:",
		"routes[1].upstream: must be an absolute http(s) URL",
		"routes[0].scopes: must not be empty",
		"client.secret: environment variable OBO_GATEWAY_TEST_UNSET is not set",
		"authority.url: must use https",
		"inbound.audiences: must not be empty",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestCheckMissingFile(t *testing.T) {
	_, errOut, code := runBinary(t, nil, "check", "--config", "testdata/nope.yaml")
	if code == 0 || !strings.Contains(errOut, "nope.yaml") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// devSession runs "obo-gateway dev" on free ports and parses what it prints.
type devSession struct {
	cmd             *exec.Cmd
	gateway, admin  string
	token, mfaToken string
	// agentCalls are the curl commands printed for the agent calls (5, 6
	// and 7), as printed.
	agentCalls []string
	stderr     *strings.Builder
}

func startDev(t *testing.T) *devSession {
	t.Helper()
	cmd := exec.Command(binary, "dev", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--token-api-listen", "127.0.0.1:0", "--log-format", "json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &devSession{cmd: cmd, stderr: &strings.Builder{}}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	gw := regexp.MustCompile(`gateway\s+(http://\S+)\s+\(admin (http://\S+)\)`)
	tok := regexp.MustCompile(`export (TOKEN|MFA_TOKEN)=(\S+)`)
	agents := false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	deadline := time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		line := sc.Text()
		if m := gw.FindStringSubmatch(line); m != nil {
			s.gateway, s.admin = m[1], m[2]
		}
		if m := tok.FindStringSubmatch(line); m != nil {
			if m[1] == "TOKEN" {
				s.token = m[2]
			} else {
				s.mfaToken = m[2]
			}
		}
		if strings.Contains(line, "# 5.") {
			agents = true
		}
		if agents && strings.HasPrefix(strings.TrimSpace(line), "curl ") {
			s.agentCalls = append(s.agentCalls, strings.TrimSpace(line))
		}
		if strings.Contains(line, "/AuthorizationHeaderUnauthenticated/") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if s.gateway == "" || s.token == "" || s.mfaToken == "" {
		t.Fatalf("dev printed no gateway or tokens; stderr:\n%s", s.stderr)
	}
	return s
}

func (s *devSession) get(t *testing.T, path, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.gateway+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	var res *http.Response
	var err error
	for range 100 { // the gateway loads the authority in the background
		res, err = http.DefaultClient.Do(req)
		if err == nil && res.StatusCode != http.StatusServiceUnavailable {
			break
		}
		if err == nil {
			res.Body.Close()
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

func TestDevDemoWorksAsPrinted(t *testing.T) {
	s := startDev(t)
	res, body := s.get(t, "/echo/hello", s.token)
	if res.StatusCode != 200 {
		t.Fatalf("first call: %d %s", res.StatusCode, body)
	}
	var echoed echo.Answer
	if err := json.Unmarshal(body, &echoed); err != nil {
		t.Fatal(err)
	}
	if echoed.Path != "/api/hello" || len(echoed.Headers["Authorization"]) != 1 || strings.Contains(echoed.Headers["Authorization"][0], s.token) {
		t.Errorf("echo saw %+v", echoed)
	}
	// The answer shows token B's claims, as the printed text says: the echo
	// API's audience and scope, the user of token A, the gateway as azp.
	if tok := echoed.Token; tok == nil || tok.Format != echo.FormatJWT ||
		tok.Claims["aud"] != "api://echo-api" || tok.Claims["scp"] != "Echo.Read" ||
		tok.Claims["oid"] != devAlice || tok.Claims["azp"] != devClientID || tok.Expires == "" {
		t.Errorf("echo shows the token %+v, want token B's claims (aud api://echo-api, scp Echo.Read, oid %s, azp %s)", tok, devAlice, devClientID)
	}
	if res, _ := s.get(t, "/echo/hello", s.token); res.StatusCode != 200 {
		t.Errorf("second call: %d", res.StatusCode)
	}
	mres, err := http.Get(s.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mres.Body)
	mres.Body.Close()
	if !strings.Contains(string(metrics), `obo_gateway_exchanges_total{flow="on_behalf_of",outcome="success",route="echo"} 1`) ||
		!strings.Contains(string(metrics), `obo_gateway_cache_lookups_total{result="hit",route="echo"} 1`) {
		t.Errorf("metrics do not show one exchange and one cache hit:\n%s", grepLines(string(metrics), "obo_gateway_"))
	}
	res, body = s.get(t, "/echo/hello", s.mfaToken)
	if res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), `error="insufficient_claims", claims="`) {
		t.Errorf("MFA call: %d %q %s", res.StatusCode, res.Header.Get("WWW-Authenticate"), body)
	}
	if res, _ := s.get(t, "/echo/hello", ""); res.StatusCode != 401 || res.Header.Get("WWW-Authenticate") != "Bearer" {
		t.Errorf("no token: %d", res.StatusCode)
	}
	s.checkAgentCalls(t)

	// SIGTERM stops it cleanly.
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("dev exited with %v; stderr:\n%s", err, s.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dev did not stop on SIGTERM")
	}
	for _, secret := range []string{s.token, s.mfaToken} {
		if strings.Contains(s.stderr.String(), secret) {
			t.Error("the log contains a user token")
		}
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
