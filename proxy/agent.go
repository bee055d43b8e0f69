package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/inbound"
	"github.com/obo-gateway/obo-gateway/obo"
)

// The request headers of agent routes on the proxy path. They never reach
// the downstream.
const (
	HeaderAgentIdentity = "X-Agent-Identity"
	HeaderAgentUser     = "X-Agent-User"
	HeaderAgentTenant   = "X-Agent-Tenant"
)

// AgentExchanger obtains the tokens of the agent flows, cached per leg.
// *obo.Client implements it.
type AgentExchanger interface {
	CachedAgentToken(ctx context.Context, req obo.AgentRequest) (*cache.Entry, cache.Result, error)
}

func isAgentFlow(flow string) bool {
	return flow == obo.FlowAgentApp || flow == obo.FlowAgentUser || flow == obo.FlowAgentOnBehalfOf
}

// serveAgent serves a request of an agent route on the proxy path: the
// agent identity, agent user and tenant come from the route or the
// X-Agent-* headers, token A (agent_on_behalf_of only) is already
// validated as caller.
func (h *Handler) serveAgent(st *request, r *http.Request, p string, caller *Caller) {
	rt := st.route
	req := TokenRequest{Tenant: r.Header.Get(HeaderAgentTenant), Caller: caller}
	if id := r.Header.Get(HeaderAgentIdentity); id != "" {
		if rt.agentID != "" && !strings.EqualFold(id, rt.agentID) {
			h.refuse(st, refusal(http.StatusForbidden, "agent_identity_not_allowed",
				"route "+rt.name+" acts as its own agent identity; "+HeaderAgentIdentity+" names another"))
			return
		}
		req.AgentID = id
	}
	if u := r.Header.Get(HeaderAgentUser); u != "" && rt.flow == obo.FlowAgentUser {
		if rt.agentUser != "" && !strings.EqualFold(u, rt.agentUser) {
			h.refuse(st, refusal(http.StatusForbidden, "agent_user_not_allowed",
				"route "+rt.name+" acts as its own agent user; "+HeaderAgentUser+" names another"))
			return
		}
		if isGUID(u) {
			req.AgentUserID = u
		} else {
			req.AgentUsername = u
		}
	}
	ar, err := h.agentRequest(rt, rt.flow, req)
	if err != nil {
		var re *RefusalError
		errors.As(err, &re)
		h.refuse(st, re)
		return
	}
	entry, res, err := h.agentToken(r.Context(), rt, ar)
	st.cache = res.String()
	if err != nil {
		if r.Context().Err() != nil {
			st.reason = "client_closed"
			st.w.WriteHeader(statusClientClosed)
			return
		}
		st.reason = writeAgentError(&st.w, err).reason
		return
	}
	st.outPath, st.key, st.entry = rt.outPath(p), entry.Key, entry
	h.send(st, r)
}

// refuse answers a refused request and counts it.
func (h *Handler) refuse(st *request, re *RefusalError) {
	st.reason = re.Reason
	h.m.BadRequests.WithLabelValues(re.Reason).Inc()
	WriteError(&st.w, re.Status, "", ErrorBody{Error: refusalCode(re.Status), Description: re.Description})
}

// agentRequest checks what req asks of agent route rt with flow and returns
// the obo request: the agent identity must be allowed (403 otherwise), the
// tenant the default, token A's or allowed (403), the agent user named for
// agent_user (400). Its errors are *RefusalError values, not yet counted.
func (h *Handler) agentRequest(rt *route, flow string, req TokenRequest) (obo.AgentRequest, error) {
	count := func(re *RefusalError) (obo.AgentRequest, error) { return obo.AgentRequest{}, re }
	if h.agents == nil {
		return count(refusal(http.StatusBadRequest, "agents_unavailable", "the gateway has no agent flows"))
	}
	id := cmpOr(req.AgentID, rt.agentID)
	switch {
	case id == "":
		return count(refusal(http.StatusBadRequest, "agent_identity_missing",
			"route "+rt.name+" needs an agent identity ("+HeaderAgentIdentity+", or AgentIdentity on the token API)"))
	case !isGUID(id):
		return count(refusal(http.StatusBadRequest, "agent_identity_malformed", "the agent identity must be an application id (GUID)"))
	case !h.allowsAgent(id):
		return count(refusal(http.StatusForbidden, "agent_identity_not_allowed", "the agent identity is not listed in agents.identities"))
	}
	tenant := req.Tenant
	if tenant != "" && !h.allowsTenant(tenant) && (req.Caller == nil || !strings.EqualFold(tenant, req.Caller.claims.TenantID)) {
		return count(refusal(http.StatusForbidden, "tenant_not_allowed", "the tenant is neither client.tenant_id nor listed in agents.tenants"))
	}
	ar := obo.AgentRequest{Flow: flow, AgentID: id, Tenant: tenant, Scopes: rt.scopes, Claims: req.Claims, ForceRefresh: req.ForceRefresh}
	switch flow {
	case obo.FlowAgentOnBehalfOf:
		ar.Assertion = req.Caller.raw
	case obo.FlowAgentUser:
		ar.Username, ar.UserID = req.AgentUsername, req.AgentUserID
		if ar.Username == "" && ar.UserID == "" {
			if isGUID(rt.agentUser) {
				ar.UserID = rt.agentUser
			} else {
				ar.Username = rt.agentUser
			}
		}
		if ar.Username == "" && ar.UserID == "" {
			return count(refusal(http.StatusBadRequest, "agent_user_missing",
				"route "+rt.name+" needs an agent user ("+HeaderAgentUser+", or AgentUsername or AgentUserId on the token API)"))
		}
	}
	return ar, nil
}

