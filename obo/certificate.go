package obo

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/smallfile"
)

// CertificateKey is a client certificate with its private key, as loaded
// from PEM files: the certificate chain with the certificate of the key
// (the leaf) first, and the key.
type CertificateKey struct {
	// Chain holds the leaf certificate first, then the other certificates
	// of the file in their order.
	Chain []*x509.Certificate
	// Key is the private key of Chain[0]: an *rsa.PrivateKey or an
	// *ecdsa.PrivateKey.
	Key crypto.Signer
	// Algorithm is the JWS algorithm client assertions are signed with:
	// PS256 for RSA keys, ES256, ES384 or ES512 for EC keys on P-256, P-384
	// or P-521.
	Algorithm string
}

// Leaf returns the certificate of the key.
func (ck *CertificateKey) Leaf() *x509.Certificate { return ck.Chain[0] }

// Thumbprint returns the x5t#S256 value of the leaf certificate: the
// base64url SHA-256 of its DER encoding, without padding. It identifies the
// certificate in the app registration and in logs; it is not secret.
func (ck *CertificateKey) Thumbprint() string { return CertificateThumbprint(ck.Leaf()) }

// CertificateThumbprint returns the x5t#S256 value of cert: the base64url
// SHA-256 of its DER encoding, without padding.
func CertificateThumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// minRSABits is the smallest RSA key the Microsoft identity platform
// accepts for certificate credentials.
const minRSABits = 2048

// LoadCertificateKey reads a PEM certificate chain from certFile and a PEM
// private key from keyFile (or from certFile when keyFile is empty) and
// checks that they belong together. See ParseCertificateKey for what is
// accepted. Errors name the file and say what is wrong; they never contain
// key material.
func LoadCertificateKey(certFile, keyFile string) (*CertificateKey, error) {
	certPEM, err := smallfile.Read(certFile)
	if err != nil {
		return nil, fmt.Errorf("read certificate file: %w", err)
	}
	keyPEM := certPEM
	keyName := certFile
	if keyFile != "" {
		keyName = keyFile
		if keyPEM, err = smallfile.Read(keyFile); err != nil {
			return nil, fmt.Errorf("read key file: %w", err)
		}
	}
	ck, err := ParseCertificateKey(certPEM, keyPEM)
	if err != nil {
		var ke *keyError
		if errors.As(err, &ke) {
			return nil, fmt.Errorf("%s: %w", keyName, err)
		}
		return nil, fmt.Errorf("%s: %w", certFile, err)
	}
	return ck, nil
}

// keyError marks a problem with the key file rather than the certificate
// file.
type keyError struct{ msg string }

func (e *keyError) Error() string { return e.msg }

// ParseCertificateKey parses a PEM certificate chain (one or more
// CERTIFICATE blocks) and a PEM private key: RSA (PKCS#1 "RSA PRIVATE KEY"
// or PKCS#8 "PRIVATE KEY", at least 2048 bits) or EC on P-256, P-384 or
// P-521 (SEC 1 "EC PRIVATE KEY" or PKCS#8). Encrypted keys are refused with
// a message saying how to decrypt them. The certificate whose public key
// matches the private key becomes the leaf; the key must match one of them.
// keyPEM may be the same bytes as certPEM (a combined file).
func ParseCertificateKey(certPEM, keyPEM []byte) (*CertificateKey, error) {
	var certs []*x509.Certificate
	rest := certPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d is not a valid X.509 certificate: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found (expected a PEM file starting with -----BEGIN CERTIFICATE-----)")
	}
	key, err := parsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	alg, err := assertionAlgorithm(key)
	if err != nil {
		return nil, &keyError{err.Error()}
	}
	leaf := -1
	for i, c := range certs {
		if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); ok && pub.Equal(c.PublicKey) {
			leaf = i
			break
		}
	}
	if leaf < 0 {
		return nil, &keyError{"the private key belongs to none of the certificates in the certificate file"}
	}
	chain := append([]*x509.Certificate{certs[leaf]}, certs[:leaf]...)
	chain = append(chain, certs[leaf+1:]...)
	return &CertificateKey{Chain: chain, Key: key, Algorithm: alg}, nil
}

// parsePrivateKeyPEM finds the private key in data.
func parsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, &keyError{"no PEM private key block found (expected RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY)"}
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || (strings.HasSuffix(b.Type, "PRIVATE KEY") && strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED")) {
			return nil, &keyError{"the private key is encrypted, which the gateway does not support: " +
				"decrypt it (openssl pkey -in key.pem -out key-decrypted.pem) and protect the file with permissions or a Kubernetes Secret instead"}
		}
		var (
			k   any
			err error
		)
		switch b.Type {
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, &keyError{fmt.Sprintf("the %s block is not a valid key: %v", b.Type, err)}
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return nil, &keyError{"Ed25519 keys are not supported for client assertions: use an RSA (2048 bits or more) or EC P-256 key"}
		default:
			return nil, &keyError{fmt.Sprintf("unsupported private key type %T: use an RSA or EC key", k)}
		}
	}
}

// assertionAlgorithm returns the JWS algorithm for key.
func assertionAlgorithm(key crypto.Signer) (string, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return "", fmt.Errorf("the RSA key has %d bits; at least %d are required", bits, minRSABits)
		}
		return "PS256", nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return "ES256", nil
		case elliptic.P384():
			return "ES384", nil
		case elliptic.P521():
			return "ES512", nil
		}
		return "", fmt.Errorf("the EC key is on curve %s; use P-256, P-384 or P-521", k.Curve.Params().Name)
	}
	return "", fmt.Errorf("unsupported private key type %T", key)
}

// CheckValidity returns an error when the leaf certificate is not valid at
// now: the authority refuses assertions signed with an expired certificate.
func (ck *CertificateKey) CheckValidity(now time.Time) error {
	leaf := ck.Leaf()
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("the certificate (x5t#S256 %s) expired on %s", ck.Thumbprint(), leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("the certificate (x5t#S256 %s) is not valid before %s", ck.Thumbprint(), leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}
