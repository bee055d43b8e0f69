package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/inbound"
	"github.com/obo-gateway/obo-gateway/metrics"
	"github.com/obo-gateway/obo-gateway/obo"
)

// Handler is the gateway's request handler. Its answers:
//
//	more than MaxRequestHeaders header fields  431 invalid_request
//	TRACE                                      405 invalid_request, Allow
//	no route for the path                      404 not_found
//	path with backslash or double encoding     400 invalid_request
//	no bearer token                            401, WWW-Authenticate: Bearer
//	token A invalid                            401, Bearer error="invalid_token"
//	scope missing, or app-only on an OBO route 403, Bearer error="insufficient_scope"
//	user interaction needed                    401, Bearer error="insufficient_claims", claims="<base64>"
//	gateway's credential refused               502
//	authority down, slow, 5xx or 429           503, Retry-After when known
//	downstream unreachable                     502
//	request body unreadable (malformed, short) 400 invalid_request
//	caller gone before the answer              499 (logged; nobody reads it)
//
// Everything else is the downstream's answer, passed through unchanged.
type Handler struct {
	routes     router
	v          inbound.TokenValidator
	ex         Exchanger
	cache      *cache.Cache
	m          *metrics.Metrics
	log        *slog.Logger
	requestLog RequestLog
	keyMode    string
	cae        bool
	// requiredScopes are what a delegated token A must carry one of;
	// requiredScope is them joined, the scope= of insufficient_scope
	// answers.
	requiredScopes []string
	requiredScope  string
	strip          stripSet // the headers removed from every request
	maxHeaders     int
	buffers        bufferPool // lends every route's reverse proxy its copy buffers
	// transports holds the transport of each upstream host and timeout
	// (scheme, host and timeout), which a handler replacing this one reuses.
	transports map[string]*http.Transport

	agents                 AgentExchanger // nil without agent flows
	agentIDs, agentTenants []string
	defaultTenant          string
	tracing                tracing
}

// New builds a Handler, one reverse proxy per route and one transport per
// upstream host and timeout.
func New(cfg Config) (*Handler, error) {
	if cfg.Validator == nil || cfg.Exchanger == nil || cfg.Cache == nil || cfg.Metrics == nil {
		return nil, errors.New("proxy: Config needs Validator, Exchanger, Cache and Metrics")
	}
	if len(cfg.Routes) == 0 {
		return nil, errors.New("proxy: no routes")
	}
	h := &Handler{v: cfg.Validator, ex: cfg.Exchanger, cache: cfg.Cache, m: cfg.Metrics, log: cfg.Logger,
		requestLog: cfg.RequestLog, keyMode: cfg.KeyMode, cae: cfg.CAE,
		requiredScopes: cfg.RequiredScopes, requiredScope: strings.Join(cfg.RequiredScopes, " "),
		strip: stripList(cfg.StripHeaders), maxHeaders: cfg.MaxRequestHeaders,
		agents: cfg.Agents, agentIDs: cfg.AgentIdentities, agentTenants: cfg.AgentTenants, defaultTenant: cfg.DefaultTenant,
		tracing: newTracing(cfg.TracerProvider)}
	if ax, ok := cfg.Exchanger.(AgentExchanger); ok && h.agents == nil {
		h.agents = ax
	}
	if h.maxHeaders <= 0 {
		h.maxHeaders = DefaultMaxRequestHeaders
	}
	switch h.keyMode {
	case "":
		h.keyMode = KeyUser
	case KeyUser, KeyAssertion:
	default:
		return nil, fmt.Errorf("proxy: unknown cache key mode %q", cfg.KeyMode)
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.transports = make(map[string]*http.Transport)
	for _, rc := range cfg.Routes {
		rt, err := newRoute(rc)
		if err == nil && isAgentFlow(rt.flow) && h.agents == nil {
			err = errors.New("an agent flow needs Config.Agents")
		}
		if err != nil {
			return nil, fmt.Errorf("proxy: route %q: %w", rc.Name, err)
		}
		for _, other := range h.routes {
			if other.prefix == rt.prefix {
				return nil, fmt.Errorf("proxy: routes %q and %q share path prefix %q", other.name, rt.name, rt.prefix)
			}
		}
		timeout := rc.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		tkey := rt.upstream.Scheme + "://" + rt.upstream.Host + "|" + timeout.String()
		tr, ok := h.transports[tkey]
		if !ok && cfg.Previous != nil {
			tr, ok = cfg.Previous.transports[tkey]
		}
		if !ok {
			tr = newUpstreamTransport(timeout)
		}
		h.transports[tkey] = tr
		rt.proxy = h.newReverseProxy(rt, tr)
		h.routes = append(h.routes, rt)
	}
	return h, nil
}

// newUpstreamTransport returns a transport tuned for one downstream host:
// a keep-alive pool sized for a busy sidecar, bounded connection set-up and
// response-header wait, HTTP/2 when the upstream offers it.
func newUpstreamTransport(responseHeaderTimeout time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = responseHeaderTimeout
	t.ExpectContinueTimeout = time.Second
	t.ForceAttemptHTTP2 = true
	return t
}

// newReverseProxy returns route rt's reverse proxy. Its hooks find the
// request's state in the request's context (stateOf).
func (h *Handler) newReverseProxy(rt *route, tr http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			st := stateOf(pr.In.Context())
			u := pr.Out.URL
			u.Scheme = rt.upstream.Scheme
			u.Host = rt.upstream.Host
			u.Path = st.outPath
			u.RawPath = ""
			u.Opaque = ""
			u.User = nil
			u.Fragment, u.RawFragment = "", ""
			// The query as the caller wrote it, parameters net/url cannot
			// parse included (ReverseProxy drops those unless told so):
			// the gateway routes on the path alone, so no reading of the
			// query can differ from the downstream's.
			u.RawQuery = pr.In.URL.RawQuery
			pr.Out.Host = ""
			// Hop-by-hop headers and those named in Connection are gone
			// already (ReverseProxy); what the caller might use to speak
			// for a user, or for where the request came from, goes now.
			stripInbound(pr.Out.Header, h.strip, rt.cookies)
			dropUpgrade(pr.Out.Header, rt.websocket)
			pr.SetXForwarded()
			h.tracing.inject(pr.Out.Context(), pr.Out.Header)
			if rt.bearer {
				pr.Out.Header.Set("Authorization", st.entry.Credential())
			} else {
				pr.Out.Header.Del("Authorization")
				pr.Out.Header.Set(rt.present.Header, rt.present.Value(st.entry.Token))
			}
		},
		Transport:  tr,
		BufferPool: &h.buffers,
		ModifyResponse: func(res *http.Response) error {
			st := stateOf(res.Request.Context())
			if res.StatusCode == http.StatusSwitchingProtocols {
				// Written on the hijacked connection, not through st.w.
				st.w.status = res.StatusCode
			}
			return h.checkChallenge(st, res)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			st := stateOf(r.Context())
			var cc *claimsChallenge
			if errors.As(err, &cc) {
				h.retryWithClaims(w, st, cc.claims)
				return
			}
			if be := st.inBody.failure(); be != nil {
				h.answerBodyFailure(w, st, be)
				return
			}
			if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
				// The caller went away; nobody reads this answer.
				h.clientClosed(w, st)
				return
			}
			st.downstreamErr = err
			h.m.DownstreamErrors.WithLabelValues(rt.name).Inc()
			WriteError(w, http.StatusBadGateway, "", ErrorBody{
				Error:       "bad_gateway",
				Description: "the downstream API of route " + rt.name + " could not be reached",
			})
		},
		ErrorLog: slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
	}
}

