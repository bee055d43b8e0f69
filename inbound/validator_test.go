package inbound

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// staticKeys is a KeySource over a fixed set, for unit tests.
type staticKeys struct{ set jwk.Set }

func (s staticKeys) Key(_ context.Context, kid string) (jwk.Key, error) {
	if k, ok := lookup(s.set, kid); ok {
		return k, nil
	}
	return nil, ErrUnknownKey
}

type signer struct {
	key *rsa.PrivateKey
	kid string
}

func newSigner(t testing.TB, kid string) *signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{key: k, kid: kid}
}

func (s *signer) publicSet(t testing.TB) jwk.Set {
	t.Helper()
	k, err := jwk.Import(s.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, s.kid)
	set := jwk.NewSet()
	_ = set.AddKey(k)
	return set
}

func seg(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sign builds a compact JWS by hand so tests can forge any header.
func (s *signer) sign(t testing.TB, header map[string]any, claims map[string]any) string {
	t.Helper()
	in := seg(header) + "." + seg(claims)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

const testIssuer = "https://login.example/tenant/v2.0"

func goodClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": testIssuer, "aud": "api://a", "sub": "s1", "oid": "o1", "tid": "t1",
		"scp": "access_as_user other", "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix(),
		"iat": now.Add(-time.Minute).Unix(),
	}
}

func TestValidate(t *testing.T) {
	now := time.Now()
	good := newSigner(t, "k1")
	other := newSigner(t, "k1") // same kid, different key: another tenant's key set
	v, err := NewValidator(ValidatorConfig{
		Issuer: testIssuer, Audiences: []string{"api://a", "client-id"},
		ClockSkew: time.Minute, Keys: staticKeys{good.publicSet(t)}, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]any{"alg": "RS256", "kid": "k1", "typ": "JWT"}
	with := func(k string, val any) map[string]any {
		c := goodClaims(now)
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	hs256 := func() string {
		// HMAC with the public key bytes as secret: the classic key confusion.
		in := seg(map[string]any{"alg": "HS256", "kid": "k1"}) + "." + seg(goodClaims(now))
		return in + ".c2lnbmF0dXJl"
	}
	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{"valid", good.sign(t, hdr, goodClaims(now)), ""},
		{"aud array with match", good.sign(t, hdr, with("aud", []string{"x", "client-id"})), ""},
		{"aud array without match", good.sign(t, hdr, with("aud", []string{"x", "y"})), ReasonAudience},
		{"wrong aud", good.sign(t, hdr, with("aud", "https://graph.microsoft.com")), ReasonAudience},
		{"expired", good.sign(t, hdr, with("exp", now.Add(-2*time.Minute).Unix())), ReasonExpired},
		{"expired within skew", good.sign(t, hdr, with("exp", now.Add(-30*time.Second).Unix())), ""},
		{"not yet valid", good.sign(t, hdr, with("nbf", now.Add(10*time.Minute).Unix())), ReasonNotYetValid},
		{"missing exp", good.sign(t, hdr, with("exp", nil)), ReasonMalformed},
		{"exp as string", good.sign(t, hdr, with("exp", "9999999999")), ReasonMalformed},
		{"wrong issuer", good.sign(t, hdr, with("iss", "https://evil/")), ReasonIssuer},
		{"issuer trailing slash", good.sign(t, hdr, with("iss", testIssuer+"/")), ReasonIssuer},
		{"issuer case", good.sign(t, hdr, with("iss", strings.ToUpper(testIssuer))), ReasonIssuer},
		{"unknown kid", good.sign(t, map[string]any{"alg": "RS256", "kid": "k9"}, goodClaims(now)), ReasonSignature},
		{"other key same kid", other.sign(t, hdr, goodClaims(now)), ReasonSignature},
		{"alg none", seg(map[string]any{"alg": "none"}) + "." + seg(goodClaims(now)) + ".", ReasonAlgorithm},
		{"alg None", seg(map[string]any{"alg": "None"}) + "." + seg(goodClaims(now)) + ".", ReasonAlgorithm},
		{"alg HS256", hs256(), ReasonAlgorithm},
		{"crit", good.sign(t, map[string]any{"alg": "RS256", "kid": "k1", "crit": []string{"exp"}, "exp": 1}, goodClaims(now)), ReasonMalformed},
		{"two segments", "a.b", ReasonMalformed},
		{"JWE", "a.b.c.d.e", ReasonMalformed},
		{"bad base64", "!!!.b.c", ReasonMalformed},
		{"huge", strings.Repeat("a", MaxTokenBytes+1), ReasonMalformed},
		{"tampered payload", func() string {
			tok := good.sign(t, hdr, goodClaims(now))
			parts := strings.Split(tok, ".")
			return parts[0] + "." + seg(with("oid", "someone-else")) + "." + parts[2]
		}(), ReasonSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Validate(context.Background(), tc.token)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if c.TenantID != "t1" || c.ObjectID != "o1" || c.AppOnly() {
					t.Errorf("claims = %+v", c)
				}
				return
			}
			re, ok := err.(*RejectError)
			if !ok {
				t.Fatalf("err = %v, want *RejectError %s", err, tc.reason)
			}
			if re.Reason != tc.reason {
				t.Errorf("reason = %s (%s), want %s", re.Reason, re.Description, tc.reason)
			}
		})
	}
}

