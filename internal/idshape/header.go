package idshape

import "strings"

// IsB64Token reports whether s has the b64token syntax of RFC 6750
// section 2.1, the only form a bearer token takes in a header:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func IsB64Token(s string) bool {
	i := 0
	for i < len(s) && (isAlnum(s[i]) || isByteOf(s[i], "-._~+/")) {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// IsAuthScheme reports whether s can be an authentication scheme: a token
// of RFC 9110 section 5.6.2, 1*tchar.
func IsAuthScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && !isByteOf(s[i], "!#$%&'*+-.^_`|~") {
			return false
		}
	}
	return true
}

func isByteOf(c byte, set string) bool { return strings.IndexByte(set, c) >= 0 }
