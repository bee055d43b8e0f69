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
	cmd  *exec.Cmd
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

// startServer starts one redis-server with the given extra arguments.
func startServer(t testing.TB, bin string, args ...string) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{t: t, bin: bin, port: port, dir: t.TempDir(), args: args}
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

// StartCluster starts a Redis Cluster of n masters for the test, waits
// until every node reports it healthy, and stops it at cleanup.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	bin := redisServer(t)
	c := &Cluster{}
	for range n {
		c.Nodes = append(c.Nodes, startServer(t, bin, "--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"))
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
		lo, hi := i*slots/n, (i+1)*slots/n-1
		if err := rc.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			t.Fatalf("redis cluster: slots %d-%d on %s: %v", lo, hi, c.Nodes[i].Addr(), err)
		}
		if i > 0 {
			if err := clients[0].ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(c.Nodes[i].port)).Err(); err != nil {
				t.Fatalf("redis cluster: meet %s: %v", c.Nodes[i].Addr(), err)
			}
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

func (s *Server) start() {
	s.t.Helper()
	args := append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--protected-mode", "yes"}, s.args...)
	s.cmd = exec.Command(s.bin, args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", s.Addr(), 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatal(fmt.Sprintf("redis-server did not listen on %s", s.Addr()))
}

// Stop kills the server (as a crash would).
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Restart starts the server again on the same port, empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}
