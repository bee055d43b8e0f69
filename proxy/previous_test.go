package proxy

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/inbound"
	"github.com/obo-gateway/obo-gateway/internal/jwttest"
	"github.com/obo-gateway/obo-gateway/metrics"
)

// TestNewReusesThePreviousTransports: a handler that replaces another
// (a configuration reload) sends to an upstream that stays over the
// connection the previous handler kept alive, and opens its own for an
// upstream or timeout that is new.
func TestNewReusesThePreviousTransports(t *testing.T) {
	var conns atomic.Int64
	upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	upstream.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	upstream.Start()
	defer upstream.Close()
	s := newSigner(t, "k1")
	v, err := inbound.NewValidator(inbound.ValidatorConfig{Issuer: jwttest.Issuer, Audiences: []string{"api://a"}, Keys: newKeySet(t, s)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := metrics.New("test")
	build := func(previous *Handler, routes ...RouteConfig) *Handler {
		t.Helper()
		h, err := New(Config{Routes: routes, Validator: inbound.Uncached(v), Exchanger: fixedExchanger{}, Cache: c, Metrics: m, Previous: previous})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	route := func(name string, timeout time.Duration) RouteConfig {
		return RouteConfig{Name: name, PathPrefix: "/" + name, Upstream: upstream.URL + "/v1", Scopes: []string{"api://b/.default"}, Timeout: timeout}
	}
	tok := s.Sign(t, map[string]any{"alg": "RS256", "kid": "k1"}, goodClaims(time.Now()))

	first := build(nil, route("a", 0))
	serveOK(t, first, "/a/x", tok)
	second := build(first, route("a", 0), route("renamed", 0))
	serveOK(t, second, "/a/x", tok)
	serveOK(t, second, "/renamed/x", tok)
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections to the upstream, want the first handler's one", n)
	}
	third := build(second, route("a", 5*time.Second))
	serveOK(t, third, "/a/x", tok)
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections after the route's timeout changed, want a new one (2)", n)
	}
}
