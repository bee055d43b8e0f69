package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/inbound"
	"github.com/obo-gateway/obo-gateway/obo"
)

func TestWriteExchangeError(t *testing.T) {
	claims := `{"access_token":{"capolids":{"essential":true,"values":["p"]}}}`
	tests := []struct {
		name       string
		err        error
		status     int
		challenge  string // exact WWW-Authenticate, or "" for none
		retryAfter string
		bodyError  string
		bodyKeys   []string
	}{
		{
			name:      "mfa with claims",
			err:       &obo.Error{StatusCode: 400, Code: "invalid_grant", SubError: "basic_action", Claims: claims, Description: "AADSTS50076: \"MFA\" needed\r\nTrace ID: x", ErrorCodes: []int{50076}, TraceID: "t", CorrelationID: "c", Timestamp: "ts"},
			status:    401,
			challenge: `Bearer error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsiY2Fwb2xpZHMiOnsiZXNzZW50aWFsIjp0cnVlLCJ2YWx1ZXMiOlsicCJdfX19", error_description="AADSTS50076: 'MFA' needed"`,
			bodyError: "invalid_grant",
			bodyKeys:  []string{"error_description", "error_codes", "suberror", "claims", "trace_id", "correlation_id", "timestamp"},
		},
		{
			name:      "interaction_required without claims",
			err:       &obo.Error{StatusCode: 400, Code: "interaction_required"},
			status:    401,
			challenge: `Bearer error="interaction_required"`,
			bodyError: "interaction_required",
		},
		{name: "consent_required", err: &obo.Error{StatusCode: 400, Code: "consent_required"}, status: 401, challenge: `Bearer error="interaction_required"`, bodyError: "consent_required"},
		{name: "login_required", err: &obo.Error{StatusCode: 400, Code: "login_required"}, status: 401, challenge: `Bearer error="interaction_required"`, bodyError: "login_required"},
		{name: "invalid_client", err: &obo.Error{StatusCode: 401, Code: "invalid_client", Description: "AADSTS7000215: secret abc"}, status: 502, bodyError: "bad_gateway"},
		{name: "throttled", err: &obo.Error{StatusCode: 429, RetryAfter: 1500 * time.Millisecond}, status: 503, retryAfter: "2", bodyError: "temporarily_unavailable"},
		{name: "5xx", err: &obo.Error{StatusCode: 503}, status: 503, bodyError: "temporarily_unavailable"},
		{name: "token A refused", err: &obo.Error{StatusCode: 400, Code: "invalid_grant", ErrorCodes: []int{50013}}, status: 401, challenge: `Bearer error="invalid_token", error_description="the authority refused to exchange the token"`, bodyError: "invalid_token"},
		{name: "other refusal", err: &obo.Error{StatusCode: 400, Code: "invalid_scope"}, status: 502, bodyError: "bad_gateway"},
		{name: "non-OAuth 4xx", err: &obo.Error{StatusCode: 404}, status: 502, bodyError: "bad_gateway"},
		{name: "unreachable", err: &obo.UnavailableError{Op: "token", Err: errors.New("connection refused")}, status: 503, bodyError: "temporarily_unavailable"},
		{name: "deadline", err: context.DeadlineExceeded, status: 503, bodyError: "temporarily_unavailable"},
		{name: "circuit open", err: fmt.Errorf("proxy: exchange: %w", &obo.UnavailableError{Op: "token", Err: obo.ErrCircuitOpen, RetryAfter: 12300 * time.Millisecond}), status: 503, retryAfter: "13", bodyError: "temporarily_unavailable"},
		{name: "circuit open with last fault", err: &obo.UnavailableError{Op: "token", Err: fmt.Errorf("%w (last fault: x)", obo.ErrCircuitOpen), RetryAfter: time.Second}, status: 503, retryAfter: "1", bodyError: "temporarily_unavailable"},
		{name: "overloaded", err: &obo.UnavailableError{Op: "token", Err: obo.ErrOverloaded, RetryAfter: time.Second}, status: 503, retryAfter: "1", bodyError: "temporarily_unavailable"},
		{name: "wrapped", err: errors.Join(errors.New("ctx"), &obo.Error{StatusCode: 400, Code: "interaction_required"}), status: 401, challenge: `Bearer error="interaction_required"`, bodyError: "interaction_required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			writeExchangeError(rec, tc.err)
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d", rec.Code, tc.status)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate =\n%q\nwant\n%q", got, tc.challenge)
			}
			if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tc.retryAfter)
			}
			if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("headers: %v", rec.Header())
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body["error"] != tc.bodyError {
				t.Errorf("body error = %v, want %s", body["error"], tc.bodyError)
			}
			for _, k := range tc.bodyKeys {
				if _, ok := body[k]; !ok {
					t.Errorf("body lacks %s: %v", k, body)
				}
			}
			if strings.Contains(rec.Body.String(), "secret abc") {
				t.Error("the authority's description of the gateway's own credential reached the caller")
			}
		})
	}
}

func TestWriteReject(t *testing.T) {
	tests := []struct {
		e         *inbound.RejectError
		status    int
		challenge string
	}{
		{&inbound.RejectError{Reason: inbound.ReasonMissing, Description: "no bearer token"}, 401, "Bearer"},
		{&inbound.RejectError{Reason: inbound.ReasonExpired, Description: "token expired at \"x\"\r\n"}, 401, `Bearer error="invalid_token", error_description="token expired at 'x'"`},
		{&inbound.RejectError{Reason: inbound.ReasonScope, Description: "d", Scope: "access_as_user"}, 403, `Bearer error="insufficient_scope", scope="access_as_user", error_description="d"`},
		{&inbound.RejectError{Reason: inbound.ReasonAppOnly, Description: "d"}, 403, `Bearer error="insufficient_scope", error_description="d"`},
		{&inbound.RejectError{Reason: inbound.ReasonKeys, Description: "d"}, 503, ""},
	}
	for _, tc := range tests {
		rec := httptest.NewRecorder()
		writeReject(rec, tc.e)
		if rec.Code != tc.status || rec.Header().Get("WWW-Authenticate") != tc.challenge {
			t.Errorf("%s: %d %q, want %d %q", tc.e.Reason, rec.Code, rec.Header().Get("WWW-Authenticate"), tc.status, tc.challenge)
		}
	}
}

func TestStatusWriterSkipsInformational(t *testing.T) {
	rec := httptest.NewRecorder()
	w := &statusWriter{ResponseWriter: rec}
	w.WriteHeader(http.StatusEarlyHints)
	w.WriteHeader(http.StatusOK)
	if w.status != http.StatusOK {
		t.Errorf("status = %d, want 200", w.status)
	}
}
