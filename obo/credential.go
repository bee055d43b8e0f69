package obo

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
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
	b, err := os.ReadFile(string(f))
	if err != nil {
		return fmt.Errorf("obo: read client secret file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return fmt.Errorf("obo: client secret file %s is empty", string(f))
	}
	return ClientSecret(s).Apply(ctx, tokenEndpoint, form)
}
