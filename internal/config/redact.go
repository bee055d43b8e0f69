package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/obo-gateway/obo-gateway/internal/smallfile"
)

// ClientSecret returns the client secret: Client.Secret when it is set,
// otherwise the content of Client.SecretFile with surrounding white space
// removed. The file is read on every call, so that a rotated secret is
// picked up. The error never contains the secret.
func (c *Config) ClientSecret() (string, error) {
	if c.Client.Secret != "" {
		return c.Client.Secret, nil
	}
	if c.Client.SecretFile == "" {
		return "", errors.New("client: no client secret is configured (set client.secret or client.secret_file)")
	}
	secret, err := smallfile.ReadSecret(c.Client.SecretFile)
	if err != nil {
		return "", fmt.Errorf("client.secret_file: %w", err)
	}
	return secret, nil
}

// Redacted returns a deep copy of c that is safe to log: Client.Secret is
// replaced by "REDACTED" when it is set. c itself is not modified.
func (c *Config) Redacted() *Config {
	r := *c
	if r.Client.Secret != "" {
		r.Client.Secret = "REDACTED"
	}
	if r.Cache.Redis.Password != "" {
		r.Cache.Redis.Password = "REDACTED"
	}
	// Validation refuses a password in the URL; a configuration that was
	// not validated is still logged without it.
	if u, err := url.Parse(r.Cache.Redis.URL); err == nil && u.User != nil {
		r.Cache.Redis.URL = u.Redacted()
	} else if err != nil && strings.Contains(r.Cache.Redis.URL, "@") {
		r.Cache.Redis.URL = "REDACTED"
	}
	r.Client.Capabilities = cloneStrings(c.Client.Capabilities)
	r.Inbound.Audiences = cloneStrings(c.Inbound.Audiences)
	r.Inbound.AllowedTenants = cloneStrings(c.Inbound.AllowedTenants)
	r.Inbound.RequiredScopes = cloneStrings(c.Inbound.RequiredScopes)
	r.Inbound.Algorithms = cloneStrings(c.Inbound.Algorithms)
	r.Inbound.StripHeaders = cloneStrings(c.Inbound.StripHeaders)
	r.Agents.Identities = cloneStrings(c.Agents.Identities)
	r.Agents.Tenants = cloneStrings(c.Agents.Tenants)
	r.TokenAPI.AllowOverrides = cloneStrings(c.TokenAPI.AllowOverrides)
	if c.Routes != nil {
		r.Routes = make([]Route, len(c.Routes))
		for i, route := range c.Routes {
			route.Scopes = cloneStrings(route.Scopes)
			route.AllowOverrides = cloneStrings(route.AllowOverrides)
			r.Routes[i] = route
		}
	}
	return &r
}

func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s...)
}
