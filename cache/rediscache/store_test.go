package rediscache

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/internal/redistest"
	"github.com/obo-gateway/obo-gateway/internal/smallfile"
)

func newKey(t *testing.T) []byte {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k)
	return k
}

type counts struct {
	mu     sync.Mutex
	errors map[string]int
	hits   atomic.Int32
	misses atomic.Int32
}

func (c *counts) observer() Observer {
	c.errors = map[string]int{}
	return Observer{
		Hit:  func() { c.hits.Add(1) },
		Miss: func() { c.misses.Add(1) },
		Error: func(kind string) {
			c.mu.Lock()
			c.errors[kind]++
			c.mu.Unlock()
		},
	}
}

func (c *counts) errorsOf(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errors[kind]
}

func newStore(t *testing.T, srv *redistest.Server, keys [][]byte, cnt *counts) *Store {
	t.Helper()
	return newStoreAt(t, srv.URL(), false, keys, cnt)
}

// newStoreAt is newStore for the Redis at url, a cluster's seed when
// cluster is set.
func newStoreAt(t *testing.T, url string, cluster bool, keys [][]byte, cnt *counts) *Store {
	t.Helper()
	cfg := Config{URL: url, Cluster: cluster, Keys: keys, Timeout: 200 * time.Millisecond, Pause: 300 * time.Millisecond, LockWait: time.Second}
	if cluster {
		// A cluster client's first operation also reads the slot map and
		// dials the node: room for a busy test machine.
		cfg.Timeout = time.Second
	}
	if cnt != nil {
		cfg.Observer = cnt.observer()
	}
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func entry(key, token string) *cache.Entry {
	now := time.Now()
	return cache.NewEntry(key, token, "Bearer", now, now.Add(time.Hour), 0)
}

func raw(t *testing.T, srv *redistest.Server) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { c.Close() })
	return c
}

const userID = "00000000-0000-4000-8000-0000000a11ce"

func TestRoundTripRevealsNothing(t *testing.T) {
	srv := redistest.Start(t)
	st := newStore(t, srv, [][]byte{newKey(t)}, nil)
	ctx := context.Background()
	key := cache.UserKey("tenant-1", userID, nil, "api://b/read")
	e := entry(key, "eyJ-secret-token-b")
	st.Set(ctx, e)
	got, ok := st.Get(ctx, key)
	if !ok || got.Token != e.Token || got.TokenType != "Bearer" || !got.UsableUntil.Equal(e.UsableUntil) ||
		!got.RefreshAt.Equal(e.RefreshAt) || !got.ExpiresAt.Equal(e.ExpiresAt) || got.Key != key {
		t.Fatalf("round trip: %+v, %v", got, ok)
	}
	r := raw(t, srv)
	keys, err := r.Keys(ctx, "*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys: %v %v", keys, err)
	}
	v, _ := r.Get(ctx, keys[0]).Bytes()
	for _, secret := range []string{"eyJ-secret-token-b", userID, "tenant-1", "api://b/read"} {
		if strings.Contains(keys[0], secret) || bytes.Contains(v, []byte(secret)) {
			t.Errorf("Redis shows %q", secret)
		}
	}
	if ttl := r.TTL(ctx, keys[0]).Val(); ttl <= 0 || ttl > 56*time.Minute {
		t.Errorf("TTL %v, want up to the entry's usable-until (55m)", ttl)
	}
}

func TestTamperedOrMovedValuesDoNotOpen(t *testing.T) {
	srv := redistest.Start(t)
	cnt := &counts{}
	st := newStore(t, srv, [][]byte{newKey(t)}, cnt)
	ctx := context.Background()
	r := raw(t, srv)
	alice, bob := cache.UserKey("t", "alice", nil, "s"), cache.UserKey("t", "bob", nil, "s")
	st.Set(ctx, entry(alice, "token-of-alice"))
	ra, rb := st.sealer().redisKey(st.cfg.KeyPrefix, alice), st.sealer().redisKey(st.cfg.KeyPrefix, bob)

	// Alice's value copied under Bob's key must not open as Bob's.
	v, _ := r.Get(ctx, ra).Bytes()
	r.Set(ctx, rb, v, time.Hour)
	if e, ok := st.Get(ctx, bob); ok {
		t.Fatalf("Bob was served %q", e.Token)
	}
	if r.Exists(ctx, rb).Val() != 0 {
		t.Error("the moved value was not deleted")
	}
	// A flipped bit.
	v[len(v)-1] ^= 1
	r.Set(ctx, ra, v, time.Hour)
	if _, ok := st.Get(ctx, alice); ok {
		t.Fatal("tampered value opened")
	}
	// Garbage.
	r.Set(ctx, ra, "garbage", time.Hour)
	if _, ok := st.Get(ctx, alice); ok {
		t.Fatal("garbage opened")
	}
	if n := cnt.errorsOf("decode"); n != 3 {
		t.Errorf("decode errors counted: %d, want 3", n)
	}
}

