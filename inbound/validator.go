package inbound

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/obo-gateway/obo-gateway/internal/idshape"
	"github.com/obo-gateway/obo-gateway/internal/safejson"
)

// DefaultAlgorithm is the signature algorithm accepted when
// ValidatorConfig.Algorithms is empty: Entra signs access tokens with it.
const DefaultAlgorithm = "RS256"

// MaxTokenBytes bounds the size of token A; larger tokens are refused before
// any parsing.
const MaxTokenBytes = 16 << 10

// KeySource finds the authority's public key with a given key id.
// *KeySet implements it.
type KeySource interface {
	Key(ctx context.Context, kid string) (jwk.Key, error)
}

// ValidatorConfig configures a Validator.
type ValidatorConfig struct {
	// Issuer is the value token A's "iss" claim must carry. Required. It
	// may hold the placeholder "{tenantid}", as the issuer of Entra's
	// multi-tenant authorities (common, organizations) does: the token's
	// "tid" takes its place, so "iss" must name the token's own tenant.
	Issuer string
	// V1Issuer, when set, is the issuer of the authority's v1 access
	// tokens (Entra's "https://sts.windows.net/<tid>/", with "{tenantid}"
	// for multi-tenant authorities); such tokens are then accepted like v2
	// tokens. Empty means v1 tokens are refused.
	V1Issuer string
	// AllowedTenants lists the tenant ids ("tid") whose tokens are
	// accepted; ["*"] accepts every tenant. Empty accepts the tenants the
	// issuer admits, which is refused for an issuer with "{tenantid}".
	// Tenant ids are compared without regard to case.
	AllowedTenants []string
	// Audiences lists the accepted values of "aud" (API A's client id and
	// application id URI). Required.
	Audiences []string
	// Algorithms lists the accepted signature algorithms. Empty means
	// DefaultAlgorithm only. "none" and the HMAC algorithms are never accepted.
	Algorithms []string
	// ClockSkew is the tolerance applied to "exp" and "nbf".
	ClockSkew time.Duration
	// Keys supplies the verification keys. Required.
	Keys KeySource
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Validator checks token A. It performs the cheap checks (size, shape,
// algorithm, lifetime, issuer, audience) before the signature, so garbage
// costs little. It is safe for concurrent use.
type Validator struct {
	cfg  ValidatorConfig
	algs map[string]jwa.SignatureAlgorithm
	// tenants holds the allowed tenant ids, lower-cased; nil when any
	// tenant the issuer admits is accepted.
	tenants   map[string]bool
	anyTenant bool
	// issuerTenant and v1IssuerTenant are the tenant ids single-tenant
	// issuers name (issuerTenant), which a token's tid must equal.
	issuerTenant, v1IssuerTenant string
}

// tenantPlaceholder stands for the token's tenant id in a multi-tenant
// issuer.
const tenantPlaceholder = "{tenantid}"

// NewValidator checks cfg and returns a Validator.
func NewValidator(cfg ValidatorConfig) (*Validator, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("inbound: ValidatorConfig.Issuer is empty")
	}
	if len(cfg.Audiences) == 0 {
		return nil, errors.New("inbound: ValidatorConfig.Audiences is empty")
	}
	if cfg.Keys == nil {
		return nil, errors.New("inbound: ValidatorConfig.Keys is nil")
	}
	if (strings.Contains(cfg.Issuer, tenantPlaceholder) || strings.Contains(cfg.V1Issuer, tenantPlaceholder)) && len(cfg.AllowedTenants) == 0 {
		return nil, errors.New(`inbound: the issuer is multi-tenant ({tenantid}): ValidatorConfig.AllowedTenants must list the tenants, or ["*"]`)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = []string{DefaultAlgorithm}
	}
	v := &Validator{cfg: cfg, algs: make(map[string]jwa.SignatureAlgorithm),
		issuerTenant: issuerTenant(cfg.Issuer), v1IssuerTenant: issuerTenant(cfg.V1Issuer)}
	for _, t := range cfg.AllowedTenants {
		if t == "*" {
			v.anyTenant = true
			continue
		}
		if v.tenants == nil {
			v.tenants = make(map[string]bool)
		}
		v.tenants[strings.ToLower(t)] = true
	}
	for _, name := range cfg.Algorithms {
		alg, ok := jwa.LookupSignatureAlgorithm(name)
		if !ok || alg == jwa.NoSignature() || isSymmetric(name) {
			return nil, fmt.Errorf("inbound: algorithm %q is not allowed", name)
		}
		v.algs[name] = alg
	}
	return v, nil
}

func isSymmetric(alg string) bool { return strings.HasPrefix(strings.ToUpper(alg), "HS") }

// Validate checks raw, the compact serialisation of token A, and returns its
// claims, or a *RejectError saying what was wrong.
func (v *Validator) Validate(ctx context.Context, raw string) (*Claims, error) {
	c, _, err := v.validate(ctx, raw)
	return c, err
}

// validate is Validate, also returning the id of the key that signed raw.
func (v *Validator) validate(ctx context.Context, raw string) (*Claims, string, error) {
	if len(raw) > MaxTokenBytes {
		return nil, "", reject(ReasonMalformed, "token is %d bytes, more than the limit of %d", len(raw), MaxTokenBytes)
	}
	if !idshape.IsB64Token(raw) {
		return nil, "", reject(ReasonMalformed, "bearer token contains characters outside the b64token set")
	}
	if strings.IndexByte(raw, '=') >= 0 {
		// RFC 7515 2: a JWS's base64url segments have no padding, so a
		// padded copy of a token is not that token.
		return nil, "", reject(ReasonMalformed, "token has base64 padding (=), which a JWS never has")
	}
	if n := strings.Count(raw, "."); n != 2 {
		if n == 4 {
			return nil, "", reject(ReasonMalformed, "token is an encrypted JWT (JWE); a signed JWT (JWS) is expected")
		}
		return nil, "", reject(ReasonMalformed, "token has %d segments, a JWT has 3", n+1)
	}
	h64, rest, _ := strings.Cut(raw, ".")
	p64, _, _ := strings.Cut(rest, ".")

	var h header
	if err := safejson.DecodeSegment(h64, &h); err != nil {
		return nil, "", reject(ReasonMalformed, "token header: %v", err)
	}
	alg, ok := v.algs[h.Alg]
	if !ok {
		return nil, "", reject(ReasonAlgorithm, "token is signed with %q, expected one of %s", h.Alg, strings.Join(v.cfg.Algorithms, ", "))
	}
	if len(h.Crit) > 0 {
		return nil, "", reject(ReasonMalformed, "token header has critical extensions the gateway does not understand")
	}

	var p payload
	if err := safejson.DecodeSegment(p64, &p); err != nil {
		return nil, "", reject(ReasonMalformed, "token claims: %v", err)
	}
	if why := notAccessToken(&h, &p); why != "" {
		return nil, "", reject(ReasonTokenType, "%s", why)
	}
	now := v.cfg.Now()
	skew := v.cfg.ClockSkew
	if !p.Exp.set {
		return nil, "", reject(ReasonMalformed, "token has no exp claim")
	}
	if !now.Before(p.Exp.t.Add(skew)) {
		return nil, "", reject(ReasonExpired, "token expired at %s", p.Exp.t.UTC().Format(time.RFC3339))
	}
	if p.Nbf.set && now.Add(skew).Before(p.Nbf.t) {
		return nil, "", reject(ReasonNotYetValid, "token is not valid before %s", p.Nbf.t.UTC().Format(time.RFC3339))
	}
	version, tenant := "2.0", v.issuerTenant
	switch {
	case matchIssuer(v.cfg.Issuer, p.Iss, p.Tid):
	case v.cfg.V1Issuer != "" && matchIssuer(v.cfg.V1Issuer, p.Iss, p.Tid):
		version, tenant = "1.0", v.v1IssuerTenant
	case v.cfg.V1Issuer != "":
		return nil, "", reject(ReasonIssuer, "token issuer is %q, expected %q (or %q for v1 tokens)", p.Iss, v.cfg.Issuer, v.cfg.V1Issuer)
	default:
		return nil, "", reject(ReasonIssuer, "token issuer is %q, expected %q", p.Iss, v.cfg.Issuer)
	}
	if tenant != "" && p.Tid != "" && !strings.EqualFold(p.Tid, tenant) {
		return nil, "", reject(ReasonIssuer, "token tenant %q is not the tenant of its issuer %q", p.Tid, p.Iss)
	}
	if !v.anyTenant && v.tenants != nil && !v.tenants[strings.ToLower(p.Tid)] {
		if p.Tid == "" {
			return nil, "", reject(ReasonTenant, "token has no tid claim, and only listed tenants are allowed")
		}
		return nil, "", reject(ReasonTenant, "token tenant %q is not one of the allowed tenants", p.Tid)
	}
	aud, ok := v.matchAudience(p.Aud)
	if !ok {
		return nil, "", reject(ReasonAudience, "token audience is %q, expected one of %q", []string(p.Aud), v.cfg.Audiences)
	}

	key, err := v.cfg.Keys.Key(ctx, h.Kid)
	switch {
	case errors.Is(err, ErrKeysUnavailable):
		return nil, "", reject(ReasonKeys, "the authority's signing keys are not available yet")
	case err != nil:
		return nil, "", reject(ReasonSignature, "token is signed with key id %q, which the authority does not publish", h.Kid)
	}
	if ka, ok := key.Algorithm(); ok && ka.String() != h.Alg {
		return nil, "", reject(ReasonSignature, "key %q is for %s, token says %s", h.Kid, ka, h.Alg)
	}
	if _, err := jws.VerifyCompactFast(key, []byte(raw), alg); err != nil {
		return nil, "", reject(ReasonSignature, "token signature does not verify")
	}

	c := &Claims{
		Issuer:       p.Iss,
		Subject:      p.Sub,
		Audience:     aud,
		TenantID:     p.Tid,
		ObjectID:     p.Oid,
		Scopes:       strings.Fields(p.Scp),
		Roles:        p.Roles,
		AuthContexts: p.Acrs,
		ExpiresAt:    p.Exp.t,
		Version:      version,
		ClientAppID:  firstOf(p.Azp, p.Appid),
		Username:     firstOf(p.PreferredUsername, p.Upn, p.UniqueName),
	}
	if c.ObjectID == "" && c.Subject == "" {
		return nil, "", reject(ReasonMalformed, "token has neither oid nor sub")
	}
	return c, h.Kid, nil
}

// matchIssuer reports whether iss is the issuer tmpl names; a tmpl with
// "{tenantid}" names the issuer of the token's own tenant tid.
func matchIssuer(tmpl, iss, tid string) bool {
	if !strings.Contains(tmpl, tenantPlaceholder) {
		return iss == tmpl
	}
	if !idshape.IsTenantName(tid) { // what may be put into an issuer template
		return false
	}
	return iss == strings.ReplaceAll(tmpl, tenantPlaceholder, tid)
}

// issuerTenant returns the tenant id a single-tenant issuer names, the
// first path segment that is a GUID ("https://login.microsoftonline.com/
// <tid>/v2.0", "https://sts.windows.net/<tid>/"), or "" for a multi-tenant
// issuer, whose "{tenantid}" the token's tid fills in, and for an issuer
// that names no tenant.
func issuerTenant(issuer string) string {
	if strings.Contains(issuer, tenantPlaceholder) {
		return ""
	}
	_, rest, _ := strings.Cut(issuer, "://")
	for seg := range strings.SplitSeq(rest, "/") {
		if idshape.IsGUID(seg) {
			return seg
		}
	}
	return ""
}

func firstOf(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func (v *Validator) matchAudience(aud audience) (string, bool) {
	for _, a := range aud {
		if slices.Contains(v.cfg.Audiences, a) {
			return a, true
		}
	}
	return "", false
}
