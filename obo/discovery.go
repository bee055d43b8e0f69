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