// TestValidateRefusesNonB64Token: a credential outside RFC 6750's b64token
// syntax is refused as malformed, with a description that says so, by
// Validate and by a warm VerifiedCache (which skips no check: it only
// remembers tokens that passed Validate). proxy's TestHandlerRefusesNonB64Token
// sends the same credentials through the handler.
func TestValidateRefusesNonB64Token(t *testing.T) {
	vc, s, _ := newTestVerifiedCache(t, 1<<20)
	good := s.sign(t, map[string]any{"alg": "RS256", "kid": "k1"}, goodClaims(time.Now()))
	if _, err := vc.Validate(context.Background(), good, Sum(good)); err != nil {
		t.Fatal(err)
	}
	bad := []string{
		good + " x",
		`"` + good + `"`,
		good + ",Bearer " + good,
		strings.Replace(good, ".", "=.", 1),
		good + "!",
	}
	for _, tok := range bad {
		for name, validate := range map[string]func() (*Claims, error){
			"Validate":               func() (*Claims, error) { return vc.v.Validate(context.Background(), tok) },
			"VerifiedCache.Validate": func() (*Claims, error) { return vc.Validate(context.Background(), tok, Sum(tok)) },
		} {
			_, err := validate()
			re, ok := err.(*RejectError)
			if !ok || re.Reason != ReasonMalformed || !strings.Contains(re.Description, "b64token") {
				t.Errorf("%s(%.12q...) = %v, want a malformed refusal naming the b64token syntax", name, tok, err)
			}
		}
	}
}

func TestNewValidatorRefusesWeakAlgorithms(t *testing.T) {
	for _, alg := range []string{"none", "HS256", "HS512", "bogus"} {
		_, err := NewValidator(ValidatorConfig{Issuer: "i", Audiences: []string{"a"}, Keys: staticKeys{jwk.NewSet()}, Algorithms: []string{alg}})
		if err == nil {
			t.Errorf("algorithm %q accepted", alg)
		}
	}
}

func TestAppOnlyAndUser(t *testing.T) {
	c := &Claims{Issuer: "i", Subject: "s", TenantID: "t", ObjectID: "o"}
	if !c.AppOnly() {
		t.Error("token without scp is not app-only")
	}
	if tn, u := c.User(); tn != "t" || u != "o" {
		t.Errorf("User() = %s %s", tn, u)
	}
	c.ObjectID = ""
	if tn, u := c.User(); tn != "i" || u != "s" {
		t.Errorf("User() without oid = %s %s", tn, u)
	}
}

