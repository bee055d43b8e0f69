package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/cache/rediscache"
	"github.com/obo-gateway/obo-gateway/inbound"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/telemetry"
	"github.com/obo-gateway/obo-gateway/metrics"
	"github.com/obo-gateway/obo-gateway/obo"
	"github.com/obo-gateway/obo-gateway/proxy"
)

// Options configures an App.
type Options struct {
	// Config is the validated configuration. Required.
	Config *config.Config
	// Logger receives the gateway's logs; nil discards them.
	Logger *slog.Logger
	// Version is reported in obo_gateway_build_info.
	Version string
}

// App is a running gateway.
type App struct {
	cfg *config.Config
	log *slog.Logger
	// requestLog says which requests get a log line (log.requests).
	requestLog proxy.RequestLog
	metrics    *metrics.Metrics
	cache      *cache.Cache
	traces     *telemetry.Traces

	ln, adminLn   net.Listener
	srv, adminSrv *http.Server
	// watch counts the requests the gateway listener's server refuses.
	watch *unreadWatch

	// handler is nil until the authority's metadata is loaded.
	handler  atomic.Pointer[proxy.Handler]
	keys     atomic.Pointer[inbound.KeySet]
	verified *inbound.VerifiedCache // set with handler; read after bg.Wait
	l2       *rediscache.Store      // nil without cache.redis
	draining atomic.Bool

	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
}

// New opens both listeners and starts loading the authority's metadata in
// the background (retrying until it succeeds). Serve the App with Run.
func New(opts Options) (*App, error) {
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("app: no configuration")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	requestLog, err := proxy.ParseRequestLog(cfg.Log.Requests)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	m := metrics.New(opts.Version)
	traces, err := telemetry.New(context.Background(), telemetry.Options{
		Endpoint: cfg.Telemetry.OTLP.Endpoint, Protocol: cfg.Telemetry.OTLP.Protocol, Version: opts.Version})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	if traces.On() {
		log.Info("exporting traces", "protocol", traces.Protocol, "endpoint", traces.Endpoint)
	}
	l2, err := newSecondLevel(cfg.Cache.Redis, m, log, traces)
	if err != nil {
		_ = traces.Shutdown(context.Background())
		return nil, err
	}
	var second cache.SecondLevel // stays a nil interface without Redis
	if l2 != nil {
		second = l2
	}
	c, err := cache.New(cache.Config{
		L2:       second,
		MaxBytes: int64(cfg.Cache.MaxBytes),
		OnEvict:  m.CacheEvictions.Inc,
		OnReject: m.CacheRejections.Inc,
		OnRefresh: func(_ string, err error) {
			if err != nil {
				m.Refreshes.WithLabelValues("failure").Inc()
				return
			}
			m.Refreshes.WithLabelValues("success").Inc()
		},
	})
	if err != nil {
		if l2 != nil {
			_ = l2.Close()
		}
		_ = traces.Shutdown(context.Background())
		return nil, fmt.Errorf("app: %w", err)
	}
	m.ObserveCache(c.Len, c.Bytes)
	a := &App{cfg: cfg, log: log, requestLog: requestLog, metrics: m, cache: c, l2: l2, traces: traces}
	m.ObserveKeys(func() int {
		if k := a.keys.Load(); k != nil {
			return k.Len()
		}
		return 0
	})
	a.bgCtx, a.bgCancel = context.WithCancel(context.Background())

	unreadable := m.BadRequests.WithLabelValues("unreadable")
	a.watch = &unreadWatch{unread: func() {
		if requestLog.Logs(http.StatusBadRequest) {
			log.LogAttrs(context.Background(), slog.LevelInfo, "request", slog.String("route", "none"),
				slog.String("reason", "unreadable"))
		}
		unreadable.Inc()
	}}
	a.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("app: listen %s: %w", cfg.Listen, err)
	}
	a.ln = watchedListener{a.ln}
	a.adminLn, err = net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("app: admin listen %s: %w", cfg.AdminListen, err)
	}
	a.srv = &http.Server{
		Handler:           http.HandlerFunc(a.serveGateway),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnContext:       a.watch.connContext,
		ConnState:         a.watch.connState,
	}
	a.adminSrv = &http.Server{
		Handler:           a.adminMux(),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		a.loadAuthority(a.bgCtx)
	}()
	return a, nil
}

