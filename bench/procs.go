package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The throughput phases run every server and the load generator in
// processes of their own, so that the garbage collector, scheduler and CPU
// time of one never count against another, and the CPU time each server
// spends per request can be read from /proc. With taskset on the machine,
// the load generator and the servers are pinned to disjoint CPUs.

// childMain runs one of the bench's helper processes:
//
//	bench child upstream             a minimal JSON API
//	bench child bare -upstream URL   a bare httputil.ReverseProxy in front of URL
//	bench child load -url URL -tokens FILE -conns N -duration D [-rate R]
//	                                 the Go load generator (when wrk is not installed,
//	                                 and for the fixed-rate phases)
//
// Servers print "listening ADDR" on their first line of output and run
// until their standard input closes.
func childMain(args []string) error {
	if len(args) == 0 {
		return errors.New("child: want upstream, bare or load")
	}
	fs := flag.NewFlagSet("child "+args[0], flag.ContinueOnError)
	upstream := fs.String("upstream", "", "upstream URL of the bare proxy")
	target := fs.String("url", "", "URL the load generator requests")
	tokens := fs.String("tokens", "", "file of tokens A, one per line")
	conns := fs.Int("conns", 64, "connections")
	duration := fs.Duration("duration", 5*time.Second, "length of the load")
	rate := fs.Float64("rate", 0, "requests per second over all connections (0: as fast as answered)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "upstream":
		return serveUntilStdinCloses(upstreamHandler())
	case "bare":
		u, err := url.Parse(*upstream)
		if err != nil || u.Host == "" {
			return fmt.Errorf("child bare: -upstream %q is not a URL", *upstream)
		}
		return serveUntilStdinCloses(bareProxy(u))
	case "load":
		toks, err := readLines(*tokens)
		if err != nil {
			return err
		}
		// At a fixed rate each connection sends on its own schedule,
		// staggered; latency counts from the actual send.
		var interval time.Duration
		if *rate > 0 {
			interval = time.Duration(float64(time.Second) * float64(*conns) / *rate)
		}
		start := time.Now()
		r := run(context.Background(), newLoadClient(*conns), *conns, *duration, func(w, n int) (string, string, bool) {
			if interval > 0 {
				time.Sleep(time.Until(start.Add(time.Duration(n)*interval + time.Duration(w)*interval/time.Duration(*conns))))
			}
			return *target, toks[(n**conns+w)%len(toks)], true
		})
		fmt.Printf("RESULT %d %d %d %d %d\n", r.requests, r.elapsed.Microseconds(), r.p50.Microseconds(), r.p99.Microseconds(), r.errors)
		return nil
	}
	return fmt.Errorf("child: unknown role %q", args[0])
}

// upstreamHandler is the API behind every proxy: a small JSON answer.
func upstreamHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
}

// bareProxy is the floor: an httputil.ReverseProxy whose idle connection
// pool is sized for the load as the gateway's is (the stock pool keeps two
// connections per host and would reopen the rest on every request), and
// whose copy buffers are pooled as the gateway's are, so that the
// comparison measures only the gateway's own work (validation, cache,
// header swap, logs, metrics).
func bareProxy(upstream *url.URL) http.Handler {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.ResponseHeaderTimeout = 30 * time.Second
	t.ExpectContinueTimeout = time.Second
	return &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(upstream); pr.SetXForwarded() },
		Transport:  t,
		BufferPool: &buffers{},
		ErrorLog:   log.New(io.Discard, "", 0),
	}
}

// buffers pools 32 KiB copy buffers, as the gateway does.
type buffers struct{ pool sync.Pool }

func (b *buffers) Get() []byte {
	if p, ok := b.pool.Get().(*[]byte); ok {
		return *p
	}
	return make([]byte, 32<<10)
}

func (b *buffers) Put(buf []byte) { b.pool.Put(&buf) }

func serveUntilStdinCloses(h http.Handler) error {
	addr, stop, err := listen(h)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Printf("listening %s\n", addr)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

func readLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Fields(string(b))
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s: no tokens", path)
	}
	return lines, nil
}

// placement says which CPUs the load generator, the upstream and the
// proxies under test (the bare proxy and the gateways) run on.
type placement struct {
	load, upstream, servers string // taskset CPU lists; empty: not pinned
}

