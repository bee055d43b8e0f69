package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/metrics"
	"github.com/obo-gateway/obo-gateway/obo"
)

// Exchanger obtains token B from the authority. *obo.Client implements it.
type Exchanger interface {
	Token(ctx context.Context, req obo.Request) (*obo.Token, error)
}

// RouteConfig describes one downstream API.
type RouteConfig struct {
	// Name identifies the route in logs and metrics.
	Name string
	// PathPrefix selects the route: "/graph" matches "/graph" and
	// "/graph/...". The prefix is replaced by the upstream's path.
	PathPrefix string
	// Upstream is the downstream base URL; its scheme and host are fixed,
	// and requests never leave its path.
	Upstream string
	// Scopes are requested for token B.
	Scopes []string
	// Flow is FlowOnBehalfOf (the default) or FlowClientCredentials.
	Flow string
	// Timeout bounds the wait for the downstream's response headers; zero
	// means 30 seconds.
	Timeout time.Duration
	// ReplayMaxBytes is the largest request body kept so the request can be
	// retried after a continuous access evaluation challenge (only with
	// Config.CAE). Zero disables the retry for the route.
	ReplayMaxBytes int64
	// Audience is the RFC 8693 "audience" of token B (token-exchange
	// authorities only).
	Audience string
	// ForwardCookies sends the inbound Cookie header to the upstream;
	// otherwise it is removed.
	ForwardCookies bool
	// RequestedTokenType is the token type asked for, such as
	// obo.TokenTypeSAML2; empty means an access token.
	RequestedTokenType string
	// Presentation says which header carries token B downstream and in
	// what form; the zero value means obo.DefaultPresentation of
	// RequestedTokenType ("Authorization: Bearer <token>", or
	// "Authorization: SAML <base64>" for SAML assertions).
	Presentation obo.Presentation
}

// Cache key modes.
const (
	// KeyUser caches token B per tenant, user, authentication contexts
	// and scope set (the default).
	KeyUser = "user"
	// KeyAssertion caches token B per token A (its SHA-256) and scope set.
	KeyAssertion = "assertion"
)

// Config configures a Handler. Routes, Validator, Exchanger, Cache and
// Metrics are required.
type Config struct {
	Routes []RouteConfig
	// Validator checks token A: a *VerifiedCache, or Uncached(v).
	Validator TokenValidator
	Exchanger Exchanger
	Cache     *cache.Cache
	Metrics   *metrics.Metrics
	// KeyMode is KeyUser (the default) or KeyAssertion.
	KeyMode string
	// CAE turns on continuous access evaluation handling: the exchanges
	// declare the "cp1" capability (set on the Exchanger), and a downstream
	// 401 with a claims challenge is answered by exchanging again with the
	// challenge's claims and retrying the request once, when its body could
	// be kept (RouteConfig.ReplayMaxBytes). Without CAE the challenge is
	// passed to the caller.
	CAE bool
	// RequiredScopes are the scopes token A must carry one of (reported in
	// insufficient_scope answers).
	RequiredScopes []string
	// Logger receives the request lines RequestLog asks for, at info
	// level; nil discards.
	Logger *slog.Logger
	// RequestLog says which requests get a log line. The zero value,
	// LogFailures, logs the answers of status 400 and above.
	RequestLog RequestLog
	// StripHeaders are further request headers removed before proxying,
	// in addition to IdentityHeaders.
	StripHeaders []string
	// MaxRequestHeaders is the largest number of header fields a request
	// may carry; more are answered with 431. Zero means
	// DefaultMaxRequestHeaders.
	MaxRequestHeaders int
}

// Handler is the gateway's request handler. Its answers:
//
//	more than MaxRequestHeaders header fields  431 invalid_request
//	no route for the path                      404 not_found
//	path with backslash or double encoding     400 invalid_request
//	no bearer token                            401, WWW-Authenticate: Bearer
//	token A invalid                            401, Bearer error="invalid_token"
//	scope missing, or app-only on an OBO route 403, Bearer error="insufficient_scope"
//	user interaction needed                    401, Bearer error="insufficient_claims", claims="<base64>"
//	gateway's credential refused               502
//	authority down, slow, 5xx or 429           503, Retry-After when known
//	downstream unreachable                     502
//
// Everything else is the downstream's answer, passed through unchanged.
type Handler struct {
	routes router
	v      TokenValidator
	ex     Exchanger
	cache  *cache.Cache
	m      *metrics.Metrics
	log    *slog.Logger
	// requestLog says which requests get a line.
	requestLog RequestLog
	keyMode    string
	cae        bool
	// requiredScope is the scope= of insufficient_scope answers: what
	// token A needs, not what token B is for.
	requiredScope string
	// strip holds the headers removed from every request (stripList).
	strip      stripSet
	maxHeaders int
	// buffers lends every route's reverse proxy its copy buffers.
	buffers bufferPool
}

