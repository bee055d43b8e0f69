package inbound

import (
	"context"
	"strings"
	"testing"
	"time"
)

// FuzzParseBearer: any Authorization value either yields a credential (what
// follows the scheme and its spaces, never empty; its syntax is Validate's
// to check) or a refusal; never a panic.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc.def.ghi", "bearer x==", "Basic dXNlcg==", "Bearer ", "Bearer a b", "BEARER\ta", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, err := parseBearer(v)
		if err != nil {
			// A value of the Bearer scheme is never taken for no
			// credential at all.
			scheme, _, _ := strings.Cut(strings.ReplaceAll(v, "\t", " "), " ")
			if re, ok := err.(*RejectError); ok && re.Reason == ReasonMissing && strings.EqualFold(scheme, "bearer") {
				t.Fatalf("parseBearer(%q) counted a Bearer value as missing", v)
			}
			return
		}
		if tok == "" || tok[0] == ' ' || !strings.HasSuffix(v, tok) || !strings.EqualFold(strings.TrimRight(v[:len(v)-len(tok)], " "), "bearer") {
			t.Fatalf("parseBearer(%q) accepted %q", v, tok)
		}
	})
}

// FuzzValidate: no input is accepted as token A unless it was signed by the
// authority's key; malformed input is refused without a panic.
func FuzzValidate(f *testing.F) {
	s := newSigner(f, "k1")
	now := time.Now()
	v, err := NewValidator(ValidatorConfig{
		Issuer: testIssuer, Audiences: []string{"api://a"}, Keys: staticKeys{s.publicSet(f)},
		Now: func() time.Time { return now },
	})
	if err != nil {
		f.Fatal(err)
	}
	good := s.sign(f, map[string]any{"alg": "RS256", "kid": "k1"}, goodClaims(now))
	f.Add(good)
	f.Add(good[:len(good)-2])
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("a.b.c.d.e")
	f.Add("..")
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Validate(context.Background(), raw)
		if err == nil && raw != good {
			t.Fatalf("accepted a token the authority did not sign: %q (%+v)", raw, c)
		}
		if err != nil {
			if _, ok := err.(*RejectError); !ok {
				t.Fatalf("refusal is %T, want *RejectError", err)
			}
		}
	})
}
