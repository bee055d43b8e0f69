package obo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxDocumentBytes bounds every document read from the authority.
const maxDocumentBytes = 1 << 20

// Metadata is the part of an OpenID Connect discovery document the gateway
// uses.
type Metadata struct {
	// Issuer is the value token A's "iss" claim must carry. For the
	// multi-tenant Entra authorities it may contain the literal "{tenantid}".
	Issuer string `json:"issuer"`
	// JWKSURI is where the authority publishes its signing keys.
	JWKSURI string `json:"jwks_uri"`
	// TokenEndpoint is where the On-Behalf-Of and client credentials
	// requests are sent.
	TokenEndpoint string `json:"token_endpoint"`
}

// DiscoveryURL returns the address of the discovery document of authority,
// "<authority>/.well-known/openid-configuration".
func DiscoveryURL(authority string) string {
	return strings.TrimRight(authority, "/") + "/.well-known/openid-configuration"
}

// Discover fetches and checks the discovery document of authority. The
// returned Metadata has all three fields set.
func Discover(ctx context.Context, hc *http.Client, authority string) (*Metadata, error) {
	u := DiscoveryURL(authority)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("obo: discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		return nil, &UnavailableError{Op: "discovery", Err: err}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxDocumentBytes))
	if err != nil {
		return nil, &UnavailableError{Op: "discovery", Err: err}
	}
	if res.StatusCode != http.StatusOK {
		return nil, &UnavailableError{Op: "discovery", Err: fmt.Errorf("GET %s: status %d, want 200", u, res.StatusCode)}
	}
	var md Metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, fmt.Errorf("obo: discovery: decode %s: %w", u, err)
	}
	var missing []string
	if md.Issuer == "" {
		missing = append(missing, "issuer")
	}
	if md.JWKSURI == "" {
		missing = append(missing, "jwks_uri")
	}
	if md.TokenEndpoint == "" {
		missing = append(missing, "token_endpoint")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("obo: discovery: %s lacks %s", u, strings.Join(missing, ", "))
	}
	return &md, nil
}

// V1Authority returns the Entra v1 authority that belongs to a v2 authority
// URL ("https://login.microsoftonline.com/<tenant>/v2.0" gives
// "https://login.microsoftonline.com/<tenant>"), or "" when authority does
// not end in "/v2.0".
func V1Authority(authority string) string {
	a := strings.TrimRight(authority, "/")
	if !strings.HasSuffix(a, "/v2.0") {
		return ""
	}
	return strings.TrimSuffix(a, "/v2.0")
}

// DiscoverIssuer fetches the discovery document of authority and returns
// its issuer. It reports found = false, without an error, when the
// authority has no such document (it answers 400 or 404): the v1 endpoints
// of an Entra authority exist, those of other authorities usually do not.
// The issuer of Entra's v1 documents is "https://sts.windows.net/<tid>/"
// (or that of the national cloud), with "{tenantid}" for multi-tenant
// authorities.
func DiscoverIssuer(ctx context.Context, hc *http.Client, authority string) (issuer string, found bool, err error) {
	u := DiscoveryURL(authority)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", false, fmt.Errorf("obo: discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		return "", false, &UnavailableError{Op: "discovery", Err: err}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxDocumentBytes))
	if err != nil {
		return "", false, &UnavailableError{Op: "discovery", Err: err}
	}
	switch {
	case res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusBadRequest:
		return "", false, nil
	case res.StatusCode != http.StatusOK:
		return "", false, &UnavailableError{Op: "discovery", Err: fmt.Errorf("GET %s: status %d, want 200", u, res.StatusCode)}
	}
	var md struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(body, &md); err != nil || md.Issuer == "" {
		return "", false, nil
	}
	return md.Issuer, true, nil
}
