// Package metrics defines the gateway's Prometheus collectors. Every
// collector lives on the Registry of one Metrics value (no global state), and
// no label ever carries a token, a user id or a request path: labels are
// route names from the configuration and small fixed vocabularies.
package metrics

import (
	"net/http"
	"runtime/debug"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "obo_gateway"

// Metrics holds the gateway's collectors.
type Metrics struct {
	// Registry is where all collectors are registered; serve it with Handler.
	Registry *prometheus.Registry

	// Requests counts answered requests by route, method and status class
	// ("2xx", "4xx", ...). Requests that match no route use route "none".
	Requests *prometheus.CounterVec
	// RequestDuration observes the time to answer a request, by route.
	RequestDuration *prometheus.HistogramVec
	// InFlight is the number of requests being served.
	InFlight prometheus.Gauge
	// InboundRejections counts refused inbound tokens by reason (missing,
	// malformed, algorithm, signature, expired, not_yet_valid, issuer,
	// audience, scope, app_only).
	InboundRejections *prometheus.CounterVec
	// Exchanges counts token requests to the authority by route, flow and
	// outcome (the values of obo.Outcome: success, interaction_required,
	// invalid_client, invalid_grant, authority_error, throttled,
	// unavailable, timeout, circuit_open, overloaded, credential_error).
	Exchanges *prometheus.CounterVec
	// ExchangeDuration observes the duration of token requests by route
	// and flow.
	ExchangeDuration *prometheus.HistogramVec
	// CacheLookups counts token B lookups by route and result (hit, miss,
	// shared).
	CacheLookups *prometheus.CounterVec
	// CacheEvictions counts entries evicted to stay within the memory bound.
	CacheEvictions prometheus.Counter
	// CacheRejections counts new entries the cache's admission policy
	// refused when it was full.
	CacheRejections prometheus.Counter
	// CacheChallengeEvictions counts entries dropped because the downstream
	// API answered with a claims challenge, by route.
	CacheChallengeEvictions *prometheus.CounterVec
	// DownstreamErrors counts requests that could not be proxied to the
	// downstream API, by route.
	DownstreamErrors *prometheus.CounterVec
	// BadRequests counts requests the caller spoilt, by reason: refused
	// before authentication (no_route, bad_path, too_many_headers, method,
	// starting, and unreadable for those Go's HTTP server refuses or cannot
	// finish reading), or after it, a body that could not be read (body)
	// and a caller gone before its answer (client_closed).
	BadRequests *prometheus.CounterVec
	// Refreshes counts refresh-ahead exchanges by outcome (success,
	// failure).
	Refreshes *prometheus.CounterVec
	// CAERetries counts requests retried with a new token B after a
	// downstream continuous access evaluation challenge, by route.
	CAERetries *prometheus.CounterVec
	// L2Lookups counts reads of the Redis second level by result (hit,
	// miss).
	L2Lookups *prometheus.CounterVec
	// L2Errors counts Redis failures by kind (timeout, unavailable,
	// decode).
	L2Errors *prometheus.CounterVec
	// L2Duration observes Redis operations by op (get, set, del, lock).
	L2Duration *prometheus.HistogramVec
	// L2LockWaits counts waits for another replica's exchange by outcome
	// (value, gave_up).
	L2LockWaits *prometheus.CounterVec
	// JWKSRefreshes counts fetches of the authority's key set by outcome
	// (success, failure).
	JWKSRefreshes *prometheus.CounterVec
	// AuthorityRetries counts token requests sent again after a temporary
	// fault, by the fault (throttled, unavailable, timeout).
	AuthorityRetries *prometheus.CounterVec
	// BreakerState is the state of the authority's circuit breaker:
	// 0 closed, 1 half-open, 2 open.
	BreakerState prometheus.Gauge
	// ExchangeQueueRejections counts exchanges refused because every
	// exchange slot (authority.max_concurrent_exchanges) stayed busy for
	// authority.queue_timeout.
	ExchangeQueueRejections prometheus.Counter
	// ConfigReloads counts re-readings of the configuration file that
	// changed it, by outcome: success (applied) or failure (refused; the
	// running configuration stays).
	ConfigReloads *prometheus.CounterVec
	// ConfigRestartPending is 1 while the configuration file sets a key
	// that needs a restart to another value than the one running, else 0.
	ConfigRestartPending prometheus.Gauge
	// ConfigInfo is 1 for the configuration file that runs, labelled with
	// sha256, the first 12 hex digits of its SHA-256; the series of the
	// file that ran before is removed.
	ConfigInfo *prometheus.GaugeVec
	// TokenAPIRequests counts the token API's answers, by endpoint, route
	// and status class.
	TokenAPIRequests *prometheus.CounterVec
	// TokenAPIDuration is the time to answer a token API request, by
	// endpoint.
	TokenAPIDuration *prometheus.HistogramVec
}

// New returns Metrics registered on a new Registry, together with the Go
// runtime and process collectors and obo_gateway_build_info.
func New(version string) *Metrics {
	reg := prometheus.NewRegistry()
	// promauto registers each metric as it is made, so none can be made
	// and forgotten.
	f := promauto.With(reg)
	m := &Metrics{
		Registry: reg,
		Requests: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "requests_total",
			Help: "Requests answered, by route, method and status class.",
		}, []string{"route", "method", "code"}),
		RequestDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "request_duration_seconds",
			Help:    "Time to answer a request, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		InFlight: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "requests_in_flight",
			Help: "Requests being served.",
		}),
		InboundRejections: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "inbound_rejections_total",
			Help: "Inbound tokens refused, by reason.",
		}, []string{"reason"}),
		Exchanges: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "exchanges_total",
			Help: "Token requests to the authority, by route, flow and outcome.",
		}, []string{"route", "flow", "outcome"}),
		ExchangeDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "exchange_duration_seconds",
			Help:    "Duration of token requests to the authority, by route and flow.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "flow"}),
		CacheLookups: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_lookups_total",
			Help: "Token B cache lookups, by route and result (hit, miss, shared).",
		}, []string{"route", "result"}),
		CacheEvictions: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_evictions_total",
			Help: "Token B cache entries evicted to stay within cache.max_bytes.",
		}),
		CacheRejections: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_rejections_total",
			Help: "New token B entries refused by the cache's admission policy when full.",
		}),
		CacheChallengeEvictions: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "cache_challenge_evictions_total",
			Help: "Token B cache entries dropped after a downstream claims challenge, by route.",
		}, []string{"route"}),
		DownstreamErrors: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "downstream_errors_total",
			Help: "Requests that could not be proxied to the downstream API, by route.",
		}, []string{"route"}),
		BadRequests: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "bad_requests_total",
			Help: "Requests the caller spoilt (refused, unreadable body, caller gone), by reason.",
		}, []string{"reason"}),
		Refreshes: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "refreshes_total",
			Help: "Refresh-ahead exchanges of cached tokens B, by outcome (success, failure).",
		}, []string{"outcome"}),
		CAERetries: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "cae_retries_total",
			Help: "Requests retried with a new token B after a downstream claims challenge, by route.",
		}, []string{"route"}),
		L2Lookups: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "l2_lookups_total",
			Help: "Reads of the Redis second-level cache, by result (hit, miss).",
		}, []string{"result"}),
		L2Errors: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "l2_errors_total",
			Help: "Redis second-level failures, by kind (timeout, unavailable, decode).",
		}, []string{"kind"}),
		L2Duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "l2_duration_seconds",
			Help:    "Duration of Redis operations, by op (get, set, del, lock).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1},
		}, []string{"op"}),
		L2LockWaits: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "l2_lock_waits_total",
			Help: "Waits for another replica's exchange, by outcome (value, gave_up).",
		}, []string{"outcome"}),
		JWKSRefreshes: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jwks_refreshes_total",
			Help: "Fetches of the authority's key set, by outcome (success, failure).",
		}, []string{"outcome"}),
		AuthorityRetries: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "authority_retries_total",
			Help: "Token requests sent again after a temporary fault of the authority, by fault (throttled, unavailable, timeout).",
		}, []string{"reason"}),
		BreakerState: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "breaker_state",
			Help: "State of the authority's circuit breaker: 0 closed, 1 half-open, 2 open.",
		}),
		ExchangeQueueRejections: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "exchange_queue_rejections_total",
			Help: "Exchanges refused because all exchange slots stayed busy for authority.queue_timeout.",
		}),
		TokenAPIRequests: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "token_api_requests_total",
			Help: "Token API requests answered, by endpoint, route and status class.",
		}, []string{"endpoint", "route", "code"}),
		TokenAPIDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "token_api_request_duration_seconds",
			Help:    "Time to answer a token API request, by endpoint.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint"}),
		ConfigReloads: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "config_reloads_total",
			Help: "Changed configuration files read while running, by outcome (success: applied, failure: refused).",
		}, []string{"outcome"}),
		ConfigRestartPending: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "config_restart_pending",
			Help: "1 while the configuration file changes a key that only a restart applies.",
		}),
		ConfigInfo: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "config_info",
			Help: "Always 1; sha256 is the first 12 hex digits of the SHA-256 of the configuration file that runs.",
		}, []string{"sha256"}),
	}
	for _, outcome := range []string{"success", "failure"} {
		m.ConfigReloads.WithLabelValues(outcome)
	}
	f.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Always 1; labels carry the gateway's version and Go version.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": goVersion()},
	}).Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// ObserveCache registers obo_gateway_cache_entries and
// obo_gateway_cache_bytes, read from entries and bytes at each scrape.
func (m *Metrics) ObserveCache(entries func() int, bytes func() int64) {
	m.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "cache_entries",
			Help: "Token B entries held in the cache.",
		}, func() float64 { return float64(entries()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "cache_bytes",
			Help: "Bytes charged against cache.max_bytes by the entries held.",
		}, func() float64 { return float64(bytes()) }),
	)
}

// ObserveKeys registers obo_gateway_jwks_keys, the number of keys in the
// authority's key set, read from keys at each scrape.
func (m *Metrics) ObserveKeys(keys func() int) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "jwks_keys",
		Help: "Keys in the authority's key set.",
	}, func() float64 { return float64(keys()) }))
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// StatusClass returns "1xx" … "5xx" for an HTTP status code.
func StatusClass(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code/100) + "xx"
}

// Method returns the method label of a request: the standard methods as
// they are, anything else "OTHER", so clients cannot create series at will.
func Method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "OTHER"
}

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "unknown"
}
