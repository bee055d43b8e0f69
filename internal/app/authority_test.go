package app

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/config"
)

// TestResolveAuthorityAppliesTheHTTPSRule: the URLs the gateway learns at
// run time, from the discovery document or a redirect, pass the same https
// rule as those it is configured with: plain http only to a loopback host.
func TestResolveAuthorityAppliesTheHTTPSRule(t *testing.T) {
	const httpsRule = "must use https"
	tests := []struct {
		name string
		// jwks and token are the discovery document's URLs; "" means
		// this server's own (loopback) URL.
		jwks, token string
		redirect    string   // where discovery redirects, when set
		wantErr     []string // what the error names; none when the authority resolves
	}{
		{name: "loopback http everywhere"},
		{name: "jwks_uri over http to another host", jwks: "http://keys.example.com/keys", wantErr: []string{"jwks_uri", httpsRule}},
		{name: "token_endpoint over http to another host", token: "http://login.example.com/token", wantErr: []string{"token_endpoint", httpsRule}},
		{name: "discovery redirected to http on another host", redirect: "http://login.example.com/t/v2.0/.well-known/openid-configuration", wantErr: []string{"discovery", httpsRule}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.redirect != "" {
					http.Redirect(w, r, tc.redirect, http.StatusFound)
					return
				}
				doc := map[string]string{
					"issuer":         srv.URL + "/t/v2.0",
					"jwks_uri":       cmp.Or(tc.jwks, srv.URL+"/t/discovery/v2.0/keys"),
					"token_endpoint": cmp.Or(tc.token, srv.URL+"/t/oauth2/v2.0/token"),
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(doc)
			}))
			defer srv.Close()
			cfg := &config.Config{}
			cfg.Authority.URL = srv.URL + "/t/v2.0"
			cfg.Authority.Timeout = config.Duration(5 * time.Second)
			md, discovered, err := ResolveAuthority(context.Background(), AuthorityClient(cfg), cfg)
			if len(tc.wantErr) == 0 {
				if err != nil || !discovered || md.JWKSURI != srv.URL+"/t/discovery/v2.0/keys" {
					t.Fatalf("ResolveAuthority = %+v, %v, %v", md, discovered, err)
				}
				return
			}
			for _, want := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("ResolveAuthority error = %v, want one naming %q", err, want)
				}
			}
		})
	}
}
