package localidp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/idshape"
)

// validTenantID reports whether t can name a hosted tenant: a GUID or a
// domain name, not one of the multi-tenant names and not "sts" (the path of
// the v1 issuers).
func validTenantID(t string) bool {
	return idshape.IsTenantName(t) && !isMultiTenant(t) && !strings.EqualFold(t, "sts")
}

// isMultiTenant reports whether tenant is "common" or "organizations",
// the names that stand for any tenant.
func isMultiTenant(tenant string) bool {
	return strings.EqualFold(tenant, "common") || strings.EqualFold(tenant, "organizations")
}

// Tenants returns the hosted tenants: TenantID first, then the guest
// tenants in the order of Options.GuestTenants.
func (s *Server) Tenants() []string { return append([]string(nil), s.tenantList...) }

// AuthorityFor returns the authority URL of tenant, BaseURL()/{tenant}/v2.0.
// With "common" or "organizations" it is the multi-tenant authority, whose
// discovery document carries the issuer template
// BaseURL()/{tenantid}/v2.0.
func (s *Server) AuthorityFor(tenant string) string { return s.baseURL + "/" + tenant + "/v2.0" }

// IssuerFor returns the issuer of the v2 tokens of tenant tid,
// BaseURL()/{tid}/v2.0, like https://login.microsoftonline.com/{tid}/v2.0.
func (s *Server) IssuerFor(tid string) string { return s.AuthorityFor(tid) }

// V1IssuerFor returns the issuer of the v1 tokens of tenant tid,
// BaseURL()/sts/{tid}/, the local stand-in for
// https://sts.windows.net/{tid}/. The v1 discovery document,
// BaseURL()/{tenant}/.well-known/openid-configuration, announces it.
func (s *Server) V1IssuerFor(tid string) string { return s.baseURL + "/sts/" + tid + "/" }

// TokenEndpointFor returns the token endpoint of tenant,
// BaseURL()/{tenant}/oauth2/v2.0/token.
func (s *Server) TokenEndpointFor(tenant string) string {
	return s.baseURL + "/" + tenant + "/oauth2/v2.0/token"
}

// ServiceAccountIssuer returns the issuer of the tokens
// IssueServiceAccountToken mints, BaseURL()/serviceaccounts: the local
// stand-in for a Kubernetes cluster's OIDC issuer.
func (s *Server) ServiceAccountIssuer() string { return s.baseURL + "/serviceaccounts" }

// HTTPClient returns an HTTP client for the server: with Options.TLS it
// trusts the server's self-signed certificate.
func (s *Server) HTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if s.tlsCert != nil {
		pool := x509.NewCertPool()
		pool.AddCert(s.tlsCert)
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// TLSCertificate returns the server's self-signed certificate, or nil
// without Options.TLS.
func (s *Server) TLSCertificate() *x509.Certificate { return s.tlsCert }

// selfSignedCertificate returns a P-256 certificate for 127.0.0.1, ::1
// and localhost, valid for a day.
func selfSignedCertificate() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("localidp: TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("localidp: TLS serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localidp"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("localidp: TLS certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("localidp: TLS certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
