package proxy

import (
	"context"
	"errors"
	"github.com/obo-gateway/obo-gateway/obo"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/inbound"
	"github.com/obo-gateway/obo-gateway/internal/idshape"
)

// TokenRequest asks a route for a token outside the proxy path (the token
// API). Its zero fields mean the route's own values.
type TokenRequest struct {
	// Flow is any flow a route can have; empty means the route's.
	Flow string
	// Scopes replace the route's scopes when not empty.
	Scopes []string
	// AgentID is the agent identity of an agent flow; empty means the
	// route's agent_identity.
	AgentID string
	// AgentUsername or AgentUserID name the agent user of obo.FlowAgentUser;
	// both empty means the route's agent_user.
	AgentUsername, AgentUserID string
	// Tenant is the tenant to obtain the token in; empty means the
	// default. Another tenant than the default must be allowed
	// (Config.AgentTenants).
	Tenant string
	// Claims is a claims request for the exchange; the token obtained with
	// it replaces the cached one.
	Claims string
	// ForceRefresh exchanges again instead of serving the cached token.
	ForceRefresh bool
	// Caller is the validated token A, nil when the request has none.
	Caller *Caller
}

// Caller is a validated token A, from Handler.Authenticate.
type Caller struct {
	raw    string
	sum    [32]byte
	claims *inbound.Claims
}

// Raw returns token A itself. Never log it.
func (c *Caller) Raw() string { return c.raw }

// Fingerprint returns token A's short SHA-256 fingerprint, for logs.
func (c *Caller) Fingerprint() string { return inbound.Fingerprint(c.sum) }

// Claims returns token A's validated claims.
func (c *Caller) Claims() *inbound.Claims { return c.claims }

// RefusalError is a request the gateway refuses before any exchange: an
// unknown route (404), an agent identity or tenant not allowed (403), a
// missing or malformed agent parameter (400).
type RefusalError struct {
	// Status is the HTTP status of the answer.
	Status int
	// Reason is the short reason counted in bad_requests_total and logged.
	Reason string
	// Description says what is wrong. It never holds a token, UPN or
	// object id.
	Description string
}

func (e *RefusalError) Error() string { return "proxy: " + e.Reason + ": " + e.Description }

func refusal(status int, reason, description string) *RefusalError {
	return &RefusalError{Status: status, Reason: reason, Description: description}
}

// RouteInfo is what a route grants, as the token API compares overrides
// with it.
type RouteInfo struct {
	Name, Flow             string
	Scopes                 []string
	AgentIdentity          string
	AgentUser              string
	DefaultTenant          string
	Upstream               string
	RequiresCaller         bool // the route's flow exchanges token A
	AllowsAgentIdentityAny bool // agent identities are not fixed by the route
}

// Route returns route name's grant and whether the route exists.
func (h *Handler) Route(name string) (RouteInfo, bool) {
	rt := h.routeNamed(name)
	if rt == nil {
		return RouteInfo{}, false
	}
	return RouteInfo{Name: rt.name, Flow: rt.flow, Scopes: slices.Clone(rt.scopes), AgentIdentity: rt.agentID,
		AgentUser: rt.agentUser, DefaultTenant: h.defaultTenant, Upstream: rt.upstream.String(),
		RequiresCaller: needsCaller(rt.flow), AllowsAgentIdentityAny: rt.agentID == ""}, true
}

func (h *Handler) routeNamed(name string) *route {
	for _, rt := range h.routes {
		if rt.name == name {
			return rt
		}
	}
	return nil
}

// needsCaller reports whether flow exchanges token A.
func needsCaller(flow string) bool {
	return flow == obo.FlowOnBehalfOf || flow == obo.FlowAgentOnBehalfOf
}

// Authenticate reads and validates token A from h's Authorization header.
// Its errors are *inbound.RejectError values, counted in
// inbound_rejections_total.
func (h *Handler) Authenticate(ctx context.Context, hdr http.Header) (*Caller, error) {
	raw, err := inbound.BearerToken(hdr)
	var c *Caller
	if err == nil {
		c = &Caller{raw: raw, sum: inbound.Sum(raw)}
		c.claims, err = h.v.Validate(ctx, raw, c.sum)
	}
	if err != nil {
		var re *inbound.RejectError
		if !errors.As(err, &re) {
			re = &inbound.RejectError{Reason: inbound.ReasonMalformed, Description: "token could not be read"}
		}
		h.m.InboundRejections.WithLabelValues(re.Reason).Inc()
		return nil, re
	}
	return c, nil
}

