package app

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/smallfile"
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
		keep    bool    // leave the file as it is
		want    string
		warns   bool
	}{
		{"unchanged", ptr("first\n"), false, "first", false},
		{"rotated", ptr("second\n"), false, "second", false},
		{"half written: empty", ptr(""), false, "second", true},
		{"half written, read again", nil, true, "second", false},
		{"half written: white space", ptr(" \n"), false, "second", true},
		{"rotated again", ptr("third"), false, "third", false},
		{"removed", nil, false, "third", true},
		{"still removed", nil, true, "third", false},
		{"back", ptr("fourth"), false, "fourth", false},
	}
	for _, s := range steps {
		switch {
		case s.keep:
		case s.content == nil:
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		default:
			if err := smallfile.Replace(path, []byte(*s.content)); err != nil {
				t.Fatal(err)
			}
		}
		logs.Reset()
		got, err := p.read()
		if err != nil || got != s.want {
			t.Errorf("%s: read = %q, %v; want %q", s.name, got, err, s.want)
		}
		if warned := strings.Contains(logs.String(), "level=WARN"); warned != s.warns {
			t.Errorf("%s: warning logged = %t, want %t: %s", s.name, warned, s.warns, logs.String())
		}
		for _, secret := range []string{"first", "second", "third", "fourth"} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("%s: the log shows a password: %s", s.name, logs.String())
			}
		}
	}
}

func ptr(s string) *string { return &s }
