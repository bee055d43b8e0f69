package app

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/obo-gateway/obo-gateway/proxy"
	"github.com/obo-gateway/obo-gateway/tokenapi"
)

// listenTokenAPI opens the token API's listener when token_api.listen is
// set. The address must be loopback: the validated configuration says so,
// and the listener checks it again on the address it got.
func (a *App) listenTokenAPI() error {
	cfg := a.cfg
	if cfg.TokenAPI.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", cfg.TokenAPI.Listen)
	if err != nil {
		return fmt.Errorf("app: token_api.listen %s: %w", cfg.TokenAPI.Listen, err)
	}
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		ln.Close()
		return fmt.Errorf("app: token_api.listen %s: %s is not a loopback address", cfg.TokenAPI.Listen, ip)
	}
	a.tokenLn = ln
	a.tokenSrv = &http.Server{
		Handler: tokenapi.New(tokenapi.Config{
			Handler:        a.handler.Load,
			Overrides:      a.tokenAPIOverrides,
			Metrics:        a.metrics,
			Logger:         a.log,
			RequestLog:     func() proxy.RequestLog { return a.live.Load().requestLog },
			TracerProvider: a.traces.Provider,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	return nil
}

// TokenAPIAddr is the token API listener's address, or "" when it is off.
func (a *App) TokenAPIAddr() string {
	if a.tokenLn == nil {
		return ""
	}
	return a.tokenLn.Addr().String()
}

// tokenAPIOverrides returns the token API's allowed overrides of the
// configuration running now.
func (a *App) tokenAPIOverrides() tokenapi.Overrides {
	cfg := a.live.Load().cfg
	o := tokenapi.Overrides{All: cfg.TokenAPI.AllowOverrides, ByRoute: make(map[string][]string, len(cfg.Routes))}
	for _, r := range cfg.Routes {
		o.ByRoute[r.Name] = r.AllowOverrides
	}
	return o
}
