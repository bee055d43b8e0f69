package proxy

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/obo-gateway/obo-gateway/metrics"
)

// tracing is the handler's part in a trace: the W3C trace context read from
// each request and written to the downstream, and the server span.
type tracing struct {
	tracer trace.Tracer
	// on is false with a no-op provider: then no span is started, and
	// only the caller's trace context is carried through.
	on   bool
	prop propagation.TraceContext
}

func newTracing(tp trace.TracerProvider) tracing {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	_, isNoop := tp.(noop.TracerProvider)
	return tracing{tracer: tp.Tracer("github.com/obo-gateway/obo-gateway/proxy"), on: !isNoop}
}

// Span attributes of the gateway's own (no path, query or user: the route
// names what was called).
const (
	attrRoute  = attribute.Key("obo_gateway.route")
	attrCache  = attribute.Key("obo_gateway.cache")
	attrReason = attribute.Key("obo_gateway.reason")
)

// start continues the caller's trace and, when tracing is on, starts the
// request's server span. The returned span is the caller's (not
// recording) when tracing is off.
func (t *tracing) start(r *http.Request) (context.Context, trace.Span) {
	ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	if !t.on {
		return ctx, trace.SpanFromContext(ctx)
	}
	method := metrics.Method(r.Method)
	return t.tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(semconv.HTTPRequestMethodKey.String(method)))
}

// end records the outcome of st, a request of method (as metrics.Method
// names it), on its server span and ends it.
func (t *tracing) end(st *request, method string, status int) {
	s := st.span
	if !s.IsRecording() { // off, or sampled out: nothing to record or end
		return
	}
	s.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if st.route != nil {
		s.SetName(method + " " + st.route.prefix)
		s.SetAttributes(attrRoute.String(st.route.name), semconv.HTTPRoute(st.route.prefix))
	}
	if st.cache != "" {
		s.SetAttributes(attrCache.String(st.cache))
	}
	if st.reason != "" {
		s.SetAttributes(attrReason.String(st.reason))
	}
	if status >= http.StatusInternalServerError {
		s.SetStatus(codes.Error, http.StatusText(status))
	}
	s.End()
}

// inject replaces the caller's trace context in the outbound header h by
// the gateway's: its server span, or the caller's context as read (a
// malformed one is dropped) when tracing is off.
func (t *tracing) inject(ctx context.Context, h http.Header) {
	h.Del("Traceparent")
	h.Del("Tracestate")
	t.prop.Inject(ctx, propagation.HeaderCarrier(h))
}

// traceID returns the trace id of st's span in hex, or "" when the request
// is part of no trace.
func traceID(st *request) string {
	if sc := st.span.SpanContext(); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}