func TestKeyRotation(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	k1, k2 := newKey(t), newKey(t)
	old := newStore(t, srv, [][]byte{k1}, nil)
	key := cache.UserKey("t", "u", nil, "s")
	old.Set(ctx, entry(key, "sealed-with-k1"))

	// A rotated store (k2 newest) names keys with k2, so it writes anew;
	// an entry it reads under its own naming that was sealed with k1
	// opens because k1 is still listed.
	rotated := newStore(t, srv, [][]byte{k2, k1}, nil)
	v, _ := raw(t, srv).Get(ctx, old.sealer().redisKey("obo-gateway:", key)).Bytes()
	raw(t, srv).Set(ctx, rotated.sealer().redisKey("obo-gateway:", key), v, time.Hour)
	if e, ok := rotated.Get(ctx, key); !ok || e.Token != "sealed-with-k1" {
		t.Fatalf("rotated store cannot open a value sealed with the older key: %v", ok)
	}
	rotated.Set(ctx, entry(key, "sealed-with-k2"))
	onlyOld := newStore(t, srv, [][]byte{k1}, nil)
	v2, _ := raw(t, srv).Get(ctx, rotated.sealer().redisKey("obo-gateway:", key)).Bytes()
	if _, err := onlyOld.sealer().open(key, v2); err == nil {
		t.Error("a value sealed with the newest key opened without it")
	}
	if e, err := rotated.sealer().open(key, v2); err != nil || e.Token != "sealed-with-k2" {
		t.Errorf("newest key does not seal: %v", err)
	}
}

// TestLockAndWait: one replica holds a key's lock, a second is refused it
// and waits for the value, on one server and on a cluster.
func TestLockAndWait(t *testing.T) {
	for _, kind := range redisKinds {
		t.Run(kind.name, func(t *testing.T) {
			url := kind.start(t)
			ctx := context.Background()
			ca, cb := &counts{}, &counts{}
			a := newStoreAt(t, url, kind.cluster, [][]byte{bytes.Repeat([]byte{7}, 32)}, ca)
			b := newStoreAt(t, url, kind.cluster, [][]byte{bytes.Repeat([]byte{7}, 32)}, cb)
			key := cache.UserKey("t", "u", nil, "s")
			release, ok := a.Lock(ctx, key)
			if !ok {
				t.Fatal("first lock not acquired")
			}
			if _, ok := b.Lock(ctx, key); ok {
				t.Fatal("second replica acquired a held lock")
			}
			released := make(chan struct{})
			go func() {
				defer close(released)
				time.Sleep(100 * time.Millisecond)
				a.Set(ctx, entry(key, "from-a"))
				release()
			}()
			if e, ok := b.Wait(ctx, key); !ok || e.Token != "from-a" {
				t.Fatalf("waiting replica got %v %v", e, ok)
			}
			// The value can appear before the lock is given up.
			<-released
			if _, ok := b.Lock(ctx, key); !ok {
				t.Error("lock not released")
			}
			// A failing store grants locks and reports misses: only
			// error-free stores make the checks above mean anything.
			ca.noErrors(t)
			cb.noErrors(t)
		})
	}
}

func TestRedisDownNeverFails(t *testing.T) {
	srv := redistest.Start(t)
	cnt := &counts{}
	st := newStore(t, srv, [][]byte{newKey(t)}, cnt)
	ctx := context.Background()
	key := cache.UserKey("t", "u", nil, "s")
	st.Set(ctx, entry(key, "x"))
	srv.Stop()
	start := time.Now()
	if _, ok := st.Get(ctx, key); ok {
		t.Fatal("hit with Redis down")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Get with Redis down took %v", d)
	}
	if st.Healthy() || cnt.errorsOf("unavailable")+cnt.errorsOf("timeout") == 0 {
		t.Error("failure not counted or not marked unhealthy")
	}
	// While paused, no calls: immediate misses, no new errors.
	before := cnt.errorsOf("unavailable") + cnt.errorsOf("timeout")
	if _, acquired := st.Lock(ctx, key); !acquired {
		t.Error("a paused store must let the caller exchange")
	}
	st.Get(ctx, key)
	if after := cnt.errorsOf("unavailable") + cnt.errorsOf("timeout"); after != before {
		t.Error("the paused store still called Redis")
	}
	srv.Restart()
	time.Sleep(400 * time.Millisecond) // the pause
	st.Set(ctx, entry(key, "back"))
	if e, ok := st.Get(ctx, key); !ok || e.Token != "back" {
		t.Error("store did not recover with Redis")
	}
}