// newRoute checks rc and returns its route, without its reverse proxy.
func newRoute(rc RouteConfig) (*route, error) {
	up, err := parseUpstream(rc.Upstream)
	if err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}
	flow := rc.Flow
	if flow == "" {
		flow = obo.FlowOnBehalfOf
	}
	if flow != obo.FlowOnBehalfOf && flow != obo.FlowClientCredentials && !isAgentFlow(flow) {
		return nil, fmt.Errorf("unknown flow %q", rc.Flow)
	}
	if isAgentFlow(flow) {
		// A CAE retry exchanges token A again as an OBO route does.
		rc.ReplayMaxBytes = 0
	}
	if len(rc.Scopes) == 0 && rc.Audience == "" {
		return nil, errors.New("no scopes and no audience")
	}
	present := rc.Presentation
	if present.Header == "" {
		present = obo.DefaultPresentation(rc.RequestedTokenType)
	}
	prefix, err := cleanPath(rc.PathPrefix)
	if err != nil || prefix == "/" {
		return nil, fmt.Errorf("bad path prefix %q", rc.PathPrefix)
	}
	rt := &route{
		name:     rc.Name,
		prefix:   strings.TrimSuffix(prefix, "/"),
		upstream: up,
		basePath: strings.TrimSuffix(up.Path, "/"),
		scopes:   rc.Scopes,
		// Audience and token type are part of what token B is for, so
		// they are part of its cache key.
		scopeSet:      cache.NormalizeScopes(rc.Scopes) + "\x00" + rc.Audience + "\x00" + rc.RequestedTokenType,
		audience:      rc.Audience,
		requestedType: rc.RequestedTokenType,
		present:       present,
		bearer:        present == obo.DefaultPresentation(""),
		flow:          flow,
		replay:        rc.ReplayMaxBytes,
		agentID:       rc.AgentIdentity,
		agentUser:     rc.AgentUser,
		cookies:       rc.ForwardCookies,
		websocket:     rc.WebSocket,
	}
	rt.appKey = cache.AppKey(rt.scopeSet)
	return rt, nil
}
