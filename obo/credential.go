package obo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/safejson"
	"github.com/obo-gateway/obo-gateway/internal/smallfile"
)

// A Credential authenticates the gateway (API A, a confidential client) to
// the token endpoint. Apply adds its parameters to the form of one token
// request sent to tokenEndpoint. Implementations must be safe for concurrent
// use.
type Credential interface {
	Apply(ctx context.Context, tokenEndpoint string, form url.Values) error
}

// ClientSecret is a client secret sent as the "client_secret" form field.
// Its String, GoString and LogValue methods never reveal the secret.
type ClientSecret string

// Apply sets client_secret.
func (s ClientSecret) Apply(_ context.Context, _ string, form url.Values) error {
	if s == "" {
		return fmt.Errorf("obo: client secret is empty")
	}
	form.Set("client_secret", string(s))
	return nil
}

// String returns "REDACTED".
func (s ClientSecret) String() string { return "REDACTED" }

// GoString returns "REDACTED".
func (s ClientSecret) GoString() string { return "REDACTED" }

// LogValue returns "REDACTED".
func (s ClientSecret) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// SecretFile is the path of a file holding the client secret. The file is
// read on every exchange, so a rotated secret (a re-mounted Kubernetes
// Secret) is picked up without a restart; surrounding white space is
// ignored.
type SecretFile string

// Apply reads the file and sets client_secret.
func (f SecretFile) Apply(ctx context.Context, tokenEndpoint string, form url.Values) error {
	s, err := smallfile.ReadSecret(string(f))
	if err != nil {
		return &CredentialError{Credential: "secret_file", Err: fileError("client secret file", err)}
	}
	return ClientSecret(s).Apply(ctx, tokenEndpoint, form)
}

// AssertionFile is workload identity federation: the path of a file holding
// a token issued by another identity provider that the authority trusts (on
// AKS, the projected service account token at
// /var/run/secrets/azure/tokens/azure-identity-token), sent as the
// client_assertion. The file is read on every exchange, because the token is
// rotated (hourly on AKS); surrounding white space is ignored. A missing or
// empty file, or a token that has already expired, is a *CredentialError.
type AssertionFile string

// Apply reads the file and sets client_assertion_type and client_assertion.
func (f AssertionFile) Apply(_ context.Context, _ string, form url.Values) error {
	tok, err := smallfile.ReadSecret(string(f))
	if err != nil {
		return &CredentialError{Credential: "assertion_file", Err: fileError("federated token file", err)}
	}
	if exp, ok := jwtExpiry(tok); ok && time.Now().After(exp) {
		return &CredentialError{Credential: "assertion_file", Err: fmt.Errorf(
			"the federated token in %s expired at %s; the token is not being rotated (is the projected volume mounted?)",
			string(f), exp.UTC().Format(time.RFC3339))}
	}
	form.Set("client_assertion_type", ClientAssertionType)
	form.Set("client_assertion", tok)
	return nil
}

// String returns the path, never the token.
func (f AssertionFile) String() string { return "assertion_file " + string(f) }

// jwtExpiry returns the exp claim of a compact JWT, read without checking
// the signature, and whether there is one.
func jwtExpiry(tok string) (time.Time, bool) {
	var c struct {
		Exp *float64 `json:"exp"`
	}
	if !peekClaims(tok, &c) || c.Exp == nil {
		return time.Time{}, false
	}
	return time.Unix(int64(*c.Exp), 0), true
}

// peekClaims decodes the payload of a compact JWT into dst without checking
// anything; it reports whether that worked.
func peekClaims(tok string, dst any) bool { return safejson.DecodePayload(tok, dst) == nil }

// fileError describes a failure to read a credential file: "read <what>:
// <error>", or "<what> <path> is empty".
func fileError(what string, err error) error {
	if errors.Is(err, smallfile.ErrEmpty) {
		return fmt.Errorf("%s %w", what, err)
	}
	return fmt.Errorf("read %s: %w", what, err)
}
