package inbound

import "time"

// Claims are the validated claims of token A the gateway uses.
type Claims struct {
	Issuer   string
	Subject  string
	Audience string // the accepted audience value
	// TenantID and ObjectID are Entra's "tid" and "oid".
	TenantID string
	ObjectID string
	// Scopes are the delegated scopes ("scp"); empty for app-only tokens.
	Scopes []string
	// Roles are the application or user roles ("roles").
	Roles []string
	// AuthContexts are the authentication context ids the user satisfied
	// ("acrs"), such as a step-up to phishing-resistant MFA.
	AuthContexts []string
	// Version is the token version: "1.0" for a v1 token (issued by
	// V1Issuer), otherwise "2.0".
	Version string
	// ClientAppID is the application the token was issued to: "azp" of a
	// v2 token, "appid" of a v1 token.
	ClientAppID string
	// Username is the user's sign-in name: "preferred_username" of a v2
	// token, "upn" (or "unique_name") of a v1 token; it may be empty.
	Username string
	// ExpiresAt is the token's "exp".
	ExpiresAt time.Time
}

// AppOnly reports whether the token was issued to an application acting as
// itself (no delegated "scp"), which cannot be exchanged on behalf of a user.
func (c *Claims) AppOnly() bool { return len(c.Scopes) == 0 }