// redisKinds are the Redis deployments the store's tests run against: one
// server, and a cluster of three masters.
var redisKinds = []struct {
	name    string
	cluster bool
	start   func(t *testing.T) (url string)
}{
	{"one server", false, func(t *testing.T) string { return redistest.Start(t).URL() }},
	{"cluster of three", true, func(t *testing.T) string { return redistest.StartCluster(t, 3).URL() }},
}

// noErrors fails t if the store counted any error.
func (c *counts) noErrors(t *testing.T) {
	t.Helper()
	for _, kind := range []string{"unavailable", "timeout", "decode"} {
		if n := c.errorsOf(kind); n != 0 {
			t.Errorf("%d %s errors", n, kind)
		}
	}
}

// TestReplicasShareOneExchange runs two token caches (two replicas) over one
// Redis, a single server or a cluster: concurrent first requests spread over
// both cause one fetch; a third, new replica finds the token in Redis.
func TestReplicasShareOneExchange(t *testing.T) {
	for _, kind := range redisKinds {
		t.Run(kind.name, func(t *testing.T) {
			url := kind.start(t)
			k := newKey(t)
			var cnts []*counts
			newReplica := func() *cache.Cache {
				cnt := &counts{}
				cnts = append(cnts, cnt)
				c, err := cache.New(cache.Config{MaxBytes: 1 << 20, L2: newStoreAt(t, url, kind.cluster, [][]byte{k}, cnt)})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(c.Close)
				return c
			}
			r1, r2 := newReplica(), newReplica()
			key := cache.UserKey("t", "u", nil, "s")
			var fetches atomic.Int32
			fetch := func(ctx context.Context) (*cache.Entry, error) {
				fetches.Add(1)
				time.Sleep(150 * time.Millisecond)
				return entry(key, "shared-token"), nil
			}
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := r1
					if i%2 == 1 {
						r = r2
					}
					if e, _, err := r.Fetch(context.Background(), key, fetch); err != nil || e.Token != "shared-token" {
						t.Errorf("replica %d: %v %v", i%2, e, err)
					}
				}()
			}
			wg.Wait()
			if n := fetches.Load(); n != 1 {
				t.Errorf("20 first requests over two replicas: %d fetches, want 1", n)
			}
			r3 := newReplica()
			if e, res, err := r3.Fetch(context.Background(), key, fetch); err != nil || res != cache.Remote || e.Token != "shared-token" {
				t.Errorf("new replica: %v %v %v", e, res, err)
			}
			if n := fetches.Load(); n != 1 {
				t.Errorf("new replica fetched again (%d)", n)
			}
			for _, c := range cnts {
				c.noErrors(t)
			}
		})
	}
}

