package proxy

import (
	"testing"

	"github.com/obo-gateway/obo-gateway/inbound"
)

// TestCacheKeyTellsIdentityFormsApart: a user named by tenant and object
// id, and one named by issuer and subject (a token without oid), never
// share token B, even when the values are the same strings.
func TestCacheKeyTellsIdentityFormsApart(t *testing.T) {
	h := &Handler{keyMode: KeyUser}
	rt, err := newRoute(RouteConfig{Name: "r", PathPrefix: "/r", Upstream: "http://127.0.0.1:1/", Scopes: []string{"s"}})
	if err != nil {
		t.Fatal(err)
	}
	byObject := h.cacheKey(rt, &inbound.Claims{TenantID: "x", ObjectID: "y", Issuer: "i", Subject: "s"}, [32]byte{})
	bySubject := h.cacheKey(rt, &inbound.Claims{Issuer: "x", Subject: "y"}, [32]byte{})
	if byObject == bySubject {
		t.Errorf("tid+oid and iss+sub share the key %q", byObject)
	}
	if again := h.cacheKey(rt, &inbound.Claims{TenantID: "x", ObjectID: "y", Issuer: "j", Subject: "t"}, [32]byte{}); again != byObject {
		t.Error("the key of a user with an oid depends on iss or sub")
	}
}