// choosePlacement pins the load generator to the first loadCPUs CPUs and
// the proxies under test to the rest, when taskset exists and the machine
// has CPUs to spare. The upstream joins the load generator when
// upstreamWithLoad is set, so that a proxy's CPUs serve that proxy alone
// and its queue holds nobody else's work; otherwise it joins the proxies.
func choosePlacement(pin, upstreamWithLoad bool, loadCPUs, ncpu int) (placement, string) {
	if !pin {
		return placement{}, "not pinned (-pin=false)"
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return placement{}, "not pinned (taskset is not installed)"
	}
	if loadCPUs < 1 || ncpu-loadCPUs < 1 {
		return placement{}, fmt.Sprintf("not pinned (%d CPUs: none to spare for the load generator)", ncpu)
	}
	p := placement{load: cpuRange(0, loadCPUs-1), servers: cpuRange(loadCPUs, ncpu-1)}
	if upstreamWithLoad {
		p.upstream = p.load
		return p, fmt.Sprintf("load generator and upstream on CPU %s, the proxy under test on CPU %s", p.load, p.servers)
	}
	p.upstream = p.servers
	return p, fmt.Sprintf("load generator on CPU %s, upstream and the proxy under test on CPU %s", p.load, p.servers)
}

func cpuRange(from, to int) string {
	if from == to {
		return strconv.Itoa(from)
	}
	return fmt.Sprintf("%d-%d", from, to)
}

// command builds a command, pinned to cpus when cpus is not empty.
func command(cpus string, name string, args ...string) *exec.Cmd {
	if cpus == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("taskset", append([]string{"-c", cpus, name}, args...)...)
}

// proc is a running server process.
type proc struct {
	cmd   *exec.Cmd
	stdin io.Closer
	addr  string // http://host:port of the served API
	admin string // host:port of the admin listener (gateway only)
}

// pid returns the process id of the server itself (taskset execs it, so
// the id is the same).
func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop closes the server's standard input, then kills it if it lingers.
func (p *proc) stop() {
	_ = p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// startChild starts `bench child ROLE ARGS...` and waits for its address.
func startChild(cpus, role string, args ...string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := command(cpus, self, append([]string{"child", role}, args...)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(out).ReadString('\n')
	if addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening "); err == nil && ok {
		p.addr = addr
		go func() { _, _ = io.Copy(io.Discard, out) }()
		return p, nil
	}
	p.stop()
	return nil, fmt.Errorf("child %s did not start: %q %v", role, line, err)
}

// gatewayTags are the build tags of the image's build, hack/go-build.sh
// (TestGatewayTagsAreTheDockerfiles checks).
const gatewayTags = "urfave_cli_no_docs"

// buildGateway builds the obo-gateway binary into dir with the Dockerfile's
// build tags, so the throughput phases measure the program that ships.
func buildGateway(dir string) (string, error) {
	bin := filepath.Join(dir, "obo-gateway")
	cmd := exec.Command("go", "build", "-tags", gatewayTags, "-o", bin, "github.com/obo-gateway/obo-gateway/cmd/obo-gateway")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the gateway: %w", err)
	}
	return bin, nil
}

// startGateway runs `obo-gateway serve` with configuration yaml (which
// must leave listen and admin_listen to the flags) and waits until it is
// ready, with env added to its environment. Its logs go to the null
// device: every request's log line is still formatted and written, as in
// production.
func startGateway(bin, dir, name, yaml, cpus string, env []string) (*proc, error) {
	cfgPath := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	listenAddr := fmt.Sprintf("127.0.0.1:%d", freePort())
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort())
	cmd := command(cpus, bin, "serve", "--config", cfgPath, "--listen", listenAddr, "--admin-listen", adminAddr)
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = devnull, devnull
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	err = cmd.Start()
	devnull.Close()
	if err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, addr: "http://" + listenAddr, admin: adminAddr,
		stdin: closeFunc(func() error { return cmd.Process.Signal(os.Interrupt) })}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get("http://" + adminAddr + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("gateway %s not ready within 15s", name)
}

type closeFunc func() error

func (f closeFunc) Close() error { return f() }

// cpuTime returns the user plus system CPU time a process has used, from
// /proc/PID/stat (Linux only; 0 elsewhere).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; fields count from after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// ioCalls returns the read and write system calls a process has made, from
// /proc/PID/io (Linux only; 0 elsewhere).
func ioCalls(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	var n int64
	for _, k := range []string{"syscr", "syscw"} {
		v, _ := procField(string(b), k)
		c, _ := strconv.ParseInt(v, 10, 64)
		n += c
	}
	return n
}

// peakRSS returns the most memory a process has had resident, from
// VmHWM in /proc/PID/status (Linux only; 0 elsewhere).
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	return statusKiB(string(b), "VmHWM") << 10
}

// statusKiB reads a "Name:   1234 kB" line of a /proc/PID/status text.
func statusKiB(status, name string) int64 {
	v, _ := procField(status, name)
	n, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// procField returns the value of the "name: value" line of a /proc text
// (such as /proc/PID/io or /proc/PID/status), trimmed.
func procField(text, name string) (string, bool) {
	for _, l := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == name {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// clockTicks is USER_HZ, which Linux fixes at 100 for /proc.
const clockTicks = 100
