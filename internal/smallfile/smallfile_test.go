package smallfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	big := filepath.Join(dir, "big")
	link := filepath.Join(dir, "link")
	_ = os.WriteFile(small, []byte("secret\n"), 0o600)
	_ = os.WriteFile(big, make([]byte, MaxBytes+1), 0o600)
	_ = os.Symlink(small, link)
	tests := []struct {
		path    string
		want    string
		wantErr string
	}{
		{small, "secret\n", ""},
		{link, "secret\n", ""},
		{big, "", "larger than"},
		{dir, "", "not a regular file"},
		{"/dev/zero", "", "not a regular file"},
		{filepath.Join(dir, "missing"), "", "no such file"},
	}
	for _, tc := range tests {
		b, err := Read(tc.path)
		if tc.wantErr == "" {
			if err != nil || string(b) != tc.want {
				t.Errorf("Read(%s) = %q, %v", tc.path, b, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Read(%s) err = %v, want %q", tc.path, err, tc.wantErr)
		}
	}
}

func TestStampOf(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret")
	// Every version of the file gets the same modification time, as
	// versions written within one tick of the file system's clock do.
	tick := time.Now().Truncate(time.Second)
	stamp := func() Stamp {
		t.Helper()
		if err := os.Chtimes(path, tick, tick); err != nil {
			t.Fatal(err)
		}
		s, err := StampOf(path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// replace writes a new file and moves it in, as the kubelet does.
	replace := func(content string) Stamp {
		t.Helper()
		if err := Replace(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		return stamp()
	}
	// rewrite writes the file in place.
	rewrite := func(content string) Stamp {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return stamp()
	}
	first := replace("one")
	if again := stamp(); again != first {
		t.Errorf("an unchanged file's stamp changed: %v then %v", first, again)
	}
	second := replace("two")
	if second == first {
		t.Error("a file replaced by one of the same size and time has the same stamp")
	}
	third := rewrite("three")
	if third == second {
		t.Error("a file rewritten in place, longer, has the same stamp")
	}
	if _, err := StampOf(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file has a stamp")
	}
}
