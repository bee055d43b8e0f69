package rediscache

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/internal/redistest"
)

// TestCommandSpans: each Redis command is a client span in the caller's
// trace, named by the command alone, with no key or value in any
// attribute; a failed command's span has the kind of the failure as its
// status, not the error's text. A command in no trace makes no span.
func TestCommandSpans(t *testing.T) {
	srv := redistest.Start(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	st, err := New(Config{URL: srv.URL(), Keys: [][]byte{newKey(t)}, Timeout: 200 * time.Millisecond, Pause: time.Millisecond, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	key := cache.UserKey("tenant-0001", userID, nil, "api://b/.default")
	st.Set(ctx, entry(key, "token-b-value"))
	if _, ok := st.Get(ctx, key); !ok {
		t.Fatal("miss after Set")
	}
	release, _ := st.Lock(ctx, key)
	release()
	srv.Stop()
	st.Get(ctx, key)
	parent.End()
	time.Sleep(5 * time.Millisecond)  // past the store's pause
	st.Get(context.Background(), key) // in no trace

	names := map[string]bool{}
	failed := ""
	for _, s := range rec.Ended() {
		if s.Name() == "request" {
			continue
		}
		names[s.Name()] = true
		// A new connection's set-up (HELLO, CLIENT SETINFO) is a child
		// of the command that dialled it.
		if s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("%s: not in the caller's trace", s.Name())
		}
		for _, kv := range s.Attributes() {
			if k := string(kv.Key); k != "db.system.name" && k != "db.operation.name" && k != "db.operation.batch.size" {
				t.Errorf("%s: attribute %s", s.Name(), k)
			}
			if v := kv.Value.Emit(); strings.Contains(v, userID) || strings.Contains(v, "token-b") || strings.Contains(v, "obo-gateway:") {
				t.Errorf("%s: attribute %s = %q", s.Name(), kv.Key, v)
			}
		}
		if s.Status().Code == codes.Error {
			failed = s.Status().Description
		}
	}
	for _, n := range []string{"redis SET", "redis GET", "redis EVALSHA"} {
		if !names[n] {
			t.Errorf("no %s span (got %v)", n, names)
		}
	}
	if failed != "unavailable" && failed != "timeout" {
		t.Errorf("the GET with Redis stopped has status %q, want unavailable or timeout", failed)
	}
}
