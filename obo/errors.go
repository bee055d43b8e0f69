package obo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is a refusal by the token endpoint. It keeps every field of the
// authority's error document so that a claims challenge can be relayed to
// the client exactly as the authority wrote it.
type Error struct {
	// StatusCode is the HTTP status of the authority's answer.
	StatusCode int `json:"-"`
	// Code is the OAuth 2.0 error code ("invalid_grant",
	// "interaction_required", "invalid_client", ...).
	Code string `json:"error"`
	// Description is the human-readable explanation (for Entra, it starts
	// with an AADSTS code).
	Description string `json:"error_description,omitempty"`
	// ErrorCodes are Entra's numeric AADSTS codes.
	ErrorCodes []int `json:"error_codes,omitempty"`
	// Timestamp, TraceID and CorrelationID identify the failure in the
	// authority's own logs.
	Timestamp     string `json:"timestamp,omitempty"`
	TraceID       string `json:"trace_id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	// SubError refines Code; for Entra it marks the cases the user can fix
	// by interacting ("basic_action", "additional_action", "consent_required", ...).
	SubError string `json:"suberror,omitempty"`
	// Claims is the claims challenge, a JSON document carried as a string,
	// which the client must send back to the authority when it signs the
	// user in again.
	Claims string `json:"claims,omitempty"`
	// RetryAfter is the delay the authority asked for in a Retry-After
	// header (429 and 503 answers), or zero.
	RetryAfter time.Duration `json:"-"`
}

// Error returns the status, code and description; it never contains a token.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "obo: authority answered %d", e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.SubError != "" {
		b.WriteString(" (suberror " + e.SubError + ")")
	}
	if e.Description != "" {
		d := e.Description
		if i := strings.IndexAny(d, "\r\n"); i >= 0 {
			d = d[:i]
		}
		b.WriteString(": " + d)
	}
	return b.String()
}

// InteractionRequired reports whether the user must interact with the
// authority (multi-factor authentication, conditional access, consent or
// sign-in) before token B can be issued. Such an error must be relayed to
// the client as a challenge rather than treated as a gateway failure.
func (e *Error) InteractionRequired() bool {
	if e.Claims != "" {
		return true
	}
	switch e.Code {
	case "interaction_required", "consent_required", "login_required":
		return true
	case "invalid_grant":
		return e.SubError != ""
	}
	return false
}

// ClientRejected reports whether the authority refused the gateway's own
// client credential or registration: an operator problem, not the user's.
func (e *Error) ClientRejected() bool {
	return e.Code == "invalid_client" || e.Code == "unauthorized_client"
}

// Temporary reports whether the authority is overloaded or failing
// (429 or 5xx), so that a later identical request may succeed.
func (e *Error) Temporary() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500 || e.Code == "temporarily_unavailable"
}

// UnavailableError reports that the authority could not be reached or did
// not answer in time, or that the Client did not call it: its circuit
// breaker is open (Err wraps ErrCircuitOpen) or too many exchanges were in
// progress (Err wraps ErrOverloaded).
type UnavailableError struct {
	// Op names the call that failed: "discovery", "token".
	Op string
	// Err is the underlying transport error, or ErrCircuitOpen or
	// ErrOverloaded.
	Err error
	// RetryAfter is when a new request may succeed: the time left before
	// the open circuit breaker lets a probe through, or a short delay
	// after an overload; zero when unknown.
	RetryAfter time.Duration
}

// Error describes the failure.
func (e *UnavailableError) Error() string {
	return "obo: authority unavailable during " + e.Op + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Timeout reports whether the call ran out of time.
func (e *UnavailableError) Timeout() bool {
	if errors.Is(e.Err, context.DeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}

// Outcome names the result of an exchange for metrics and logs:
//
//	success               token issued
//	interaction_required  the user must interact (MFA, consent, sign-in)
//	invalid_client        the gateway's own credential was refused
//	invalid_grant         token A was refused
//	authority_error       another refusal (invalid_scope, a 4xx page, ...)
//	throttled             the authority answered 429
//	unavailable           the authority answered 5xx, or could not be reached
//	timeout               the authority did not answer in time
//	circuit_open          not sent: the circuit breaker is open
//	overloaded            not sent: too many exchanges in progress
//	credential_error      the gateway could not produce its own client
//	                      credential (see CredentialError)
func Outcome(err error) string {
	if err == nil {
		return "success"
	}
	var ae *Error
	if errors.As(err, &ae) {
		switch {
		case ae.InteractionRequired():
			return "interaction_required"
		case ae.ClientRejected():
			return "invalid_client"
		case ae.Code == "invalid_grant":
			return "invalid_grant"
		case ae.StatusCode == http.StatusTooManyRequests:
			return "throttled"
		case ae.Temporary():
			return "unavailable"
		}
		return "authority_error"
	}
	var ue *UnavailableError
	if errors.As(err, &ue) {
		switch {
		case errors.Is(ue.Err, ErrCircuitOpen):
			return "circuit_open"
		case errors.Is(ue.Err, ErrOverloaded):
			return "overloaded"
		case ue.Timeout():
			return "timeout"
		}
		return "unavailable"
	}
	var ce *CredentialError
	if errors.As(err, &ce) {
		return "credential_error"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "authority_error"
}

// maxRetryAfter caps the delay read from a Retry-After header, so that an
// absurd value cannot overflow or park callers for years.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads a Retry-After header given in seconds or as an HTTP
// date, capped at maxRetryAfter; it returns zero when the header is absent
// or malformed.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if s < 0 {
			return 0
		}
		if s > int(maxRetryAfter/time.Second) { // time.Duration(s) * time.Second could overflow
			return maxRetryAfter
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}
