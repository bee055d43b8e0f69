package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

// TestCheckOnlineResolvesAsServeDoes runs check --online against a local
// authority: an endpoint set next to authority.url overrides the discovered
// one, as serve uses it, and the rest comes from the discovery document.
func TestCheckOnlineResolvesAsServeDoes(t *testing.T) {
	idp, err := localidp.New(localidp.Options{Clients: []localidp.Client{{ID: "check-client", Secret: "s", IdentifierURI: "api://check"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	const ownToken = "http://127.0.0.1:1/own/token"
	for _, tc := range []struct {
		name, authority string
		want, notWant   []string
	}{
		{
			name:      "token endpoint overridden",
			authority: fmt.Sprintf("{url: %s, token_endpoint: %q}", idp.Authority(), ownToken),
			want: []string{
				"discovery: " + idp.Authority() + "/.well-known/openid-configuration ok",
				"issuer: " + idp.Issuer(),
				"token endpoint: " + ownToken,
				"has 1 keys",
			},
		},
		{
			name: "everything configured",
			authority: fmt.Sprintf("{url: %s, issuer: %q, jwks_uri: %q, token_endpoint: %q}",
				idp.Authority(), "https://issuer.example/v2.0", idp.JWKSURL(), ownToken),
			want:    []string{"issuer: https://issuer.example/v2.0", "token endpoint: " + ownToken, "has 1 keys"},
			notWant: []string{"discovery:"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := checkOnline(t, tc.authority)
			if code != 0 {
				t.Fatalf("exit %d: %s\n%s", code, errOut, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestCheckOnlineUnreachableAuthority exits 2 naming the discovery that
// failed.
func TestCheckOnlineUnreachableAuthority(t *testing.T) {
	out, errOut, code := checkOnline(t, `{url: "http://127.0.0.1:1/tenant/v2.0", timeout: 2s}`)
	if code != 2 || !strings.Contains(errOut, "discovery") || !strings.Contains(errOut, "127.0.0.1:1/tenant/v2.0/.well-known/openid-configuration") {
		t.Errorf("exit %d, stderr %q, stdout %q; want 2 and the failed discovery named", code, errOut, out)
	}
}

// checkOnline runs check --online on a configuration whose authority
// section is authority (YAML flow style) and whose other sections are
// fixed.
func checkOnline(t *testing.T, authority string) (stdout, stderr string, code int) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	yaml := fmt.Sprintf(`authority: %s
client: {id: check-client, secret: s}
inbound: {audiences: [api://check]}
routes:
  - {name: api, path_prefix: /api, upstream: http://127.0.0.1:1, scopes: [api://down/.default]}
`, authority)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return runBinary(t, nil, "check", "--online", "--config", cfg)
}
