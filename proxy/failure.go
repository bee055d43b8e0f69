package proxy

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/obo-gateway/obo-gateway/inbound"
)

// Failure is how the gateway answers a failed Handler.Token or
// Handler.Authenticate, for an API that writes its answers in its own
// format (the token API's problem details): the same status, challenge and
// authority fields as the proxy path's answer.
type Failure struct {
	// Status is the HTTP status.
	Status int
	// Header holds WWW-Authenticate and Retry-After when the answer has
	// them.
	Header http.Header
	// Reason is the short reason for the log.
	Reason string
	// Error is the OAuth error code of the answer; Description says what
	// happened in the gateway's words, and is empty when the proxy path's
	// answer would relay the authority's own words (which may name the
	// user).
	Error, Description string
	// The authority's fields, when the authority refused.
	SubError, Claims       string
	ErrorCodes             []int
	TraceID, CorrelationID string
}

// Answer describes the answer to err, an error of Handler.Token or
// Handler.Authenticate.
func Answer(err error) Failure {
	var w bufferWriter
	var reason string
	var re *RefusalError
	var ie *inbound.RejectError
	switch {
	case errors.As(err, &re):
		return Failure{Status: re.Status, Header: http.Header{}, Reason: re.Reason, Error: refusalCode(re.Status), Description: re.Description}
	case errors.As(err, &ie):
		reason = ie.Reason
		writeReject(&w, ie)
	default:
		reason = writeAgentError(&w, err).reason
	}
	var b ErrorBody
	_ = json.Unmarshal(w.body, &b)
	f := Failure{Status: w.status, Header: http.Header{}, Reason: reason, Error: b.Error, Description: b.Description,
		SubError: b.SubError, Claims: b.Claims, ErrorCodes: b.ErrorCodes, TraceID: b.TraceID, CorrelationID: b.CorrelationID}
	for _, k := range []string{"WWW-Authenticate", "Retry-After"} {
		if v := w.header.Get(k); v != "" {
			f.Header.Set(k, v)
		}
	}
	if ie == nil && w.status == http.StatusUnauthorized {
		// The authority's description, relayed on the proxy path.
		f.Description = ""
	}
	return f
}

// refusalCode is the OAuth-style error code of a refusal's status.
func refusalCode(status int) string {
	switch status {
	case http.StatusForbidden:
		return "access_denied"
	case http.StatusNotFound:
		return "not_found"
	}
	return "invalid_request"
}

// bufferWriter is an http.ResponseWriter that keeps the answer.
type bufferWriter struct {
	header http.Header
	status int
	body   []byte
}

func (w *bufferWriter) Header() http.Header {
	if w.header == nil {
		w.header = http.Header{}
	}
	return w.header
}

func (w *bufferWriter) WriteHeader(code int) { w.status = code }

func (w *bufferWriter) Write(b []byte) (int, error) {
	w.body = append(w.body, b...)
	return len(b), nil
}
