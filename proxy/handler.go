package proxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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
	OnBehalfOf(ctx context.Context, assertion string, scopes []string) (*obo.Token, error)
	ClientCredentials(ctx context.Context, scopes []string) (*obo.Token, error)
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
}

// Config configures a Handler. All fields but Logger are required.
type Config struct {
	Routes    []RouteConfig
	Validator *Validator
	Exchanger Exchanger
	Cache     *cache.Cache
	Metrics   *metrics.Metrics
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
}

// Handler is the gateway's request handler. Its answers:
//
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
	v      *Validator
	ex     Exchanger
	cache  *cache.Cache
	m      *metrics.Metrics
	log    *slog.Logger
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
	h := &Handler{v: cfg.Validator, ex: cfg.Exchanger, cache: cfg.Cache, m: cfg.Metrics, log: cfg.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	transports := make(map[string]*http.Transport)
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
		if len(rc.Scopes) == 0 {
			return nil, fmt.Errorf("proxy: route %q: no scopes", rc.Name)
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
			scopeSet: cache.NormalizeScopes(rc.Scopes),
			flow:     flow,
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
		h.routes = append(h.routes, rt)
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
type reqState struct {
	route   *route
	outPath string
	key     string
	entry   *cache.Entry
	result  cache.Result
	// downstreamErr is set by the proxy's ErrorHandler.
	downstreamErr error
}

type stateKey struct{}

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
			u.RawQuery = pr.In.URL.RawQuery
			pr.Out.Host = ""
			pr.SetXForwarded()
			pr.Out.Header.Set("Authorization", "Bearer "+st.entry.Token)
		},
		Transport: tr,
		ModifyResponse: func(res *http.Response) error {
			if res.StatusCode == http.StatusUnauthorized && hasClaimsChallenge(res.Header) {
				st := stateOf(res.Request.Context())
				h.cache.Delete(st.key)
				h.m.CacheChallengeEvictions.WithLabelValues(rt.name).Inc()
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			st := stateOf(r.Context())
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

// ServeHTTP serves one request; see Handler for the answers.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	h.m.InFlight.Inc()
	defer h.m.InFlight.Dec()
	sw := &statusWriter{ResponseWriter: w}

	routeName, result, reason, fp := "none", "", "", ""
	defer func() {
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		h.m.Requests.WithLabelValues(routeName, r.Method, metrics.StatusClass(status)).Inc()
		h.m.RequestDuration.WithLabelValues(routeName).Observe(time.Since(start).Seconds())
		attrs := []slog.Attr{
			slog.String("route", routeName),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		}
		if result != "" {
			attrs = append(attrs, slog.String("cache", result))
		}
		if fp != "" {
			attrs = append(attrs, slog.String("user", fp))
		}
		if reason != "" {
			attrs = append(attrs, slog.String("reason", reason))
		}
		h.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	}()

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
	routeName = rt.name

	raw, err := bearerToken(r.Header)
	if err == nil {
		fp = Fingerprint(raw)
		var claims *Claims
		claims, err = h.v.Validate(r.Context(), raw)
		if err == nil && rt.flow == FlowOnBehalfOf && claims.AppOnly() {
			err = &RejectError{Reason: ReasonAppOnly, Description: "an app-only token cannot be exchanged on behalf of a user", Scope: strings.Join(rt.scopes, " ")}
		}
		if err == nil {
			h.forward(sw, r, rt, p, raw, claims, &result, &reason)
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
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, rt *route, p, raw string, claims *Claims, result, reason *string) {
	var key string
	if rt.flow == FlowClientCredentials {
		key = cache.AppKey(rt.scopeSet)
	} else {
		tenant, user := claims.User()
		key = cache.UserKey(tenant, user, rt.scopeSet)
	}
	entry, res, err := h.cache.Fetch(r.Context(), key, func(ctx context.Context) (*cache.Entry, error) {
		return h.exchange(ctx, rt, key, raw)
	})
	*result = res.String()
	h.m.CacheLookups.WithLabelValues(rt.name, *result).Inc()
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
	st := &reqState{route: rt, outPath: rt.outPath(p), key: key, entry: entry, result: res}
	rt.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
	if st.downstreamErr != nil {
		*reason = "downstream_error"
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "downstream request failed",
			slog.String("route", rt.name), slog.String("error", st.downstreamErr.Error()))
	}
}

// exchange asks the authority for token B and records the outcome.
func (h *Handler) exchange(ctx context.Context, rt *route, key, assertion string) (*cache.Entry, error) {
	start := time.Now()
	var tok *obo.Token
	var err error
	if rt.flow == FlowClientCredentials {
		tok, err = h.ex.ClientCredentials(ctx, rt.scopes)
	} else {
		tok, err = h.ex.OnBehalfOf(ctx, assertion, rt.scopes)
	}
	outcome := obo.Outcome(err)
	h.m.ExchangeDuration.WithLabelValues(rt.name, rt.flow).Observe(time.Since(start).Seconds())
	h.m.Exchanges.WithLabelValues(rt.name, rt.flow, outcome).Inc()
	if err != nil {
		level := slog.LevelWarn
		if outcome == "invalid_client" || outcome == "authority_error" {
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
	return cache.NewEntry(key, tok.AccessToken, tok.TokenType, tok.IssuedAt, tok.ExpiresAt, tok.RefreshIn), nil
}

// Fingerprint returns a short, non-reversible identifier of a token for
// logs: the first 12 hex digits of its SHA-256.
func Fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:6])
}

// statusWriter records the status written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
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
