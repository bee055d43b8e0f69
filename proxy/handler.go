package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/inbound"
	"github.com/obo-gateway/obo-gateway/metrics"
	"github.com/obo-gateway/obo-gateway/obo"
)

// request is the state of one request, from ServeHTTP through the reverse
// proxy's hooks (which find it in the request's context) to its log line
// and metrics.
type request struct {
	start time.Time
	// ctx is the request's context with its trace; span is the server
	// span, or the caller's (not recording) when tracing is off.
	ctx   context.Context
	span  trace.Span
	w     statusWriter // the caller's ResponseWriter, recording the status
	route *route       // nil until a route matches
	// sum is token A's SHA-256, once token A is read (hasSum).
	sum    [sha256.Size]byte
	hasSum bool
	raw    string // token A
	tenant string // token A's tid
	cache  string // where token B came from (cache.Result)
	reason string // why the gateway answered itself, for the log

	// What the proxied request needs.
	outPath string
	key     string // token B's cache key
	entry   *cache.Entry
	// in is the request as the reverse proxy received it, which a CAE
	// retry sends again (the hooks see the outbound copy); body is its
	// body, kept for the retry when replayable.
	in            *http.Request
	body          []byte
	inBody        *inboundBody // the caller's body as proxied; nil without one
	replayable    bool
	retried       bool
	downstreamErr error // set by the reverse proxy's ErrorHandler
}

type stateKey struct{}

// stateOf returns the request state a request's context carries.
func stateOf(ctx context.Context) *request {
	st, _ := ctx.Value(stateKey{}).(*request)
	return st
}

// statusClientClosed is recorded when the caller gave up before the answer.
const statusClientClosed = 499

// ServeHTTP serves one request; see Handler for the answers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.m.InFlight.Inc()
	defer h.m.InFlight.Dec()
	st := &request{start: time.Now(), w: statusWriter{ResponseWriter: w}}
	st.ctx, st.span = h.tracing.start(r)
	// Deferred, so that a request the reverse proxy aborts (a panic with
	// http.ErrAbortHandler) is counted and logged too.
	defer h.finish(st, r)
	h.serve(st, r)
}

