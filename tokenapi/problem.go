package tokenapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/obo-gateway/obo-gateway/proxy"
)

// problem is an RFC 9457 problem details body, with the authority's fields
// as extension members when the authority refused.
type problem struct {
	Type          string `json:"type"`
	Title         string `json:"title"`
	Status        int    `json:"status"`
	Detail        string `json:"detail,omitempty"`
	Error         string `json:"error,omitempty"`
	SubError      string `json:"suberror,omitempty"`
	Claims        string `json:"claims,omitempty"`
	ErrorCodes    []int  `json:"error_codes,omitempty"`
	TraceID       string `json:"trace_id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
}

// problemTypes are the RFC 9110 sections ASP.NET names as the type of its
// problem details, which Microsoft's sidecar answers with.
var problemTypes = map[int]string{
	400: "15.5.1", 401: "15.5.2", 403: "15.5.4", 404: "15.5.5", 405: "15.5.6",
	500: "15.6.1", 502: "15.6.3", 503: "15.6.4",
}

// problem writes p as application/problem+json; reason is logged and
// counted with the request.
func (s *Server) problem(w http.ResponseWriter, r *http.Request, p problem, reason string) {
	if sec, ok := problemTypes[p.Status]; ok {
		p.Type = "https://tools.ietf.org/html/rfc9110#section-" + sec
	} else {
		p.Type = "about:blank"
	}
	p.Title = http.StatusText(p.Status)
	if c := callOf(r); c != nil {
		c.reason = reason
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	b, _ := json.Marshal(p)
	_, _ = w.Write(append(b, '\n'))
}

// fail answers err, an error of the proxy handler's Token, Authenticate,
// Validate or Call, with the status and challenge of the proxy path.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var de *proxy.DownstreamError
	if errors.As(err, &de) {
		s.problem(w, r, problem{Status: http.StatusBadGateway,
			Detail: "the downstream API of route " + de.Route + " could not be reached"}, "downstream_error")
		return
	}
	f := proxy.Answer(err)
	for k, v := range f.Header {
		w.Header()[k] = v
	}
	detail := f.Description
	if detail == "" {
		detail = "the authority refused the exchange (" + strconv.Itoa(f.Status) + ")"
		if f.Header.Get("WWW-Authenticate") != "" && f.Error != "invalid_token" {
			detail = "the authority requires the user to interact; WWW-Authenticate carries the claims challenge"
		}
	}
	s.problem(w, r, problem{Status: f.Status, Detail: detail, Error: f.Error, SubError: f.SubError, Claims: f.Claims,
		ErrorCodes: f.ErrorCodes, TraceID: f.TraceID, CorrelationID: f.CorrelationID}, f.Reason)
}

// badRequest answers a request parameter the API refuses.
func (s *Server) badRequest(w http.ResponseWriter, r *http.Request, reason, detail string) {
	s.cfg.Metrics.BadRequests.WithLabelValues(reason).Inc()
	s.problem(w, r, problem{Status: http.StatusBadRequest, Detail: detail}, reason)
}