// New builds a Handler, one reverse proxy per route and one transport per
// upstream host.
func New(cfg Config) (*Handler, error) {
	if cfg.Validator == nil || cfg.Exchanger == nil || cfg.Cache == nil || cfg.Metrics == nil {
		return nil, errors.New("proxy: Config needs Validator, Exchanger, Cache and Metrics")
	}
	if len(cfg.Routes) == 0 {
		return nil, errors.New("proxy: no routes")
	}
	h := &Handler{v: cfg.Validator, ex: cfg.Exchanger, cache: cfg.Cache, m: cfg.Metrics, log: cfg.Logger, requestLog: cfg.RequestLog,
		keyMode: cfg.KeyMode, cae: cfg.CAE, requiredScope: strings.Join(cfg.RequiredScopes, " "),
		strip: stripList(cfg.StripHeaders), maxHeaders: cfg.MaxRequestHeaders}
	if h.maxHeaders <= 0 {
		h.maxHeaders = DefaultMaxRequestHeaders
	}
	switch h.keyMode {
	case "":
		h.keyMode = KeyUser
	case KeyUser, KeyAssertion:
	default:
		return nil, fmt.Errorf("proxy: unknown cache key mode %q", cfg.KeyMode)
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	transports := make(map[string]*http.Transport)
	userRoutes := 0 // on-behalf-of routes, each with its key memo slot
	for _, rc := range cfg.Routes {
		up, err := parseUpstream(rc.Upstream)
		if err != nil {
			return nil, fmt.Errorf("proxy: route %q: upstream: %w", rc.Name, err)
		}
		flow := rc.Flow
		if flow == "" {
			flow = FlowOnBehalfOf
		}
		if flow != FlowOnBehalfOf && flow != FlowClientCredentials {
			return nil, fmt.Errorf("proxy: route %q: unknown flow %q", rc.Name, rc.Flow)
		}
		if len(rc.Scopes) == 0 && rc.Audience == "" {
			return nil, fmt.Errorf("proxy: route %q: no scopes and no audience", rc.Name)
		}
		present := rc.Presentation
		if present.Header == "" {
			present = obo.DefaultPresentation(rc.RequestedTokenType)
		}
		prefix, err := cleanPath(rc.PathPrefix)
		if err != nil || prefix == "/" {
			return nil, fmt.Errorf("proxy: route %q: bad path prefix %q", rc.Name, rc.PathPrefix)
		}
		rt := &route{
			name:     rc.Name,
			prefix:   strings.TrimSuffix(prefix, "/"),
			upstream: up,
			basePath: strings.TrimSuffix(up.Path, "/"),
			scopes:   rc.Scopes,
			// Audience and token type are part of what token B is for, so
			// they are part of its cache key.
			scopeSet:      cache.NormalizeScopes(rc.Scopes) + "\x00" + rc.Audience + "\x00" + rc.RequestedTokenType,
			audience:      rc.Audience,
			requestedType: rc.RequestedTokenType,
			present:       present,
			bearer:        present == obo.DefaultPresentation(""),
			flow:          flow,
			replay:        rc.ReplayMaxBytes,
			cookies:       rc.ForwardCookies,
		}
		rt.appKey = cache.AppKey(rt.scopeSet)
		if flow == FlowOnBehalfOf {
			rt.memo = userRoutes % keyMemoSlots
			userRoutes++
		}
		for _, other := range h.routes {
			if other.prefix == rt.prefix {
				return nil, fmt.Errorf("proxy: routes %q and %q share path prefix %q", other.name, rt.name, rt.prefix)
			}
		}
		timeout := rc.Timeout
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		tkey := up.Scheme + "://" + up.Host + "|" + timeout.String()
		tr, ok := transports[tkey]
		if !ok {
			tr = newUpstreamTransport(timeout)
			transports[tkey] = tr
		}
		rt.proxy = h.newReverseProxy(rt, tr)
		rt.metrics = newRouteMetrics(h.m, rt.name)
		h.routes = append(h.routes, rt)
	}
	if vc, ok := h.v.(*VerifiedCache); ok {
		vc.keyMemos.Store(int32(min(max(userRoutes, 1), keyMemoSlots)))
	}
	return h, nil
}

// newUpstreamTransport returns a transport tuned for one downstream host:
// a keep-alive pool sized for a busy sidecar, bounded connection set-up and
// response-header wait, HTTP/2 when the upstream offers it.
func newUpstreamTransport(responseHeaderTimeout time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = responseHeaderTimeout
	t.ExpectContinueTimeout = time.Second
	t.ForceAttemptHTTP2 = true
	return t
}

// reqState travels with a request from ServeHTTP to the reverse proxy hooks.
// It is the request's context too: the caller's context, whose Value also
// answers stateKey with the reqState itself (one allocation where
// context.WithValue would add a second).
type reqState struct {
	context.Context
	// w is the caller's ResponseWriter, recording the status (allocated
	// with the state: one allocation per request for both).
	w       statusWriter
	route   *route
	outPath string
	key     string
	raw     string // token A, for a CAE re-exchange
	tenant  string // token A's tid
	entry   *cache.Entry
	// in is the request as the reverse proxy received it, which a CAE
	// retry sends again (the hooks see the outbound copy).
	in *http.Request
	// body is the request body kept for a CAE retry; replayable says it
	// is complete.
	body       []byte
	replayable bool
	retried    bool
	// downstreamErr is set by the proxy's ErrorHandler.
	downstreamErr error
	// reason is set when the ErrorHandler answered a CAE retry itself,
	// for the request log.
	reason string
}

type stateKey struct{}

// Value returns st for stateKey and otherwise asks the caller's context.
func (st *reqState) Value(key any) any {
	if _, ok := key.(stateKey); ok {
		return st
	}
	return st.Context.Value(key)
}

func stateOf(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

func (h *Handler) newReverseProxy(rt *route, tr http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			st := stateOf(pr.In.Context())
			u := pr.Out.URL
			u.Scheme = rt.upstream.Scheme
			u.Host = rt.upstream.Host
			u.Path = st.outPath
			u.RawPath = ""
			u.Opaque = ""
			u.User = nil
			u.Fragment, u.RawFragment = "", ""
			// The query as the caller wrote it, parameters net/url cannot
			// parse included (ReverseProxy drops those unless told so):
			// the gateway routes on the path alone, so no reading of the
			// query can differ from the downstream's.
			u.RawQuery = pr.In.URL.RawQuery
			pr.Out.Host = ""
			// Hop-by-hop headers and those named in Connection are gone
			// already (ReverseProxy); what the caller might use to speak
			// for a user, or for where the request came from, goes now.
			stripInbound(pr.Out.Header, h.strip, rt.cookies)
			pr.SetXForwarded()
			if rt.bearer {
				pr.Out.Header.Set("Authorization", st.entry.Credential())
			} else {
				pr.Out.Header.Del("Authorization")
				pr.Out.Header.Set(rt.present.Header, rt.present.Value(st.entry.Token))
			}
		},
		Transport:  tr,
		BufferPool: &h.buffers,
		ModifyResponse: func(res *http.Response) error {
			if res.StatusCode != http.StatusUnauthorized || !hasClaimsChallenge(res.Header) {
				return nil
			}
			st := stateOf(res.Request.Context())
			h.cache.Delete(st.key)
			h.m.CacheChallengeEvictions.WithLabelValues(rt.name).Inc()
			if h.cae && st.replayable && !st.retried {
				if claims := challengeClaims(res.Header); claims != "" {
					// Handled by ErrorHandler: nothing has been written yet.
					return &claimsChallenge{claims: claims}
				}
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			st := stateOf(r.Context())
			var cc *claimsChallenge
			if errors.As(err, &cc) {
				h.retryWithClaims(w, st, cc.claims)
				return
			}
			st.downstreamErr = err
			if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
				// The caller went away; nobody reads this answer.
				w.WriteHeader(statusClientClosed)
				return
			}
			h.m.DownstreamErrors.WithLabelValues(rt.name).Inc()
			writeError(w, http.StatusBadGateway, "", errorBody{
				Error:       "bad_gateway",
				Description: "the downstream API of route " + rt.name + " could not be reached",
			})
		},
		ErrorLog: slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
	}
}

