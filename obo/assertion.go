package obo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/cert"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/obo-gateway/obo-gateway/internal/smallfile"
)

// ClientAssertionType is the client_assertion_type of a JWT client
// assertion (RFC 7523), for certificates and federated tokens alike.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionLifetime is the lifetime of the client assertions the
// certificate credential signs: exp = nbf + AssertionLifetime.
const AssertionLifetime = 10 * time.Minute

// CredentialError reports that the gateway could not produce its own
// client credential: a missing or empty secret, certificate or federated
// token file, an unusable certificate, a managed identity endpoint that
// gave no token. The request was not sent. Its
// message names the credential and the file but never contains the secret.
type CredentialError struct {
	// Credential names the kind: "secret_file", "certificate",
	// "assertion_file" or "managed_identity".
	Credential string
	// Err says what is wrong.
	Err error
}

// Error returns "obo: client credential (<kind>): <what is wrong>".
func (e *CredentialError) Error() string {
	return "obo: client credential (" + e.Credential + "): " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *CredentialError) Unwrap() error { return e.Err }

// CertificateConfig configures a Certificate credential.
type CertificateConfig struct {
	// CertFile is the PEM file with the certificate and, optionally, its
	// chain. Required.
	CertFile string
	// KeyFile is the PEM file with the private key; empty means the key is
	// in CertFile.
	KeyFile string
	// SendX5C adds the certificate chain as the x5c header of each
	// assertion, for subject name and issuer authentication.
	SendX5C bool
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// OnReload, when set, is called after the files changed and were read
	// again, with the thumbprint of the certificate now in use and the
	// error that prevented the reload, if any (the previous certificate
	// stays in use then). It is called once per change of the files.
	OnReload func(thumbprint string, err error)
}

// Certificate is the certificate credential (private_key_jwt): each token
// request carries a client_assertion JWT signed with the certificate's key,
// with header alg (PS256 for RSA keys, ES256/ES384/ES512 for EC keys), typ
// "JWT", x5t#S256 and, when configured, x5c; and claims aud = the token
// endpoint, iss = sub = the client id, a unique jti, nbf = now and exp =
// now + AssertionLifetime.
//
// A signed assertion is reused for the same token endpoint until two
// minutes before it expires, which saves signing on every exchange. The
// certificate and key files are checked for changes on every request and
// read again when they change, so a rotated certificate (a renewed
// Kubernetes Secret) is used without a restart. Certificate is safe for
// concurrent use.
type Certificate struct {
	cfg CertificateConfig

	mu     sync.Mutex
	ck     *CertificateKey
	alg    jwa.SignatureAlgorithm
	header jws.Headers // the JOSE header of the current certificate, alg aside
	stamps [2]smallfile.Stamp
	failed [2]smallfile.Stamp // stamps of the last failed reload, reported once
}

