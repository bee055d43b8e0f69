package main

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

// TestAdminListenerDefaultsToLoopback: /metrics, /healthz and /readyz are
// reachable only from inside the pod unless admin_listen says otherwise —
// in the configuration's default, in the serve command (no flag default of
// its own) and in the dev command's flag default.
func TestAdminListenerDefaultsToLoopback(t *testing.T) {
	flagDefault := func(c *cli.Command, name string) string {
		for _, f := range c.Flags {
			if sf, ok := f.(*cli.StringFlag); ok && sf.Name == name {
				return sf.Value
			}
		}
		t.Fatalf("%s has no --%s flag", c.Name, name)
		return ""
	}
	for _, tc := range []struct {
		cmd  *cli.Command
		want string // "" means: the configuration decides
	}{
		{serveCommand(), ""},
		{devCommand(), "loopback"},
	} {
		got := flagDefault(tc.cmd, "admin-listen")
		switch {
		case tc.want == "" && got != "":
			t.Errorf("%s --admin-listen defaults to %q, overriding the configuration", tc.cmd.Name, got)
		case tc.want == "loopback" && !isLoopbackAddr(got):
			t.Errorf("%s --admin-listen defaults to %q, not a loopback address", tc.cmd.Name, got)
		}
	}

	// The binary, with a configuration that names no admin_listen.
	path := filepath.Join(t.TempDir(), "no-admin.yaml")
	if err := os.WriteFile(path, []byte(`authority:
  url: http://127.0.0.1:1/tenant/v2.0
client:
  id: c
  secret: s
inbound:
  audiences: [api://a]
routes:
  - name: r
    path_prefix: /r
    upstream: http://127.0.0.1:1/
    scopes: [api://b/read]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", "--config", path, "--listen", "127.0.0.1:0", "--log-format", "json")
	cmd.Env = []string{} // not nil: nil would mean the whole environment
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OBO_GATEWAY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// Either it listens, or the default port is taken on this machine: both
	// name the address it chose.
	inUse := regexp.MustCompile(`admin listen (\S+):`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec struct {
				Msg         string `json:"msg"`
				AdminListen string `json:"admin_listen"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "gateway listening" {
				found <- rec.AdminListen
				return
			}
			if m := inUse.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				return
			}
		}
		found <- ""
	}()
	select {
	case addr := <-found:
		if !isLoopbackAddr(addr) {
			t.Errorf("serve without admin_listen listens for /metrics on %q, not on loopback", addr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not report its admin address")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
}

func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
