package localidp

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.pathTenant(w, r, true)
	if !ok {
		return
	}
	base := s.baseURL + "/" + tenant
	issuer := s.IssuerFor(tenant)
	if isMultiTenant(tenant) {
		issuer = s.baseURL + "/{tenantid}/v2.0"
	}
	doc := map[string]any{
		"issuer":                                issuer,
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"subject_types_supported":               []string{"pairwise"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"grant_types_supported":                 []string{GrantOnBehalfOf, GrantClientCredentials, GrantTokenExchange},
		"claims_supported": []string{
			"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
			"msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
			"name", "tid", "ver", "at_hash", "c_hash", "email",
		},
		"request_uri_parameter_supported": false,
		"tenant_region_scope":             nil,
		"cloud_instance_name":             "microsoftonline.com",
	}
	writeJSON(w, http.StatusOK, doc)
}

// handleInstanceDiscovery answers Entra's instance discovery
// (common/discovery/instance), which MSAL asks before trusting an authority
// that is not a known Microsoft cloud: this server's host is its own cloud,
// with no aliases.
func (s *Server) handleInstanceDiscovery(w http.ResponseWriter, r *http.Request) {
	host := strings.TrimPrefix(strings.TrimPrefix(s.baseURL, "https://"), "http://")
	tenant := s.tenant
	if u, err := url.Parse(r.URL.Query().Get("authorization_endpoint")); err == nil {
		if seg, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/"); seg != "" && (s.tenants[strings.ToLower(seg)] || isMultiTenant(seg)) {
			tenant = seg
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": s.AuthorityFor(tenant) + "/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata":                  []map[string]any{{"preferred_network": host, "preferred_cache": host, "aliases": []string{host}}},
	})
}

// handleV1Discovery serves the discovery document of the v1 endpoints,
// whose issuer is the one of v1 access tokens (V1IssuerFor).
func (s *Server) handleV1Discovery(w http.ResponseWriter, r *http.Request) {
	tenant, ok := s.pathTenant(w, r, true)
	if !ok {
		return
	}
	base := s.baseURL + "/" + tenant
	issuer := s.V1IssuerFor(tenant)
	if isMultiTenant(tenant) {
		issuer = s.baseURL + "/sts/{tenantid}/"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                issuer,
		"jwks_uri":                              base + "/discovery/keys",
		"token_endpoint":                        base + "/oauth2/token",
		"authorization_endpoint":                base + "/oauth2/authorize",
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"cloud_instance_name":                   "microsoftonline.com",
	})
}

// pathTenant returns the tenant of the request's URL when the server hosts
// it (or, when multi is set, when it is "common" or "organizations"), and
// otherwise answers like Entra does for an unknown tenant.
func (s *Server) pathTenant(w http.ResponseWriter, r *http.Request, multi bool) (string, bool) {
	tenant := r.PathValue("tenant")
	if s.tenants[strings.ToLower(tenant)] || (multi && isMultiTenant(tenant)) {
		return tenant, true
	}
	s.writeError(w, r, badRequest("invalid_tenant", 90002,
		"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
	return "", false
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.pathTenant(w, r, true); !ok {
		return
	}
	body, err := s.jwksJSON()
	if err != nil {
		s.logger.Error("localidp: marshal JWKS", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
