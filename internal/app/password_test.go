package app

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPasswordFileFollowsRotation reads a password file through a rotation,
// a half-written one and its removal, in order.
func TestPasswordFileFollowsRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "password")
	var logs bytes.Buffer
	p := &passwordFile{path: path, log: slog.New(slog.NewTextHandler(&logs, nil)), last: "first"}
	steps := []struct {
		name    string
		content *string // nil removes the file
		want    string
		warns   bool
	}{
		{"unchanged", ptr("first\n"), "first", false},
		{"rotated", ptr("second\n"), "second", false},
		{"half written: empty", ptr(""), "second", true},
		{"half written: white space", ptr(" \n"), "second", true},
		{"rotated again", ptr("third"), "third", false},
		{"removed", nil, "third", true},
	}
	for _, s := range steps {
		if s.content == nil {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(path, []byte(*s.content), 0o600); err != nil {
			t.Fatal(err)
		}
		logs.Reset()
		got, err := p.read()
		if err != nil || got != s.want {
			t.Errorf("%s: read = %q, %v; want %q", s.name, got, err, s.want)
		}
		if warned := strings.Contains(logs.String(), "level=WARN"); warned != s.warns {
			t.Errorf("%s: warning logged = %t, want %t: %s", s.name, warned, s.warns, logs.String())
		}
		for _, secret := range []string{"first", "second", "third"} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("%s: the log shows a password: %s", s.name, logs.String())
			}
		}
	}
}

func ptr(s string) *string { return &s }