// Token obtains the token req asks route name for, from the cache or by
// exchanging, counted in the cache and exchange metrics of the route. Its
// errors are *RefusalError, *inbound.RejectError (token A refused by the
// gateway's policy for the flow) or the exchange's error; Answer describes
// each.
func (h *Handler) Token(ctx context.Context, name string, req TokenRequest) (*cache.Entry, cache.Result, error) {
	rt := h.routeNamed(name)
	if rt == nil {
		h.m.BadRequests.WithLabelValues("no_route").Inc()
		return nil, cache.Miss, refusal(http.StatusNotFound, "no_route", "no route has this name")
	}
	if len(req.Scopes) > 0 && !sameScopes(req.Scopes, rt.scopes) {
		rt = rt.withScopes(req.Scopes)
	}
	flow := cmpOr(req.Flow, rt.flow)
	switch flow {
	case obo.FlowOnBehalfOf, obo.FlowClientCredentials, obo.FlowAgentApp, obo.FlowAgentUser, obo.FlowAgentOnBehalfOf:
	default:
		return nil, cache.Miss, refusal(http.StatusBadRequest, "bad_flow", "unknown flow")
	}
	if needsCaller(flow) && req.Caller == nil {
		h.m.InboundRejections.WithLabelValues(inbound.ReasonMissing).Inc()
		return nil, cache.Miss, &inbound.RejectError{Reason: inbound.ReasonMissing, Description: "this token needs the caller's token A in the Authorization header"}
	}
	if req.Caller != nil {
		if err := h.authorizeFlow(flow, req.Caller.claims); err != nil {
			h.m.InboundRejections.WithLabelValues(err.(*inbound.RejectError).Reason).Inc()
			return nil, cache.Miss, err
		}
	}
	st := &request{start: time.Now(), route: rt}
	if req.Caller != nil {
		st.raw, st.sum, st.hasSum, st.tenant = req.Caller.raw, req.Caller.sum, true, req.Caller.claims.TenantID
	}
	if isAgentFlow(flow) {
		ar, err := h.agentRequest(rt, flow, req)
		if err != nil {
			h.m.BadRequests.WithLabelValues(err.(*RefusalError).Reason).Inc()
			return nil, cache.Miss, err
		}
		return h.agentToken(ctx, rt, ar)
	}
	if req.Tenant != "" && !strings.EqualFold(req.Tenant, st.tenant) && !strings.EqualFold(req.Tenant, h.defaultTenant) {
		h.m.BadRequests.WithLabelValues("tenant_not_allowed").Inc()
		return nil, cache.Miss, refusal(http.StatusForbidden, "tenant_not_allowed",
			"another tenant than the route's is only available to the agent flows")
	}
	if flow != rt.flow {
		rt = rt.withFlow(flow)
		st.route = rt
	}
	if req.Caller != nil {
		st.key = h.cacheKey(rt, req.Caller.claims, req.Caller.sum)
	} else {
		st.key = rt.appKey
	}
	if req.Claims != "" {
		e, err := h.exchange(ctx, st, req.Claims)
		h.m.CacheLookups.WithLabelValues(rt.name, cache.Miss.String()).Inc()
		if err != nil {
			return nil, cache.Miss, err
		}
		h.cache.Set(e)
		return e, cache.Miss, nil
	}
	if req.ForceRefresh {
		h.cache.Delete(st.key)
	}
	e, res, err := h.cache.Fetch(ctx, st.key, func(ctx context.Context) (*cache.Entry, error) {
		return h.exchange(ctx, st, "")
	})
	h.m.CacheLookups.WithLabelValues(rt.name, res.String()).Inc()
	return e, res, err
}

// authorizeFlow is authorize for a flow that may differ from the route's.
func (h *Handler) authorizeFlow(flow string, c *inbound.Claims) error {
	return h.authorize(&route{flow: flow}, c)
}

// withScopes returns a copy of rt that asks for scopes.
func (rt *route) withScopes(scopes []string) *route {
	c := *rt
	c.scopes = scopes
	c.scopeSet = cache.NormalizeScopes(scopes) + "\x00" + rt.audience + "\x00" + rt.requestedType
	c.appKey = cache.AppKey(c.scopeSet)
	return &c
}

// withFlow returns a copy of rt with flow.
func (rt *route) withFlow(flow string) *route {
	c := *rt
	c.flow = flow
	return &c
}

// sameScopes reports whether a and b are the same set of scopes.
func sameScopes(a, b []string) bool { return cache.NormalizeScopes(a) == cache.NormalizeScopes(b) }

// SameScopes reports whether a and b are the same set of scopes, as the
// cache compares them (order and case do not matter).
func SameScopes(a, b []string) bool { return sameScopes(a, b) }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// isGUID reports whether s is an object or application id.
func isGUID(s string) bool { return idshape.IsGUID(s) }
