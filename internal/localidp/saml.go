package localidp

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// SAML 2.0 attribute names Entra puts into the assertions it issues.
const (
	SAMLAttributeTenantID = "http://schemas.microsoft.com/identity/claims/tenantid"
	SAMLAttributeObjectID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
	SAMLAttributeScope    = "http://schemas.microsoft.com/identity/claims/scope"
)

// issueSAML answers an On-Behalf-Of (or token exchange) request with
// requested_token_type saml2 the way Entra does: token_type "Bearer",
// issued_token_type TokenTypeSAML2 and, as access_token, the SAML 2.0
// assertion XML base64url-encoded. The assertion has the issuer V1IssuerFor
// the tenant, the user's oid (or upn) as NameID, the resource as audience,
// the token lifetime as conditions and tid, oid and scp as attributes.
// Unlike Entra's, it is not signed (there is no XML signature): it is for
// tests of how the gateway forwards it, not for services that verify it.
func (s *Server) issueSAML(tr *tokenRequest, user map[string]any, scopes scopeSet) (*tokenResponse, *oauthError) {
	now := time.Now().UTC()
	exp := now.Add(s.tokenLifetime)
	oid, _ := user["oid"].(string)
	nameID := oid
	if upn, _ := user["upn"].(string); upn != "" {
		nameID = upn
	}
	esc := func(v string) string {
		var b bytes.Buffer
		_ = xml.EscapeText(&b, []byte(v))
		return b.String()
	}
	ts := func(t time.Time) string { return t.Format("2006-01-02T15:04:05.000Z") }
	var b strings.Builder
	fmt.Fprintf(&b, `<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="_%s" IssueInstant="%s" Version="2.0">`, newGUID(), ts(now))
	fmt.Fprintf(&b, `<Issuer>%s</Issuer>`, esc(s.V1IssuerFor(tr.tenant)))
	fmt.Fprintf(&b, `<Subject><NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">%s</NameID>`+
		`<SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"/></Subject>`, esc(nameID))
	fmt.Fprintf(&b, `<Conditions NotBefore="%s" NotOnOrAfter="%s"><AudienceRestriction><Audience>%s</Audience></AudienceRestriction></Conditions>`,
		ts(now), ts(exp), esc(scopes.resource))
	b.WriteString(`<AttributeStatement>`)
	for _, a := range [][2]string{{SAMLAttributeTenantID, tr.tenant}, {SAMLAttributeObjectID, oid}, {SAMLAttributeScope, scopes.scp()}} {
		fmt.Fprintf(&b, `<Attribute Name="%s"><AttributeValue>%s</AttributeValue></Attribute>`, a[0], esc(a[1]))
	}
	b.WriteString(`</AttributeStatement>`)
	fmt.Fprintf(&b, `<AuthnStatement AuthnInstant="%s"><AuthnContext><AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</AuthnContextClassRef></AuthnContext></AuthnStatement>`, ts(now))
	b.WriteString(`</Assertion>`)
	token := base64.RawURLEncoding.EncodeToString([]byte(b.String()))
	return s.record(tr, oid, scopes.requested, token, TokenTypeSAML2, exp), nil
}
