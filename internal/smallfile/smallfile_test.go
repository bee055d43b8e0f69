package smallfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	// replace writes a new file and moves it in, as the kubelet does.
	replace := func(content string) Stamp {
		t.Helper()
		tmp := filepath.Join(dir, "new")
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		s, err := StampOf(path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := replace("one")
	if again, err := StampOf(path); err != nil || again != first {
		t.Errorf("an unchanged file's stamp changed: %v then %v (%v)", first, again, err)
	}
	if second := replace("two"); second == first {
		t.Error("a file replaced by one of the same size has the same stamp")
	}
	if third := replace("three"); third == first {
		t.Error("a file replaced by a longer one has the same stamp")
	}
	if _, err := StampOf(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file has a stamp")
	}
}
