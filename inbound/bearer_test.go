package inbound

import (
	"crypto/sha256"
	"strings"
	"testing"
)

func TestParseBearer(t *testing.T) {
	tests := []struct {
		in, want, reason string
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", ""},
		{"bearer abc", "abc", ""},
		{"BEARER  abc==", "abc==", ""},
		{"", "", ReasonMissing},
		// Another scheme is no bearer token at all (RFC 6750, 3.1).
		{"Basic dXNlcjpwYXNz", "", ReasonMissing},
		{"Bearerabc", "", ReasonMissing},
		{"Bear", "", ReasonMissing},
		{"Bearer", "", ReasonMalformed},
		{"Bearer ", "", ReasonMalformed},
		{"bearer\tabc", "", ReasonMalformed},
		{"Basic\tabc", "", ReasonMissing},
		// The credential's syntax is Validate's to check
		// (TestValidateRefusesNonB64Token).
		{"Bearer abc def", "abc def", ""},
		{"Bearer  \"abc\"", "\"abc\"", ""},
	}
	for _, tc := range tests {
		got, err := parseBearer(tc.in)
		if tc.reason == "" {
			if err != nil || got != tc.want {
				t.Errorf("parseBearer(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		re, ok := err.(*RejectError)
		if !ok || re.Reason != tc.reason {
			t.Errorf("parseBearer(%q) err = %v, want reason %s", tc.in, err, tc.reason)
		}
	}
}

func TestBearerTokenRejectsTwoHeaders(t *testing.T) {
	h := map[string][]string{"Authorization": {"Bearer a", "Bearer b"}}
	if _, err := BearerToken(h); err == nil {
		t.Error("two Authorization headers accepted")
	}
}

func TestSumToken(t *testing.T) {
	for _, n := range []int{0, 1, 31, 32, 1033, 8 << 10, 64 << 10} {
		raw := strings.Repeat("x", n)
		if got, want := Sum(raw), sha256.Sum256([]byte(raw)); got != want {
			t.Errorf("sum of %d bytes = %x, want %x", n, got, want)
		}
	}
	raw := strings.Repeat("t", 1200)
	if n := testing.AllocsPerRun(100, func() { Sum(raw) }); n != 0 {
		t.Errorf("hashing a 1200-byte token allocates %v times, want 0", n)
	}
}
