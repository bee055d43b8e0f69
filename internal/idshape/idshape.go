// Package idshape checks the shape of Microsoft identity platform
// identifiers before they are put into a URL or an issuer: tenant names
// (a tenant id or a verified domain) and GUIDs; and the shape of tokens
// and authentication schemes before they are put into a header.
//
// The checks are written out: a regular expression with a bounded
// repetition compiles into a large program the collector scans forever.
package idshape

// MaxTenantName is the length of the longest tenant name IsTenantName
// accepts.
const MaxTenantName = 128

// IsTenantName reports whether s can name a tenant in an authority's path
// or an issuer: 1 to MaxTenantName letters, digits, dots and hyphens,
// beginning and ending with a letter or digit, with no two dots in a row.
// GUIDs and domain names have this shape; nothing that could add a path
// segment, a query or a fragment does.
func IsTenantName(s string) bool {
	if len(s) == 0 || len(s) > MaxTenantName || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		switch c := s[i]; {
		case isAlnum(c), c == '-':
		case c == '.' && s[i+1] != '.':
		default:
			return false
		}
	}
	return true
}

// IsGUID reports whether s is a GUID in its 8-4-4-4-12 hexadecimal form,
// in either case, without braces.
func IsGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
