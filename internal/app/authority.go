package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/obo-gateway/obo-gateway/inbound"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/obo"
)

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

// buildHandler loads the authority's metadata, starts its key set and the
// exchange client, and installs the first handler.
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
	if mi, ok := cred.(*obo.ManagedIdentity); ok {
		// Which endpoint serves the identity depends on the environment.
		a.log.Info("client credential", "credential", mi.String())
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
		// The agent legs' tokens share the token B cache: their keys
		// cannot collide with token B's.
		AgentCache: a.cache,
		// The file's defaults are obo's; a 0 written in the file is obo.Off.
		Retries:         offIfZero(cfg.Authority.Retries),
		BreakerFailures: offIfZero(cfg.Authority.Breaker.Failures),
		BreakerOpenFor:  cfg.Authority.Breaker.OpenFor.D(),
		MaxConcurrent:   offIfZero(cfg.Authority.MaxConcurrentExchanges),
		QueueTimeout:    offIfZero(cfg.Authority.QueueTimeout.D()),
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
		OnFetch: func(err error) {
			if err != nil {
				a.metrics.JWKSRefreshes.WithLabelValues("failure").Inc()
				a.log.Warn("key set fetch failed; the last good key set stays", "jwks_uri", md.JWKSURI, "error", err.Error())
				return
			}
			a.metrics.JWKSRefreshes.WithLabelValues("success").Inc()
		},
		TracerProvider: a.traces.Provider,
	})
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.authority = &authority{issuer: md.Issuer, v1Issuer: v1Issuer, keys: keys, client: client}
	// The configuration running now: a reload may have replaced the one
	// the App started with while the authority was loading.
	if err := a.installHandler(a.live.Load().cfg); err != nil {
		a.authority = nil
		_ = keys.Close()
		return err
	}
	a.keys.Store(keys)
	a.log.Info("authority loaded", "issuer", md.Issuer, "jwks_uri", md.JWKSURI, "token_endpoint", md.TokenEndpoint)
	return nil
}

// offIfZero maps a resilience setting of the file onto obo.Config: Parse
// fills in the defaults, so a 0 left is one the file wrote to turn it off.
func offIfZero[T int | time.Duration](v T) T {
	if v == 0 {
		return obo.Off
	}
	return v
}