// NewCertificate loads the certificate and key and returns the credential.
// It fails when the files cannot be read or do not hold a usable pair.
func NewCertificate(cfg CertificateConfig) (*Certificate, error) {
	if cfg.CertFile == "" {
		return nil, &CredentialError{Credential: "certificate", Err: fmt.Errorf("no certificate file configured")}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Certificate{cfg: cfg}
	stamps, err := c.stat()
	if err != nil {
		return nil, &CredentialError{Credential: "certificate", Err: err}
	}
	if err := c.load(stamps); err != nil {
		return nil, &CredentialError{Credential: "certificate", Err: err}
	}
	return c, nil
}

func (c *Certificate) stat() ([2]smallfile.Stamp, error) {
	var s [2]smallfile.Stamp
	var err error
	if s[0], err = smallfile.StampOf(c.cfg.CertFile); err != nil {
		return s, err
	}
	if c.cfg.KeyFile != "" {
		if s[1], err = smallfile.StampOf(c.cfg.KeyFile); err != nil {
			return s, err
		}
	}
	return s, nil
}

// load reads and installs the files; the caller holds mu or owns c.
func (c *Certificate) load(stamps [2]smallfile.Stamp) error {
	ck, err := LoadCertificateKey(c.cfg.CertFile, c.cfg.KeyFile)
	if err != nil {
		return err
	}
	alg, ok := jwa.LookupSignatureAlgorithm(ck.Algorithm)
	if !ok {
		return fmt.Errorf("unsupported assertion algorithm %s", ck.Algorithm)
	}
	fields := map[string]any{jws.TypeKey: "JWT", jws.X509CertThumbprintS256Key: ck.Thumbprint()}
	if c.cfg.SendX5C {
		var chain cert.Chain
		for _, crt := range ck.Chain {
			if err := chain.Add(base64.StdEncoding.AppendEncode(nil, crt.Raw)); err != nil {
				return fmt.Errorf("assertion header x5c: %w", err)
			}
		}
		fields[jws.X509CertChainKey] = &chain
	}
	h := jws.NewHeaders()
	for k, v := range fields {
		if err := h.Set(k, v); err != nil {
			return fmt.Errorf("assertion header %s: %w", k, err)
		}
	}
	c.ck, c.alg, c.header, c.stamps = ck, alg, h, stamps
	return nil
}

// reloadIfChanged reads the files again when their stamps changed. A failed
// reload keeps the previous certificate and is reported to OnReload once.
func (c *Certificate) reloadIfChanged() {
	stamps, err := c.stat()
	if err == nil && stamps == c.stamps {
		return
	}
	if err == nil && stamps == c.failed {
		return // already reported; wait for the next change
	}
	if err == nil {
		err = c.load(stamps)
	}
	if err != nil {
		c.failed = stamps
	}
	if c.cfg.OnReload != nil {
		c.cfg.OnReload(c.ck.Thumbprint(), err)
	}
}

// Thumbprint returns the x5t#S256 of the certificate in use.
func (c *Certificate) Thumbprint() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ck.Thumbprint()
}

// NotAfter returns the expiry of the certificate in use.
func (c *Certificate) NotAfter() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ck.Leaf().NotAfter
}

// Apply sets client_assertion_type and a client_assertion for tokenEndpoint,
// with the client id the form carries (client_id) as iss and sub.
func (c *Certificate) Apply(_ context.Context, tokenEndpoint string, form url.Values) error {
	jwt, err := c.Assertion(form.Get("client_id"), tokenEndpoint)
	if err != nil {
		return err
	}
	form.Set("client_assertion_type", ClientAssertionType)
	form.Set("client_assertion", jwt)
	return nil
}

// Assertion returns a newly signed client assertion of clientID for the
// token endpoint audience, reading the files again first if they changed.
// Every assertion has a jti of its own: an authority may refuse one it has
// seen (RFC 7523, section 3; Keycloak does), so none is sent twice, retries
// included.
func (c *Certificate) Assertion(clientID, audience string) (string, error) {
	if clientID == "" || audience == "" {
		return "", &CredentialError{Credential: "certificate", Err: fmt.Errorf("client id and token endpoint are required")}
	}
	// The lock covers the files and the certificate in use, not the
	// signature: an RSA signature takes a millisecond or more, and a burst
	// of first requests signs one per exchange. A reload replaces the
	// header rather than changing it, and jws.Sign copies it.
	c.mu.Lock()
	c.reloadIfChanged()
	now := c.cfg.Now()
	if err := c.ck.CheckValidity(now); err != nil {
		c.mu.Unlock()
		return "", &CredentialError{Credential: "certificate", Err: err}
	}
	key, alg, header := c.ck.Key, c.alg, c.header
	c.mu.Unlock()
	claims := assertionClaims{
		Aud: audience, Iss: clientID, Sub: clientID, JTI: newJTI(),
		NBF: now.Unix(), Exp: now.Add(AssertionLifetime).Unix(),
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", &CredentialError{Credential: "certificate", Err: fmt.Errorf("encode assertion claims: %w", err)}
	}
	signed, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(header)))
	if err != nil {
		return "", &CredentialError{Credential: "certificate", Err: fmt.Errorf("sign assertion: %w", err)}
	}
	return string(signed), nil
}

// assertionClaims are the claims of a client assertion, in the order
// MSAL writes them.
type assertionClaims struct {
	Aud string `json:"aud"`
	Exp int64  `json:"exp"`
	Iss string `json:"iss"`
	JTI string `json:"jti"`
	NBF int64  `json:"nbf"`
	Sub string `json:"sub"`
}

// String describes the credential without its key.
func (c *Certificate) String() string { return "certificate " + c.Thumbprint() }

// newJTI returns a random version 4 UUID, the unique id of an assertion.
func newJTI() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
