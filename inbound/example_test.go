package inbound_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/obo-gateway/obo-gateway/inbound"
)

// authority publishes the public half of a new signing key "k1" at its
// jwks_uri and signs tokens A with it.
type authority struct {
	jwks *httptest.Server
	key  jwk.Key
}

func newAuthority() *authority {
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	key, _ := jwk.Import(raw)
	_ = key.Set(jwk.KeyIDKey, "k1")
	pub, _ := key.PublicKey()
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	body, _ := json.Marshal(set)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }))
	return &authority{jwks: srv, key: key}
}

func (a *authority) sign(claims map[string]any) string {
	payload, _ := json.Marshal(claims)
	tok, err := jws.Sign(payload, jws.WithKey(jwa.RS256(), a.key))
	if err != nil {
		panic(err)
	}
	return string(tok)
}

// A validator of the tokens A of one authority and API: the key set is
// fetched in the background, and the first request waits for it.
func ExampleValidator_Validate() {
	a := newAuthority()
	defer a.jwks.Close()
	ctx := context.Background()
	keys, err := inbound.NewKeySet(ctx, inbound.KeySetConfig{URL: a.jwks.URL, HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		panic(err)
	}
	defer keys.Close()
	v, err := inbound.NewValidator(inbound.ValidatorConfig{
		Issuer:    "https://login.microsoftonline.com/tenant-id/v2.0",
		Audiences: []string{"api://api-a"},
		ClockSkew: time.Minute,
		Keys:      keys,
	})
	if err != nil {
		panic(err)
	}
	now := time.Now()
	tokenA := a.sign(map[string]any{
		"iss": "https://login.microsoftonline.com/tenant-id/v2.0", "aud": "api://api-a",
		"tid": "tenant-id", "oid": "user-object-id", "sub": "pairwise-subject",
		"scp": "access_as_user", "exp": now.Add(time.Hour).Unix(), "nbf": now.Unix(),
	})
	c, err := v.Validate(ctx, tokenA)
	if err != nil {
		panic(err)
	}
	fmt.Println(c.TenantID, c.ObjectID, c.Scopes, c.Version)

	_, err = v.Validate(ctx, a.sign(map[string]any{"iss": "https://evil.example/", "aud": "api://api-a", "exp": now.Add(time.Hour).Unix()}))
	fmt.Println(err)
	// Output:
	// tenant-id user-object-id [access_as_user] 2.0
	// inbound: token rejected (issuer): token issuer is "https://evil.example/", expected "https://login.microsoftonline.com/tenant-id/v2.0"
}

// BearerToken reads the credential of the Authorization header; other
// schemes count as no token at all.
func ExampleBearerToken() {
	for _, v := range []string{"Bearer eyJ0eXAi.eyJhdWQi.c2ln", "Basic dXNlcjpwYXNz"} {
		tok, err := inbound.BearerToken(http.Header{"Authorization": {v}})
		fmt.Printf("%q %v\n", tok, err)
	}
	// Output:
	// "eyJ0eXAi.eyJhdWQi.c2ln" <nil>
	// "" inbound: token rejected (missing): no bearer token: the Authorization scheme is not Bearer
}
