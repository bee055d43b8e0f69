package tokenapi

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/obo-gateway/obo-gateway/metrics"
	"github.com/obo-gateway/obo-gateway/proxy"
)

// Config configures a Server. Handler and Metrics are required.
type Config struct {
	// Handler returns the proxy handler whose routes the API serves, or
	// nil while the gateway is starting (answered with 503).
	Handler func() *proxy.Handler
	// Overrides returns the overrides that may widen a route's grant; it
	// is called per request, so it follows a reloaded configuration. Nil
	// allows none.
	Overrides func() Overrides
	Metrics   *metrics.Metrics
	// Logger receives the request lines RequestLog asks for; nil discards.
	Logger *slog.Logger
	// TracerProvider makes the server span of each request, which
	// continues the caller's W3C trace context; nil means no spans.
	TracerProvider trace.TracerProvider
	// RequestLog returns the request-log policy in force (it follows a
	// reloaded configuration); nil means the zero RequestLog.
	RequestLog func() proxy.RequestLog
}

// Span attributes of a token API request.
const (
	attrEndpoint = attribute.Key("obo_gateway.token_api.endpoint")
	attrRoute    = attribute.Key("obo_gateway.route")
)

// Server is the token API's http.Handler.
type Server struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	tracer trace.Tracer
}

// The endpoint label values of the token API's metrics.
const (
	endpointHealth             = "healthz"
	endpointValidate           = "validate"
	endpointHeader             = "authorization_header"
	endpointHeaderAnonymous    = "authorization_header_unauthenticated"
	endpointCall               = "downstream_api"
	endpointCallAnonymous      = "downstream_api_unauthenticated"
	endpointNone               = "none"
	routeNone                  = "none"
	headerPath, headerAnonPath = "/AuthorizationHeader/", "/AuthorizationHeaderUnauthenticated/"
)

// New returns the token API's handler.
func New(cfg Config) *Server {
	tp := cfg.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(),
		tracer: tp.Tracer("github.com/obo-gateway/obo-gateway/tokenapi")}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.mux.HandleFunc("GET /healthz", s.health)
	s.mux.HandleFunc("GET /Validate", s.validate)
	s.mux.HandleFunc("GET /AuthorizationHeader/{name}", s.authorizationHeader(true))
	s.mux.HandleFunc("GET /AuthorizationHeaderUnauthenticated/{name}", s.authorizationHeader(false))
	s.mux.HandleFunc("POST /DownstreamApi/{name}", s.downstreamAPI(true))
	s.mux.HandleFunc("POST /DownstreamApiUnauthenticated/{name}", s.downstreamAPI(false))
	return s
}

// call is the state of one token API request, for its metrics and log
// line.
type call struct {
	start    time.Time
	endpoint string
	route    string
	status   int
	cache    string
	user     string
	reason   string
}

type callKey struct{}

func callOf(r *http.Request) *call {
	c, _ := r.Context().Value(callKey{}).(*call)
	return c
}

// ServeHTTP serves one token API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{start: time.Now(), endpoint: endpointNone, route: routeNone}
	sw := &statusWriter{ResponseWriter: w}
	ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := s.tracer.Start(ctx, metrics.Method(r.Method), trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	r = r.WithContext(context.WithValue(ctx, callKey{}, c))
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.problem(sw, r, problem{Status: http.StatusNotFound, Detail: "the token API has no such endpoint"}, "no_endpoint")
	} else {
		s.mux.ServeHTTP(sw, r)
	}
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	if span.IsRecording() {
		// No path or query: they hold agent identities and users.
		span.SetName(metrics.Method(r.Method) + " " + c.endpoint)
		span.SetAttributes(attrEndpoint.String(c.endpoint), attrRoute.String(c.route),
			semconv.HTTPResponseStatusCode(status))
		if status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	m := s.cfg.Metrics
	m.TokenAPIRequests.WithLabelValues(c.endpoint, c.route, metrics.StatusClass(status)).Inc()
	m.TokenAPIDuration.WithLabelValues(c.endpoint).Observe(time.Since(c.start).Seconds())
	var rl proxy.RequestLog
	if s.cfg.RequestLog != nil {
		rl = s.cfg.RequestLog()
	}
	rl.Write(r.Context(), s.log, proxy.RequestLine{Route: c.route, Method: r.Method, Path: r.URL.Path,
		Status: status, Duration: time.Since(c.start), Cache: c.cache, User: c.user, Reason: c.reason})
}

// handler returns the proxy handler, or answers 503 while the gateway is
// starting.
func (s *Server) handler(w http.ResponseWriter, r *http.Request) *proxy.Handler {
	h := s.cfg.Handler()
	if h == nil {
		w.Header().Set("Retry-After", "5")
		s.problem(w, r, problem{Status: http.StatusServiceUnavailable,
			Detail: "the gateway is starting: the authority's metadata is not loaded yet"}, "starting")
	}
	return h
}

// health answers Microsoft's /healthz: 200 once the gateway can serve
// tokens, 503 before.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	callOf(r).endpoint = endpointHealth
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.cfg.Handler() == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("Unhealthy"))
		return
	}
	_, _ = w.Write([]byte("Healthy"))
}

// Overrides names the overrides (config.OverrideScopes, ...) that may widen
// a route's grant: All for every route, ByRoute for single routes by name.
type Overrides struct {
	All     []string
	ByRoute map[string][]string
}

// Allows reports whether override may widen the grant of route.
func (o Overrides) Allows(route, override string) bool {
	return slices.Contains(o.All, override) || slices.Contains(o.ByRoute[route], override)
}

// allowed reports whether override may widen route's grant.
func (s *Server) allowed(route, override string) bool {
	return s.cfg.Overrides != nil && s.cfg.Overrides().Allows(route, override)
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