// claimsChallenge carries a downstream CAE challenge from ModifyResponse to
// ErrorHandler.
type claimsChallenge struct{ claims string }

func (c *claimsChallenge) Error() string { return "downstream answered with a claims challenge" }

// retryWithClaims answers a downstream claims challenge under CAE: it
// exchanges token A again with the challenge's claims, stores the new
// token B and sends the caller's request once more, through the same hooks
// as the first time (so its forwarding headers are the caller's, not those
// of the first attempt). If the authority wants the user to interact, the
// caller gets the 401 claims challenge.
func (h *Handler) retryWithClaims(w http.ResponseWriter, st *reqState, claims string) {
	st.retried = true
	rt, r := st.route, st.in
	entry, err := h.exchange(r.Context(), rt, st.key, st.raw, st.tenant, claims)
	if err != nil {
		st.reason = writeExchangeError(w, err).reason
		return
	}
	h.cache.Set(entry)
	h.m.CAERetries.WithLabelValues(rt.name).Inc()
	st.entry = entry
	r.Body = io.NopCloser(bytes.NewReader(st.body))
	r.ContentLength = int64(len(st.body))
	rt.proxy.ServeHTTP(w, r)
}

// challengeClaims returns the decoded claims parameter of a claims
// challenge, or "".
func challengeClaims(h http.Header) string {
	for _, v := range h.Values("WWW-Authenticate") {
		i := strings.Index(strings.ToLower(v), "claims=\"")
		if i < 0 {
			continue
		}
		enc, _, ok := strings.Cut(v[i+len(`claims="`):], `"`)
		if !ok {
			continue
		}
		for _, e := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := e.DecodeString(enc); err == nil && json.Valid(b) {
				return string(b)
			}
		}
	}
	return ""
}

