package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/cache/rediscache"
	"github.com/obo-gateway/obo-gateway/inbound"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/telemetry"
	"github.com/obo-gateway/obo-gateway/metrics"
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
	// File, when set, is the file Config was read from (LoadConfigFile):
	// the App reads it again when it changes and on Reload, and applies
	// what a running gateway can change (see reload.go).
	File *ConfigFile
	// LogLevel, when set, is the level of Logger (NewLoggerAt), which a
	// reload of log.level changes.
	LogLevel *slog.LevelVar
}

// App is a running gateway.
type App struct {
	// cfg is the configuration the App started with; live is the one it
	// runs, which differs from cfg only in keys a reload can change.
	cfg     *config.Config
	live    atomic.Pointer[generation]
	log     *slog.Logger
	metrics *metrics.Metrics
	cache   *cache.Cache
	file    *ConfigFile    // nil without a file to reload
	level   *slog.LevelVar // nil when the log level is fixed
	// reloadNow asks the file watcher for a reload (Reload).
	reloadNow chan struct{}
	traces    *telemetry.Traces

	ln            *drainListener
	adminLn       net.Listener
	srv, adminSrv *http.Server
	// tokenLn and tokenSrv serve the token API; nil when it is off.
	tokenLn  net.Listener
	tokenSrv *http.Server
	// watch counts the requests the gateway listener's server refuses.
	watch *unreadWatch
	// conns follows the gateway listener's connections for the drain.
	conns *connTracker

	// handler is nil until the authority's metadata is loaded.
	handler atomic.Pointer[proxy.Handler]
	keys    atomic.Pointer[inbound.KeySet]
	// mu serialises the installs of a handler: the first, once the
	// authority is loaded, and each reload's.
	mu        sync.Mutex
	authority *authority        // nil until loaded; guarded by mu
	tokens    *tokenValidation  // guarded by mu; read by Close after bg.Wait
	l2        *rediscache.Store // nil without cache.redis
	draining  atomic.Bool

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
	sum := ""
	if opts.File != nil {
		sum = shortSum(opts.File.sum)
	}
	gen, err := newGeneration(cfg, sum)
	if err != nil {
		return nil, err
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
	a := &App{cfg: cfg, log: log, metrics: m, cache: c, l2: l2, file: opts.File, level: opts.LogLevel,
		reloadNow: make(chan struct{}, 1), traces: traces}
	a.live.Store(gen)
	if gen.sum != "" {
		m.ConfigInfo.WithLabelValues(gen.sum).Set(1)
	}
	m.ObserveKeys(func() int {
		if k := a.keys.Load(); k != nil {
			return k.Len()
		}
		return 0
	})
	a.bgCtx, a.bgCancel = context.WithCancel(context.Background())

	unreadable := m.BadRequests.WithLabelValues("unreadable")
	a.watch = &unreadWatch{unread: func() {
		a.live.Load().requestLog.Write(context.Background(), log, proxy.RequestLine{Route: "none", Reason: "unreadable"})
		unreadable.Inc()
	}}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("app: listen %s: %w", cfg.Listen, err)
	}
	a.ln = newDrainListener(watchedListener{ln}, ln.(*net.TCPListener))
	a.conns = newConnTracker()
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
		// OPTIONS * is answered by the gateway, not by Go with its own headers.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnContext:                  a.watch.connContext,
		ConnState: func(c net.Conn, s http.ConnState) {
			a.watch.connState(c, s)
			a.conns.connState(c, s)
		},
	}
	a.adminSrv = &http.Server{
		Handler:           a.adminMux(),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if err := a.listenTokenAPI(); err != nil {
		a.Close()
		return nil, err
	}
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		a.loadAuthority(a.bgCtx)
	}()
	if a.file != nil {
		a.bg.Add(1)
		go func() {
			defer a.bg.Done()
			a.watchFile(a.bgCtx)
		}()
	}
	return a, nil
}

// Addr is the gateway listener's address.
func (a *App) Addr() string { return a.ln.Addr().String() }

// AdminAddr is the admin listener's address.
func (a *App) AdminAddr() string { return a.adminLn.Addr().String() }

// Metrics returns the App's collectors.
func (a *App) Metrics() *metrics.Metrics { return a.metrics }

