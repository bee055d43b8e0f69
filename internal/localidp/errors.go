package localidp

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/idshape"
)

// oauthError is an error answer of the token endpoint, rendered the way
// Entra ID renders it.
type oauthError struct {
	status     int    // HTTP status
	code       string // the OAuth error field
	aadsts     int    // the AADSTS number, also the only entry of error_codes
	message    string // the description, without the AADSTS prefix and the trace lines
	suberror   string
	claims     string
	retryAfter time.Duration // Retry-After header when positive
}

func badRequest(code string, aadsts int, format string, args ...any) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: code, aadsts: aadsts, message: fmt.Sprintf(format, args...)}
}

func invalidClient(aadsts int, format string, args ...any) *oauthError {
	return &oauthError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: aadsts, message: fmt.Sprintf(format, args...)}
}

func missingParameter(name string) *oauthError {
	return badRequest("invalid_request", 900144, "The request body must contain the following parameter: '%s'.", name)
}

func invalidGrant(format string, args ...any) *oauthError {
	return badRequest("invalid_grant", 50013, format, args...)
}

// errorBody is the JSON body of an Entra ID error answer.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
	Suberror         string `json:"suberror,omitempty"`
	Claims           string `json:"claims,omitempty"`
}

// correlationID returns the client-request-id the client sent, when it is a
// GUID (Entra echoes it), or a new random GUID.
func correlationID(r *http.Request) string {
	if id := r.Header.Get("client-request-id"); idshape.IsGUID(id) {
		return id
	}
	return newGUID()
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *oauthError) {
	traceID := newGUID()
	corrID := correlationID(r)
	ts := time.Now().UTC().Format("2006-01-02 15:04:05Z")
	body := errorBody{
		Error: e.code,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			e.aadsts, e.message, traceID, corrID, ts),
		ErrorCodes:    []int{e.aadsts},
		Timestamp:     ts,
		TraceID:       traceID,
		CorrelationID: corrID,
		ErrorURI:      "https://login.microsoftonline.com/error?code=" + strconv.Itoa(e.aadsts),
		Suberror:      e.suberror,
		Claims:        e.claims,
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store, no-cache")
	h.Set("Pragma", "no-cache")
	h.Set("x-ms-request-id", traceID)
	h.Set("client-request-id", corrID)
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(ceilSeconds(e.retryAfter), 10))
	}
	writeJSON(w, e.status, body)
}

// ceilSeconds returns d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
