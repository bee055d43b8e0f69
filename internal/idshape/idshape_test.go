package idshape

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

func TestIsTenantName(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"72f988bf-86f1-41af-91ab-2d7cd011db47", true},
		{"contoso.onmicrosoft.com", true},
		{"contoso", true},
		{"a", true},
		{"a-b.c-d", true},
		{strings.Repeat("a", MaxTenantName), true},
		{strings.Repeat("a", MaxTenantName+1), false},
		{"", false},
		{"-contoso", false},
		{"contoso-", false},
		{".contoso", false},
		{"contoso.", false},
		{"contoso..com", false},
		{"contoso/com", false},
		{"contoso?x=1", false},
		{"contoso#x", false},
		{"contoso%2fcom", false},
		{"con toso", false},
		{"contoso_com", false},
		{"cöntoso", false},
	} {
		if got := IsTenantName(tc.s); got != tc.want {
			t.Errorf("IsTenantName(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func TestIsGUID(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"72f988bf-86f1-41af-91ab-2d7cd011db47", true},
		{"72F988BF-86F1-41AF-91AB-2D7CD011DB47", true},
		{"00000000-0000-0000-0000-000000000000", true},
		{"{72f988bf-86f1-41af-91ab-2d7cd011db47}", false},
		{"72f988bf86f141af91ab2d7cd011db47", false},
		{"72f988bf-86f1-41af-91ab-2d7cd011db4", false},
		{"72f988bf-86f1-41af-91ab-2d7cd011db477", false},
		{"72f988bg-86f1-41af-91ab-2d7cd011db47", false},
		{"72f988bf-86f1-41af-91ab_2d7cd011db47", false},
		{"72f988bf-86f1-41af-91ab-2d7cd011db4-", false},
		{"", false},
	} {
		if got := IsGUID(tc.s); got != tc.want {
			t.Errorf("IsGUID(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

// TestChecksMatchTheirPatterns compares the checks with the regular
// expressions they replace, on random strings drawn from the characters
// that matter at the lengths that matter.
func TestChecksMatchTheirPatterns(t *testing.T) {
	tenant := regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,126}[A-Za-z0-9])?$`)
	guid := regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "aZ09.-_/?fG"
	for range 200_000 {
		n := rng.IntN(MaxTenantName + 3)
		if rng.IntN(4) == 0 {
			n = 34 + rng.IntN(4) // around a GUID's length
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
			if n == 36 && (i == 8 || i == 13 || i == 18 || i == 23) && rng.IntN(8) != 0 {
				b[i] = '-'
			} else if n == 36 && rng.IntN(8) != 0 {
				b[i] = "0123456789abcdefABCDEF"[rng.IntN(22)]
			}
		}
		s := string(b)
		if got, want := IsTenantName(s), tenant.MatchString(s) && !strings.Contains(s, ".."); got != want {
			t.Fatalf("IsTenantName(%q) = %v, the pattern says %v", s, got, want)
		}
		if got, want := IsGUID(s), guid.MatchString(s); got != want {
			t.Fatalf("IsGUID(%q) = %v, the pattern says %v", s, got, want)
		}
	}
}
