package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/obo-gateway/obo-gateway/internal/echo"
	"github.com/obo-gateway/obo-gateway/internal/localidp"
	"github.com/obo-gateway/obo-gateway/internal/redistest"
	"github.com/obo-gateway/obo-gateway/internal/smallfile"
)

// replicaEnv is an identity provider, an echo API and a Redis shared by
// several gateway processes: one server, or the nodes of a cluster.
type replicaEnv struct {
	idp   *localidp.Server
	nodes []*redistest.Server // the Redis server, or the cluster's nodes
	yaml  string
	// keyFile holds key, the Redis encryption key.
	keyFile string
	key     []byte
}

// newReplicaEnv starts a replicaEnv whose Redis is one server, or a cluster
// of three when cluster is set.
func newReplicaEnv(t *testing.T, cluster bool) *replicaEnv {
	t.Helper()
	var nodes []*redistest.Server
	timeout := "100ms"
	if cluster {
		nodes = redistest.StartCluster(t, 3).Nodes
		// A cluster client's first operation also reads the slot map and
		// dials the node: room for a busy test machine.
		timeout = "1s"
	} else {
		nodes = append(nodes, redistest.Start(t))
	}
	idp, err := localidp.New(localidp.Options{Clients: []localidp.Client{{ID: drainClientID, Secret: drainSecret, IdentifierURI: drainAPI}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoSrv := &http.Server{Handler: echo.NewHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = echoSrv.Serve(ln) }()
	t.Cleanup(func() { echoSrv.Close() })

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(t.TempDir(), "redis-keys")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
log: {format: json}
authority: {url: %q}
client: {id: %q, secret: %q}
inbound:
  audiences: [%q]
routes:
  - name: echo
    path_prefix: /echo
    upstream: http://%s/api
    scopes: [api://echo-api/Echo.Read]
cache:
  redis:
    url: %s
    encryption_key_file: %s
    timeout: %s
    cluster: %t
`, idp.Authority(), drainClientID, drainSecret, drainAPI, ln.Addr(), nodes[0].URL(), keyFile, timeout, cluster)
	return &replicaEnv{idp: idp, nodes: nodes, yaml: yaml, keyFile: keyFile, key: key}
}

func (r *replicaEnv) token(t *testing.T, oid string) string {
	t.Helper()
	return userToken(t, r.idp, oid)
}

func call(t *testing.T, addr, tok string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/echo/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("request to %s: %v", addr, err)
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func metricValue(t *testing.T, admin, series string) string {
	t.Helper()
	for _, l := range strings.Split(scrape(t, admin), "\n") {
		if strings.HasPrefix(l, series+" ") {
			return strings.TrimPrefix(l, series+" ")
		}
	}
	return ""
}

// TestReplicasShareTokensThroughRedis runs two gateway processes over one
// Redis, a single server or a cluster of three: concurrent first requests
// of a user spread over both cause one exchange; Redis holds no readable
// token or user id; a replica started later finds the token in Redis.
func TestReplicasShareTokensThroughRedis(t *testing.T) {
	onServerAndCluster(t, replicasShareTokens)
}

// onServerAndCluster runs f as two subtests: over one Redis server, and
// over a cluster of three (cluster set).
func onServerAndCluster(t *testing.T, f func(t *testing.T, cluster bool)) {
	for _, tc := range []struct {
		name    string
		cluster bool
	}{{"one server", false}, {"cluster of three", true}} {
		t.Run(tc.name, func(t *testing.T) { f(t, tc.cluster) })
	}
}

func replicasShareTokens(t *testing.T, cluster bool) {
	env := newReplicaEnv(t, cluster)
	env.idp.SetLatency(150 * time.Millisecond)
	g1, g2 := startGateway(t, env.yaml), startGateway(t, env.yaml)
	tokA := env.token(t, "shared-user")

	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := g1.addr
			if i%2 == 1 {
				addr = g2.addr
			}
			if s := call(t, addr, tokA); s != 200 {
				t.Errorf("replica %d: status %d", i%2, s)
			}
		}()
	}
	wg.Wait()
	if n := env.idp.OnBehalfOfRequestsFor("shared-user"); n != 1 {
		t.Errorf("40 concurrent first requests over two replicas caused %d exchanges, want 1", n)
	}

	// What a reader of Redis sees, on every node.
	ctx := context.Background()
	tokB := env.idp.IssuedTokens()[0].Token
	total := 0
	for _, node := range env.nodes {
		rc := redis.NewClient(&redis.Options{Addr: node.Addr()})
		defer rc.Close()
		keys, err := rc.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatalf("Redis keys on %s: %v", node.Addr(), err)
		}
		total += len(keys)
		for _, k := range keys {
			v, _ := rc.Get(ctx, k).Result()
			for _, secret := range []string{tokA, tokB, "shared-user", strings.Split(tokB, ".")[1]} {
				if strings.Contains(k, secret) || strings.Contains(v, secret) {
					t.Errorf("Redis key or value reveals a token or the user id")
				}
			}
		}
	}
	if total == 0 {
		t.Fatal("Redis holds no key")
	}

	// A restarted replica (a new process) finds token B in Redis.
	_ = g1.cmd.Process.Kill()
	<-g1.exited
	g3 := startGateway(t, env.yaml)
	if s := call(t, g3.addr, tokA); s != 200 {
		t.Fatalf("restarted replica: %d", s)
	}
	if n := env.idp.OnBehalfOfRequestsFor("shared-user"); n != 1 {
		t.Errorf("the restarted replica exchanged again (%d exchanges)", n)
	}
	if v := metricValue(t, g3.admin, `obo_gateway_l2_lookups_total{result="hit"}`); v != "1" {
		t.Errorf("restarted replica's L2 hits = %q, want 1", v)
	}
	if v := metricValue(t, g3.admin, `obo_gateway_cache_lookups_total{result="l2",route="echo"}`); v != "1" {
		t.Errorf(`restarted replica's cache lookups with result "l2" = %q, want 1`, v)
	}
}

// TestRedisKilledMidLoadFailsNoRequest kills Redis under load: every
// request still succeeds, from the local cache or by an exchange.
func TestRedisKilledMidLoadFailsNoRequest(t *testing.T) {
	env := newReplicaEnv(t, false)
	g := startGateway(t, env.yaml)
	cached := env.token(t, "cached-user")
	if s := call(t, g.addr, cached); s != 200 {
		t.Fatal(s)
	}
	var sent, failed atomic.Int64
	var n atomic.Int64
	stop := time.Now().Add(2500 * time.Millisecond)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				tok := cached
				if w%2 == 0 { // a new user: an exchange, through Redis while it lives
					tok = env.token(t, fmt.Sprintf("new-%d", n.Add(1)))
				}
				sent.Add(1)
				if s := call(t, g.addr, tok); s != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	time.Sleep(800 * time.Millisecond)
	env.nodes[0].Stop()
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed while Redis died", failed.Load(), sent.Load())
	}
	if sent.Load() < 20 {
		t.Fatalf("only %d requests sent; the test proves little", sent.Load())
	}
	errs := metricValue(t, g.admin, `obo_gateway_l2_errors_total{kind="unavailable"}`) + metricValue(t, g.admin, `obo_gateway_l2_errors_total{kind="timeout"}`)
	if errs == "" {
		t.Error("Redis failures were not counted")
	}
	res, err := http.Get("http://" + g.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("/readyz = %d with Redis down; readiness must not depend on Redis", res.StatusCode)
	}
}

// TestRedisSecretsRotateWithoutRestart rotates the Redis password and
// encryption key under a running gateway, as a mounted secret is updated.
// The password file first, then Redis, which then drops every connection:
// the gateway's new connections use the new password, and the tokens B of
// users who come after the rotation reach Redis; a half-written file keeps
// the password read before. Then a new encryption key, listed first: the
// values written after it carry its key id.
func TestRedisSecretsRotateWithoutRestart(t *testing.T) {
	onServerAndCluster(t, redisSecretsRotate)
}

func redisSecretsRotate(t *testing.T, cluster bool) {
	env := newReplicaEnv(t, cluster)
	ctx := context.Background()
	// One client per node, each with one connection, which stays
	// authenticated through the changes of the password.
	var admins []*redis.Client
	for _, node := range env.nodes {
		c := redis.NewClient(&redis.Options{Addr: node.Addr(), PoolSize: 1})
		t.Cleanup(func() { c.Close() })
		admins = append(admins, c)
	}
	setPassword := func(password string) {
		t.Helper()
		for _, c := range admins {
			if err := c.ConfigSet(ctx, "requirepass", password).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	dropConnections := func() {
		t.Helper()
		for _, c := range admins {
			if err := c.ClientKillByFilter(ctx, "TYPE", "normal", "SKIPME", "yes").Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	keys := func() int {
		t.Helper()
		total := 0
		for _, c := range admins {
			n, err := c.DBSize(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			total += int(n)
		}
		return total
	}
	// keyIDs counts the values in Redis by the id of the key that sealed
	// them (bytes 1 to 4).
	keyIDs := func() map[string]int {
		t.Helper()
		ids := map[string]int{}
		for _, c := range admins {
			ks, err := c.Keys(ctx, "*").Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range ks {
				if strings.HasSuffix(k, ":lock") {
					continue
				}
				if v, err := c.Get(ctx, k).Bytes(); err == nil && len(v) > 5 {
					ids[string(v[1:5])]++
				}
			}
		}
		return ids
	}
	passwordFile := filepath.Join(t.TempDir(), "password")
	writeTo := func(path, content string) {
		t.Helper()
		if err := smallfile.Replace(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile := func(content string) { t.Helper(); writeTo(passwordFile, content) }
	setPassword("first-password")
	writeFile("first-password\n")
	g := startGateway(t, env.yaml+"    password_file: "+passwordFile+"\n")

	// moreKeys sends requests of new users until Redis holds one key more.
	users := 0
	moreKeys := func() {
		t.Helper()
		want := keys() + 1
		if !eventually(15*time.Second, func() bool {
			users++
			if s := call(t, g.addr, env.token(t, fmt.Sprintf("user-%d", users))); s != 200 {
				t.Fatalf("status %d", s)
			}
			return keys() >= want
		}) {
			t.Fatalf("Redis holds %d keys after %d users, want %d; gateway log:\n%s", keys(), users, want, g.logs.String())
		}
	}
	moreKeys()

	writeFile("second-password\n")
	setPassword("second-password")
	dropConnections()
	moreKeys()

	writeFile("")
	dropConnections()
	moreKeys()
	if !strings.Contains(g.logs.String(), "the password read before stays in use") {
		t.Error("no warning about the unreadable password file")
	}
	if strings.Contains(g.logs.String(), "-password") {
		t.Error("the gateway's log shows a Redis password")
	}

	before := keyIDs()
	if len(before) != 1 {
		t.Fatalf("values sealed with %d keys before the key rotation, want 1", len(before))
	}
	newKey := make([]byte, 32)
	_, _ = rand.Read(newKey)
	writeTo(env.keyFile, base64.StdEncoding.EncodeToString(newKey)+"\n"+base64.StdEncoding.EncodeToString(env.key)+"\n")
	moreKeys()
	after := keyIDs()
	if len(after) != 2 {
		t.Fatalf("values sealed with %d keys after the key rotation, want 2 (the old values and the new)", len(after))
	}
	if !strings.Contains(g.logs.String(), `"msg":"cache.redis encryption keys reloaded","keys":2`) {
		t.Error("no log line for the reloaded keys")
	}
	if strings.Contains(g.logs.String(), base64.StdEncoding.EncodeToString(newKey)) {
		t.Error("the gateway's log shows an encryption key")
	}
}
