package app

import (
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/cache/rediscache"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/telemetry"
	"github.com/obo-gateway/obo-gateway/metrics"
)

// newSecondLevel connects the Redis second level when cache.redis is
// configured; it returns nil otherwise. Redis is not contacted here: the
// store dials on first use, and /readyz never depends on it. The key file
// is read here and again when it changes; a password file is read here, and
// again for every new connection. Its commands are spans of traces when
// traces are on.
func newSecondLevel(r config.Redis, m *metrics.Metrics, log *slog.Logger, traces *telemetry.Traces) (*rediscache.Store, error) {
	if !r.Configured() {
		return nil, nil
	}
	password, err := r.RedisPassword()
	if err != nil {
		return nil, fmt.Errorf("app: cache.redis.password_file: %w", err)
	}
	var passwordFunc func() (string, error)
	if r.PasswordFile != "" {
		passwordFunc = (&passwordFile{path: r.PasswordFile, log: log, last: password}).read
	}
	var tp trace.TracerProvider // no hook at all when off
	if traces.On() {
		tp = traces.Provider
	}
	st, err := rediscache.New(rediscache.Config{
		TracerProvider: tp,
		URL:            r.URL, Username: r.Username, Password: password, PasswordFunc: passwordFunc, Cluster: bool(r.Cluster),
		KeyPrefix: r.KeyPrefix, KeyFile: r.EncryptionKeyFile, Timeout: r.Timeout.D(), PoolSize: r.PoolSize,
		LockWait: r.LockWait.D(),
		Observer: rediscache.Observer{
			Hit:      m.L2Lookups.WithLabelValues("hit").Inc,
			Miss:     m.L2Lookups.WithLabelValues("miss").Inc,
			Error:    func(kind string) { m.L2Errors.WithLabelValues(kind).Inc() },
			Latency:  func(op string, d time.Duration) { m.L2Duration.WithLabelValues(op).Observe(d.Seconds()) },
			LockWait: func(outcome string) { m.L2LockWaits.WithLabelValues(outcome).Inc() },
			KeysReloaded: func(keys int, err error) {
				if err != nil {
					log.Warn("cache.redis.encryption_key_file changed but could not be used; the keys read before stay in use", "error", err)
					return
				}
				log.Info("cache.redis encryption keys reloaded", "keys", keys)
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("app: cache.redis: %w", err)
	}
	return st, nil
}
