package rediscache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/internal/smallfile"
)

// Observer receives what the store did; every field is optional.
type Observer struct {
	// Hit and Miss count Get results (a Get skipped while Redis is
	// unhealthy is a Miss).
	Hit, Miss func()
	// Error counts failures by kind: "timeout", "unavailable", "decode".
	Error func(kind string)
	// Latency observes the duration of each Redis operation: "get",
	// "set", "del", "lock".
	Latency func(op string, d time.Duration)
	// LockWait counts waits for another replica's exchange by outcome:
	// "value" (it appeared) or "gave_up" (the caller exchanged itself).
	LockWait func(outcome string)
	// KeysReloaded is called once for every change of Config.KeyFile:
	// with the number of keys now in use, or with the error that kept the
	// previous keys in use. It runs while the store reloads its keys and
	// must neither block nor call the Store.
	KeysReloaded func(keys int, err error)
}

// Config configures a Store.
type Config struct {
	// URL is redis://[user[:password]@]host:port[/db] or rediss:// for TLS
	// (the gateway's configuration refuses a password here and sets
	// Password instead).
	URL string
	// Username and Password, when set, override the URL's.
	Username, Password string
	// PasswordFunc, when set, is called for every new connection and its
	// password used instead of Password and the URL's: a password file
	// read again, so that a rotated password reaches the connections made
	// after the rotation without a restart. An error fails that connection
	// (and the operation that needed it).
	PasswordFunc func() (string, error)
	// Cluster uses the Redis Cluster protocol with URL's host as seed.
	Cluster bool
	// KeyPrefix starts every Redis key; default "obo-gateway:".
	KeyPrefix string
	// Keys are the AES-256 encryption keys, newest first. Required unless
	// KeyFile is set.
	Keys [][]byte
	// KeyFile, when set, holds the keys instead (ReadKeyFile's format). It
	// is checked before every operation and read again when it changed,
	// so that a rotated key is used without a restart; a file that cannot
	// be read or holds no usable key keeps the keys in use.
	KeyFile string
	// Timeout is the budget of one Redis operation; default 50ms.
	Timeout time.Duration
	// PoolSize bounds the connections per node; zero means go-redis's
	// default.
	PoolSize int
	// LockTTL bounds how long one replica's exchange holds the lock;
	// default 10s.
	LockTTL time.Duration
	// LockWait is how long other replicas wait for that exchange's value
	// before exchanging themselves; default 2s.
	LockWait time.Duration
	// Pause is how long the store stays away from Redis after a failure;
	// default 5s.
	Pause time.Duration
	// Observer receives counts and latencies.
	Observer Observer
	// TracerProvider makes a span of each Redis command, in the trace of
	// the request that caused it; nil means none.
	TracerProvider trace.TracerProvider
}

// Store is the Redis second level. It implements cache.SecondLevel and is
// safe for concurrent use.
type Store struct {
	c      redis.UniversalClient
	keys   atomic.Pointer[keyState]
	cfg    Config
	downNS atomic.Int64 // Redis is skipped until this Unix time (ns)

	reloadMu sync.Mutex // serializes reads of Config.KeyFile
}

// keyState is the sealer in use and the version of Config.KeyFile it came
// from.
type keyState struct {
	seal  *sealer
	stamp smallfile.Stamp
	// failed is the version that could not be used, reported once (the
	// zero Stamp when the file could not be stamped).
	failed *smallfile.Stamp
}

