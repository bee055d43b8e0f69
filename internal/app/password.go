package app

import (
	"log/slog"
	"sync"

	"github.com/obo-gateway/obo-gateway/internal/smallfile"
)

// passwordFile is cache.redis.password_file, read again for every new
// connection to Redis, so that a rotated password (a mounted secret
// updated by the kubelet) is used without a restart. When the file cannot
// be read, or holds nothing (a rotation half written), the last password
// read stays in use, with a warning once per version of the file.
type passwordFile struct {
	path string
	log  *slog.Logger

	mu     sync.Mutex
	last   string
	warned *smallfile.Stamp // the version last warned about
}

// read returns the file's password, or the last one read.
func (p *passwordFile) read() (string, error) {
	s, err := smallfile.ReadSecret(p.path)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		p.last, p.warned = s, nil
		return s, nil
	}
	stamp, _ := smallfile.StampOf(p.path) // zero for a missing file: one version
	if p.warned == nil || *p.warned != stamp {
		p.warned = &stamp
		p.log.Warn("cache.redis.password_file could not be read; the password read before stays in use", "error", err)
	}
	return p.last, nil
}
