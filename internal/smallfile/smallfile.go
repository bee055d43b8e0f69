// Package smallfile reads the small files the gateway is given by path
// (secrets, keys, certificates, federated tokens, the configuration): only
// regular files (symbolic links followed, as in mounted Kubernetes secrets)
// and only up to a bound, so a path naming a device or a huge file cannot
// hang or exhaust the gateway; and it tells when such a file has changed
// (Stamp), for the files the gateway reads again after a rotation.
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

// Stamp identifies one version of a file cheaply, from its modification
// time, size and, where the system has them, device and inode numbers: when
// the stamp changes, the file must be read again. A file replaced by one
// written before the old one is gone (a mounted Kubernetes secret updated
// by the kubelet, a new file moved in by rename) gets a new stamp even
// within one tick of the file system's clock and at the same size; a file
// rewritten in place, or deleted and then created (which may reuse the
// inode), gets one when its time or size changes.
type Stamp struct {
	modTime    int64 // Unix ns
	size       int64
	dev, inode uint64
}

// StampOf returns the stamp of the file at path (symbolic links followed),
// or the zero Stamp with the error when the file cannot be stamped.
func StampOf(path string) (Stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Stamp{}, err
	}
	s := Stamp{modTime: fi.ModTime().UnixNano(), size: fi.Size()}
	s.dev, s.inode = fileID(fi)
	return s, nil
}

// Replace writes data to the file at path as the kubelet updates a mounted
// secret: to a new file next to it, then moved over it, so that a reader
// sees the old content or the new, never a part. Tests use it to rotate
// secrets under a running gateway.
func Replace(path string, data []byte) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
