package config

import (
	"github.com/obo-gateway/obo-gateway/obo"
)

// Credential returns the gateway's client credential as configured:
// obo.ClientSecret, obo.SecretFile, an *obo.Certificate (loaded now, read
// again when its files change; onReload, which may be nil, hears of each
// reload), obo.AssertionFile or an *obo.ManagedIdentity.
func (c *Config) Credential(onReload func(thumbprint string, err error)) (obo.Credential, error) {
	cl := c.Client
	switch {
	case cl.Certificate.Configured():
		return obo.NewCertificate(obo.CertificateConfig{
			CertFile: cl.Certificate.File,
			KeyFile:  cl.Certificate.KeyFile,
			SendX5C:  bool(cl.Certificate.SendX5C),
			OnReload: onReload,
		})
	case cl.ManagedIdentity != nil:
		return c.managedIdentityCredential()
	case cl.AssertionFile != "":
		return obo.AssertionFile(cl.AssertionFile), nil
	case cl.SecretFile != "":
		return obo.SecretFile(cl.SecretFile), nil
	default:
		return obo.ClientSecret(cl.Secret), nil
	}
}

// V1Authority returns the discovery base of the authority's v1 endpoints,
// whose issuer v1 access tokens carry, or "" when v1 tokens do not apply:
// the protocol is not entra, the issuer is configured explicitly, or
// authority.url does not end in /v2.0.
func (c *Config) V1Authority() string {
	if c.Authority.Protocol == obo.ProtocolRFC8693 || c.Authority.Issuer != "" {
		return ""
	}
	return obo.V1Authority(c.Authority.URL)
}
