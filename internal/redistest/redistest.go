// Package redistest runs real redis-server processes on free loopback
// ports for tests: one server, or a Redis Cluster of several. Without
// redis-server on the machine, tests that need it are skipped with a message
// saying how to install it, except under CI (the CI environment variable
// set), where they fail: CI never skips them.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a running redis-server.
type Server struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	args []string // beyond those every server gets
	bus  int      // the cluster bus port, for a cluster's node
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start starts redis-server for the test and stops it at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	return startServer(t, redisServer(t))
}

// redisServer returns the path of redis-server, or ends the test without
// it (skipped, or failed under CI).
func redisServer(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server not found: install it (apt-get install -y redis-server) to run the Redis tests"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startServer starts one redis-server with the given extra arguments.
func startServer(t testing.TB, bin string, args ...string) *Server {
	t.Helper()
	s := &Server{t: t, bin: bin, port: freePort(t), dir: t.TempDir(), args: args}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// Cluster is a running Redis Cluster: masters only, the hash slots split
// evenly between them.
type Cluster struct {
	// Nodes are the cluster's servers.
	Nodes []*Server
}

// StartCluster starts a Redis Cluster of n masters for the test (Redis 7
// or later), waits until every node reports it healthy, and stops it at
// cleanup.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("redis cluster: %d nodes, want at least 1", n)
	}
	bin := redisServer(t)
	c := &Cluster{}
	for range n {
		// The cluster bus has a port of its own; left to redis-server it
		// would be the client port plus 10000, which may be taken or
		// above 65535.
		bus := freePort(t)
		s := startServer(t, bin, "--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
		s.bus = bus
		c.Nodes = append(c.Nodes, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clients := make([]*redis.Client, n)
	for i, s := range c.Nodes {
		clients[i] = redis.NewClient(&redis.Options{Addr: s.Addr()})
		defer clients[i].Close()
	}
	const slots = 16384
	for i, rc := range clients {
		lo, hi := i*slots/n, (i+1)*slots/n
		own := make([]int, 0, hi-lo)
		for slot := lo; slot < hi; slot++ {
			own = append(own, slot)
		}
		if err := rc.ClusterAddSlots(ctx, own...).Err(); err != nil {
			t.Fatalf("redis cluster: slots %d-%d on %s: %v", lo, hi-1, c.Nodes[i].Addr(), err)
		}
		// Distinct epochs, as redis-cli --cluster create sets them: the
		// nodes then agree on the slot map without a round of votes.
		if err := rc.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			t.Fatalf("redis cluster: epoch of %s: %v", c.Nodes[i].Addr(), err)
		}
	}
	for _, s := range c.Nodes[1:] {
		if err := clients[0].Do(ctx, "CLUSTER", "MEET", "127.0.0.1", s.port, s.bus).Err(); err != nil {
			t.Fatalf("redis cluster: meet %s: %v", s.Addr(), err)
		}
	}
	for i, rc := range clients {
		for {
			info, err := rc.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)+"\r\n") {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("redis cluster: node %s not ready: %q %v", c.Nodes[i].Addr(), info, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// URL is the redis:// URL of the cluster's first node, a seed from which a
// cluster client learns the others.
func (c *Cluster) URL() string { return c.Nodes[0].URL() }

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// start runs redis-server and waits until it accepts connections. If it
// exits first, the test fails at once with its log.
func (s *Server) start() {
	s.t.Helper()
	args := append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--protected-mode", "yes"}, s.args...)
	logPath := filepath.Join(s.dir, "redis.log")
	log, err := os.Create(logPath)
	if err != nil {
		s.t.Fatal(err)
	}
	defer log.Close() // the child holds its own descriptor
	s.cmd = exec.Command(s.bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			out, _ := os.ReadFile(logPath)
			s.cmd = nil
			s.t.Fatalf("redis-server on %s exited at start:\n%s", s.Addr(), out)
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr(), 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, _ := os.ReadFile(logPath)
	s.t.Fatal(fmt.Sprintf("redis-server did not listen on %s:\n%s", s.Addr(), out))
}

// Stop kills the server (as a crash would).
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
		s.cmd = nil
	}
}

// Restart starts the server again on the same port, empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}