// TestClusterSpreadsKeys: with cluster set, the store follows the cluster's
// slot map: entries written through one replica are read through another
// and deleted from whichever node holds them, and a cluster of three holds
// entries on every node.
func TestClusterSpreadsKeys(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	k := newKey(t)
	cw, cr := &counts{}, &counts{}
	writer := newStoreAt(t, cl.URL(), true, [][]byte{k}, cw)
	reader := newStoreAt(t, cl.URL(), true, [][]byte{k}, cr)
	ctx := context.Background()
	const users = 60
	keyOf := func(i int) string { return cache.UserKey("t", fmt.Sprint("user-", i), nil, "s") }
	for i := range users {
		writer.Set(ctx, entry(keyOf(i), fmt.Sprint("token-", i)))
	}
	for i := range users {
		if e, ok := reader.Get(ctx, keyOf(i)); !ok || e.Token != fmt.Sprint("token-", i) {
			t.Fatalf("user %d: %v %v", i, e, ok)
		}
	}
	held := 0
	for _, n := range cl.Nodes {
		size, err := raw(t, n).DBSize(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		held += int(size)
		if size == 0 {
			t.Errorf("node %s holds none of %d entries", n.Addr(), users)
		}
	}
	if held != users {
		t.Errorf("the nodes hold %d keys, want %d", held, users)
	}
	for i := range users {
		writer.Delete(ctx, keyOf(i))
	}
	for i := range users {
		if _, ok := reader.Get(ctx, keyOf(i)); ok {
			t.Fatalf("user %d: a deleted entry is still served", i)
		}
	}
	cw.noErrors(t)
	cr.noErrors(t)
}

// TestPasswordFuncPerConnection checks that PasswordFunc is asked for every
// new connection, and that its error fails the operation that needed the
// connection, counted as Redis being unavailable.
func TestPasswordFuncPerConnection(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 1})
	t.Cleanup(func() { admin.Close() })
	if err := admin.ConfigSet(ctx, "requirepass", "p1").Err(); err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		password = "p1"
		fail     error
		asked    int
	)
	cnt := &counts{}
	st, err := New(Config{URL: srv.URL(), Keys: [][]byte{newKey(t)}, Timeout: time.Second, Pause: time.Millisecond,
		Observer: cnt.observer(),
		PasswordFunc: func() (string, error) {
			mu.Lock()
			defer mu.Unlock()
			asked++
			return password, fail
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	stored := func(user string) bool {
		key := cache.UserKey("tenant-1", user, nil, "api://b/read")
		st.Set(ctx, entry(key, "token-of-"+user))
		_, ok := st.Get(ctx, key)
		return ok
	}
	steps := []struct {
		name     string
		password string
		fail     error
		want     bool
	}{
		{"the password", "p1", nil, true},
		{"an error", "p1", errors.New("file gone"), false},
		{"the password again", "p1", nil, true},
		{"a wrong password", "p2", nil, false},
	}
	for i, s := range steps {
		mu.Lock()
		password, fail = s.password, s.fail
		before := asked
		mu.Unlock()
		// Drop the store's connections: the next operation dials.
		if err := admin.ClientKillByFilter(ctx, "TYPE", "normal", "SKIPME", "yes").Err(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // past the pause of a failure before
		errs := cnt.errorsOf("unavailable")
		if got := stored(fmt.Sprintf("user-%d", i)); got != s.want {
			t.Errorf("%s: stored = %t, want %t", s.name, got, s.want)
		}
		mu.Lock()
		if asked == before {
			t.Errorf("%s: PasswordFunc not asked for the new connection", s.name)
		}
		mu.Unlock()
		if failed := cnt.errorsOf("unavailable") > errs; failed == s.want {
			t.Errorf("%s: failure counted = %t", s.name, failed)
		}
	}
}

// TestKeyFileReloaded rotates the key file under a store, as the kubelet
// updates a mounted secret, through a new key, a broken file, a removed
// file and another key: each value is sealed with, and named by, the newest
// usable key, and each change is reported once.
func TestKeyFileReloaded(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "encryption-keys")
	write := func(content string) {
		t.Helper()
		if err := smallfile.Replace(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	line := func(keys ...[]byte) string {
		var b strings.Builder
		for _, k := range keys {
			b.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
		}
		return b.String()
	}
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)
	write(line(k1))
	type report struct {
		keys int
		err  error
	}
	var reports []report
	var mu sync.Mutex
	st, err := New(Config{URL: srv.URL(), KeyFile: path, Timeout: time.Second, Observer: Observer{
		KeysReloaded: func(keys int, err error) {
			mu.Lock()
			defer mu.Unlock()
			reports = append(reports, report{keys, err})
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	steps := []struct {
		name    string
		content *string // the file's new content; nil leaves it, or removes it with remove
		remove  bool
		newest  []byte // the key that must seal
		reports []int  // key counts reported by this step, -1 for an error
	}{
		{"as started", nil, false, k1, nil},
		{"a new key first", ptr(line(k2, k1)), false, k2, []int{2}},
		{"unchanged", nil, false, k2, nil},
		{"not base64", ptr("not a key\n"), false, k2, []int{-1}},
		{"removed", nil, true, k2, []int{-1}},
		{"another key", ptr(line(k3)), false, k3, []int{1}},
	}
	for i, s := range steps {
		switch {
		case s.content != nil:
			write(*s.content)
		case s.remove:
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		before := len(reports)
		mu.Unlock()
		// Two operations each: a change is reported once.
		key := cache.UserKey("t", fmt.Sprintf("user-%d", i), nil, "s")
		st.Set(ctx, entry(key, "token"))
		if e, ok := st.Get(ctx, key); !ok || e.Token != "token" {
			t.Fatalf("%s: the value written does not read back", s.name)
		}
		want, err := newSealer([][]byte{s.newest})
		if err != nil {
			t.Fatal(err)
		}
		v, err := raw(t, srv).Get(ctx, want.redisKey("obo-gateway:", key)).Bytes()
		if err != nil {
			t.Fatalf("%s: no value under the name the newest key gives: %v", s.name, err)
		}
		if id := [4]byte(v[1:5]); id != want.ids[0] {
			t.Errorf("%s: value sealed with key id %x, want %x", s.name, id, want.ids[0])
		}
		mu.Lock()
		var got []int
		for _, r := range reports[before:] {
			if r.err != nil {
				got = append(got, -1)
			} else {
				got = append(got, r.keys)
			}
		}
		mu.Unlock()
		if fmt.Sprint(got) != fmt.Sprint(s.reports) {
			t.Errorf("%s: reports %v, want %v", s.name, got, s.reports)
		}
	}
}

func ptr(s string) *string { return &s }
