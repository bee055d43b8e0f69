package metrics

import (
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestStatusClass(t *testing.T) {
	for code, want := range map[int]string{200: "2xx", 204: "2xx", 301: "3xx", 401: "4xx", 499: "4xx", 503: "5xx", 99: "other", 600: "other"} {
		if got := StatusClass(code); got != want {
			t.Errorf("StatusClass(%d) = %q, want %q", code, got, want)
		}
	}
}

func TestNewTwiceAndExposition(t *testing.T) {
	// Two instances must not collide: no collector is global.
	_ = New("a")
	m := New("v1.2.3")
	m.ObserveCache(func() int { return 3 }, func() int64 { return 4096 })
	m.ObserveKeys(func() int { return 2 })
	m.Requests.WithLabelValues("graph", "GET", "2xx").Inc()
	m.AuthorityRetries.WithLabelValues("throttled").Inc()
	m.BreakerState.Set(2)
	m.ExchangeQueueRejections.Inc()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`obo_gateway_build_info{goversion="`,
		`version="v1.2.3"} 1`,
		"obo_gateway_cache_entries 3",
		"obo_gateway_cache_bytes 4096",
		"obo_gateway_jwks_keys 2",
		`obo_gateway_requests_total{code="2xx",method="GET",route="graph"} 1`,
		"go_goroutines",
		`obo_gateway_authority_retries_total{reason="throttled"} 1`,
		"obo_gateway_breaker_state 2",
		"obo_gateway_exchange_queue_rejections_total 1",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
}

func TestMethodLabel(t *testing.T) {
	for in, want := range map[string]string{"GET": "GET", "PATCH": "PATCH", "get": "OTHER", "FOOBAR": "OTHER", "": "OTHER"} {
		if got := Method(in); got != want {
			t.Errorf("Method(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEveryMetricIsRegistered registers each collector of Metrics again:
// the registry must know every one of them already.
func TestEveryMetricIsRegistered(t *testing.T) {
	m := New("v")
	v := reflect.ValueOf(m).Elem()
	n := 0
	for i := range v.NumField() {
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok || v.Type().Field(i).Name == "Registry" {
			continue
		}
		n++
		var are prometheus.AlreadyRegisteredError
		if err := m.Registry.Register(c); !errors.As(err, &are) {
			t.Errorf("%s is not registered (registering it again: %v)", v.Type().Field(i).Name, err)
		}
	}
	if n < 20 {
		t.Errorf("found %d collectors in Metrics, want at least 20", n)
	}
}
