package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/bench/heapstat"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/inbound"
	"github.com/obo-gateway/obo-gateway/internal/jwttest"
	"github.com/obo-gateway/obo-gateway/metrics"
	"github.com/obo-gateway/obo-gateway/obo"
)

// fixedExchanger issues the same token B for every request (unit tests of
// this package only).
type fixedExchanger struct{}

func (fixedExchanger) Token(context.Context, obo.Request) (*obo.Token, error) {
	now := time.Now()
	return &obo.Token{AccessToken: "token-b", TokenType: "Bearer", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, nil
}

// benchHandler is testHandler logging every request (the cost of the
// request log) or none.
func benchHandler(b testing.TB, verified, logRequests bool) (*Handler, string) {
	b.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	mode := LogNone
	if logRequests {
		mode = LogAll
	}
	return testHandler(b, verified, logger, mode)
}

// testHandler is a handler with one route to a loopback upstream, an
// exchanger that always issues "token-b", and a valid token A for it.
func testHandler(b testing.TB, verified bool, logger *slog.Logger, mode RequestLog) (*Handler, string) {
	b.Helper()
	h, s := newTestHandler(b, verified, logger, mode)
	return h, s.Sign(b, map[string]any{"alg": "RS256", "kid": "k1"}, goodClaims(time.Now()))
}

// newTestHandler is testHandler's handler and the signer of its tokens A
// (key id "k1"), whose key a real inbound.KeySet fetches from a loopback
// JWKS server.
func newTestHandler(b testing.TB, verified bool, logger *slog.Logger, mode RequestLog) (*Handler, *signer) {
	b.Helper()
	return newTracedHandler(b, verified, logger, mode, nil)
}

// newTracedHandler is newTestHandler with the server spans of tp.
func newTracedHandler(b testing.TB, verified bool, logger *slog.Logger, mode RequestLog, tp trace.TracerProvider) (*Handler, *signer) {
	b.Helper()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What trace context arrived, for TestTraceContext.
		for _, k := range []string{"Traceparent", "Tracestate"} {
			if v := r.Header.Values(k); len(v) > 0 {
				w.Header()["Seen-"+k] = v
			}
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	b.Cleanup(upstream.Close)
	s := newSigner(b, "k1")
	keys := newKeySet(b, s)
	v, err := inbound.NewValidator(inbound.ValidatorConfig{Issuer: jwttest.Issuer, Audiences: []string{"api://a"}, Keys: keys})
	if err != nil {
		b.Fatal(err)
	}
	tv := inbound.Uncached(v)
	if verified {
		vc, err := inbound.NewVerifiedCache(v, keys, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(vc.Close)
		tv = vc
	}
	c, err := cache.New(cache.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	h, err := New(Config{
		Routes:    []RouteConfig{{Name: "api", PathPrefix: "/api", Upstream: upstream.URL + "/v1", Scopes: []string{"api://b/.default"}}},
		Validator: tv, Exchanger: fixedExchanger{}, Cache: c, Metrics: metrics.New("bench"),
		Logger: logger, RequestLog: mode, TracerProvider: tp,
	})
	if err != nil {
		b.Fatal(err)
	}
	return h, s
}

// serveOK sends h a GET of target carrying token tok and fails tb unless the
// answer is 200.
func serveOK(tb testing.TB, h http.Handler, target, tok string) {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		tb.Fatalf("GET %s: status %d: %s", target, rec.Code, rec.Body)
	}
}

// BenchmarkServeHTTPWarm is the gateway's hot path in-process: token A
// verification remembered, token B cached, one proxied round trip to a
// loopback upstream.
func BenchmarkServeHTTPWarm(b *testing.B) {
	for _, tc := range []struct {
		name          string
		verified, log bool
	}{{"verified-cache", true, true}, {"no-verified-cache", false, true}, {"verified-cache-no-log", true, false}} {
		b.Run(tc.name, func(b *testing.B) {
			h, tok := benchHandler(b, tc.verified, tc.log)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					serveOK(b, h, "/api/items/1?x=y", tok)
				}
			})
		})
	}
}

// BenchmarkWarmUsersGC is what warm users cost the garbage collector. Each
// user sends one request, which leaves its remembered token A and its
// cached token B on the heap; an iteration is then one full collection on
// one CPU, so ns/op of users=500 against users=0 is the collector's time
// for 500 users. It also reports, per user, the heap objects and the bytes
// of heap every collection scans.
func BenchmarkWarmUsersGC(b *testing.B) {
	for _, users := range []int{0, 500} {
		b.Run(fmt.Sprintf("users=%d", users), func(b *testing.B) {
			h, s := newTestHandler(b, true, nil, LogNone)
			toks := userTokens(b, s, users, nil)
			h0 := heapstat.AfterGC()
			for _, tok := range toks {
				serveOK(b, h, "/api/items/1", tok)
			}
			h1 := heapstat.AfterGC()
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			for b.Loop() {
				runtime.GC()
			}
			if users > 0 { // after the loop, which clears reported metrics
				b.ReportMetric(float64(h1.Objects-h0.Objects)/float64(users), "objects/user")
				b.ReportMetric(float64(h1.Scan-h0.Scan)/float64(users), "scanB/user")
			}
			runtime.KeepAlive(h)
		})
	}
}

