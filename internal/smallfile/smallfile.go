// Package smallfile reads the small files the gateway is given by path
// (secrets, keys, certificates, federated tokens, the configuration): only
// regular files (symbolic links followed, as in mounted Kubernetes secrets)
// and only up to a bound, so a path naming a device or a huge file cannot
// hang or exhaust the gateway.
package smallfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxBytes is the largest file Read accepts.
const MaxBytes = 1 << 20

// Read returns the content of the regular file at path, refusing files
// larger than MaxBytes and anything that is not a regular file.
func Read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, MaxBytes)
	}
	return b, nil
}

// ErrEmpty is returned by ReadSecret for a file holding only white space.
var ErrEmpty = errors.New("is empty")

// ReadSecret returns the content of the file at path (as Read) without its
// surrounding white space: a secret, password or token mounted as a file.
// A file with nothing else is an error matching ErrEmpty, "<path> is empty".
func ReadSecret(path string) (string, error) {
	b, err := Read(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s %w", path, ErrEmpty)
	}
	return s, nil
}