// Addr is the gateway listener's address.
func (a *App) Addr() string { return a.ln.Addr().String() }

// AdminAddr is the admin listener's address.
func (a *App) AdminAddr() string { return a.adminLn.Addr().String() }

// Metrics returns the App's collectors.
func (a *App) Metrics() *metrics.Metrics { return a.metrics }

// Run serves until ctx is cancelled, then reports not ready while it keeps
// serving for the configured shutdown delay, stops accepting requests, lets
// in-flight requests finish within the configured shutdown timeout, and
// releases everything.
func (a *App) Run(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- a.srv.Serve(a.ln) }()
	go func() { errc <- a.adminSrv.Serve(a.adminLn) }()
	a.log.Info("gateway listening", "listen", a.Addr(), "admin_listen", a.AdminAddr())

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("app: serve: %w", err)
	}
	a.draining.Store(true)
	if delay := a.cfg.ShutdownDelay.D(); delay > 0 && err == nil {
		// Not ready, still serving: the application may be finishing its
		// own requests through the gateway. Each answer now closes its
		// connection, so that none is idle in the application's pool
		// when the listener closes.
		a.log.Info("shutdown delayed: still accepting requests", "delay", delay.String())
		a.srv.SetKeepAlivesEnabled(false)
		select {
		case <-time.After(delay):
		case serr := <-errc:
			err = fmt.Errorf("app: serve: %w", serr)
		}
	}
	grace := a.cfg.ShutdownTimeout.D()
	a.log.Info("shutting down", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	// The server may now read a request and drop it unserved: not the
	// caller's fault.
	a.watch.stopping.Store(true)
	if serr := a.srv.Shutdown(sctx); serr != nil {
		// Grace period over: cut the remaining connections before the
		// cache and key set they use are released.
		_ = a.srv.Close()
		if err == nil {
			err = fmt.Errorf("app: drain: %w", serr)
		}
	}
	_ = a.adminSrv.Shutdown(sctx)
	// The spans of the drained requests go out within what is left of
	// the grace period.
	if terr := a.traces.Shutdown(sctx); terr != nil {
		a.log.Warn("spans not exported before the end of the grace period", "error", terr.Error())
	}
	a.Close()
	return err
}

