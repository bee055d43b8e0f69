package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/localidp"
	"github.com/obo-gateway/obo-gateway/internal/otlptest"
	"github.com/obo-gateway/obo-gateway/internal/redistest"
)

// The caller's trace context of TestTraces.
const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
)

// TestTraces sends one request with a W3C traceparent through a gateway
// exporting to an OTLP/HTTP collector on loopback, with a Redis second
// level and a token A signed with a key the gateway has not fetched yet.
// The request's trace continues the caller's: one server span whose parent
// is the caller's span, with the exchange, the key set refetch and the
// Redis commands as its children; the downstream sees the server span as
// its parent. The environment's hygiene check then looks for every token,
// secret and user identity in the exported bytes.
func TestTraces(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50") // ms: export at once
	rs := redistest.Start(t)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(t.TempDir(), "redis-keys")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := start(t, options{
		cacheExtra: []string{"redis:", "  url: " + rs.URL(), "  encryption_key_file: " + keyFile}})
	if _, err := e.idp.RotateKey(); err != nil {
		t.Fatal(err)
	}
	const oid, upn = "5b0c7c2e-7f0e-4d5a-9d8e-2f7a1c3b4d5e", "alice.tracing@contoso.example"
	tok := e.token(oid, func(u *localidp.UserToken) { u.UPN = upn })
	a := e.get("/echo/items/42?filter=secret-query-value", tok,
		"traceparent", "00-"+callerTrace+"-"+callerSpan+"-01", "tracestate", "caller=1")
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	down := a.echoed(t).Headers["Traceparent"]

	spans, ok := e.traces.WaitFor(15*time.Second, func(s []otlptest.Span) bool {
		return findSpan(s, func(s otlptest.Span) bool { return s.Kind == 2 }) != nil // the server span ends last
	})
	if !ok {
		t.Fatalf("no server span exported; got %d spans", len(spans))
	}
	server := findSpan(spans, func(s otlptest.Span) bool { return s.Kind == 2 })
	if server.TraceID() != callerTrace || server.Parent() != callerSpan {
		t.Errorf("server span trace %s parent %s, want the caller's %s and %s", server.TraceID(), server.Parent(), callerTrace, callerSpan)
	}
	if server.Name != "GET /echo" {
		t.Errorf("server span name %q", server.Name)
	}
	for k, want := range map[string]string{"obo_gateway.route": "echo", "http.route": "/echo", "http.request.method": "GET",
		"http.response.status_code": "200", "obo_gateway.cache": "miss"} {
		if got := server.Attr(k); got != want {
			t.Errorf("server span %s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"url.path", "url.query", "url.full", "enduser.id", "user.id"} {
		if server.HasAttr(k) {
			t.Errorf("server span has %s", k)
		}
	}
	if server.Resource["service.name"] != "obo-gateway" {
		t.Errorf("service.name %q", server.Resource["service.name"])
	}
	if want := "00-" + callerTrace + "-" + server.ID() + "-01"; len(down) != 1 || down[0] != want {
		t.Errorf("the downstream received traceparent %q, want %q (the gateway's server span)", down, want)
	}

	// Neither the path nor the query reaches a span, under any key.
	for i, b := range e.traces.Raw() {
		for _, v := range []string{"secret-query-value", "items/42"} {
			if strings.Contains(string(b), v) {
				t.Errorf("export %d holds %q of the request's path or query", i+1, v)
			}
		}
	}
	children := func(name string) []otlptest.Span {
		var out []otlptest.Span
		for _, s := range spans {
			if s.TraceID() == callerTrace && s.Parent() == server.ID() && strings.HasPrefix(s.Name, name) {
				out = append(out, s)
			}
		}
		return out
	}
	if ex := children("exchange"); len(ex) != 1 {
		t.Errorf("%d exchange spans below the server span, want 1", len(ex))
	} else if ex[0].Attr("obo_gateway.flow") != "on_behalf_of" || ex[0].Attr("obo_gateway.outcome") != "success" {
		t.Errorf("exchange span attributes %v", ex[0].Attributes)
	}
	if ks := children("jwks refetch"); len(ks) != 1 || ks[0].Attr("obo_gateway.outcome") != "fetched" {
		t.Errorf("key set refetch spans below the server span: %v", ks)
	}
	redis := children("redis ")
	names := make(map[string]bool)
	for _, s := range redis {
		names[s.Name] = true
		if s.Attr("db.system.name") != "redis" {
			t.Errorf("%s: db.system.name %q", s.Name, s.Attr("db.system.name"))
		}
	}
	// The miss reads Redis, takes the lock and writes token B.
	for _, n := range []string{"redis GET", "redis SET"} {
		if !names[n] {
			t.Errorf("no %s span below the server span (got %v)", n, names)
		}
	}
}

// TestTracesOfARefusedExchange: the span of an exchange the authority
// refuses carries the authority's error code, error codes, trace_id and
// correlation_id (the ones the caller's answer shows), and no description.
func TestTracesOfARefusedExchange(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	e := start(t, options{})
	const oid = "0d7c1b2a-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
	e.idp.SetUserBehavior(oid, localidp.Behavior{Kind: localidp.BehaviorConsentRequired})
	a := e.get("/echo/x", e.token(oid), "traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	if a.status != 401 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	body := a.json(t)
	spans, ok := e.traces.WaitFor(15*time.Second, func(s []otlptest.Span) bool {
		return findSpan(s, func(s otlptest.Span) bool { return s.Name == "exchange" }) != nil
	})
	if !ok {
		t.Fatalf("no exchange span exported; got %d spans", len(spans))
	}
	ex := findSpan(spans, func(s otlptest.Span) bool { return s.Name == "exchange" })
	for k, want := range map[string]any{"obo_gateway.outcome": "interaction_required", "obo_gateway.authority.error": "consent_required",
		"obo_gateway.authority.trace_id": body["trace_id"], "obo_gateway.authority.correlation_id": body["correlation_id"]} {
		if got := ex.Attr(k); got != want || got == "" {
			t.Errorf("exchange span %s = %q, want %v", k, got, want)
		}
	}
	if !strings.Contains(ex.Attr("obo_gateway.authority.error_codes"), "65001") {
		t.Errorf("exchange span error codes %q, want 65001", ex.Attr("obo_gateway.authority.error_codes"))
	}
	if ex.Status.GetCode() != 2 { // STATUS_CODE_ERROR
		t.Errorf("exchange span status %v", ex.Status)
	}
	for _, b := range e.traces.Raw() {
		if strings.Contains(string(b), "AADSTS") {
			t.Error("the authority's error description was exported")
		}
	}
}

// findSpan returns the first span of spans that f accepts, or nil.
func findSpan(spans []otlptest.Span, f func(otlptest.Span) bool) *otlptest.Span {
	for i := range spans {
		if f(spans[i]) {
			return &spans[i]
		}
	}
	return nil
}