// BenchmarkBareReverseProxy is the floor for BenchmarkServeHTTPWarm: a
// plain httputil.ReverseProxy to the same kind of upstream, with the same
// request, the gateway's upstream transport and its pooled copy buffers.
func BenchmarkBareReverseProxy(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer upstream.Close()
	u, _ := url.Parse(upstream.URL + "/v1")
	// The transport of a gateway route (its response-header timeout costs
	// a timer per request), so that the difference is the gateway's work.
	tr := newUpstreamTransport(30 * time.Second)
	rp := bareProxy(u, tr)
	tok := strings.Repeat("a", 900)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			serveOK(b, rp, "/api/items/1?x=y", tok)
		}
	})
}

// bareProxy is the floor the benchmarks compare the gateway with: a plain
// httputil.ReverseProxy to u over tr, with the gateway's pooled copy
// buffers.
func bareProxy(u *url.URL, tr http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
		Transport: tr, BufferPool: &bufferPool{}}
}

// memoryTransport answers every request with a small 200 response without
// touching the network (BenchmarkHandlerOverhead).
type memoryTransport struct{}

func (memoryTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, ContentLength: 11,
		Body: io.NopCloser(strings.NewReader(`{"ok":true}`)), Request: r}, nil
}

// discardWriter is a ResponseWriter that keeps nothing but the header map.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkHandlerOverhead is the gateway's own work per request, without
// the network: the gateway's handler and a bare httputil.ReverseProxy serve
// the same requests through an in-memory transport, so the difference of
// their ns/op is what the gateway adds (token A's SHA-256 and remembered
// validation, the token B lookup, header hygiene, metrics). With one user
// every entry stays in the CPU's caches; with 1000 each request touches
// another user's entries. Unlike the load benchmark (go run ./bench), the
// figures hold still on a busy machine.
func BenchmarkHandlerOverhead(b *testing.B) {
	for _, users := range []int{1, 1000} {
		u, _ := url.Parse("http://127.0.0.1:9/v1")
		for _, tc := range []struct {
			name string
			// sampler, when set, turns tracing on: spans go through the
			// SDK's batch processor to an exporter that counts them.
			sampler sdktrace.Sampler
			spans   bool // whether spans must be exported
		}{{"bare", nil, false}, {"gateway", nil, false},
			{"gateway-traced", sdktrace.AlwaysSample(), true},
			{"gateway-sampled0", sdktrace.TraceIDRatioBased(0), false}} {
			var tp *sdktrace.TracerProvider
			exp := &countingExporter{}
			if tc.sampler != nil {
				tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(tc.sampler))
				b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			}
			var h http.Handler = bareProxy(u, memoryTransport{})
			var s *signer
			if tc.name != "bare" {
				var gw *Handler
				if tp != nil {
					gw, s = newTracedHandler(b, true, nil, LogNone, tp)
				} else {
					gw, s = newTestHandler(b, true, nil, LogNone)
				}
				for _, rt := range gw.routes {
					rt.proxy.Transport = memoryTransport{}
				}
				h = gw
			} else {
				_, s = newTestHandler(b, true, nil, LogNone)
			}
			reqs := make([]*http.Request, users)
			for i, tok := range userTokens(b, s, users, nil) {
				r := httptest.NewRequest(http.MethodGet, "/api/items/1?x=y", nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				r.Header.Set("Accept", "*/*")
				reqs[i] = r
			}
			b.Run(fmt.Sprintf("%s/users=%d", tc.name, users), func(b *testing.B) {
				w := &discardWriter{h: http.Header{}}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					clear(w.h)
					h.ServeHTTP(w, reqs[i%users])
					i++
				}
				if ct := w.h.Get("Content-Type"); ct != "application/json" {
					b.Fatalf("the last answer's Content-Type is %q: the request was not proxied", ct)
				}
				if tp != nil {
					_ = tp.ForceFlush(context.Background())
					if n := exp.n.Load(); (n > 0) != tc.spans {
						b.Fatalf("%d spans exported", n)
					}
				}
			})
		}
	}
}

// countingExporter counts the spans exported to it and keeps none.
type countingExporter struct{ n atomic.Int64 }

func (e *countingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.n.Add(int64(len(spans)))
	return nil
}

func (e *countingExporter) Shutdown(context.Context) error { return nil }
