package localidp

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/obo-gateway/obo-gateway/internal/safejson"
)

const rsaKeyBits = 2048

// signingKey is one RSA key pair of the server. The jwk.Key values are never
// modified after newSigningKey returns.
type signingKey struct {
	kid  string
	priv jwk.Key
	pub  jwk.Key
}

func newSigningKey() (*signingKey, error) {
	raw, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
	if err != nil {
		return nil, fmt.Errorf("localidp: generate RSA key: %w", err)
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		return nil, fmt.Errorf("localidp: import RSA key: %w", err)
	}
	// The key ID is the RFC 7638 thumbprint, like the opaque kids of Entra ID.
	if err := jwk.AssignKeyID(priv); err != nil {
		return nil, fmt.Errorf("localidp: assign key ID: %w", err)
	}
	kid, _ := priv.KeyID()
	for name, value := range map[string]any{
		jwk.AlgorithmKey: jwa.RS256(),
		jwk.KeyUsageKey:  jwk.ForSignature,
	} {
		if err := priv.Set(name, value); err != nil {
			return nil, fmt.Errorf("localidp: set %s: %w", name, err)
		}
	}
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		return nil, fmt.Errorf("localidp: public key: %w", err)
	}
	return &signingKey{kid: kid, priv: priv, pub: pub}, nil
}

// RotateKey generates a new RSA-2048 key, publishes it in the JWKS and makes
// it the key new tokens are signed with. The previous keys stay published
// until RemoveKey withdraws them. It returns the new key ID.
func (s *Server) RotateKey() (newKID string, err error) {
	k, err := newSigningKey()
	if err != nil {
		return "", err
	}
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	s.keys = append(s.keys, k)
	s.signer = k
	return k.kid, nil
}

// RemoveKey stops publishing the key with the given ID: it disappears from
// the JWKS and assertions signed with it are refused by the token endpoint.
// Removing the current signing key does not replace it: tokens signed
// afterwards carry a kid nobody publishes until RotateKey is called, which
// is occasionally what a test wants. Unknown IDs are ignored.
func (s *Server) RemoveKey(kid string) {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	kept := s.keys[:0]
	for _, k := range s.keys {
		if k.kid != kid {
			kept = append(kept, k)
		}
	}
	clear(s.keys[len(kept):])
	s.keys = kept
}

// KeyIDs returns the IDs of the published keys, oldest first.
func (s *Server) KeyIDs() []string {
	s.keysMu.RLock()
	defer s.keysMu.RUnlock()
	ids := make([]string, 0, len(s.keys))
	for _, k := range s.keys {
		ids = append(ids, k.kid)
	}
	return ids
}

// SigningKeyID returns the ID of the key new tokens are signed with.
func (s *Server) SigningKeyID() string {
	s.keysMu.RLock()
	defer s.keysMu.RUnlock()
	return s.signer.kid
}

func (s *Server) jwksJSON() ([]byte, error) {
	set := jwk.NewSet()
	s.keysMu.RLock()
	for _, k := range s.keys {
		if err := set.AddKey(k.pub); err != nil {
			s.keysMu.RUnlock()
			return nil, err
		}
	}
	s.keysMu.RUnlock()
	return json.Marshal(set)
}

// publishedKey returns the public key with the given ID, if it is published.
func (s *Server) publishedKey(kid string) (jwk.Key, bool) {
	s.keysMu.RLock()
	defer s.keysMu.RUnlock()
	for _, k := range s.keys {
		if k.kid == kid {
			return k.pub, true
		}
	}
	return nil, false
}

// SignClaims serialises claims as the JWT payload and signs it with the
// current signing key: compact JWS, RS256, protected header {alg, kid, typ
// "JWT"}. Nothing about the claims is checked, so tests can build hostile
// tokens (wrong types, missing exp, foreign issuer, ...).
func (s *Server) SignClaims(claims map[string]any) (string, error) {
	return s.SignClaimsAs("JWT", claims)
}

// SignClaimsAs is SignClaims with the header's "typ" set to typ, or left
// out when typ is empty, so tests can present ID tokens, logout tokens and
// RFC 9068 access tokens.
func (s *Server) SignClaimsAs(typ string, claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("localidp: marshal claims: %w", err)
	}
	s.keysMu.RLock()
	k := s.signer
	s.keysMu.RUnlock()

	hdr := jws.NewHeaders()
	fields := map[string]any{jws.KeyIDKey: k.kid}
	if typ != "" {
		fields[jws.TypeKey] = typ
	}
	for name, value := range fields {
		if err := hdr.Set(name, value); err != nil {
			return "", fmt.Errorf("localidp: set header %s: %w", name, err)
		}
	}
	signed, err := jws.Sign(payload, jws.WithKey(jwa.RS256(), k.priv, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("localidp: sign: %w", err)
	}
	return string(signed), nil
}

// errMalformed marks a token that is not a well-formed compact JWS/JWT.
var errMalformed = errors.New("malformed token")

// errUnknownKey marks an assertion signed with a key this server does not
// publish (never did, or no longer does).
var errUnknownKey = errors.New("the signing key was not found")

// verifySignature checks that token is a compact RS256 JWS signed by one of
// the published keys and returns its decoded claims.
func (s *Server) verifySignature(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: the token is not a compact JWS", errMalformed)
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := safejson.DecodeSegment(parts[0], &header); err != nil {
		return nil, fmt.Errorf("%w: the token header is %v", errMalformed, err)
	}
	if header.Alg != jwa.RS256().String() {
		return nil, fmt.Errorf("the signing algorithm %q is not allowed", header.Alg)
	}
	key, ok := s.publishedKey(header.Kid)
	if !ok {
		return nil, errUnknownKey
	}
	payload, err := jws.Verify([]byte(token), jws.WithKey(jwa.RS256(), key))
	if err != nil {
		return nil, errors.New("the signature is invalid")
	}
	claims, err := decodeClaims(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	return claims, nil
}

// decodeClaims decodes a JWT payload, keeping numbers as json.Number.
func decodeClaims(payload []byte) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, errors.New("the token payload is not a JSON object")
	}
	return claims, nil
}

// peekClaims decodes the payload of a compact JWT without verifying it,
// keeping numbers as json.Number.
func peekClaims(token string) (map[string]any, bool) {
	var claims map[string]any
	err := safejson.DecodePayload(token, &claims)
	return claims, err == nil && claims != nil
}