// New connects lazily (the first operation dials) and returns a Store.
func New(cfg Config) (*Store, error) {
	opts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("rediscache: url: %w", err)
	}
	if cfg.Username != "" {
		opts.Username = cfg.Username
	}
	if cfg.Password != "" {
		opts.Password = cfg.Password
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "obo-gateway:"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 50 * time.Millisecond
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = 10 * time.Second
	}
	if cfg.LockWait <= 0 {
		cfg.LockWait = 2 * time.Second
	}
	if cfg.Pause <= 0 {
		cfg.Pause = 5 * time.Second
	}
	ks := &keyState{}
	if cfg.KeyFile != "" {
		if ks.stamp, err = smallfile.StampOf(cfg.KeyFile); err != nil {
			return nil, fmt.Errorf("rediscache: encryption key file: %w", err)
		}
		ks.seal, _, err = readKeys(cfg.KeyFile)
	} else {
		ks.seal, err = newSealer(cfg.Keys)
	}
	if err != nil {
		return nil, err
	}
	uo := &redis.UniversalOptions{
		Addrs:        []string{opts.Addr},
		DB:           opts.DB,
		Username:     opts.Username,
		Password:     opts.Password,
		TLSConfig:    opts.TLSConfig,
		DialTimeout:  max(cfg.Timeout, 250*time.Millisecond),
		ReadTimeout:  cfg.Timeout,
		WriteTimeout: cfg.Timeout,
		PoolSize:     cfg.PoolSize,
		MaxRetries:   -1, // the budget is one attempt; the authority is the fallback
	}
	if f := cfg.PasswordFunc; f != nil {
		username := opts.Username
		uo.CredentialsProviderContext = func(context.Context) (string, string, error) {
			password, err := f()
			if err != nil {
				return "", "", fmt.Errorf("rediscache: password: %w", err)
			}
			return username, password, nil
		}
	}
	if cfg.Cluster {
		uo.IsClusterMode = true
		uo.DB = 0
	}
	st := &Store{c: redis.NewUniversalClient(uo), cfg: cfg}
	if tp := cfg.TracerProvider; tp != nil {
		st.c.AddHook(tracingHook{tracer: tp.Tracer("github.com/obo-gateway/obo-gateway/cache/rediscache")})
	}
	st.keys.Store(ks)
	return st, nil
}

// sealer returns the sealer to use, after reading Config.KeyFile again if
// it changed since it was last read.
func (st *Store) sealer() *sealer {
	ks := st.keys.Load()
	if st.cfg.KeyFile == "" || !st.Healthy() { // no operation while paused
		return ks.seal
	}
	stamp, err := smallfile.StampOf(st.cfg.KeyFile)
	if ks.known(stamp, err) {
		return ks.seal
	}
	st.reloadMu.Lock()
	defer st.reloadMu.Unlock()
	if ks = st.keys.Load(); ks.known(stamp, err) { // read meanwhile
		return ks.seal
	}
	next := &keyState{seal: ks.seal, stamp: ks.stamp}
	var s *sealer
	n := 0
	if err == nil {
		s, n, err = readKeys(st.cfg.KeyFile)
	}
	if err == nil {
		next.seal, next.stamp = s, stamp
	} else {
		next.failed = &stamp
	}
	st.keys.Store(next)
	if o := st.cfg.Observer.KeysReloaded; o != nil {
		o(n, err)
	}
	return next.seal
}

// readKeys reads the key file and returns the sealer of its keys and
// their number.
func readKeys(path string) (*sealer, int, error) {
	keys, err := ReadKeyFile(path)
	if err != nil {
		return nil, 0, err
	}
	s, err := newSealer(keys)
	return s, len(keys), err
}

// known reports whether the key file's version, as stamped (statErr from
// the stamp, which is then zero), is the one in use or one already
// reported unusable.
func (ks *keyState) known(stamp smallfile.Stamp, statErr error) bool {
	return (statErr == nil && stamp == ks.stamp) || (ks.failed != nil && stamp == *ks.failed)
}

// Close closes the connections.
func (st *Store) Close() error { return st.c.Close() }

// Healthy reports whether Redis answered the last operation.
func (st *Store) Healthy() bool { return time.Now().UnixNano() >= st.downNS.Load() }

// op runs one Redis operation within the budget and records its outcome.
func (st *Store) op(ctx context.Context, name string, f func(ctx context.Context) error) error {
	if !st.Healthy() {
		return errPaused
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), st.cfg.Timeout)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	if o := st.cfg.Observer.Latency; o != nil {
		o(name, time.Since(start))
	}
	if err == nil || errors.Is(err, redis.Nil) {
		return err
	}
	kind := "unavailable"
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		kind = "timeout"
	}
	st.count(kind)
	st.downNS.Store(time.Now().Add(st.cfg.Pause).UnixNano())
	return err
}

