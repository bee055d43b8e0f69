package inbound

import (
	"fmt"
	"net/http"
)

// Reasons a token A is refused; they are the values of the "reason" label of
// obo_gateway_inbound_rejections_total.
const (
	ReasonMissing     = "missing"
	ReasonMalformed   = "malformed"
	ReasonAlgorithm   = "algorithm"
	ReasonSignature   = "signature"
	ReasonExpired     = "expired"
	ReasonNotYetValid = "not_yet_valid"
	ReasonIssuer      = "issuer"
	ReasonTenant      = "tenant"
	ReasonAudience    = "audience"
	ReasonScope       = "scope"
	ReasonAppOnly     = "app_only"
	ReasonKeys        = "keys_unavailable"
)

// RejectError is the refusal of a token A. Status says how the gateway
// answers it.
type RejectError struct {
	// Reason is one of the Reason constants.
	Reason string
	// Description says what was expected and what came. It never contains
	// the token.
	Description string
	// Scope lists the scopes that would have been accepted, for
	// insufficient_scope answers.
	Scope string
}

func (e *RejectError) Error() string {
	return "inbound: token rejected (" + e.Reason + "): " + e.Description
}

// Status returns the HTTP status of the answer: 403 for scope problems, 503
// while the authority's keys are not available, 401 otherwise.
func (e *RejectError) Status() int {
	switch e.Reason {
	case ReasonScope, ReasonAppOnly:
		return http.StatusForbidden
	case ReasonKeys:
		return http.StatusServiceUnavailable
	}
	return http.StatusUnauthorized
}

// reject returns a RejectError for reason with a formatted description.
func reject(reason, format string, args ...any) *RejectError {
	return &RejectError{Reason: reason, Description: fmt.Sprintf(format, args...)}
}
