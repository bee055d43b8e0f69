package app

import (
	"reflect"
	"slices"

	"github.com/obo-gateway/obo-gateway/inbound"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/obo"
	"github.com/obo-gateway/obo-gateway/proxy"
)

// authority is what the App builds once from the authority's metadata and
// shares with every handler it installs.
type authority struct {
	issuer, v1Issuer string
	keys             *inbound.KeySet
	client           *obo.Client
}

// tokenValidation is the validation of token A that handlers share while
// the inbound keys it is built from stay the same.
type tokenValidation struct {
	// settings is the inbound section it was built from, the keys that
	// only the handler applies left out (validationSettings).
	settings  config.Inbound
	validator inbound.TokenValidator
	verified  *inbound.VerifiedCache // nil when inbound.verified_cache_bytes is 0
}

// validationSettings returns the inbound keys token A's validation, and
// the verified tokens it remembers, depend on: all but required_scopes and
// strip_headers, which the handler applies to every request.
func validationSettings(in config.Inbound) config.Inbound {
	in.RequiredScopes, in.StripHeaders = nil, nil
	return in
}

// tokenValidation returns the validation of token A for cfg: the one in
// use when cfg's validation settings are those it was built from, so that
// tokens verified before stay verified; otherwise a new validator with an
// empty verified-token cache, so that no token accepted under the previous
// audiences, tenants, algorithms or clock skew is accepted without being
// checked again. a.mu must be held.
func (a *App) tokenValidation(cfg *config.Config) (*tokenValidation, error) {
	settings := validationSettings(cfg.Inbound)
	if a.tokens != nil && reflect.DeepEqual(a.tokens.settings, settings) {
		return a.tokens, nil
	}
	auth := a.authority
	v, err := inbound.NewValidator(inbound.ValidatorConfig{
		Issuer:         auth.issuer,
		V1Issuer:       auth.v1Issuer,
		AllowedTenants: cfg.Inbound.AllowedTenants,
		Audiences:      cfg.Inbound.Audiences,
		Algorithms:     cfg.Inbound.Algorithms,
		ClockSkew:      cfg.Inbound.ClockSkew.D(),
		Keys:           auth.keys,
	})
	if err != nil {
		return nil, err
	}
	tv := &tokenValidation{settings: settings, validator: inbound.Uncached(v)}
	if n := int64(cfg.Inbound.VerifiedCacheBytes); n > 0 {
		vc, err := inbound.NewVerifiedCache(v, auth.keys, n)
		if err != nil {
			return nil, err
		}
		tv.validator, tv.verified = vc, vc
	}
	return tv, nil
}

// installHandler builds the proxy handler for cfg on the loaded authority
// and makes it the one new requests get; requests in flight finish with
// the handler they started with. The token cache is shared by every
// handler, and a route's cache keys depend only on its scopes, audience
// and token type, so a route whose scopes stay keeps its cached tokens.
// a.mu must be held and the authority loaded.
func (a *App) installHandler(cfg *config.Config) error {
	tv, err := a.tokenValidation(cfg)
	if err != nil {
		return err
	}
	requestLog, err := proxy.ParseRequestLog(cfg.Log.Requests)
	if err != nil {
		return err
	}
	routes := make([]proxy.RouteConfig, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		routes = append(routes, proxy.RouteConfig{
			Name: r.Name, PathPrefix: r.PathPrefix, Upstream: r.Upstream,
			Scopes: r.Scopes, Flow: r.Flow, Timeout: r.Timeout.D(),
			AgentIdentity: r.AgentIdentity, AgentUser: r.AgentUser,
			ReplayMaxBytes: int64(r.ReplayMaxBytes),
			Audience:       r.Audience, RequestedTokenType: r.RequestedTokenTypeURI(), Presentation: r.Presentation(),
			ForwardCookies: bool(r.ForwardCookies), WebSocket: bool(r.WebSocket),
		})
	}
	h, err := proxy.New(proxy.Config{
		Routes: routes, Validator: tv.validator, Exchanger: a.authority.client, Cache: a.cache,
		Metrics: a.metrics, Logger: a.log, RequestLog: requestLog,
		KeyMode:        cfg.Cache.Key,
		RequiredScopes: cfg.Inbound.RequiredScopes,
		CAE:            slices.Contains(cfg.Client.Capabilities, "cp1"),
		StripHeaders:   cfg.Inbound.StripHeaders,
		Previous:       a.handler.Load(),
		TracerProvider: a.traces.Provider,

		AgentIdentities: cfg.Agents.Identities,
		AgentTenants:    cfg.Agents.Tenants,
		DefaultTenant:   cfg.Client.TenantID,
	})
	if err != nil {
		return err
	}
	a.tokens = tv
	a.handler.Store(h)
	return nil
}