// statusClientClosed is recorded when the caller gave up before the answer.
const statusClientClosed = 499

// hasClaimsChallenge reports whether a downstream 401 carries a claims
// challenge (CAE or conditional access), which makes the cached token B
// useless.
func hasClaimsChallenge(h http.Header) bool {
	for _, v := range h.Values("WWW-Authenticate") {
		l := strings.ToLower(v)
		if strings.Contains(l, "claims=") || strings.Contains(l, "insufficient_claims") {
			return true
		}
	}
	return false
}

// RequestLog says which requests the handler logs.
type RequestLog int

const (
	// LogFailures logs the requests answered with a status of 400 or
	// above, whether the gateway or the downstream API answered.
	LogFailures RequestLog = iota
	// LogAll logs every request.
	LogAll
	// LogNone logs no request.
	LogNone
)

// ParseRequestLog returns the RequestLog named failures, all or none.
func ParseRequestLog(s string) (RequestLog, error) {
	switch s {
	case "", "failures":
		return LogFailures, nil
	case "all":
		return LogAll, nil
	case "none":
		return LogNone, nil
	}
	return 0, fmt.Errorf("proxy: request log %q: want failures, all or none", s)
}

// Logs reports whether a request answered with status gets a line.
func (l RequestLog) Logs(status int) bool {
	switch l {
	case LogAll:
		return true
	case LogFailures:
		return status >= http.StatusBadRequest
	}
	return false
}

