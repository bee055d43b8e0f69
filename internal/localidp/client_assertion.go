package localidp

import (
	"crypto/sha1" // #nosec G505 -- x5t (SHA-1) is how older clients name a certificate; it is compared, not trusted
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/obo-gateway/obo-gateway/internal/safejson"
)

// DefaultFederatedAudience is the audience Entra expects in federated
// tokens presented as client assertions (workload identity federation).
const DefaultFederatedAudience = "api://AzureADTokenExchange"

// maxAssertionLifetime bounds exp - nbf of a certificate client assertion.
const maxAssertionLifetime = 10 * time.Minute

// assertionHeader is the JOSE header of a client assertion.
type assertionHeader struct {
	Alg     string   `json:"alg"`
	Typ     string   `json:"typ"`
	Kid     string   `json:"kid"`
	X5tS256 string   `json:"x5t#S256"`
	X5t     string   `json:"x5t"`
	X5c     []string `json:"x5c"`
}

// verifyClientAssertion checks a client assertion presented to endpoint:
// either a JWT signed with the key of one of the client's certificates
// (private_key_jwt), or a token of a federated identity credential. It
// returns how the client authenticated.
func (s *Server) verifyClientAssertion(client Client, cred clientCredential, endpoint string) (string, *oauthError) {
	if cred.assertionType != clientAssertionTypeJWT {
		return "", badRequest("invalid_request", 9002313,
			"Invalid request. Request is malformed or invalid. [Reason - client_assertion_type must be '%s'.]", clientAssertionTypeJWT)
	}
	if cred.assertion == "" {
		return "", missingParameter("client_assertion")
	}
	parts := strings.Split(cred.assertion, ".")
	if len(parts) != 3 {
		return "", invalidClient(700027, "Client assertion contains an invalid signature. [Reason - the assertion is not a compact JWS.]")
	}
	var h assertionHeader
	if err := safejson.DecodeSegment(parts[0], &h); err != nil {
		return "", invalidClient(700027, "Client assertion contains an invalid signature. [Reason - the header is %v.]", err)
	}
	claims, ok := peekClaims(cred.assertion)
	if !ok {
		return "", invalidClient(700027, "Client assertion contains an invalid signature. [Reason - the payload is not a JSON object.]")
	}
	iss, _ := claims["iss"].(string)
	if h.X5tS256 == "" && h.X5t == "" {
		for _, fc := range client.FederatedCredentials {
			if s.federatedIssuer(fc) == iss {
				return s.verifyFederated(client, cred.assertion, claims)
			}
		}
		if len(client.FederatedCredentials) > 0 {
			return "", invalidClient(700211, "No matching federated identity record found for presented assertion issuer '%s'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.", iss)
		}
		return "", invalidClient(700027, "Client assertion failed signature validation. [Reason - the assertion names no certificate (x5t#S256 or x5t) and app '%s' has no federated identity credential.]", client.ID)
	}
	return s.verifyCertificateAssertion(client, cred.assertion, h, claims, endpoint)
}

