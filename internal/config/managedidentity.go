package config

import (
	"cmp"
	"net/url"
	"strings"

	"github.com/obo-gateway/obo-gateway/internal/idshape"
	"github.com/obo-gateway/obo-gateway/obo"
)

// The variables Azure hosts set for their managed identity endpoint.
const (
	// EnvIdentityEndpoint and EnvIdentityHeader are set by App Service and
	// Container Apps: the endpoint's URL and the secret it expects in the
	// X-IDENTITY-HEADER header.
	EnvIdentityEndpoint = "IDENTITY_ENDPOINT"
	EnvIdentityHeader   = "IDENTITY_HEADER"
	// EnvIdentityServerThumbprint is set by Service Fabric, EnvIMDSEndpoint
	// by Azure Arc; neither is supported.
	EnvIdentityServerThumbprint = "IDENTITY_SERVER_THUMBPRINT"
	EnvIMDSEndpoint             = "IMDS_ENDPOINT"
)

// ManagedIdentity is the managed identity credential: the gateway presents
// a token of the host's managed identity, which the application trusts
// through a federated credential. Written as managed_identity: {} for the
// system-assigned identity.
//
// Parse records the host's endpoint variables (IDENTITY_ENDPOINT and
// IDENTITY_HEADER); without them, as in a ManagedIdentity built in code,
// tokens come from the Instance Metadata Service.
type ManagedIdentity struct {
	// ClientID is the client id of a user-assigned managed identity; empty
	// means the system-assigned identity.
	ClientID string `yaml:"client_id"`

	// env holds the endpoint variables Parse found, by name.
	env map[string]string
}

// applyManagedIdentity makes a managed_identity key without a value the
// system-assigned identity and records the endpoint variables; present
// says whether the file has the key.
func (c *Config) applyManagedIdentity(present bool, lookupEnv func(string) (string, bool)) {
	if c.Client.ManagedIdentity == nil && present {
		c.Client.ManagedIdentity = &ManagedIdentity{}
	}
	m := c.Client.ManagedIdentity
	if m == nil {
		return
	}
	m.env = make(map[string]string)
	for _, name := range []string{EnvIdentityEndpoint, EnvIdentityHeader, EnvIdentityServerThumbprint, EnvIMDSEndpoint} {
		if v, _ := lookupEnv(name); strings.TrimSpace(v) != "" {
			m.env[name] = strings.TrimSpace(v)
		}
	}
}

// validateManagedIdentity checks client.managed_identity: the client id
// and the endpoint variables.
func (c *Config) validateManagedIdentity(v *validator) {
	mi := c.Client.ManagedIdentity
	const key = "client.managed_identity"
	switch {
	case mi.ClientID == "":
	case !idshape.IsGUID(mi.ClientID):
		v.add(key+".client_id", "%q must be the client id (a GUID) of a user-assigned managed identity", mi.ClientID)
	case strings.EqualFold(mi.ClientID, c.Client.ID):
		v.add(key+".client_id", "is client.id: it must be the managed identity's client id, and client.id that of the application that trusts the identity")
	}
	endpoint, header := mi.env[EnvIdentityEndpoint], mi.env[EnvIdentityHeader]
	switch {
	case mi.env[EnvIdentityServerThumbprint] != "":
		v.add(key, "%s is set: Service Fabric's managed identity endpoint is not supported", EnvIdentityServerThumbprint)
	case endpoint != "" && mi.env[EnvIMDSEndpoint] != "":
		v.add(key, "%s and %s are set: Azure Arc's managed identity endpoint is not supported", EnvIdentityEndpoint, EnvIMDSEndpoint)
	case endpoint != "" && header == "":
		v.add(key, "%s is set but %s is not; App Service and Container Apps set both", EnvIdentityEndpoint, EnvIdentityHeader)
	case endpoint != "":
		if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(key, "%s %q is not an http(s) URL", EnvIdentityEndpoint, endpoint)
		}
	}
}

// managedIdentityCredential returns the credential, with the authority's
// deadline and retries for its requests.
func (c *Config) managedIdentityCredential() (obo.Credential, error) {
	mi := c.Client.ManagedIdentity
	return obo.NewManagedIdentity(obo.ManagedIdentityConfig{
		ClientID: mi.ClientID,
		Endpoint: mi.env[EnvIdentityEndpoint],
		Header:   mi.env[EnvIdentityHeader],
		Timeout:  c.Authority.Timeout.D(),
		// In the file 0 turns retries off; obo says that with -1.
		Retries: cmp.Or(c.Authority.Retries, -1),
	})
}
