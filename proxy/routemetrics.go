package proxy

import (
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/metrics"
)

// routeMetrics holds one route's metric children, so that the request path
// does not look series up by label values on every request.
type routeMetrics struct {
	m        *metrics.Metrics
	name     string
	duration prometheus.Observer
	lookups  [cache.Remote + 1]prometheus.Counter // by cache.Result
	// requests[method][status/100] is filled on first use.
	requests [len(methodIndex) + 1][7]atomic.Pointer[prometheus.Counter]
}

// methodIndex numbers the methods with a label of their own; every other
// method is "OTHER" (index len(methodIndex)).
var methodIndex = [...]string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace,
}

func newRouteMetrics(m *metrics.Metrics, name string) *routeMetrics {
	rm := &routeMetrics{m: m, name: name, duration: m.RequestDuration.WithLabelValues(name)}
	for r := cache.Hit; r <= cache.Remote; r++ {
		rm.lookups[r] = m.CacheLookups.WithLabelValues(name, r.String())
	}
	return rm
}

// request counts one answered request.
func (rm *routeMetrics) request(method string, status int) {
	mi := len(methodIndex)
	for i, m := range methodIndex {
		if m == method {
			mi = i
			break
		}
	}
	ci := status / 100
	if ci < 1 || ci > 5 {
		ci = 6 // "other"
	}
	p := &rm.requests[mi][ci]
	if c := p.Load(); c != nil {
		(*c).Inc()
		return
	}
	c := rm.m.Requests.WithLabelValues(rm.name, metrics.Method(method), metrics.StatusClass(status))
	p.Store(&c)
	c.Inc()
}