// ServeHTTP serves one request; see Handler for the answers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	h.m.InFlight.Inc()
	defer h.m.InFlight.Dec()
	st := &reqState{Context: r.Context(), w: statusWriter{ResponseWriter: w}}
	sw := &st.w

	routeName, result, reason := "none", "", ""
	// sum is token A's SHA-256, once it is read; the log names the user
	// by its fingerprint, formatted only when a line is written.
	var sum [sha256.Size]byte
	haveSum := false
	var rm *routeMetrics // set once the route is known
	defer func() {
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		end := time.Now()
		took := end.Sub(start)
		if rm != nil {
			rm.request(r.Method, status)
			rm.duration.Observe(took.Seconds())
		} else {
			h.m.Requests.WithLabelValues(routeName, metrics.Method(r.Method), metrics.StatusClass(status)).Inc()
			h.m.RequestDuration.WithLabelValues(routeName).Observe(took.Seconds())
		}
		if !h.requestLog.Logs(status) || !h.log.Enabled(r.Context(), slog.LevelInfo) {
			return
		}
		// The record goes straight to the handler: Logger.LogAttrs would
		// also capture the caller's program counter, which nobody reads
		// (the request line has no source).
		rec := slog.NewRecord(end, slog.LevelInfo, "request", 0)
		rec.AddAttrs(
			slog.String("route", routeName),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(took.Microseconds())/1000),
		)
		if result != "" {
			rec.AddAttrs(slog.String("cache", result))
		}
		if haveSum {
			rec.AddAttrs(slog.String("user", fingerprintOf(sum)))
		}
		if reason != "" {
			rec.AddAttrs(slog.String("reason", reason))
		}
		_ = h.log.Handler().Handle(r.Context(), rec)
	}()

	if n := headerFields(r.Header); n > h.maxHeaders {
		reason = "too_many_headers"
		h.m.BadRequests.WithLabelValues(reason).Inc()
		writeError(sw, http.StatusRequestHeaderFieldsTooLarge, "", errorBody{Error: "invalid_request",
			Description: fmt.Sprintf("the request has %d header fields; at most %d are accepted", n, h.maxHeaders)})
		return
	}
	p, err := cleanPath(r.URL.Path)
	if err != nil {
		reason = "bad_path"
		h.m.BadRequests.WithLabelValues(reason).Inc()
		writeError(sw, http.StatusBadRequest, "", errorBody{Error: "invalid_request", Description: err.Error()})
		return
	}
	rt := h.routes.match(p)
	if rt == nil {
		reason = "no_route"
		h.m.BadRequests.WithLabelValues(reason).Inc()
		writeError(sw, http.StatusNotFound, "", errorBody{Error: "not_found", Description: "no route matches this path"})
		return
	}
	routeName, rm = rt.name, rt.metrics

	raw, err := bearerToken(r.Header)
	if err == nil {
		sum, haveSum = sumToken(raw), true
		var claims *Claims
		claims, err = h.v.Validate(r.Context(), raw, sum)
		if err == nil && claims.AppOnly() {
			switch {
			case rt.flow == FlowOnBehalfOf:
				err = &RejectError{Reason: ReasonAppOnly, Description: "an app-only token cannot be exchanged on behalf of a user", Scope: h.requiredScope}
			case len(claims.Roles) == 0:
				// Neither a user's delegated token nor an application
				// granted a role of API A (an ID token, say).
				err = &RejectError{Reason: ReasonAppOnly, Description: "the token carries neither delegated scopes nor application roles", Scope: h.requiredScope}
			}
		}
		if err == nil {
			h.forward(st, r, rt, p, raw, sum, claims, &result, &reason)
			return
		}
	}
	var re *RejectError
	if !errors.As(err, &re) {
		re = reject(ReasonMalformed, "token could not be read")
	}
	reason = re.Reason
	h.m.InboundRejections.WithLabelValues(re.Reason).Inc()
	writeReject(sw, re)
}

// forward obtains token B and proxies the request.
func (h *Handler) forward(st *reqState, r *http.Request, rt *route, p, raw string, sum [32]byte, claims *Claims, result, reason *string) {
	w := &st.w
	key, ref := h.cacheKey(rt, claims, sum)
	// The common hit needs no FetchFunc, so none is built for it.
	entry, hit := h.cache.FreshRef(ref, key)
	res, err := cache.Hit, error(nil)
	if !hit {
		fetch := func(ctx context.Context) (*cache.Entry, error) {
			return h.exchange(ctx, rt, key, raw, claims.TenantID, "")
		}
		if entry != nil { // due for refresh: served, and refreshed ahead
			entry, res, err = h.cache.Fetch(r.Context(), key, fetch)
		} else {
			entry, res, err = h.cache.FetchMissing(r.Context(), key, fetch)
		}
	}
	*result = res.String()
	rt.metrics.lookups[res].Inc()
	if err != nil {
		if r.Context().Err() != nil {
			*reason = "client_closed"
			w.WriteHeader(statusClientClosed)
			return
		}
		a := writeExchangeError(w, err)
		*reason = a.reason
		return
	}
	st.route, st.outPath, st.key, st.raw, st.tenant, st.entry = rt, rt.outPath(p), key, raw, claims.TenantID, entry
	if h.cae && rt.replay > 0 {
		h.keepBody(r, st, rt.replay)
	}
	st.in = r.WithContext(st)
	rt.proxy.ServeHTTP(w, st.in)
	if st.reason != "" {
		*reason = st.reason
	}
	if st.downstreamErr != nil {
		*reason = "downstream_error"
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "downstream request failed",
			slog.String("route", rt.name), slog.String("error", st.downstreamErr.Error()))
	}
}

