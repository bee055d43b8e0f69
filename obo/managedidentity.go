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
	"sync"
	"time"
)

// DefaultIMDSEndpoint is the token endpoint of the Azure Instance Metadata
// Service, which serves a VM's managed identities.
const DefaultIMDSEndpoint = "http://169.254.169.254/metadata/identity/oauth2/token"

// The API versions the managed identity endpoints are called with, as the
// Azure SDKs call them.
const (
	imdsAPIVersion       = "2018-02-01"
	appServiceAPIVersion = "2019-08-01"
)

// The audiences of a managed identity's token presented as a federated
// client assertion, one per cloud: Entra trusts a federated credential's
// token only for its cloud's audience.
const (
	FederatedAudiencePublic = "api://AzureADTokenExchange"
	FederatedAudienceUSGov  = "api://AzureADTokenExchangeUSGov"
	FederatedAudienceChina  = "api://AzureADTokenExchangeChina"
)

// FederatedAudience returns the audience of federated client assertions for
// the cloud of tokenEndpoint: FederatedAudienceUSGov for
// login.microsoftonline.us, FederatedAudienceChina for
// login.chinacloudapi.cn (and login.partner.microsoftonline.cn), otherwise
// FederatedAudiencePublic.
func FederatedAudience(tokenEndpoint string) string {
	u, err := url.Parse(tokenEndpoint)
	if err != nil {
		return FederatedAudiencePublic
	}
	switch strings.ToLower(u.Hostname()) {
	case "login.microsoftonline.us":
		return FederatedAudienceUSGov
	case "login.chinacloudapi.cn", "login.partner.microsoftonline.cn":
		return FederatedAudienceChina
	}
	return FederatedAudiencePublic
}

// Managed identity token lifetimes: a token is fetched again when less than
// miRefreshBefore of it is left, and stays in use while that fetch runs or
// after it failed until miUsableBefore before it expires.
const (
	miRefreshBefore = 5 * time.Minute
	miUsableBefore  = time.Minute
)

