// Package otlptest runs an OTLP/HTTP trace receiver on loopback for tests:
// it accepts POST /v1/traces, decodes each body with the OpenTelemetry
// protocol's own Go types and keeps the spans and the raw bodies.
package otlptest

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Collector is a running OTLP/HTTP trace receiver.
type Collector struct {
	t   testing.TB
	url string

	mu    sync.Mutex
	raw   [][]byte
	spans []Span
}

// Span is one received span with the attributes of its resource.
type Span struct {
	*tracepb.Span
	Resource map[string]string
}

// TraceID returns the span's trace id in hex.
func (s Span) TraceID() string { return hex.EncodeToString(s.Span.TraceId) }

// ID returns the span's id in hex.
func (s Span) ID() string { return hex.EncodeToString(s.SpanId) }

// Parent returns the span's parent span id in hex, or "".
func (s Span) Parent() string { return hex.EncodeToString(s.ParentSpanId) }

// Attr returns the span attribute key as a string ("" when absent).
func (s Span) Attr(key string) string {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return valueString(kv.Value)
		}
	}
	return ""
}

// HasAttr reports whether the span has attribute key.
func (s Span) HasAttr(key string) bool {
	return slices.ContainsFunc(s.Attributes, func(kv *commonpb.KeyValue) bool { return kv.Key == key })
}

func valueString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_BoolValue:
		if x.BoolValue {
			return "true"
		}
		return "false"
	}
	return v.String()
}

// Start starts a Collector on a loopback port for the test; it stops at
// cleanup.
func Start(t testing.TB) *Collector {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &Collector{t: t, url: "http://" + ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(c.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return c
}

// URL is the collector's base URL (OTEL_EXPORTER_OTLP_ENDPOINT).
func (c *Collector) URL() string { return c.url }

func (c *Collector) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.Error(w, "POST /v1/traces only", http.StatusNotFound)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "want application/x-protobuf, not "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		c.t.Errorf("otlptest: the exported body does not decode: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.add(b, &req)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// add keeps one export: its bytes and its spans.
func (c *Collector) add(b []byte, req *coltracepb.ExportTraceServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.raw = append(c.raw, b)
	for _, rs := range req.ResourceSpans {
		res := make(map[string]string)
		for _, kv := range rs.GetResource().GetAttributes() {
			res[kv.Key] = valueString(kv.Value)
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.spans = append(c.spans, Span{Span: s, Resource: res})
			}
		}
	}
}

// Spans returns the spans received so far.
func (c *Collector) Spans() []Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.spans)
}

// Raw returns the bodies received so far, decompressed: the protobuf
// bytes as exported.
func (c *Collector) Raw() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.raw)
}

// WaitFor waits up to timeout for the received spans to satisfy done, and
// returns them.
func (c *Collector) WaitFor(timeout time.Duration, done func([]Span) bool) ([]Span, bool) {
	deadline := time.Now().Add(timeout)
	for {
		spans := c.Spans()
		if done(spans) {
			return spans, true
		}
		if time.Now().After(deadline) {
			return spans, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
