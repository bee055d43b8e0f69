package obo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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

// String describes the credential without its token or header.
func (m *ManagedIdentity) String() string {
	id := "system-assigned"
	if m.cfg.ClientID != "" {
		id = "user-assigned " + m.cfg.ClientID
	}
	return "managed identity (" + id + ") from the " + m.source + " endpoint " + m.where()
}
