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
