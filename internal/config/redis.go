package config

import (
	"net/url"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/cache/rediscache"
	"github.com/obo-gateway/obo-gateway/internal/smallfile"
)

// Redis configures the optional second-level token cache shared by the
// gateway's replicas. It is on when URL is set.
type Redis struct {
	// URL is redis://host:port[/db], or rediss:// for TLS (Azure Cache for
	// Redis: rediss://<name>.redis.cache.windows.net:6380).
	URL string `yaml:"url"`
	// Username and Password authenticate (Redis ACL); PasswordFile reads
	// the password from a file instead. At most one of Password and
	// PasswordFile.
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// Cluster speaks the Redis Cluster protocol, with URL's host as seed.
	Cluster Bool `yaml:"cluster"`
	// KeyPrefix starts every Redis key. Default "obo-gateway:".
	KeyPrefix string `yaml:"key_prefix"`
	// EncryptionKeyFile holds the AES-256 keys that seal the values, one
	// base64 line of 32 bytes each, newest first. Required.
	EncryptionKeyFile string `yaml:"encryption_key_file"`
	// Timeout is the budget of one Redis operation. Default 50ms.
	Timeout Duration `yaml:"timeout"`
	// PoolSize bounds the connections per Redis node; 0 means the client
	// library's default (10 per CPU).
	PoolSize int `yaml:"pool_size"`
	// LockWait is how long a replica waits for another replica's exchange
	// of the same user and scopes before exchanging itself. Default 2s.
	LockWait Duration `yaml:"lock_wait"`
}

// Configured reports whether the Redis second level is on.
func (r Redis) Configured() bool { return r.URL != "" }

// Default values of the Redis section.
const (
	defaultRedisPrefix   = "obo-gateway:"
	defaultRedisTimeout  = Duration(50 * time.Millisecond)
	defaultRedisLockWait = Duration(2 * time.Second)
)

func (c *Config) applyRedisDefaults(isSet func(string) bool) {
	r := &c.Cache.Redis
	if !r.Configured() {
		return
	}
	if r.KeyPrefix == "" {
		r.KeyPrefix = defaultRedisPrefix
	}
	if !isSet("cache.redis.timeout") {
		r.Timeout = defaultRedisTimeout
	}
	if !isSet("cache.redis.lock_wait") {
		r.LockWait = defaultRedisLockWait
	}
}

func (c *Config) validateRedis(v *validator) {
	r := c.Cache.Redis
	if !r.Configured() {
		if r.EncryptionKeyFile != "" || r.Password != "" || r.PasswordFile != "" {
			v.add("cache.redis.url", "must be set when other cache.redis keys are")
		}
		return
	}
	u, err := url.Parse(r.URL)
	switch {
	case err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "":
		v.add("cache.redis.url", "must be redis://host:port or rediss://host:port")
	case u.Scheme == "redis" && !isLoopback(u.Hostname()):
		// Values are sealed, but the password and the traffic pattern
		// are not: plain TCP only on the pod's own loopback.
		v.add("cache.redis.url", "must use rediss:// (TLS) for a host that is not loopback")
	}
	if err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			// The URL is configuration, logged at start and kept in a
			// ConfigMap; a secret belongs in a file.
			v.add("cache.redis.url", "must not carry a password: set cache.redis.password_file (or password) instead")
		}
	}
	if r.Password != "" && r.PasswordFile != "" {
		v.add("cache.redis", "set password or password_file, not both")
	}
	if r.PasswordFile != "" {
		if _, err := smallfile.ReadSecret(r.PasswordFile); err != nil {
			v.add("cache.redis.password_file", "%s", err)
		}
	}
	if r.EncryptionKeyFile == "" {
		v.add("cache.redis.encryption_key_file", "must be set: values in Redis are always encrypted")
	} else if _, err := rediscache.ReadKeyFile(r.EncryptionKeyFile); err != nil {
		v.add("cache.redis.encryption_key_file", "%s", strings.TrimPrefix(err.Error(), "rediscache: "))
	}
	if r.Timeout <= 0 || r.Timeout.D() > 5*time.Second {
		v.add("cache.redis.timeout", "must be between 1ms and 5s, not %s", r.Timeout)
	}
	if r.LockWait < 0 || r.LockWait.D() > time.Minute {
		v.add("cache.redis.lock_wait", "must be between 0s and 1m, not %s", r.LockWait)
	}
	if r.PoolSize < 0 || r.PoolSize > 10000 {
		v.add("cache.redis.pool_size", "must be between 0 and 10000")
	}
}

// RedisPassword returns the Redis password: Password, or the trimmed
// content of PasswordFile, or "".
func (r Redis) RedisPassword() (string, error) {
	if r.PasswordFile == "" {
		return r.Password, nil
	}
	return smallfile.ReadSecret(r.PasswordFile)
}
