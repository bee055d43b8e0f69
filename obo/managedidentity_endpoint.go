package obo

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// endpointFault is a failed request to the managed identity endpoint.
type endpointFault struct {
	msg       string
	temporary bool
}

func (e *endpointFault) Error() string { return e.msg }

// where names the endpoint without its query.
func (m *ManagedIdentity) where() string {
	u := *m.endpoint
	u.RawQuery = ""
	return u.String()
}

// Request returns the request the credential sends for audience. The
// identity header, when there is one, is a secret: never log the request.
func (m *ManagedIdentity) Request(ctx context.Context, audience string) (*http.Request, error) {
	u := *m.endpoint
	q := u.Query()
	q.Set("resource", audience)
	if m.cfg.ClientID != "" {
		q.Set("client_id", m.cfg.ClientID)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if m.source == "IMDS" {
		req.Header.Set("Metadata", "true")
	} else {
		req.Header.Set("X-IDENTITY-HEADER", m.cfg.Header)
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

func (m *ManagedIdentity) attempt(ctx context.Context, audience string) (miToken, error) {
	req, err := m.Request(ctx, audience)
	if err != nil {
		return miToken{}, fmt.Errorf("%s request: %w", m.source, err)
	}
	res, err := m.cfg.HTTPClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL and its query
		}
		return miToken{}, &endpointFault{temporary: true, msg: fmt.Sprintf(
			"the %s endpoint %s could not be reached: %v (is the gateway running on Azure with a managed identity assigned?)", m.source, m.where(), err)}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxDocumentBytes))
	if err != nil {
		return miToken{}, &endpointFault{temporary: true, msg: fmt.Sprintf("the %s endpoint %s: reading the answer: %v", m.source, m.where(), err)}
	}
	if res.StatusCode != http.StatusOK {
		return miToken{}, m.refusal(res, body)
	}
	return m.parse(body)
}

// refusal describes an answer other than 200 by its status and the error
// code and description of its body, the shapes IMDS ({"error",
// "error_description"}) and App Service ({"statusCode", "message"}) send.
func (m *ManagedIdentity) refusal(res *http.Response, body []byte) error {
	var doc struct {
		Error       any    `json:"error"`
		Description string `json:"error_description"`
		Message     string `json:"message"`
	}
	detail := ""
	if json.Unmarshal(body, &doc) == nil {
		var parts []string
		switch e := doc.Error.(type) {
		case string:
			parts = append(parts, e)
		case map[string]any: // {"error": {"code", "message"}}
			if c, ok := e["code"].(string); ok {
				parts = append(parts, c)
			}
			if msg, ok := e["message"].(string); ok {
				parts = append(parts, msg)
			}
		}
		parts = append(parts, doc.Description, doc.Message)
		detail = oneLine(strings.Join(nonEmpty(parts), ": "))
	}
	if detail == "" {
		detail = fmt.Sprintf("%d bytes of %s", len(body), cmp.Or(res.Header.Get("Content-Type"), "no content type"))
	}
	s := res.StatusCode
	temporary := s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500 ||
		m.source == "IMDS" && (s == http.StatusNotFound || s == http.StatusGone)
	hint := ""
	if s == http.StatusBadRequest && m.cfg.ClientID != "" {
		hint = fmt.Sprintf(" (is the user-assigned identity %s assigned to this resource?)", m.cfg.ClientID)
	} else if s == http.StatusBadRequest {
		hint = " (is a system-assigned identity enabled on this resource?)"
	}
	return &endpointFault{temporary: temporary, msg: fmt.Sprintf("the %s endpoint %s answered %d: %s%s", m.source, m.where(), s, detail, hint)}
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// oneLine returns the first line of s, at most 300 bytes of it.
func oneLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return strings.TrimSpace(s)
}

// parse reads a token answer. expires_on is unix seconds, as a number or a
// string (IMDS, App Service 2019-08-01), or the date App Service's older
// API wrote; without it expires_in counts from now, and without both the
// token's own exp claim is used.
func (m *ManagedIdentity) parse(body []byte) (miToken, error) {
	var r struct {
		AccessToken string          `json:"access_token"`
		ExpiresOn   json.RawMessage `json:"expires_on"`
		ExpiresIn   seconds         `json:"expires_in"`
	}
	malformed := func(what string) error {
		return &endpointFault{msg: fmt.Sprintf("the %s endpoint %s answered 200 but %s", m.source, m.where(), what)}
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return miToken{}, malformed("not with a token: " + bodyError(err).Error())
	}
	if r.AccessToken == "" {
		return miToken{}, malformed("without an access_token")
	}
	now := m.cfg.Now()
	exp, ok := parseExpiresOn(r.ExpiresOn)
	if !ok && r.ExpiresIn > 0 {
		exp, ok = now.Add(time.Duration(r.ExpiresIn)*time.Second), true
	}
	if !ok {
		exp, ok = jwtExpiry(r.AccessToken)
	}
	if !ok {
		return miToken{}, malformed("without a usable expires_on or expires_in")
	}
	life := exp.Sub(now)
	if life <= 0 {
		return miToken{}, malformed("with a token that expired at " + exp.UTC().Format(time.RFC3339))
	}
	return miToken{
		value:      r.AccessToken,
		refreshAt:  exp.Add(-min(miRefreshBefore, life/2)),
		usableTill: exp.Add(-min(miUsableBefore, life/4)),
	}, nil
}

// parseExpiresOn reads expires_on: unix seconds as a JSON number or string,
// or App Service's "01/02/2006 15:04:05 -07:00".
func parseExpiresOn(raw json.RawMessage) (time.Time, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 && n < 1e11 {
		return time.Unix(n, 0), true
	}
	if t, err := time.Parse("01/02/2006 15:04:05 -07:00", s); err == nil {
		return t, true
	}
	return time.Time{}, false
}
