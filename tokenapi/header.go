package tokenapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/proxy"
)

// validate answers GET /Validate: token A, validated with the gateway's
// policy, and its claims.
func (s *Server) validate(w http.ResponseWriter, r *http.Request) {
	callOf(r).endpoint = endpointValidate
	h := s.handler(w, r)
	if h == nil {
		return
	}
	caller, err := h.Validate(r.Context(), r.Header)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	callOf(r).user = caller.Fingerprint()
	parts := strings.Split(caller.Raw(), ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || !json.Valid(payload) {
		s.problem(w, r, problem{Status: http.StatusBadRequest, Detail: "Failed to decode token claims"}, "malformed")
		return
	}
	writeJSON(w, struct {
		Protocol string          `json:"protocol"`
		Token    string          `json:"token"`
		Claims   json.RawMessage `json:"claims"`
	}{"Bearer", caller.Raw(), payload})
}

// authorizationHeader answers GET /AuthorizationHeader/{name} (token A
// required when authenticated) and /AuthorizationHeaderUnauthenticated/{name}.
func (s *Server) authorizationHeader(authenticated bool) http.HandlerFunc {
	endpoint := endpointHeaderAnonymous
	if authenticated {
		endpoint = endpointHeader
	}
	return func(w http.ResponseWriter, r *http.Request) {
		callOf(r).endpoint = endpoint
		entry, ok := s.token(w, r, authenticated)
		if !ok {
			return
		}
		writeJSON(w, struct {
			AuthorizationHeader string `json:"authorizationHeader"`
		}{entry.Credential()})
	}
}

// token obtains the token the request asks for, or answers the failure.
func (s *Server) token(w http.ResponseWriter, r *http.Request, authenticated bool) (*cache.Entry, bool) {
	c := callOf(r)
	h := s.handler(w, r)
	if h == nil {
		return nil, false
	}
	rt, ok := h.Route(r.PathValue("name"))
	if !ok {
		s.cfg.Metrics.BadRequests.WithLabelValues("no_route").Inc()
		s.problem(w, r, problem{Status: http.StatusNotFound, Detail: "no route has this name"}, "no_route")
		return nil, false
	}
	c.route = rt.Name
	var caller *proxy.Caller
	if authenticated {
		var err error
		if caller, err = h.Authenticate(r.Context(), r.Header); err != nil {
			s.fail(w, r, err)
			return nil, false
		}
		c.user = caller.Fingerprint()
	}
	req, refused := s.tokenRequest(rt, r.URL.Query(), caller)
	if refused != nil {
		s.badRequest(w, r, refused.reason, refused.detail)
		return nil, false
	}
	entry, res, err := h.Token(r.Context(), rt.Name, req)
	c.cache = res.String()
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return entry, true
}

// writeJSON writes a 200 answer.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	b, _ := json.Marshal(v)
	_, _ = w.Write(b)
}
