package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration that is written in the configuration file in
// the notation of time.ParseDuration, such as "60s", "1m30s" or "250ms".
// A bare number such as 30 is rejected because its unit would be a guess;
// the only exception is 0, which means the same in every unit.
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String returns the duration in the notation of time.Duration.String, such
// as "1m30s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText encodes the duration as its String form, so that it appears
// readably in JSON and YAML output.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a duration such as "60s" or "1m30s". It rejects a bare
// number other than 0 with a message that asks for a unit.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := parseDuration(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// UnmarshalYAML decodes a duration from a YAML scalar; see UnmarshalText for
// the accepted notation.
func (d *Duration) UnmarshalYAML(value *yaml.Node) error {
	if value.Kind != yaml.ScalarNode {
		return fmt.Errorf("must be a duration such as \"30s\", not %s", kindName(value))
	}
	return d.UnmarshalText([]byte(value.Value))
}

func parseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("must be a duration such as \"30s\", \"1m30s\" or \"250ms\", not an empty string")
	}
	if s == "0" {
		return 0, nil
	}
	if isPlainNumber(s) {
		return 0, fmt.Errorf("%q has no unit; add one, such as \"%ss\" or \"%sms\"", s, s, s)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a valid duration; use a number with a unit, such as \"30s\", \"1m30s\" or \"250ms\"", s)
	}
	return Duration(v), nil
}

// ByteSize is a number of bytes that is written in the configuration file
// either as a plain number of bytes ("1000") or as a number followed by a
// unit: B; KiB, MiB, GiB and TiB (powers of 1024); KB, MB, GB and TB (powers
// of 1000). The Kubernetes spellings Ki, Mi, Gi and Ti are accepted as
// well, and units are matched case-insensitively. A fraction is allowed
// when a unit is given ("1.5GiB"); the result is rounded to whole bytes.
// Negative sizes are rejected.
type ByteSize int64

// KiB, MiB, GiB and TiB are the 1024-based byte sizes, for use in code:
// 64 * MiB is the default Cache.MaxBytes.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
)

// byteUnit returns the multiplier of a lower-cased size unit.
func byteUnit(unit string) (float64, bool) {
	switch unit {
	case "", "b":
		return 1, true
	case "kb":
		return 1e3, true
	case "mb":
		return 1e6, true
	case "gb":
		return 1e9, true
	case "tb":
		return 1e12, true
	case "ki", "kib":
		return float64(KiB), true
	case "mi", "mib":
		return float64(MiB), true
	case "gi", "gib":
		return float64(GiB), true
	case "ti", "tib":
		return float64(TiB), true
	}
	return 0, false
}

// String returns the size in the largest unit that represents it exactly,
// preferring the 1024-based units: "64MiB", "10MB", "1536B".
func (b ByteSize) String() string {
	if b == 0 {
		return "0B"
	}
	for _, u := range []struct {
		size int64
		name string
	}{
		{int64(TiB), "TiB"}, {int64(GiB), "GiB"}, {int64(MiB), "MiB"}, {int64(KiB), "KiB"},
		{1e12, "TB"}, {1e9, "GB"}, {1e6, "MB"}, {1e3, "KB"},
	} {
		if int64(b)%u.size == 0 {
			return strconv.FormatInt(int64(b)/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// MarshalText encodes the size as its String form.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText parses a size such as "64MiB", "10MB" or "1000".
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := parseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// UnmarshalYAML decodes a size from a YAML scalar; see UnmarshalText for the
// accepted notation.
func (b *ByteSize) UnmarshalYAML(value *yaml.Node) error {
	if value.Kind != yaml.ScalarNode {
		return fmt.Errorf("must be a size such as \"64MiB\", not %s", kindName(value))
	}
	return b.UnmarshalText([]byte(value.Value))
}

func parseByteSize(s string) (ByteSize, error) {
	orig := s
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("%q is negative; a size must not be negative", orig)
	}
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	mult, ok := byteUnit(unit)
	if num == "" || !ok || strings.Count(num, ".") > 1 || strings.HasPrefix(num, ".") || strings.HasSuffix(num, ".") {
		return 0, fmt.Errorf("%q is not a valid size; use a number of bytes or a number with a unit, such as \"64MiB\", \"512KiB\", \"1GiB\" or \"10MB\"", orig)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/int64(mult) {
			return 0, fmt.Errorf("%q is too large", orig)
		}
		return ByteSize(n * int64(mult)), nil
	}
	if mult == 1 {
		return 0, fmt.Errorf("%q is not a whole number of bytes", orig)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a valid size", orig)
	}
	v := math.Round(f * mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", orig)
	}
	return ByteSize(v), nil
}

// isPlainNumber reports whether s is an optionally signed decimal number
// without a unit, such as "30", "-5" or "1.5".
func isPlainNumber(s string) bool {
	s = strings.TrimLeft(s, "+-")
	digits, dots := 0, 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a scalar"
	case yaml.AliasNode:
		return "an alias"
	default:
		return "a document"
	}
}

// Bool is a boolean written as true or false. A ${VAR} reference may
// supply it; other spellings (yes, no, on, off, 1) are rejected because YAML
// versions disagree about them.
type Bool bool

// UnmarshalYAML decodes true or false from a YAML scalar.
func (b *Bool) UnmarshalYAML(value *yaml.Node) error {
	if value.Kind != yaml.ScalarNode {
		return fmt.Errorf("must be true or false, not %s", kindName(value))
	}
	switch strings.ToLower(strings.TrimSpace(value.Value)) {
	case "true":
		*b = true
	case "false":
		*b = false
	default:
		return fmt.Errorf("must be true or false, not %q", value.Value)
	}
	return nil
}