// serve checks the request and token A, then forwards the request.
func (h *Handler) serve(st *request, r *http.Request) {
	w := &st.w
	if n := headerFields(r.Header); n > h.maxHeaders {
		h.badRequest(st, "too_many_headers", http.StatusRequestHeaderFieldsTooLarge, "invalid_request",
			fmt.Sprintf("the request has %d header fields; at most %d are accepted", n, h.maxHeaders))
		return
	}
	if h.refuseTrace(st, r) {
		return
	}
	p, err := cleanPath(r.URL.Path)
	if err != nil {
		h.badRequest(st, "bad_path", http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	rt := h.routes.match(p)
	if rt == nil {
		h.badRequest(st, "no_route", http.StatusNotFound, "not_found", "no route matches this path")
		return
	}
	st.route = rt
	if rt.flow == obo.FlowAgentApp || rt.flow == obo.FlowAgentUser {
		// No token A: the route is for the local agent process.
		h.serveAgent(st, r, p, nil)
		return
	}
	raw, err := inbound.BearerToken(r.Header)
	var claims *inbound.Claims
	if err == nil {
		st.raw, st.sum, st.hasSum = raw, inbound.Sum(raw), true
		claims, err = h.v.Validate(st.ctx, raw, st.sum)
	}
	if err == nil {
		err = h.authorize(rt, claims)
	}
	if err != nil {
		var re *inbound.RejectError
		if !errors.As(err, &re) {
			re = &inbound.RejectError{Reason: inbound.ReasonMalformed, Description: "token could not be read"}
		}
		st.reason = re.Reason
		h.m.InboundRejections.WithLabelValues(re.Reason).Inc()
		writeReject(w, re)
		return
	}
	if rt.flow == obo.FlowAgentOnBehalfOf {
		h.serveAgent(st, r, p, agentCaller(st, claims))
		return
	}
	st.tenant, st.outPath, st.key = claims.TenantID, rt.outPath(p), h.cacheKey(rt, claims, st.sum)
	h.forward(st, r)
}

// badRequest answers a request the gateway refuses before reading token A.
func (h *Handler) badRequest(st *request, reason string, status int, code, description string) {
	st.reason = reason
	h.m.BadRequests.WithLabelValues(reason).Inc()
	WriteError(&st.w, status, "", ErrorBody{Error: code, Description: description})
}

// authorize applies the gateway's policy on token A for route rt: a
// delegated token must carry one of the required scopes; an app-only token
// is refused on an on-behalf-of route, and elsewhere needs an application
// role.
func (h *Handler) authorize(rt *route, c *inbound.Claims) error {
	refuse := func(reason, description string) error {
		return &inbound.RejectError{Reason: reason, Description: description, Scope: h.requiredScope}
	}
	switch {
	case c.AppOnly() && (rt.flow == obo.FlowOnBehalfOf || rt.flow == obo.FlowAgentOnBehalfOf):
		return refuse(inbound.ReasonAppOnly, "an app-only token cannot be exchanged on behalf of a user")
	case c.AppOnly() && len(c.Roles) == 0:
		// Neither a user's delegated token nor an application granted a
		// role of API A (an ID token, say).
		return refuse(inbound.ReasonAppOnly, "the token carries neither delegated scopes nor application roles")
	case !c.AppOnly() && len(h.requiredScopes) > 0 && !slices.ContainsFunc(c.Scopes, func(s string) bool {
		return slices.Contains(h.requiredScopes, s)
	}):
		return refuse(inbound.ReasonScope, fmt.Sprintf("token scopes %q include none of %q", c.Scopes, h.requiredScopes))
	}
	return nil
}

// cacheKey returns the cache key of token B for route rt and token A (its
// claims and SHA-256).
func (h *Handler) cacheKey(rt *route, c *inbound.Claims, sum [sha256.Size]byte) string {
	switch {
	case rt.flow == obo.FlowClientCredentials:
		return rt.appKey
	case h.keyMode == KeyAssertion:
		return cache.AssertionKey(sum, rt.scopeSet)
	}
	if c.ObjectID == "" {
		return cache.SubjectKey(c.Issuer, c.Subject, c.AuthContexts, rt.scopeSet)
	}
	return cache.UserKey(c.TenantID, c.ObjectID, c.AuthContexts, rt.scopeSet)
}

// forward obtains token B and proxies the request.
func (h *Handler) forward(st *request, r *http.Request) {
	rt := st.route
	entry, res, err := h.cache.Fetch(st.ctx, st.key, func(ctx context.Context) (*cache.Entry, error) {
		return h.exchange(ctx, st, "")
	})
	st.cache = res.String()
	h.m.CacheLookups.WithLabelValues(rt.name, st.cache).Inc()
	if err != nil {
		if r.Context().Err() != nil {
			h.clientClosed(&st.w, st)
			return
		}
		st.reason = writeExchangeError(&st.w, err).reason
		return
	}
	st.entry = entry
	h.send(st, r)
}

// send proxies the request with st's token B.
func (h *Handler) send(st *request, r *http.Request) {
	rt := st.route
	st.inBody = wrapBody(r)
	if h.cae && rt.replay > 0 {
		keepBody(r, st, rt.replay)
	}
	st.in = r.WithContext(context.WithValue(st.ctx, stateKey{}, st))
	rt.proxy.ServeHTTP(&st.w, st.in)
	if st.downstreamErr != nil {
		st.reason = "downstream_error"
		h.log.LogAttrs(st.ctx, slog.LevelWarn, "downstream request failed",
			slog.String("route", rt.name), slog.String("error", st.downstreamErr.Error()))
	}
}

// exchange asks the authority for token B of st's route with st's token A
// and records the outcome. claims, when not empty, is a CAE challenge's
// claims request. It may run after st's request has ended (a refresh ahead).
func (h *Handler) exchange(ctx context.Context, st *request, claims string) (*cache.Entry, error) {
	start := time.Now()
	rt := st.route
	req := obo.Request{Flow: rt.flow, Scopes: rt.scopes, Claims: claims,
		Audience: rt.audience, RequestedTokenType: rt.requestedType}
	if rt.flow != obo.FlowClientCredentials {
		req.Assertion = st.raw
		req.Tenant = st.tenant
	}
	tok, err := h.ex.Token(ctx, req)
	outcome := obo.Outcome(err)
	h.m.ExchangeDuration.WithLabelValues(rt.name, rt.flow).Observe(time.Since(start).Seconds())
	h.m.Exchanges.WithLabelValues(rt.name, rt.flow, outcome).Inc()
	if err != nil {
		level := slog.LevelWarn
		if outcome == "invalid_client" || outcome == "authority_error" || outcome == "credential_error" {
			level = slog.LevelError
		}
		attrs := []slog.Attr{slog.String("route", rt.name), slog.String("flow", rt.flow),
			slog.String("outcome", outcome), slog.String("user", inbound.Fingerprint(st.sum)), slog.String("error", err.Error())}
		var ae *obo.Error
		if errors.As(err, &ae) {
			attrs = append(attrs, slog.Any("error_codes", ae.ErrorCodes),
				slog.String("trace_id", ae.TraceID), slog.String("correlation_id", ae.CorrelationID))
		}
		h.log.LogAttrs(ctx, level, "exchange failed", attrs...)
		return nil, fmt.Errorf("proxy: exchange for route %q: %w", rt.name, err)
	}
	scheme := tok.TokenType
	if scheme == "" || strings.EqualFold(scheme, "bearer") {
		scheme = "Bearer"
	}
	return cache.NewEntry(st.key, tok.AccessToken, scheme, tok.IssuedAt, tok.ExpiresAt, tok.RefreshIn), nil
}

// finish counts the answered request and writes its log line.
func (h *Handler) finish(st *request, r *http.Request) {
	status := st.w.status
	if status == 0 {
		status = http.StatusOK
	}
	took := time.Since(st.start)
	route := "none"
	if st.route != nil {
		route = st.route.name
	}
	method := metrics.Method(r.Method)
	h.m.Requests.WithLabelValues(route, method, metrics.StatusClass(status)).Inc()
	h.m.RequestDuration.WithLabelValues(route).Observe(took.Seconds())
	h.tracing.end(st, method, status)
	if !h.requestLog.Logs(status) {
		return
	}
	line := RequestLine{Route: route, Method: r.Method, Path: r.URL.Path, Status: status, Duration: took,
		Cache: st.cache, Reason: st.reason, TraceID: traceID(st)}
	if st.hasSum {
		line.User = inbound.Fingerprint(st.sum)
	}
	h.requestLog.Write(r.Context(), h.log, line)
}
