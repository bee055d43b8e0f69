package config

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDurationUnmarshal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr string
	}{
		{name: "seconds", in: "60s", want: time.Minute},
		{name: "compound", in: "1m30s", want: 90 * time.Second},
		{name: "milliseconds", in: "250ms", want: 250 * time.Millisecond},
		{name: "hours", in: "1h", want: time.Hour},
		{name: "quoted", in: `"45s"`, want: 45 * time.Second},
		{name: "zero without unit", in: "0", want: 0},
		{name: "zero with unit", in: "0s", want: 0},
		{name: "negative parses", in: "-5s", want: -5 * time.Second},
		{name: "bare integer", in: "30", wantErr: `"30" has no unit; add one, such as "30s"`},
		{name: "quoted bare integer", in: `"30"`, wantErr: `"30" has no unit; add one`},
		{name: "bare float", in: "1.5", wantErr: `"1.5" has no unit`},
		{name: "garbage", in: "soon", wantErr: `"soon" is not a valid duration; use a number with a unit`},
		{name: "unknown unit", in: "3 days", wantErr: `"3 days" is not a valid duration`},
		{name: "empty string", in: `""`, wantErr: "not an empty string"},
		{name: "list", in: "[1s]", wantErr: "must be a duration such as \"30s\", not a list"},
		{name: "mapping", in: "{a: 1}", wantErr: "not a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got struct {
				D Duration `yaml:"d"`
			}
			err := yaml.Unmarshal([]byte("d: "+tt.in), &got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.D.D() != tt.want {
				t.Errorf("got %v, want %v", got.D.D(), tt.want)
			}
		})
	}
}

func TestDurationText(t *testing.T) {
	tests := []struct {
		d    Duration
		want string
	}{
		{Duration(90 * time.Second), "1m30s"},
		{Duration(250 * time.Millisecond), "250ms"},
		{0, "0s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.d.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			b, err := json.Marshal(tt.d)
			if err != nil || string(b) != `"`+tt.want+`"` {
				t.Errorf("json = %s, %v; want %q", b, err, tt.want)
			}
			var back Duration
			if err := back.UnmarshalText([]byte(tt.d.String())); err != nil || back != tt.d {
				t.Errorf("UnmarshalText(String()) = %v, %v; want %v", back, err, tt.d)
			}
		})
	}
}

func TestByteSizeUnmarshal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ByteSize
		wantErr string
	}{
		{name: "MiB", in: "64MiB", want: 64 << 20},
		{name: "KiB", in: "512KiB", want: 512 << 10},
		{name: "GiB", in: "1GiB", want: 1 << 30},
		{name: "TiB", in: "2TiB", want: 2 << 40},
		{name: "MB is 1000-based", in: "10MB", want: 10_000_000},
		{name: "KB is 1000-based", in: "3KB", want: 3000},
		{name: "GB is 1000-based", in: "1GB", want: 1_000_000_000},
		{name: "plain bytes", in: "1000", want: 1000},
		{name: "quoted plain bytes", in: `"1000"`, want: 1000},
		{name: "B suffix", in: "2048B", want: 2048},
		{name: "space before unit", in: "64 MiB", want: 64 << 20},
		{name: "lower case unit", in: "64mib", want: 64 << 20},
		{name: "kubernetes spelling", in: "128Mi", want: 128 << 20},
		{name: "fraction", in: "1.5GiB", want: 3 << 29},
		{name: "zero", in: "0", want: 0},
		{name: "negative", in: "-1MiB", wantErr: `"-1MiB" is negative; a size must not be negative`},
		{name: "negative bytes", in: "-5", wantErr: "must not be negative"},
		{name: "unknown unit", in: "5PB", wantErr: `"5PB" is not a valid size`},
		{name: "docker style m is ambiguous", in: "64m", wantErr: `"64m" is not a valid size`},
		{name: "no number", in: "MiB", wantErr: "is not a valid size"},
		{name: "two dots", in: "1.2.3MiB", wantErr: "is not a valid size"},
		{name: "fraction of a byte", in: "1.5", wantErr: "is not a whole number of bytes"},
		{name: "overflow", in: "9999999999999999TiB", wantErr: "is too large"},
		{name: "overflow plain", in: "99999999999999999999", wantErr: "is too large"},
		{name: "list", in: "[1]", wantErr: "not a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got struct {
				B ByteSize `yaml:"b"`
			}
			err := yaml.Unmarshal([]byte("b: "+tt.in), &got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.B != tt.want {
				t.Errorf("got %d, want %d", got.B, tt.want)
			}
		})
	}
}

func TestByteSizeString(t *testing.T) {
	tests := []struct {
		b    ByteSize
		want string
	}{
		{0, "0B"},
		{64 * MiB, "64MiB"},
		{512 * KiB, "512KiB"},
		{GiB, "1GiB"},
		{3 * TiB, "3TiB"},
		{10_000_000, "10MB"},
		{1000, "1KB"},
		{1536, "1536B"},
		{1_000_000_000, "1GB"},
		{7, "7B"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.b.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			var back ByteSize
			if err := back.UnmarshalText([]byte(tt.b.String())); err != nil || back != tt.b {
				t.Errorf("UnmarshalText(String()) = %d, %v; want %d", back, err, tt.b)
			}
			b, err := json.Marshal(tt.b)
			if err != nil || string(b) != `"`+tt.want+`"` {
				t.Errorf("json = %s, %v; want %q", b, err, tt.want)
			}
		})
	}
}