// keyMemoSlots is how many routes' cache keys a remembered token A keeps:
// route i (counting on-behalf-of routes) uses slot i % keyMemoSlots, so a
// token used on up to that many routes builds each key once.
const keyMemoSlots = 4

// routeKey is a token B cache key and what it was built from: a route (which
// belongs to one Handler, hence one key mode) and token A's SHA-256.
type routeKey struct {
	rt  *route
	sum [sha256.Size]byte
	key string
	// ref finds the key's entry without the cache's lookup.
	ref cache.Ref
}

// cacheKey returns the cache key of token B for route rt and token A (its
// claims and SHA-256). The claims of a token A the verified-token cache
// remembers serve all of that token's requests, so the key is built once per
// token and route and kept with the claims, in the route's slot of
// Claims.keys (a fifth route shares a slot with the first, and each of the
// two builds its key again when the other asked last).
func (h *Handler) cacheKey(rt *route, claims *Claims, sum [sha256.Size]byte) (string, *cache.Ref) {
	if rt.flow == FlowClientCredentials {
		return rt.appKey, &rt.appRef
	}
	slot := &claims.keys[rt.memo]
	if m := slot.Load(); m != nil && m.rt == rt && m.sum == sum {
		return m.key, &m.ref
	}
	var key string
	if h.keyMode == KeyAssertion {
		key = cache.AssertionKey(sum, rt.scopeSet)
	} else {
		tenant, user := claims.User()
		key = cache.UserKey(tenant, user, claims.AuthContexts, rt.scopeSet)
	}
	m := &routeKey{rt: rt, sum: sum, key: key}
	slot.Store(m)
	return key, &m.ref
}

// keepBody reads up to limit bytes of the request body so that the request
// can be sent again after a CAE challenge. A larger body is not kept: what
// was read is put back in front of the rest, and it streams as usual.
func (h *Handler) keepBody(r *http.Request, st *reqState, limit int64) {
	if r.Body == nil || r.Body == http.NoBody {
		st.replayable = true
		return
	}
	if r.ContentLength > limit {
		return
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil || int64(len(buf)) > limit {
		r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
		return
	}
	st.body, st.replayable = buf, true
	r.Body = io.NopCloser(bytes.NewReader(buf))
}

// readCloser reads from r and closes c.
type readCloser struct {
	io.Reader
	c io.Closer
}

func (rc readCloser) Close() error { return rc.c.Close() }

// exchange asks the authority for token B with token A (assertion, whose
// fingerprint names the user if the exchange fails) and records the
// outcome. claims, when not empty, is a CAE challenge's claims request.
func (h *Handler) exchange(ctx context.Context, rt *route, key, assertion, tenant, claims string) (*cache.Entry, error) {
	start := time.Now()
	req := obo.Request{Flow: rt.flow, Scopes: rt.scopes, Claims: claims,
		Audience: rt.audience, RequestedTokenType: rt.requestedType}
	if rt.flow != FlowClientCredentials {
		req.Assertion = assertion
		req.Tenant = tenant
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
			slog.String("outcome", outcome), slog.String("user", Fingerprint(assertion)), slog.String("error", err.Error())}
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
	return cache.NewEntry(key, tok.AccessToken, scheme, tok.IssuedAt, tok.ExpiresAt, tok.RefreshIn), nil
}

// Fingerprint returns a short, non-reversible identifier of a token for
// logs: the first 12 hex digits of its SHA-256.
func Fingerprint(token string) string { return fingerprintOf(sumToken(token)) }

// statusWriter records the status written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	// Informational answers (103 Early Hints) precede the final status.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (for
// flushing streamed answers).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
