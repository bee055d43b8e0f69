package obo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/idshape"
)

// seconds decodes a JSON number or a numeric string (Entra's v1 endpoint
// sends expires_in as a string).
type seconds int64

func (s *seconds) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(b, `"`)
	if len(b) == 0 || string(b) == "null" {
		*s = 0
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f < 0 || f > 1e9 {
		return errNotSeconds // without the value: the body may hold anything
	}
	*s = seconds(f)
	return nil
}

type tokenResponse struct {
	TokenType    string  `json:"token_type"`
	Scope        string  `json:"scope"`
	ExpiresIn    seconds `json:"expires_in"`
	ExtExpiresIn seconds `json:"ext_expires_in"`
	RefreshIn    seconds `json:"refresh_in"`
	AccessToken  string  `json:"access_token"`
	// IssuedTokenType is RFC 8693's issued_token_type, which Entra also
	// sends for SAML assertions.
	IssuedTokenType string `json:"issued_token_type"`
}

func parseToken(body []byte, now time.Time) (*Token, error) {
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("obo: decode token response: %w", bodyError(err))
	}
	if tr.AccessToken == "" {
		return nil, errors.New("obo: token response has no access_token")
	}
	if tr.ExpiresIn <= 0 {
		return nil, errors.New("obo: token response has no positive expires_in")
	}
	if !idshape.IsB64Token(tr.AccessToken) {
		return nil, errors.New("obo: token response: access_token is not a b64token (RFC 6750): it cannot be sent in a header")
	}
	if tr.TokenType == "" {
		tr.TokenType = "Bearer"
	}
	if !idshape.IsAuthScheme(tr.TokenType) {
		return nil, errors.New("obo: token response: token_type is not an HTTP token (RFC 9110): it cannot be an authentication scheme")
	}
	t := &Token{
		AccessToken: tr.AccessToken,
		TokenType:   tr.TokenType,
		Scope:       tr.Scope,
		IssuedAt:    now,
		ExpiresAt:   now.Add(time.Duration(tr.ExpiresIn) * time.Second),
		RefreshIn:   time.Duration(tr.RefreshIn) * time.Second,

		IssuedTokenType: tr.IssuedTokenType,
	}
	if tr.ExtExpiresIn > 0 {
		t.ExtExpiresAt = now.Add(time.Duration(tr.ExtExpiresIn) * time.Second)
	}
	return t, nil
}

func parseError(res *http.Response, body []byte, now time.Time) *Error {
	e := &Error{}
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if err := json.Unmarshal(body, e); err != nil || (e.Code == "" && mt != "application/json") {
		// Not an OAuth error document (a proxy's HTML page, say): keep the
		// status only; the body may echo anything.
		e = &Error{Code: "", Description: fmt.Sprintf("non-OAuth answer (%s)", mt)}
	}
	e.StatusCode = res.StatusCode
	e.RetryAfter = parseRetryAfter(res.Header.Get("Retry-After"), now)
	return e
}
