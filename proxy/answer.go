package proxy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/inbound"
	"github.com/obo-gateway/obo-gateway/obo"
)

// errorBody is the JSON body of every answer the gateway gives itself.
type errorBody struct {
	Error         string `json:"error"`
	Description   string `json:"error_description,omitempty"`
	ErrorCodes    []int  `json:"error_codes,omitempty"`
	SubError      string `json:"suberror,omitempty"`
	Claims        string `json:"claims,omitempty"`
	Timestamp     string `json:"timestamp,omitempty"`
	TraceID       string `json:"trace_id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
}

// writeError writes an answer of the gateway itself.
func writeError(w http.ResponseWriter, status int, challenge string, body errorBody) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if challenge != "" {
		h.Set("WWW-Authenticate", challenge)
	}
	w.WriteHeader(status)
	b, _ := json.Marshal(body)
	_, _ = w.Write(append(b, '\n'))
}

// quote makes s safe inside a quoted auth-param: quotes and backslashes are
// replaced and control characters dropped.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\'')
		case r < 0x20 || r == 0x7f:
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// writeReject answers a refused inbound token.
func writeReject(w http.ResponseWriter, e *inbound.RejectError) {
	switch e.Status() {
	case http.StatusForbidden:
		ch := `Bearer error="insufficient_scope"`
		if e.Scope != "" {
			ch += `, scope=` + quote(e.Scope)
		}
		writeError(w, http.StatusForbidden, ch+`, error_description=`+quote(e.Description),
			errorBody{Error: "insufficient_scope", Description: e.Description})
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "",
			errorBody{Error: "temporarily_unavailable", Description: e.Description})
	default:
		if e.Reason == inbound.ReasonMissing {
			writeError(w, http.StatusUnauthorized, "Bearer", errorBody{Error: "unauthorized", Description: e.Description})
			return
		}
		writeError(w, http.StatusUnauthorized,
			`Bearer error="invalid_token", error_description=`+quote(e.Description),
			errorBody{Error: "invalid_token", Description: e.Description})
	}
}

// exchangeAnswer is how the gateway answers a failed exchange.
type exchangeAnswer struct {
	status int
	reason string // for the log
}

// writeExchangeError answers a failed exchange as the contract says:
// interaction needed → 401 claims challenge with the authority's fields;
// the gateway's own credential refused → 502; the authority unreachable,
// overloaded or failing → 503 (with Retry-After when known); token A refused
// by the authority → 401 invalid_token; anything else → 502. The authority
// is also reported unavailable (503) without being called when the
// exchange client's circuit breaker is open (Retry-After: the time left) or
// too many exchanges are in progress (Retry-After: 1).
func writeExchangeError(w http.ResponseWriter, err error) exchangeAnswer {
	var ae *obo.Error
	if errors.As(err, &ae) {
		switch {
		case ae.InteractionRequired():
			code := "interaction_required"
			ch := `Bearer error="interaction_required"`
			if ae.Claims != "" {
				code = "insufficient_claims"
				ch = `Bearer error="insufficient_claims", claims="` + base64.StdEncoding.EncodeToString([]byte(ae.Claims)) + `"`
			}
			if ae.Description != "" {
				ch += ", error_description=" + quote(firstLine(ae.Description))
			}
			writeError(w, http.StatusUnauthorized, ch, authorityBody(ae))
			return exchangeAnswer{http.StatusUnauthorized, code}
		case ae.ClientRejected():
			writeError(w, http.StatusBadGateway, "", errorBody{
				Error:       "bad_gateway",
				Description: "the authority rejected the gateway's own client credential; see the gateway's log",
				TraceID:     ae.TraceID, CorrelationID: ae.CorrelationID,
			})
			return exchangeAnswer{http.StatusBadGateway, "invalid_client"}
		case ae.Temporary():
			if ae.RetryAfter > 0 {
				w.Header().Set("Retry-After", retryAfterSeconds(ae.RetryAfter))
			}
			writeError(w, http.StatusServiceUnavailable, "", errorBody{
				Error:       "temporarily_unavailable",
				Description: "the authority is unavailable (" + strconv.Itoa(ae.StatusCode) + "); retry later",
				TraceID:     ae.TraceID, CorrelationID: ae.CorrelationID,
			})
			return exchangeAnswer{http.StatusServiceUnavailable, "authority_unavailable"}
		case ae.Code == "invalid_grant":
			desc := "the authority refused to exchange the token"
			writeError(w, http.StatusUnauthorized,
				`Bearer error="invalid_token", error_description=`+quote(desc), authorityBodyAs("invalid_token", desc, ae))
			return exchangeAnswer{http.StatusUnauthorized, "invalid_grant"}
		default:
			writeError(w, http.StatusBadGateway, "", errorBody{
				Error:       "bad_gateway",
				Description: "the authority refused the exchange (" + authorityCode(ae) + "); see the gateway's log",
				ErrorCodes:  ae.ErrorCodes,
				TraceID:     ae.TraceID, CorrelationID: ae.CorrelationID,
			})
			return exchangeAnswer{http.StatusBadGateway, "authority_error"}
		}
	}
	var ue *obo.UnavailableError
	if errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) {
		desc, reason := "the authority could not be reached in time; retry later", "authority_unreachable"
		if ue != nil {
			switch {
			case errors.Is(ue.Err, obo.ErrCircuitOpen):
				desc, reason = "the authority is failing; the gateway does not call it for a while; retry later", "authority_circuit_open"
			case errors.Is(ue.Err, obo.ErrOverloaded):
				desc, reason = "too many token exchanges are in progress; retry later", "exchange_overloaded"
			}
			if ue.RetryAfter > 0 {
				w.Header().Set("Retry-After", retryAfterSeconds(ue.RetryAfter))
			}
		}
		writeError(w, http.StatusServiceUnavailable, "", errorBody{Error: "temporarily_unavailable", Description: desc})
		return exchangeAnswer{http.StatusServiceUnavailable, reason}
	}
	writeError(w, http.StatusBadGateway, "", errorBody{
		Error:       "bad_gateway",
		Description: "the token exchange failed; see the gateway's log",
	})
	return exchangeAnswer{http.StatusBadGateway, "exchange_failed"}
}

// retryAfterSeconds renders a positive delay as a Retry-After value: whole
// seconds, rounded up.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
}

func authorityBody(ae *obo.Error) errorBody {
	return errorBody{
		Error:         ae.Code,
		Description:   ae.Description,
		ErrorCodes:    ae.ErrorCodes,
		SubError:      ae.SubError,
		Claims:        ae.Claims,
		Timestamp:     ae.Timestamp,
		TraceID:       ae.TraceID,
		CorrelationID: ae.CorrelationID,
	}
}

func authorityBodyAs(code, desc string, ae *obo.Error) errorBody {
	b := authorityBody(ae)
	b.Error, b.Description, b.Claims = code, desc+": "+firstLine(ae.Description), ""
	return b
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

// authorityCode names an authority refusal: its OAuth error code, or its
// HTTP status when it sent none.
func authorityCode(ae *obo.Error) string {
	if ae.Code != "" {
		return ae.Code
	}
	return "status " + strconv.Itoa(ae.StatusCode)
}
