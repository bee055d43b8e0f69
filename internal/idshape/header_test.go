package idshape

import "testing"

func TestIsB64Token(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJ1In0.c2ln", true},
		{"aZ09-._~+/", true},
		{"YWJj==", true},
		{"", false},
		{"==", false},
		{"a=b", false},
		{"tok en", false},
		{"tok\r\nX-Evil: 1", false},
		{"tok\x00", false},
		{`tok"`, false},
		{"tokö", false},
	} {
		if got := IsB64Token(tc.s); got != tc.want {
			t.Errorf("IsB64Token(%q) = %t, want %t", tc.s, got, tc.want)
		}
	}
}

func TestIsAuthScheme(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"Bearer", true},
		{"N_A", true},
		{"PoP", true},
		{"x!#$%&'*+-.^_`|~", true},
		{"", false},
		{"Bearer x", false},
		{"Bearer\r\nX-Evil: 1", false},
		{"Bearer,", false},
		{"Bé", false},
	} {
		if got := IsAuthScheme(tc.s); got != tc.want {
			t.Errorf("IsAuthScheme(%q) = %t, want %t", tc.s, got, tc.want)
		}
	}
}