// ManagedIdentityConfig configures a ManagedIdentity credential.
type ManagedIdentityConfig struct {
	// ClientID is the client id of a user-assigned managed identity; empty
	// means the system-assigned identity.
	ClientID string
	// Endpoint and Header are the values of IDENTITY_ENDPOINT and
	// IDENTITY_HEADER, which App Service and Container Apps set. When both
	// are set, tokens come from Endpoint (API version 2019-08-01, the
	// header sent as X-IDENTITY-HEADER); otherwise from the Instance
	// Metadata Service.
	Endpoint, Header string
	// IMDSEndpoint replaces DefaultIMDSEndpoint. Only tests and the local
	// demo set it.
	IMDSEndpoint string
	// HTTPClient sends the requests; nil means a client without proxy
	// that never follows redirects (the endpoints are the host's own).
	HTTPClient *http.Client
	// Timeout bounds one fetch of a token, its retries included, on top of
	// the caller's context. Zero means DefaultTimeout.
	Timeout time.Duration
	// Retries, RetryBaseDelay and RetryMaxDelay retry a fetch that failed
	// with a temporary fault (no connection, no answer in time, 429, 5xx,
	// and IMDS's 404 and 410 while an identity is being assigned), as
	// Config's fields of the same names do for token requests.
	Retries                       int
	RetryBaseDelay, RetryMaxDelay time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// ManagedIdentity is the managed identity credential: the token of the
// host's managed identity for the cloud's federated audience, sent as the
// client_assertion to an application that trusts the identity through a
// federated credential (issuer the tenant's login URL, subject the
// identity's object id).
//
// The token is cached until shortly before it expires and refreshed in the
// background before that; concurrent requests share one fetch. A failed
// fetch is a *CredentialError naming the endpoint and what it answered,
// never a token or the identity header. It is safe for concurrent use.
type ManagedIdentity struct {
	cfg      ManagedIdentityConfig
	endpoint *url.URL
	source   string // "App Service" or "IMDS", for messages
	retry    retryPolicy

	mu       sync.Mutex
	tokens   map[string]miToken  // by audience
	inflight map[string]*miFetch // by audience
}

type miToken struct {
	value                 string
	refreshAt, usableTill time.Time
}

// miFetch is one fetch in progress, which every caller of its audience
// waits for.
type miFetch struct {
	done chan struct{}
	tok  miToken
	err  error
}

// NewManagedIdentity chooses the endpoint and returns the credential.
func NewManagedIdentity(cfg ManagedIdentityConfig) (*ManagedIdentity, error) {
	m := &ManagedIdentity{
		cfg:      cfg,
		tokens:   make(map[string]miToken),
		inflight: make(map[string]*miFetch),
		retry: retryPolicy{
			retries: orDefault(cfg.Retries, DefaultRetries),
			base:    orDefault(cfg.RetryBaseDelay, DefaultRetryBaseDelay),
			maxWait: orDefault(cfg.RetryMaxDelay, DefaultRetryMaxDelay),
		},
	}
	raw, version := cmp.Or(cfg.IMDSEndpoint, DefaultIMDSEndpoint), imdsAPIVersion
	m.source = "IMDS"
	if cfg.Endpoint != "" && cfg.Header != "" {
		raw, version, m.source = cfg.Endpoint, appServiceAPIVersion, "App Service"
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &CredentialError{Credential: "managed_identity", Err: fmt.Errorf("the %s endpoint %q is not an http(s) URL", m.source, raw)}
	}
	q := u.Query()
	q.Set("api-version", version)
	u.RawQuery = q.Encode()
	m.endpoint = u
	if m.cfg.HTTPClient == nil {
		t := NewTransport()
		t.Proxy = nil
		m.cfg.HTTPClient = &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	if m.cfg.Timeout <= 0 {
		m.cfg.Timeout = DefaultTimeout
	}
	if m.cfg.Now == nil {
		m.cfg.Now = time.Now
	}
	return m, nil
}

// Apply sets client_assertion_type and the managed identity's token for
// the federated audience of tokenEndpoint's cloud as the client_assertion.
func (m *ManagedIdentity) Apply(ctx context.Context, tokenEndpoint string, form url.Values) error {
	tok, err := m.Token(ctx, FederatedAudience(tokenEndpoint))
	if err != nil {
		return err
	}
	form.Set("client_assertion_type", ClientAssertionType)
	form.Set("client_assertion", tok)
	return nil
}

// Token returns the managed identity's token for audience: the cached one,
// or one fetched now. Past its refresh time a token that is still usable is
// returned at once while a new one is fetched in the background, so that
// an endpoint failing then delays no exchange.
func (m *ManagedIdentity) Token(ctx context.Context, audience string) (string, error) {
	m.mu.Lock()
	now := m.cfg.Now()
	cached, ok := m.tokens[audience]
	if ok && now.Before(cached.refreshAt) {
		m.mu.Unlock()
		return cached.value, nil
	}
	f := m.inflight[audience]
	if f == nil {
		f = &miFetch{done: make(chan struct{})}
		m.inflight[audience] = f
		// The fetch outlives a caller that gives up: the others wait for it.
		go m.run(context.WithoutCancel(ctx), audience, f)
	}
	m.mu.Unlock()
	if ok && now.Before(cached.usableTill) {
		return cached.value, nil
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return "", &CredentialError{Credential: "managed_identity", Err: fmt.Errorf(
			"no answer from the %s endpoint %s before the deadline: %w", m.source, m.where(), ctx.Err())}
	}
	if f.err != nil {
		return "", f.err
	}
	return f.tok.value, nil
}

func (m *ManagedIdentity) run(ctx context.Context, audience string, f *miFetch) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	f.tok, f.err = m.fetch(ctx, audience)
	m.mu.Lock()
	if f.err == nil {
		m.tokens[audience] = f.tok
	}
	delete(m.inflight, audience)
	m.mu.Unlock()
	close(f.done)
}

// fetch asks the endpoint for a token, retrying temporary faults while the
// deadline of ctx leaves time for another attempt.
func (m *ManagedIdentity) fetch(ctx context.Context, audience string) (miToken, error) {
	for n := 1; ; n++ {
		tok, err := m.attempt(ctx, audience)
		if err == nil {
			return tok, nil
		}
		var fault *endpointFault
		temporary := errors.As(err, &fault) && fault.temporary
		if n > m.retry.retries || !temporary || ctx.Err() != nil {
			if n > 1 {
				err = fmt.Errorf("%w (after %d attempts)", err, n)
			}
			return miToken{}, &CredentialError{Credential: "managed_identity", Err: err}
		}
		d := m.retry.delay(n, nil)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= d+minAttemptTime {
			return miToken{}, &CredentialError{Credential: "managed_identity", Err: fmt.Errorf("%w (after %d attempts)", err, n)}
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

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

// String describes the credential without its token or header.
func (m *ManagedIdentity) String() string {
	id := "system-assigned"
	if m.cfg.ClientID != "" {
		id = "user-assigned " + m.cfg.ClientID
	}
	return "managed identity (" + id + ") from the " + m.source + " endpoint " + m.where()
}
