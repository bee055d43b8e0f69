package proxy

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestTraceContext: the downstream receives the gateway's trace context in
// place of the caller's: with tracing off, the caller's context as read (a
// malformed one is dropped, not passed on raw); with tracing on, the
// server span as parent. The request line carries the trace id.
func TestTraceContext(t *testing.T) {
	const (
		callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		caller      = "00-" + callerTrace + "-00f067aa0ba902b7-01"
	)
	tests := []struct {
		name        string
		on          bool
		traceparent []string
		tracestate  string
		// wantParent is the downstream's traceparent; "server" stands for
		// the server span's.
		wantParent, wantState, wantLogged string
	}{
		{"off, caller's context", false, []string{caller}, "a=1,b=2", caller, "a=1,b=2", callerTrace},
		{"off, malformed", false, []string{"00-" + callerTrace + "-zz-01"}, "a=1", "", "", ""},
		{"off, unsupported version ff", false, []string{"ff-" + callerTrace + "-00f067aa0ba902b7-01"}, "", "", "", ""},
		{"off, none", false, nil, "", "", "", ""},
		{"on, caller's context", true, []string{caller}, "a=1", "server", "a=1", callerTrace},
		{"on, none", true, nil, "", "server", "", "server"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tp trace.TracerProvider
			rec := tracetest.NewSpanRecorder()
			if tc.on {
				tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			}
			var logs bytes.Buffer
			h, s := newTracedHandler(t, true, slog.New(slog.NewTextHandler(&logs, nil)), LogAll, tp)
			req := httptest.NewRequest(http.MethodGet, "/api/items/1?q=private", nil)
			req.Header.Set("Authorization", "Bearer "+s.Sign(t, map[string]any{"alg": "RS256", "kid": "k1"}, goodClaims(time.Now())))
			req.Header["Traceparent"] = tc.traceparent
			if tc.tracestate != "" {
				req.Header.Set("Tracestate", tc.tracestate)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			wantParent, wantLogged := tc.wantParent, tc.wantLogged
			if tc.on {
				spans := rec.Ended()
				if len(spans) != 1 {
					t.Fatalf("%d spans ended, want the server span", len(spans))
				}
				sc := spans[0].SpanContext()
				if wantParent == "server" {
					wantParent = "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
				}
				if wantLogged == "server" {
					wantLogged = sc.TraceID().String()
				}
				if tc.traceparent != nil && spans[0].Parent().TraceID().String() != callerTrace {
					t.Errorf("server span's parent %v, want the caller's", spans[0].Parent())
				}
				if spans[0].SpanKind() != trace.SpanKindServer || spans[0].Name() != "GET /api" {
					t.Errorf("server span %q of kind %v", spans[0].Name(), spans[0].SpanKind())
				}
				for _, kv := range spans[0].Attributes() {
					if v := kv.Value.Emit(); strings.Contains(v, "items") || strings.Contains(v, "private") {
						t.Errorf("server span attribute %s = %q holds the path or query", kv.Key, v)
					}
				}
			}
			if got := w.Header().Get("Seen-Traceparent"); got != wantParent || len(w.Header().Values("Seen-Traceparent")) > 1 {
				t.Errorf("downstream traceparent %q, want %q", w.Header().Values("Seen-Traceparent"), wantParent)
			}
			if got := w.Header().Get("Seen-Tracestate"); got != tc.wantState {
				t.Errorf("downstream tracestate %q, want %q", got, tc.wantState)
			}
			logged := strings.Contains(logs.String(), "trace_id=")
			if wantLogged == "" && logged || wantLogged != "" && !strings.Contains(logs.String(), "trace_id="+wantLogged) {
				t.Errorf("request line, want trace_id %q:\n%s", wantLogged, logs.String())
			}
		})
	}
}