var errPaused = errors.New("rediscache: paused after a failure")

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func (st *Store) count(kind string) {
	if o := st.cfg.Observer.Error; o != nil {
		o(kind)
	}
}

// Get returns the entry stored for key, or a miss. A value that does not
// open (tampered, moved from another key, sealed with an unknown key) is
// deleted and counted as a "decode" error.
func (st *Store) Get(ctx context.Context, key string) (*cache.Entry, bool) {
	e, ok := st.get(ctx, key)
	if ok {
		if o := st.cfg.Observer.Hit; o != nil {
			o()
		}
	} else if o := st.cfg.Observer.Miss; o != nil {
		o()
	}
	return e, ok
}

func (st *Store) get(ctx context.Context, key string) (*cache.Entry, bool) {
	s := st.sealer()
	rk := s.redisKey(st.cfg.KeyPrefix, key)
	var v []byte
	err := st.op(ctx, "get", func(ctx context.Context) error {
		var err error
		v, err = st.c.Get(ctx, rk).Bytes()
		return err
	})
	if err != nil {
		return nil, false
	}
	e, err := s.open(key, v)
	if err != nil {
		st.count("decode")
		_ = st.op(ctx, "del", func(ctx context.Context) error { return st.c.Del(ctx, rk).Err() })
		return nil, false
	}
	return e, e.Usable(time.Now())
}

// Set stores e until its UsableUntil.
func (st *Store) Set(ctx context.Context, e *cache.Entry) {
	ttl := time.Until(e.UsableUntil)
	if ttl <= 0 {
		return
	}
	s := st.sealer()
	v := s.seal(e)
	rk := s.redisKey(st.cfg.KeyPrefix, e.Key)
	_ = st.op(ctx, "set", func(ctx context.Context) error { return st.c.Set(ctx, rk, v, ttl).Err() })
}

// Delete removes the entry of key.
func (st *Store) Delete(ctx context.Context, key string) {
	rk := st.sealer().redisKey(st.cfg.KeyPrefix, key)
	_ = st.op(ctx, "del", func(ctx context.Context) error { return st.c.Del(ctx, rk).Err() })
}

// unlockScript deletes the lock only if this holder still owns it.
var unlockScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`)

// Lock tries to become the replica that exchanges for key (SET NX PX). It
// returns acquired=false only when another replica holds the lock; when
// Redis fails, the caller is told to go ahead. release gives the lock up.
func (st *Store) Lock(ctx context.Context, key string) (release func(), acquired bool) {
	rk := st.sealer().redisKey(st.cfg.KeyPrefix, key) + ":lock"
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	holder := hex.EncodeToString(tok)
	var ok bool
	err := st.op(ctx, "lock", func(ctx context.Context) error {
		var err error
		ok, err = st.c.SetNX(ctx, rk, holder, st.cfg.LockTTL).Result()
		return err
	})
	if err != nil {
		return func() {}, true
	}
	if !ok {
		return func() {}, false
	}
	return func() {
		_ = st.op(ctx, "del", func(ctx context.Context) error {
			return unlockScript.Run(ctx, st.c, []string{rk}, holder).Err()
		})
	}, true
}

// Wait polls for the value another replica is exchanging, for at most
// Config.LockWait.
func (st *Store) Wait(ctx context.Context, key string) (*cache.Entry, bool) {
	deadline := time.Now().Add(st.cfg.LockWait)
	for time.Now().Before(deadline) && st.Healthy() {
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(20 * time.Millisecond):
		}
		if e, ok := st.get(ctx, key); ok {
			st.lockWait("value")
			return e, true
		}
	}
	st.lockWait("gave_up")
	return nil, false
}

func (st *Store) lockWait(outcome string) {
	if o := st.cfg.Observer.LockWait; o != nil {
		o(outcome)
	}
}
