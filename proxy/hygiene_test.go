package proxy

import (
	"net/http"
	"slices"
	"testing"
)

func TestStripInbound(t *testing.T) {
	inbound := func() http.Header {
		return http.Header{
			"Accept":                      {"application/json"},
			"X-Custom":                    {"kept"},
			"Cookie":                      {"session=abc"},
			"Cookie2":                     {"$Version=1"},
			"Forwarded":                   {"for=6.6.6.6;host=evil"},
			"X-Forwarded-For":             {"6.6.6.6"},
			"X-Forwarded-Host":            {"evil.example"},
			"X-Forwarded-Proto":           {"https"},
			"X-Forwarded-User":            {"admin"},
			"X-Forwarded-Prefix":          {"/admin"},
			"X-Ms-Client-Principal-Name":  {"admin@contoso.com"},
			"X-Ms-Token-Aad-Access-Token": {"eyJ..."},
			"X-Original-Url":              {"/admin"},
			"X-Tenant":                    {"other"},
			"X_forwarded_for":             {"6.6.6.6"},
			"X_ms_client_principal_name":  {"admin@contoso.com"},
			"X_tenant":                    {"other"},
			"Cookie_":                     {"kept: not a cookie header"},
		}
	}
	tests := []struct {
		name    string
		extra   []string
		cookies bool
		want    []string
	}{
		{"defaults", nil, false, []string{"Accept", "Cookie_", "X-Custom", "X-Tenant", "X_tenant"}},
		{"cookies forwarded", nil, true, []string{"Accept", "Cookie", "Cookie2", "Cookie_", "X-Custom", "X-Tenant", "X_tenant"}},
		{"configured header, any case or separator", []string{"x-tenant", " X_TENANT "}, false, []string{"Accept", "Cookie_", "X-Custom"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := inbound()
			stripInbound(h, stripList(tc.extra), tc.cookies)
			var got []string
			for k := range h {
				got = append(got, k)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("left %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStripListFoldsNames(t *testing.T) {
	l := stripList([]string{"x-ms-client-principal", "X-Extra", "x_extra", ""})
	if n := len(l.folded); n != len(identityHeaders)+1 || len(l.canonical) != n {
		t.Errorf("%d names, want the %d identity headers and x-extra: %v", n, len(identityHeaders), l)
	}
	for k := range l.folded {
		if k != headerKey(k) || k == "" || !l.canonical[http.CanonicalHeaderKey(k)] {
			t.Errorf("%q is not folded, or has no canonical form", k)
		}
	}
	ih := IdentityHeaders()
	ih[0] = "changed"
	if identityHeaders[0] == "changed" {
		t.Error("IdentityHeaders returns the package's own slice")
	}
}

func TestHeaderFields(t *testing.T) {
	tests := []struct {
		h    http.Header
		want int
	}{
		{http.Header{}, 0},
		{http.Header{"A": {"1"}, "B": {"1", "2", "3"}}, 4},
	}
	for _, tc := range tests {
		if got := headerFields(tc.h); got != tc.want {
			t.Errorf("headerFields(%v) = %d, want %d", tc.h, got, tc.want)
		}
	}
}