func (h *Handler) allowsAgent(id string) bool {
	return slices.ContainsFunc(h.agentIDs, func(s string) bool { return s == "*" || strings.EqualFold(s, id) })
}

func (h *Handler) allowsTenant(t string) bool {
	return strings.EqualFold(t, h.defaultTenant) ||
		slices.ContainsFunc(h.agentTenants, func(s string) bool { return s == "*" || strings.EqualFold(s, t) })
}

// agentToken obtains the token of ar for route rt, counting the cache
// lookup and, when the cache had to exchange, the exchange's outcome.
func (h *Handler) agentToken(ctx context.Context, rt *route, ar obo.AgentRequest) (*cache.Entry, cache.Result, error) {
	start := time.Now()
	entry, res, err := h.agents.CachedAgentToken(ctx, ar)
	h.m.CacheLookups.WithLabelValues(rt.name, res.String()).Inc()
	if res == cache.Hit && err == nil {
		return entry, res, nil
	}
	outcome := obo.Outcome(err)
	h.m.ExchangeDuration.WithLabelValues(rt.name, ar.Flow).Observe(time.Since(start).Seconds())
	h.m.Exchanges.WithLabelValues(rt.name, ar.Flow, outcome).Inc()
	if err != nil {
		attrs := []slog.Attr{slog.String("route", rt.name), slog.String("flow", ar.Flow),
			slog.String("outcome", outcome), slog.String("agent_identity", ar.AgentID), slog.String("error", err.Error())}
		var le *obo.AgentLegError
		if errors.As(err, &le) {
			attrs = append(attrs, slog.String("leg", le.Leg))
		}
		var ae *obo.Error
		if errors.As(err, &ae) {
			attrs = append(attrs, slog.Any("error_codes", ae.ErrorCodes),
				slog.String("trace_id", ae.TraceID), slog.String("correlation_id", ae.CorrelationID))
		}
		h.log.LogAttrs(ctx, slog.LevelWarn, "agent exchange failed", attrs...)
		return nil, res, fmt.Errorf("proxy: agent token for route %q: %w", rt.name, err)
	}
	return entry, res, nil
}

// writeAgentError answers a failed agent flow. A leg before the last one
// (T1, T2) is the gateway's own credential at work: its refusal is the
// operator's to fix (502), even when the authority asks for interaction
// (consent for the blueprint or the agent identity); an authority that is
// down is 503 on any leg. The last leg answers as every exchange does.
func writeAgentError(w http.ResponseWriter, err error) exchangeAnswer {
	var le *obo.AgentLegError
	if !errors.As(err, &le) || le.Final() {
		return writeExchangeError(w, err)
	}
	var ae *obo.Error
	var ue *obo.UnavailableError
	if errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ae) && ae.Temporary()) {
		return writeExchangeError(w, err)
	}
	body := ErrorBody{Error: "bad_gateway",
		Description: "the authority refused the agent identity blueprint's token request (" + le.Leg + " leg); see the gateway's log"}
	if ae != nil {
		body.ErrorCodes, body.TraceID, body.CorrelationID = ae.ErrorCodes, ae.TraceID, ae.CorrelationID
	}
	WriteError(w, http.StatusBadGateway, "", body)
	return exchangeAnswer{http.StatusBadGateway, "agent_leg_refused"}
}

// agentCaller is the validated token A of an agent_on_behalf_of request on
// the proxy path.
func agentCaller(st *request, claims *inbound.Claims) *Caller {
	return &Caller{raw: st.raw, sum: st.sum, claims: claims}
}