// verifyCertificateAssertion checks a private_key_jwt assertion.
func (s *Server) verifyCertificateAssertion(client Client, assertion string, h assertionHeader, claims map[string]any, endpoint string) (string, *oauthError) {
	alg, ok := jwa.LookupSignatureAlgorithm(h.Alg)
	if !ok || !slices.Contains([]string{"RS256", "PS256", "ES256", "ES384", "ES512"}, h.Alg) {
		return "", invalidClient(700027, "Client assertion failed signature validation. [Reason - the algorithm '%s' is not supported.]", h.Alg)
	}
	named := h.X5tS256
	if named == "" {
		named = h.X5t
	}
	idx := -1
	for i, c := range client.Certificates {
		if thumbprintMatches(h.X5tS256, sha256Of(c.Raw)) || (h.X5tS256 == "" && thumbprintMatches(h.X5t, sha1Of(c.Raw))) {
			idx = i
			break
		}
	}
	if idx < 0 {
		return "", invalidClient(700027,
			"The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '%s', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'.]",
			named, client.ID)
	}
	cert := client.Certificates[idx]
	if len(h.X5c) > 0 {
		leaf, err := base64.StdEncoding.DecodeString(h.X5c[0])
		if err != nil || string(leaf) != string(cert.Raw) {
			return "", invalidClient(700027, "Client assertion failed signature validation. [Reason - the first x5c certificate is not the certificate named by the thumbprint.]")
		}
	}
	if _, err := jws.Verify([]byte(assertion), jws.WithKey(alg, cert.PublicKey)); err != nil {
		return "", invalidClient(700027, "Client assertion contains an invalid signature. [Reason - The key used is expired or the signature does not verify., Thumbprint of key used by client: '%s']", named)
	}
	now := time.Now()
	if now.After(cert.NotAfter) {
		return "", invalidClient(700027, "The certificate used to sign the client assertion expired on %s.", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if !audienceContains(claims["aud"], endpoint) {
		return "", invalidClient(700023, "Client assertion audience claim does not match Realm issuer. Review the documentation at https://aka.ms/certCreds. [Reason - the aud is '%v', expected the token endpoint '%s'.]", claims["aud"], endpoint)
	}
	if iss, _ := claims["iss"].(string); iss != client.ID {
		return "", invalidClient(700021, "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://aka.ms/certCreds. [Reason - iss is '%s'.]", iss)
	}
	if sub, _ := claims["sub"].(string); sub != client.ID {
		return "", invalidClient(700021, "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://aka.ms/certCreds. [Reason - sub is '%s'.]", sub)
	}
	exp, err := s.checkAssertionTime(claims, now)
	if err != nil {
		return "", err
	}
	if nbf, ok := numericDate(claims["nbf"]); ok && exp.Sub(nbf) > maxAssertionLifetime+time.Second {
		return "", invalidClient(700024, "Client assertion is not within its valid time range. [Reason - it is valid for %s, more than %s.]", exp.Sub(nbf), maxAssertionLifetime)
	}
	if _, hasNbf := claims["nbf"]; !hasNbf && exp.Sub(now) > maxAssertionLifetime+s.clockSkew+time.Second {
		return "", invalidClient(700024, "Client assertion is not within its valid time range. [Reason - it expires more than %s from now.]", maxAssertionLifetime)
	}
	jti, _ := claims["jti"].(string)
	if jti == "" {
		return "", invalidClient(700027, "Client assertion failed validation. [Reason - the jti claim is missing.]")
	}
	if err := s.rememberJTI(client.ID+"\x00"+jti, exp, now); err != nil {
		return "", err
	}
	return "certificate " + base64.RawURLEncoding.EncodeToString(sha256Of(cert.Raw)), nil
}

// checkAssertionTime checks exp and nbf of a client assertion.
func (s *Server) checkAssertionTime(claims map[string]any, now time.Time) (time.Time, *oauthError) {
	exp, ok := numericDate(claims["exp"])
	if !ok {
		return time.Time{}, invalidClient(700027, "Client assertion failed validation. [Reason - the exp claim is missing or not a number.]")
	}
	if now.After(exp.Add(s.clockSkew)) {
		return exp, invalidClient(700024, "Client assertion is not within its valid time range. Current time: %s, expiry time of assertion %s.",
			now.UTC().Format(time.RFC3339), exp.UTC().Format(time.RFC3339))
	}
	if raw, present := claims["nbf"]; present {
		nbf, ok := numericDate(raw)
		if !ok {
			return exp, invalidClient(700027, "Client assertion failed validation. [Reason - the nbf claim is not a number.]")
		}
		if now.Add(s.clockSkew).Before(nbf) {
			return exp, invalidClient(700024, "Client assertion is not within its valid time range. Current time: %s, assertion valid from %s.",
				now.UTC().Format(time.RFC3339), nbf.UTC().Format(time.RFC3339))
		}
	}
	return exp, nil
}

// rememberJTI records an accepted assertion id until it expires; with
// Options.RejectAssertionReplay an id seen before is refused.
func (s *Server) rememberJTI(id string, exp, now time.Time) *oauthError {
	s.jtiMu.Lock()
	defer s.jtiMu.Unlock()
	for k, until := range s.jtis {
		if now.After(until.Add(s.clockSkew)) {
			delete(s.jtis, k)
		}
	}
	if _, seen := s.jtis[id]; seen && s.rejectReplay {
		return invalidClient(700027, "Client assertion failed validation. [Reason - the assertion with this jti was already used; replayed assertions are refused.]")
	}
	s.jtis[id] = exp
	return nil
}

// federatedIssuer returns the issuer a federated credential trusts.
func (s *Server) federatedIssuer(fc FederatedCredential) string {
	if fc.TenantIssuer {
		return s.Issuer()
	}
	if fc.Issuer == "" {
		return s.ServiceAccountIssuer()
	}
	return fc.Issuer
}

// verifyFederated checks a federated token presented as a client assertion.
// Tokens of the server's own service account issuer, and of its own issuer
// (a managed identity's), are checked against the server's signing keys.
func (s *Server) verifyFederated(client Client, token string, claims map[string]any) (string, *oauthError) {
	iss, _ := claims["iss"].(string)
	if iss != s.ServiceAccountIssuer() && iss != s.Issuer() {
		return "", invalidClient(700211, "No matching federated identity record found for presented assertion issuer '%s': this local identity provider can only verify tokens of its own issuers '%s' and '%s'.", iss, s.ServiceAccountIssuer(), s.Issuer())
	}
	if _, err := s.verifySignature(token); err != nil {
		return "", invalidClient(700027, "Client assertion failed signature validation. [Reason - %v.]", err)
	}
	now := time.Now()
	if _, err := s.checkAssertionTime(claims, now); err != nil {
		return "", err
	}
	sub, _ := claims["sub"].(string)
	subjectKnown := false
	for _, fc := range client.FederatedCredentials {
		if s.federatedIssuer(fc) != iss || fc.Subject != sub {
			continue
		}
		subjectKnown = true
		auds := fc.Audiences
		if len(auds) == 0 {
			auds = []string{DefaultFederatedAudience}
		}
		for _, a := range auds {
			if audienceContains(claims["aud"], a) {
				return "federated " + iss + " " + sub, nil
			}
		}
	}
	if !subjectKnown {
		return "", invalidClient(700213, "No matching federated identity record found for presented assertion subject '%s'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.", sub)
	}
	return "", invalidClient(700212, "No matching federated identity record found for presented assertion audience '%v'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.", claims["aud"])
}

// ServiceAccountToken describes a token to mint with
// IssueServiceAccountToken: the projected service account token a
// Kubernetes cluster gives a pod for workload identity federation.
type ServiceAccountToken struct {
	// Subject is the sub claim, such as
	// "system:serviceaccount:default:api-a". Required.
	Subject string
	// Audience is the aud claim. The default is DefaultFederatedAudience.
	Audience string
	// Lifetime sets exp = now + Lifetime. The default is one hour; a
	// negative value yields an expired token.
	Lifetime time.Duration
}

// IssueServiceAccountToken mints a token of the server's
// ServiceAccountIssuer, signed with the current signing key, for a client
// with a matching FederatedCredential to present as its client assertion.
func (s *Server) IssueServiceAccountToken(t ServiceAccountToken) (string, error) {
	if t.Subject == "" {
		return "", errors.New("localidp: ServiceAccountToken.Subject is required")
	}
	aud := t.Audience
	if aud == "" {
		aud = DefaultFederatedAudience
	}
	life := t.Lifetime
	if life == 0 {
		life = time.Hour
	}
	now := time.Now()
	return s.SignClaims(map[string]any{
		"iss": s.ServiceAccountIssuer(),
		"sub": t.Subject,
		"aud": []string{aud},
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(life).Unix(),
		"jti": newGUID(),
		"kubernetes.io": map[string]any{
			"namespace":      "default",
			"serviceaccount": map[string]any{"name": strings.TrimPrefix(t.Subject, "system:serviceaccount:")},
		},
	})
}

// audienceContains reports whether the aud claim (a string or an array of
// strings) holds want.
func audienceContains(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, v := range a {
			if s, _ := v.(string); s == want {
				return true
			}
		}
	}
	return false
}

// thumbprintMatches reports whether an x5t or x5t#S256 header value names
// the certificate with digest sum. RFC 7515 says base64url; MSAL sends
// standard base64 with padding, which Entra accepts too.
func thumbprintMatches(header string, sum []byte) bool {
	if header == "" {
		return false
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(header); err == nil && string(b) == string(sum) {
			return true
		}
	}
	return false
}

func sha256Of(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func sha1Of(b []byte) []byte { s := sha1.Sum(b); return s[:] } // #nosec G401 -- see the import

// clientInfo returns the client_info of a token answer: the base64url JSON
// {"uid": oid, "utid": tid} Entra sends when the request asks for it.
func clientInfo(oid, tid string) string {
	b, _ := json.Marshal(map[string]string{"uid": oid, "utid": tid})
	return base64.RawURLEncoding.EncodeToString(b)
}
