package localidp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// UserToken describes a token A to mint with IssueToken: the access token a
// client application obtained for API A. Zero fields take the documented
// defaults.
type UserToken struct {
	// ObjectID is the oid claim, the user's object ID. It is required
	// unless AppOnly is set.
	ObjectID string
	// TenantID is the tid claim. The default is the server's tenant.
	TenantID string
	// Subject is the sub claim. The default is derived from ObjectID (a
	// stable 43-character base64url string, like Entra's pairwise
	// subjects); for app-only tokens it is the oid.
	Subject string
	// Audience is the aud claim. The default is the ID of the first
	// registered client.
	Audience string
	// Scopes is the scp claim, space-joined. The default is
	// ["access_as_user"]. It is ignored for app-only tokens.
	Scopes []string
	// AppOnly mints an application token instead of a user token: no scp,
	// a roles claim (when Roles is not empty), idtyp "app" and oid = sub =
	// the service principal ID (ObjectID, or a stable ID derived from the
	// authorized party when ObjectID is empty).
	AppOnly bool
	// Roles is the roles claim. It is omitted when empty.
	Roles []string
	// AuthorizedParty is the azp claim, the client application that
	// requested the token. The default is DefaultClientAppID.
	AuthorizedParty string
	// Issuer is the iss claim. The default is IssuerFor(TenantID), or
	// V1IssuerFor(TenantID) for a v1 token.
	Issuer string
	// Version is "2.0" (the default) or "1.0". A v1 token has the v1
	// issuer, ver "1.0", appid and appidacr instead of azp and azpacr,
	// and upn and unique_name when UPN is set.
	Version string
	// UPN is the user's sign-in name: upn and unique_name of a v1 token,
	// preferred_username of a v2 token. Omitted when empty.
	UPN string
	// IssuedAt is the iat claim. The default is now.
	IssuedAt time.Time
	// NotBefore is the nbf claim. The default is IssuedAt.
	NotBefore time.Time
	// Lifetime sets exp = IssuedAt + Lifetime. The default is one hour; a
	// negative Lifetime yields an already expired token.
	Lifetime time.Duration
	// Extra adds claims or overrides the ones above. A nil value removes
	// the claim from the token.
	Extra map[string]any
}

// IssueToken mints a token A shaped like an Entra ID v2 access token (iss,
// aud, sub, oid, tid, scp or roles, azp, azpacr, ver "2.0", iat, nbf, exp,
// uti, jti), or like a v1 token when Version is "1.0", and signs it with the
// current signing key. A TenantID of a guest tenant gets that tenant's
// issuer.
func (s *Server) IssueToken(t UserToken) (string, error) {
	if t.ObjectID == "" && !t.AppOnly {
		return "", errors.New("localidp: UserToken.ObjectID is required for user tokens")
	}
	iat := t.IssuedAt
	if iat.IsZero() {
		iat = time.Now()
	}
	nbf := t.NotBefore
	if nbf.IsZero() {
		nbf = iat
	}
	lifetime := t.Lifetime
	if lifetime == 0 {
		lifetime = time.Hour
	}
	tid := t.TenantID
	if tid == "" {
		tid = s.tenant
	}
	aud := t.Audience
	if aud == "" {
		aud = s.firstClient.ID
	}
	azp := t.AuthorizedParty
	if azp == "" {
		azp = DefaultClientAppID
	}
	v1 := t.Version == "1.0"
	if t.Version != "" && t.Version != "1.0" && t.Version != "2.0" {
		return "", fmt.Errorf("localidp: UserToken.Version %q is not 1.0 or 2.0", t.Version)
	}
	iss := t.Issuer
	if iss == "" {
		iss = s.IssuerFor(tid)
		if v1 {
			iss = s.V1IssuerFor(tid)
		}
	}
	uti := randomUTI()
	claims := map[string]any{
		"iss":    iss,
		"aud":    aud,
		"tid":    tid,
		"azp":    azp,
		"azpacr": "0",
		"ver":    "2.0",
		"iat":    iat.Unix(),
		"nbf":    nbf.Unix(),
		"exp":    iat.Add(lifetime).Unix(),
		"uti":    uti,
		"jti":    uti,
		"rh":     "0.localidp.",
	}
	if v1 {
		delete(claims, "azp")
		delete(claims, "azpacr")
		claims["appid"], claims["appidacr"], claims["ver"] = azp, "0", "1.0"
		if t.UPN != "" && !t.AppOnly {
			claims["upn"], claims["unique_name"] = t.UPN, t.UPN
		}
	} else if t.UPN != "" && !t.AppOnly {
		claims["preferred_username"] = t.UPN
	}
	if t.AppOnly {
		oid := t.ObjectID
		if oid == "" {
			oid = stableGUID("service-principal", tid, azp)
		}
		claims["oid"] = oid
		claims["sub"] = firstNonEmpty(t.Subject, oid)
		claims["idtyp"] = "app"
		if len(t.Roles) > 0 {
			claims["roles"] = append([]string(nil), t.Roles...)
		}
	} else {
		scopes := t.Scopes
		if len(scopes) == 0 {
			scopes = []string{"access_as_user"}
		}
		claims["oid"] = t.ObjectID
		claims["sub"] = firstNonEmpty(t.Subject, pairwiseSubject(t.ObjectID))
		claims["scp"] = strings.Join(scopes, " ")
		if len(t.Roles) > 0 {
			claims["roles"] = append([]string(nil), t.Roles...)
		}
	}
	for name, value := range t.Extra {
		if value == nil {
			delete(claims, name)
			continue
		}
		claims[name] = value
	}
	tok, err := s.SignClaims(claims)
	if err != nil {
		return "", err
	}
	s.recordMu.Lock()
	s.minted = append(s.minted, tok)
	s.recordMu.Unlock()
	return tok, nil
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// pairwiseSubject derives a stable sub claim from an object ID.
func pairwiseSubject(oid string) string {
	sum := sha256.Sum256([]byte("sub\x00" + oid))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// stableGUID derives a GUID-formatted identifier from parts; the same parts
// always give the same identifier.
func stableGUID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x50 // version 5 layout (name based)
	b[8] = b[8]&0x3f | 0x80
	return formatGUID(b)
}

// newGUID returns a random (version 4) GUID.
func newGUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatGUID(b)
}

func formatGUID(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// randomUTI returns a random token identifier like Entra's uti claim.
func randomUTI() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