func TestValidateTenantsAndVersions(t *testing.T) {
	now := time.Now()
	s := newSigner(t, "k1")
	const (
		tenantA = "aaaaaaaa-0000-4000-8000-00000000000a"
		tenantB = "bbbbbbbb-0000-4000-8000-00000000000b"
		tenantC = "cccccccc-0000-4000-8000-00000000000c"
	)
	v2 := func(tid string) string { return "https://login.example/" + tid + "/v2.0" }
	v1 := func(tid string) string { return "https://sts.example/" + tid + "/" }
	claims := func(iss, tid string, extra map[string]any) map[string]any {
		c := goodClaims(now)
		c["iss"], c["tid"] = iss, tid
		for k, val := range extra {
			if val == nil {
				delete(c, k)
			} else {
				c[k] = val
			}
		}
		return c
	}
	hdr := map[string]any{"alg": "RS256", "kid": "k1", "typ": "JWT"}
	multi := ValidatorConfig{
		Issuer: "https://login.example/{tenantid}/v2.0", V1Issuer: "https://sts.example/{tenantid}/",
		AllowedTenants: []string{tenantA, strings.ToUpper(tenantB)},
	}
	anyTenant := multi
	anyTenant.AllowedTenants = []string{"*"}
	single := ValidatorConfig{Issuer: v2(tenantA), V1Issuer: v1(tenantA)}
	singleNoV1 := ValidatorConfig{Issuer: v2(tenantA)}
	narrowed := ValidatorConfig{Issuer: v2(tenantA), AllowedTenants: []string{tenantC}}

	tests := []struct {
		name    string
		cfg     ValidatorConfig
		claims  map[string]any
		reason  string
		version string
	}{
		{"multi: allowed tenant v2", multi, claims(v2(tenantA), tenantA, nil), "", "2.0"},
		{"multi: allowed tenant, case of tid differs from list", multi, claims(v2(tenantB), tenantB, nil), "", "2.0"},
		{"multi: allowed tenant v1", multi, claims(v1(tenantA), tenantA, map[string]any{"ver": "1.0", "appid": "app", "upn": "u@a"}), "", "1.0"},
		{"multi: tenant not allowed", multi, claims(v2(tenantC), tenantC, nil), ReasonTenant, ""},
		{"multi: issuer of another tenant than tid", multi, claims(v2(tenantB), tenantA, nil), ReasonIssuer, ""},
		{"multi: no tid", multi, claims(v2(tenantA), "", map[string]any{"tid": nil}), ReasonIssuer, ""},
		{"multi: literal placeholder in iss", multi, claims("https://login.example/{tenantid}/v2.0", "{tenantid}", nil), ReasonIssuer, ""},
		{"multi: tid with a slash", multi, claims("https://login.example/a/b/v2.0", "a/b", nil), ReasonIssuer, ""},
		{"any tenant: tid with an empty label", anyTenant, claims("https://login.example/a..b/v2.0", "a..b", nil), ReasonIssuer, ""},
		{"any tenant: tid ending in a dot", anyTenant, claims("https://login.example/a./v2.0", "a.", nil), ReasonIssuer, ""},
		{"any tenant", anyTenant, claims(v2(tenantC), tenantC, nil), "", "2.0"},
		{"single: v2", single, claims(v2(tenantA), tenantA, nil), "", "2.0"},
		{"single: v1", single, claims(v1(tenantA), tenantA, nil), "", "1.0"},
		{"single: v1 of another tenant", single, claims(v1(tenantB), tenantB, nil), ReasonIssuer, ""},
		{"single without v1 issuer: v1 refused", singleNoV1, claims(v1(tenantA), tenantA, nil), ReasonIssuer, ""},
		{"single narrowed to another tenant", narrowed, claims(v2(tenantA), tenantA, nil), ReasonTenant, ""},
		{"v1 audience must still match", single, claims(v1(tenantA), tenantA, map[string]any{"aud": "https://graph.microsoft.com"}), ReasonAudience, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Audiences, cfg.Keys, cfg.Now = []string{"api://a"}, staticKeys{s.publicSet(t)}, func() time.Time { return now }
			v, err := NewValidator(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Validate(context.Background(), s.sign(t, hdr, tc.claims))
			if tc.reason != "" {
				re, ok := err.(*RejectError)
				if !ok || re.Reason != tc.reason {
					t.Fatalf("err = %v, want reason %s", err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if c.Version != tc.version {
				t.Errorf("Version = %q, want %q", c.Version, tc.version)
			}
			if tc.version == "1.0" && tc.claims["appid"] != nil && (c.ClientAppID != "app" || c.Username != "u@a") {
				t.Errorf("v1 claims: appid %q upn %q", c.ClientAppID, c.Username)
			}
		})
	}
}

func TestNewValidatorNeedsTenantsForMultiTenantIssuer(t *testing.T) {
	_, err := NewValidator(ValidatorConfig{Issuer: "https://login.example/{tenantid}/v2.0", Audiences: []string{"a"}, Keys: staticKeys{jwk.NewSet()}})
	if err == nil || !strings.Contains(err.Error(), "AllowedTenants") {
		t.Errorf("err = %v, want AllowedTenants required", err)
	}
}