// Run serves until ctx is cancelled, then reports not ready while it keeps
// serving for the configured shutdown delay; stops accepting once the
// connections already queued are taken; from then on answers close their
// connections; waits until every connection is answering its last request
// or has been idle for idleGrace; lets in-flight requests finish within
// the configured shutdown timeout; and releases everything.
func (a *App) Run(ctx context.Context) error {
	// adminErr also takes the token API's: neither stops the gateway's own
	// listener from draining.
	gwErr, adminErr := make(chan error, 1), make(chan error, 2)
	go func() { gwErr <- a.srv.Serve(a.ln) }()
	go func() { adminErr <- a.adminSrv.Serve(a.adminLn) }()
	a.log.Info("gateway listening", "listen", a.Addr(), "admin_listen", a.AdminAddr())
	if a.tokenSrv != nil {
		go func() {
			if err := a.tokenSrv.Serve(a.tokenLn); err != nil {
				adminErr <- fmt.Errorf("token API: %w", err)
			}
		}()
		a.log.Info("token API listening", "token_api_listen", a.TokenAPIAddr())
	}

	var err error
	gwDone := false // the gateway's Serve returned
	select {
	case <-ctx.Done():
	case serr := <-gwErr:
		err, gwDone = fmt.Errorf("app: serve: %w", serr), true
	case serr := <-adminErr:
		err = fmt.Errorf("app: serve admin: %w", serr)
	}
	a.draining.Store(true) // not ready
	if delay := a.cfg.ShutdownDelay.D(); delay > 0 && err == nil {
		// Still serving: the application may be finishing its own
		// requests through the gateway.
		a.log.Info("shutdown delayed: still accepting requests", "delay", delay.String())
		select {
		case <-time.After(delay):
		case serr := <-gwErr:
			err, gwDone = fmt.Errorf("app: serve: %w", serr), true
		case serr := <-adminErr:
			err = fmt.Errorf("app: serve admin: %w", serr)
		}
	}
	grace := a.cfg.ShutdownTimeout.D()
	a.log.Info("shutting down", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if serr := a.ln.stopAccepting(time.Now().Add(grace / 2)); serr != nil {
		a.log.Warn("the gateway listener closed without serving its accept queue", "error", serr.Error())
	}
	if !gwDone {
		select {
		case serr := <-gwErr:
			if !isStoppedAccepting(serr) && err == nil {
				err = fmt.Errorf("app: serve: %w", serr)
			}
		case <-sctx.Done():
		}
	}
	// Only now, with no new connection to take their place, answers close
	// their connections.
	a.conns.closing.Store(true)
	if serr := a.conns.quiesce(sctx); serr != nil && err == nil {
		err = fmt.Errorf("app: drain: %w", serr)
	}
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
	if a.tokenSrv != nil {
		if serr := a.tokenSrv.Shutdown(sctx); serr != nil {
			_ = a.tokenSrv.Close()
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
	if a.tokenLn != nil {
		a.tokenLn.Close()
	}
	if k := a.keys.Load(); k != nil {
		_ = k.Close()
	}
	if a.tokens != nil && a.tokens.verified != nil {
		a.tokens.verified.Close()
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
// the authority's metadata is loaded, 503 before; OPTIONS * is 404, as no
// route can match it. Once the listener stopped accepting, every answer
// closes its connection.
func (a *App) serveGateway(w http.ResponseWriter, r *http.Request) {
	served(r)
	a.conns.closeAfter(w, r)
	if r.Method == http.MethodOptions && r.RequestURI == "*" {
		a.refuse(w, r, http.StatusNotFound, "no_route", proxy.ErrorBody{Error: "not_found",
			Description: "OPTIONS * names no route; the gateway answers only requests for a route's path"})
		return
	}
	h := a.handler.Load()
	if h == nil {
		w.Header().Set("Retry-After", "5")
		a.refuse(w, r, http.StatusServiceUnavailable, "starting", proxy.ErrorBody{Error: "temporarily_unavailable",
			Description: "the gateway is starting: the authority's metadata is not loaded yet"})
		return
	}
	h.ServeHTTP(w, r)
}

// refuse answers r with status and the JSON body, counted as a bad request
// for reason and logged as the request log says.
func (a *App) refuse(w http.ResponseWriter, r *http.Request, status int, reason string, body proxy.ErrorBody) {
	a.metrics.Requests.WithLabelValues("none", metrics.Method(r.Method), metrics.StatusClass(status)).Inc()
	a.metrics.BadRequests.WithLabelValues(reason).Inc()
	a.live.Load().requestLog.Write(r.Context(), a.log, proxy.RequestLine{Route: "none", Method: r.Method, Path: r.URL.Path,
		Status: status, Reason: reason})
	proxy.WriteError(w, status, "", body)
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
