package config

import (
	"fmt"
	"strings"
)

// expand replaces every ${NAME} in s by the value lookupEnv gives for NAME and
// every $$ by a single $. A $ followed by anything else is kept as it is.
// It returns the expanded string and one message per reference that could
// not be expanded (an unset variable or a malformed reference); when there
// are any, the returned string is s unchanged, so that later checks do not
// act on a half-expanded value.
func expand(s string, lookupEnv func(string) (string, bool)) (string, []string) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var (
		b    strings.Builder
		errs []string
	)
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				errs = append(errs, fmt.Sprintf("unterminated variable reference %q: close it with } (write $$ for a literal $)", s[i:]))
				i = len(s)
				continue
			}
			name := s[i+2 : i+2+end]
			ref := s[i : i+3+end]
			i += 3 + end
			if !validVarName(name) {
				errs = append(errs, fmt.Sprintf("invalid variable reference %q: only ${NAME} is supported, where NAME is made of letters, digits and underscores (write $$ for a literal $)", ref))
				continue
			}
			v, ok := lookupEnv(name)
			if !ok {
				errs = append(errs, fmt.Sprintf("environment variable %s is not set", name))
				continue
			}
			b.WriteString(v)
		default:
			b.WriteByte(c)
			i++
		}
	}
	if errs != nil {
		return s, errs
	}
	return b.String(), nil
}

func validVarName(name string) bool {
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for _, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
