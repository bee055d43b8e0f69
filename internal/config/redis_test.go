package config

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRedisSection(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	_ = os.WriteFile(keys, []byte("# newest first\n"+base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n"), 0o600)
	badKeys := filepath.Join(dir, "bad")
	_ = os.WriteFile(badKeys, []byte(base64.StdEncoding.EncodeToString(make([]byte, 16))+"\n"), 0o600)
	pw := filepath.Join(dir, "pw")
	_ = os.WriteFile(pw, []byte("hunter2\n"), 0o600)

	tests := []struct {
		name  string
		redis Redis
		keys  []string // problem keys, none when valid
	}{
		{"off", Redis{}, nil},
		{"loopback", Redis{URL: "redis://127.0.0.1:6379", EncryptionKeyFile: keys, Timeout: Duration(50 * time.Millisecond)}, nil},
		{"tls", Redis{URL: "rediss://cache.redis.cache.windows.net:6380", EncryptionKeyFile: keys, PasswordFile: pw, Timeout: Duration(time.Second)}, nil},
		{"plain tcp to a remote host", Redis{URL: "redis://cache.example.com:6379", EncryptionKeyFile: keys, Timeout: Duration(time.Second)}, []string{"cache.redis.url"}},
		{"not a redis url", Redis{URL: "http://x", EncryptionKeyFile: keys, Timeout: Duration(time.Second)}, []string{"cache.redis.url"}},
		{"no encryption key", Redis{URL: "redis://127.0.0.1:1", Timeout: Duration(time.Second)}, []string{"cache.redis.encryption_key_file"}},
		{"short key", Redis{URL: "redis://127.0.0.1:1", EncryptionKeyFile: badKeys, Timeout: Duration(time.Second)}, []string{"cache.redis.encryption_key_file"}},
		{"two passwords", Redis{URL: "redis://127.0.0.1:1", EncryptionKeyFile: keys, Password: "a", PasswordFile: pw, Timeout: Duration(time.Second)}, []string{"cache.redis"}},
		{"zero timeout", Redis{URL: "redis://127.0.0.1:1", EncryptionKeyFile: keys}, []string{"cache.redis.timeout"}},
		{"keys without url", Redis{EncryptionKeyFile: keys}, []string{"cache.redis.url"}},
		{"user name in the url", Redis{URL: "rediss://default@cache.example.com:6380", EncryptionKeyFile: keys, PasswordFile: pw, Timeout: Duration(time.Second)}, nil},
		{"password in the url", Redis{URL: "rediss://default:S3cret@cache.example.com:6380", EncryptionKeyFile: keys, Timeout: Duration(time.Second)}, []string{"cache.redis.url"}},
		{"empty password in the url", Redis{URL: "rediss://:@cache.example.com:6380", EncryptionKeyFile: keys, Timeout: Duration(time.Second)}, []string{"cache.redis.url"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			c.Cache.Redis = tc.redis
			err := c.Validate()
			if got := problemKeys(err); strings.Join(got, ",") != strings.Join(tc.keys, ",") {
				t.Errorf("problems at %v, want %v (%v)", got, tc.keys, err)
			}
		})
	}
}

func TestRedisDefaultsAndRedaction(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	_ = os.WriteFile(keys, []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n"), 0o600)
	c := mustParse(t, minimal+"cache:\n  redis:\n    url: redis://127.0.0.1:6379\n    password: s3cr3t-redis\n    encryption_key_file: "+keys+"\n", testEnv)
	r := c.Cache.Redis
	if r.KeyPrefix != "obo-gateway:" || r.Timeout.D() != 50*time.Millisecond || r.LockWait.D() != 2*time.Second {
		t.Errorf("defaults: %+v", r)
	}
	if c.Redacted().Cache.Redis.Password != "REDACTED" || c.Cache.Redis.Password != "s3cr3t-redis" {
		t.Error("Redacted does not hide the Redis password, or changed the original")
	}
	// A password in the URL fails validation, but a configuration logged
	// before (or without) it still does not show it.
	c.Cache.Redis.URL = "rediss://default:S3cretPassw0rd@cache.example.com:6380"
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("starting", "config", c.Redacted())
	if strings.Contains(logged.String(), "S3cretPassw0rd") || !strings.Contains(logged.String(), "cache.example.com:6380") {
		t.Errorf("the logged configuration shows the URL's password, or no URL: %s", logged.String())
	}
	if c.Cache.Redis.URL != "rediss://default:S3cretPassw0rd@cache.example.com:6380" {
		t.Error("Redacted changed the original URL")
	}
	// Nor when the URL does not parse.
	for _, bad := range []string{"rediss://u:S3cretPassw0rd@host:63a80", "rediss://u:S3cretPassw0rd@[::1", "rediss://u:S3cret%zzPassw0rd@host"} {
		c.Cache.Redis.URL = bad
		if got := c.Redacted().Cache.Redis.URL; strings.Contains(got, "S3cret") {
			t.Errorf("Redacted shows the password of the unparsable URL %q: %q", bad, got)
		}
	}
}