// Close releases the App's resources without draining.
func (a *App) Close() {
	a.bgCancel()
	a.bg.Wait()
	if a.ln != nil {
		a.ln.Close()
	}
	if a.adminLn != nil {
		a.adminLn.Close()
	}
	if k := a.keys.Load(); k != nil {
		_ = k.Close()
	}
	if a.verified != nil {
		a.verified.Close()
	}
	a.cache.Close()
	if a.l2 != nil {
		_ = a.l2.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = a.traces.Shutdown(ctx) // a no-op after Run's
}

// Ready reports whether the gateway can validate tokens and exchange them:
// the authority's metadata and key set are loaded and it is not draining.
func (a *App) Ready() bool {
	if a.draining.Load() || a.handler.Load() == nil {
		return false
	}
	k := a.keys.Load()
	return k != nil && k.Ready(context.Background())
}

// serveGateway is the gateway listener's handler: the proxy handler once
// the authority's metadata is loaded, 503 before.
func (a *App) serveGateway(w http.ResponseWriter, r *http.Request) {
	served(r)
	h := a.handler.Load()
	if h == nil {
		a.metrics.Requests.WithLabelValues("none", metrics.Method(r.Method), "5xx").Inc()
		a.metrics.BadRequests.WithLabelValues("starting").Inc()
		if a.requestLog.Logs(http.StatusServiceUnavailable) {
			a.log.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("route", "none"),
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", http.StatusServiceUnavailable),
				slog.String("reason", "starting"))
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"temporarily_unavailable","error_description":"the gateway is starting: the authority's metadata is not loaded yet"}` + "\n"))
		return
	}
	h.ServeHTTP(w, r)
}

func (a *App) adminMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !a.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: authority metadata or signing keys not loaded\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", a.metrics.Handler())
	return mux
}

// loadAuthority discovers the authority (unless every endpoint is
// configured), starts the key set and installs the proxy handler, retrying
// with capped exponential backoff until it succeeds or ctx ends.
func (a *App) loadAuthority(ctx context.Context) {
	delay := 500 * time.Millisecond
	for {
		err := a.buildHandler(ctx)
		if err == nil {
			return
		}
		a.log.Warn("authority not loaded; retrying", "error", err.Error(), "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay + rand.N(delay/4)):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// AuthorityClient returns the HTTP client for the authority's discovery
// documents and key sets: it follows a redirect only to a URL that passes
// the same https rule as the configured ones.
func AuthorityClient(cfg *config.Config) *http.Client {
	return &http.Client{Transport: obo.NewTransport(), Timeout: cfg.Authority.Timeout.D(),
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			return config.CheckAuthorityURL(r.URL.String())
		}}
}

// ResolveAuthority returns the authority's metadata as the gateway uses it:
// the configured authority.issuer, .jwks_uri and .token_endpoint, each one
// left empty taken from the discovery document of authority.url (fetched
// only then; discovered reports whether it was). Both URLs must pass the
// https rule of the configuration.
func ResolveAuthority(ctx context.Context, hc *http.Client, cfg *config.Config) (md obo.Metadata, discovered bool, err error) {
	md = obo.Metadata{
		Issuer:        cfg.Authority.Issuer,
		JWKSURI:       cfg.Authority.JWKSURI,
		TokenEndpoint: cfg.Authority.TokenEndpoint,
	}
	if md.Issuer == "" || md.JWKSURI == "" || md.TokenEndpoint == "" {
		dctx, cancel := context.WithTimeout(ctx, cfg.Authority.Timeout.D())
		d, err := obo.Discover(dctx, hc, cfg.Authority.URL)
		cancel()
		if err != nil {
			return md, false, err
		}
		discovered = true
		md.Issuer = cmp.Or(md.Issuer, d.Issuer)
		md.JWKSURI = cmp.Or(md.JWKSURI, d.JWKSURI)
		md.TokenEndpoint = cmp.Or(md.TokenEndpoint, d.TokenEndpoint)
	}
	if err := config.CheckAuthorityURL(md.JWKSURI); err != nil {
		return md, discovered, fmt.Errorf("app: jwks_uri: %w", err)
	}
	if err := config.CheckAuthorityURL(md.TokenEndpoint); err != nil {
		return md, discovered, fmt.Errorf("app: token_endpoint: %w", err)
	}
	return md, discovered, nil
}

func (a *App) buildHandler(ctx context.Context) error {
	cfg := a.cfg
	hc := AuthorityClient(cfg)
	md, _, err := ResolveAuthority(ctx, hc, cfg)
	if err != nil {
		return err
	}

	// v1 access tokens carry the issuer of the v1 discovery document.
	var v1Issuer string
	if base := cfg.V1Authority(); base != "" {
		dctx, cancel := context.WithTimeout(ctx, cfg.Authority.Timeout.D())
		iss, found, err := obo.DiscoverIssuer(dctx, hc, base)
		cancel()
		if err != nil {
			return fmt.Errorf("app: v1 discovery: %w", err)
		}
		if found {
			v1Issuer = iss
		}
	}
	cred, err := cfg.Credential(func(thumbprint string, err error) {
		if err != nil {
			a.log.Error("client certificate files changed but could not be loaded; the previous certificate stays in use",
				"x5t#S256", thumbprint, "error", err.Error())
			return
		}
		a.log.Info("client certificate reloaded", "x5t#S256", thumbprint)
	})
	if err != nil {
		return fmt.Errorf("app: client credential: %w", err)
	}
	client, err := obo.NewClient(obo.Config{
		ClientID:      cfg.Client.ID,
		TokenEndpoint: md.TokenEndpoint,
		Credential:    cred,
		// The token request is never redirected: a redirect would carry
		// the client credential and token A elsewhere.
		HTTPClient: &http.Client{Transport: hc.Transport, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		Timeout:       cfg.Authority.Timeout.D(),
		Capabilities:  cfg.Client.Capabilities,
		Protocol:      cfg.Authority.Protocol,
		DefaultTenant: cfg.Client.TenantID,
		// In the file 0 turns a setting off; obo.Config says that with a
		// negative value (its zero means the default).
		Retries:         cmp.Or(cfg.Authority.Retries, -1),
		BreakerFailures: cmp.Or(cfg.Authority.Breaker.Failures, -1),
		BreakerOpenFor:  cfg.Authority.Breaker.OpenFor.D(),
		MaxConcurrent:   cmp.Or(cfg.Authority.MaxConcurrentExchanges, -1),
		QueueTimeout:    cmp.Or(cfg.Authority.QueueTimeout.D(), -1),
		OnRetry:         func(reason string) { a.metrics.AuthorityRetries.WithLabelValues(reason).Inc() },
		OnBreakerState:  func(s obo.BreakerState) { a.metrics.BreakerState.Set(float64(s)) },
		OnQueueReject:   a.metrics.ExchangeQueueRejections.Inc,
		TracerProvider:  a.traces.Provider,
	})
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		a.log.Warn("configuration warning", "warning", w)
	}
	keys, err := inbound.NewKeySet(a.bgCtx, inbound.KeySetConfig{
		URL:        md.JWKSURI,
		HTTPClient: hc,
		Refresh:    cfg.Authority.JWKSRefresh.D(),
		OnFetch: func(ok bool) {
			outcome := "success"
			if !ok {
				outcome = "failure"
			}
			a.metrics.JWKSRefreshes.WithLabelValues(outcome).Inc()
		},
		TracerProvider: a.traces.Provider,
	})
	if err != nil {
		return err
	}
	v, err := inbound.NewValidator(inbound.ValidatorConfig{
		Issuer:         md.Issuer,
		V1Issuer:       v1Issuer,
		AllowedTenants: cfg.Inbound.AllowedTenants,
		Audiences:      cfg.Inbound.Audiences,
		Algorithms:     cfg.Inbound.Algorithms,
		ClockSkew:      cfg.Inbound.ClockSkew.D(),
		Keys:           keys,
	})
	if err != nil {
		_ = keys.Close()
		return err
	}
	tv := inbound.Uncached(v)
	if n := int64(cfg.Inbound.VerifiedCacheBytes); n > 0 {
		vc, err := inbound.NewVerifiedCache(v, keys, n)
		if err != nil {
			_ = keys.Close()
			return err
		}
		tv = vc
		a.verified = vc
	}
	routes := make([]proxy.RouteConfig, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		routes = append(routes, proxy.RouteConfig{
			Name: r.Name, PathPrefix: r.PathPrefix, Upstream: r.Upstream,
			Scopes: r.Scopes, Flow: r.Flow, Timeout: r.Timeout.D(),
			ReplayMaxBytes: int64(r.ReplayMaxBytes),
			Audience:       r.Audience, RequestedTokenType: r.RequestedTokenTypeURI(), Presentation: r.Presentation(),
			ForwardCookies: bool(r.ForwardCookies),
		})
	}
	h, err := proxy.New(proxy.Config{
		Routes: routes, Validator: tv, Exchanger: client, Cache: a.cache,
		Metrics: a.metrics, Logger: a.log, RequestLog: a.requestLog,
		KeyMode:        cfg.Cache.Key,
		RequiredScopes: cfg.Inbound.RequiredScopes,
		CAE:            slices.Contains(cfg.Client.Capabilities, "cp1"),
		StripHeaders:   cfg.Inbound.StripHeaders,
		TracerProvider: a.traces.Provider,
	})
	if err != nil {
		_ = keys.Close()
		return err
	}
	a.keys.Store(keys)
	a.handler.Store(h)
	a.log.Info("authority loaded", "issuer", md.Issuer, "jwks_uri", md.JWKSURI, "token_endpoint", md.TokenEndpoint)
	return nil
}

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
