package inbound

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/obo-gateway/obo-gateway/internal/jwttest"
)

// staticKeys is a KeySource over a fixed set, for unit tests.
type staticKeys struct{ set jwk.Set }

func (s staticKeys) Key(_ context.Context, kid string) (jwk.Key, error) {
	if k, ok := lookup(s.set, kid); ok {
		return k, nil
	}
	return nil, ErrUnknownKey
}

type signer = jwttest.Signer

func newSigner(tb testing.TB, kid string) *signer { return jwttest.NewSigner(tb, kid) }

const testIssuer = jwttest.Issuer

func seg(v any) string { return jwttest.Segment(v) }

func goodClaims(now time.Time) map[string]any { return jwttest.GoodClaims(now) }

func TestValidate(t *testing.T) {
	now := time.Now()
	good := newSigner(t, "k1")
	other := newSigner(t, "k1") // same kid, different key: another tenant's key set
	v, err := NewValidator(ValidatorConfig{
		Issuer: testIssuer, Audiences: []string{"api://a", "client-id"},
		ClockSkew: time.Minute, Keys: staticKeys{good.PublicSet(t)}, Now: func() time.Time { return now },
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
		{"valid", good.Sign(t, hdr, goodClaims(now)), ""},
		{"aud array with match", good.Sign(t, hdr, with("aud", []string{"x", "client-id"})), ""},
		{"aud array without match", good.Sign(t, hdr, with("aud", []string{"x", "y"})), ReasonAudience},
		{"wrong aud", good.Sign(t, hdr, with("aud", "https://graph.microsoft.com")), ReasonAudience},
		{"expired", good.Sign(t, hdr, with("exp", now.Add(-2*time.Minute).Unix())), ReasonExpired},
		{"expired within skew", good.Sign(t, hdr, with("exp", now.Add(-30*time.Second).Unix())), ""},
		{"not yet valid", good.Sign(t, hdr, with("nbf", now.Add(10*time.Minute).Unix())), ReasonNotYetValid},
		{"missing exp", good.Sign(t, hdr, with("exp", nil)), ReasonMalformed},
		{"exp as string", good.Sign(t, hdr, with("exp", "9999999999")), ReasonMalformed},
		{"wrong issuer", good.Sign(t, hdr, with("iss", "https://evil/")), ReasonIssuer},
		{"issuer trailing slash", good.Sign(t, hdr, with("iss", testIssuer+"/")), ReasonIssuer},
		{"issuer case", good.Sign(t, hdr, with("iss", strings.ToUpper(testIssuer))), ReasonIssuer},
		{"unknown kid", good.Sign(t, map[string]any{"alg": "RS256", "kid": "k9"}, goodClaims(now)), ReasonSignature},
		{"other key same kid", other.Sign(t, hdr, goodClaims(now)), ReasonSignature},
		{"alg none", seg(map[string]any{"alg": "none"}) + "." + seg(goodClaims(now)) + ".", ReasonAlgorithm},
		{"alg None", seg(map[string]any{"alg": "None"}) + "." + seg(goodClaims(now)) + ".", ReasonAlgorithm},
		{"alg HS256", hs256(), ReasonAlgorithm},
		{"crit", good.Sign(t, map[string]any{"alg": "RS256", "kid": "k1", "crit": []string{"exp"}, "exp": 1}, goodClaims(now)), ReasonMalformed},
		{"two segments", "a.b", ReasonMalformed},
		{"JWE", "a.b.c.d.e", ReasonMalformed},
		{"bad base64", "!!!.b.c", ReasonMalformed},
		{"huge", strings.Repeat("a", MaxTokenBytes+1), ReasonMalformed},
		{"typ at+jwt", good.Sign(t, map[string]any{"alg": "RS256", "kid": "k1", "typ": "at+jwt"}, goodClaims(now)), ""},
		{"typ application/AT+JWT", good.Sign(t, map[string]any{"alg": "RS256", "kid": "k1", "typ": "application/AT+JWT"}, goodClaims(now)), ""},
		{"typ jwt", good.Sign(t, map[string]any{"alg": "RS256", "kid": "k1", "typ": "jwt"}, goodClaims(now)), ""},
		{"no typ", good.Sign(t, map[string]any{"alg": "RS256", "kid": "k1"}, goodClaims(now)), ""},
		{"typ logout+jwt", good.Sign(t, map[string]any{"alg": "RS256", "kid": "k1", "typ": "logout+jwt"}, goodClaims(now)), ReasonTokenType},
		{"typ id_token+jwt", good.Sign(t, map[string]any{"alg": "RS256", "kid": "k1", "typ": "application/id_token+jwt"}, goodClaims(now)), ReasonTokenType},
		{"typ secevent+jwt", good.Sign(t, map[string]any{"alg": "RS256", "kid": "k1", "typ": "secevent+jwt"}, goodClaims(now)), ReasonTokenType},
		{"typ application/", good.Sign(t, map[string]any{"alg": "RS256", "kid": "k1", "typ": "application/"}, goodClaims(now)), ReasonTokenType},
		{"nonce", good.Sign(t, hdr, with("nonce", "n-0S6_WzA2Mj")), ReasonTokenType},
		{"null nonce", good.Sign(t, hdr, with("nonce", json.RawMessage("null"))), ReasonTokenType},
		{"at_hash", good.Sign(t, hdr, with("at_hash", "77QmUPtjPfzWtF2AnpK9RQ")), ReasonTokenType},
		{"c_hash", good.Sign(t, hdr, with("c_hash", "LDktKdoQak3Pk0cnXxCltA")), ReasonTokenType},
		{"events", good.Sign(t, hdr, with("events", map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}})), ReasonTokenType},
		{"idtyp user", good.Sign(t, hdr, with("idtyp", "user")), ""},
		{"idtyp app with delegated scopes", good.Sign(t, hdr, with("idtyp", "app")), ReasonTokenType},
		{"idtyp user without delegated scopes", good.Sign(t, hdr, func() map[string]any {
			c := with("idtyp", "user")
			delete(c, "scp")
			c["roles"] = []string{"Reader"}
			return c
		}()), ReasonTokenType},
		{"idtyp device", good.Sign(t, hdr, with("idtyp", "device")), ReasonTokenType},
		{"padded", good.Sign(t, hdr, goodClaims(now)) + "==", ReasonMalformed},
		{"padded header", func() string {
			tok := good.Sign(t, hdr, goodClaims(now))
			h, rest, _ := strings.Cut(tok, ".")
			return h + "=." + rest
		}(), ReasonMalformed},
		{"tampered payload", func() string {
			tok := good.Sign(t, hdr, goodClaims(now))
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
	good := s.Sign(t, map[string]any{"alg": "RS256", "kid": "k1"}, goodClaims(time.Now()))
	if _, err := vc.Validate(context.Background(), good, Sum(good)); err != nil {
		t.Fatal(err)
	}
	bad := jwttest.NonB64Tokens(good)
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

func TestAppOnly(t *testing.T) {
	c := &Claims{Issuer: "i", Subject: "s", TenantID: "t", ObjectID: "o"}
	if !c.AppOnly() {
		t.Error("token without scp is not app-only")
	}
	c.Scopes = []string{"access_as_user"}
	if c.AppOnly() {
		t.Error("token with scp is app-only")
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
		{"single: tid of another tenant than the issuer's", single, claims(v2(tenantA), tenantB, nil), ReasonIssuer, ""},
		{"single: v1 with tid of another tenant than the issuer's", single, claims(v1(tenantA), tenantC, nil), ReasonIssuer, ""},
		{"single: tid in another case", single, claims(v2(tenantA), strings.ToUpper(tenantA), nil), "", "2.0"},
		{"single without v1 issuer: v1 refused", singleNoV1, claims(v1(tenantA), tenantA, nil), ReasonIssuer, ""},
		{"single narrowed to another tenant", narrowed, claims(v2(tenantA), tenantA, nil), ReasonTenant, ""},
		{"v1 audience must still match", single, claims(v1(tenantA), tenantA, map[string]any{"aud": "https://graph.microsoft.com"}), ReasonAudience, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Audiences, cfg.Keys, cfg.Now = []string{"api://a"}, staticKeys{s.PublicSet(t)}, func() time.Time { return now }
			v, err := NewValidator(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Validate(context.Background(), s.Sign(t, hdr, tc.claims))
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
