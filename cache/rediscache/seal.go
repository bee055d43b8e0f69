package rediscache

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"strings"
	"time"

	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/internal/smallfile"
)

// KeySize is the size of an encryption key: 32 bytes, AES-256.
const KeySize = 32

// sealer seals and opens values and names Redis keys.
type sealer struct {
	// aeads[0] seals; all open. ids are their 4-byte key ids.
	aeads []cipher.AEAD
	ids   [][4]byte
	// mac names Redis keys; it derives from the newest key.
	mac []byte
}

// ParseKeys reads encryption keys written one per line as base64 of 32
// bytes, newest first; blank lines and lines starting with # are ignored.
func ParseKeys(data []byte) ([][]byte, error) {
	var keys [][]byte
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: not base64", i+1)
		}
		if len(k) != KeySize {
			return nil, fmt.Errorf("line %d: key has %d bytes, want %d", i+1, len(k), KeySize)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no key")
	}
	return keys, nil
}

// ReadKeyFile reads ParseKeys' format from path.
func ReadKeyFile(path string) ([][]byte, error) {
	b, err := smallfile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("rediscache: encryption key file: %w", err)
	}
	keys, err := ParseKeys(b)
	if err != nil {
		return nil, fmt.Errorf("rediscache: encryption key file %s: %w", path, err)
	}
	return keys, nil
}

func newSealer(keys [][]byte) (*sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("rediscache: no encryption key")
	}
	s := &sealer{}
	for i, k := range keys {
		if len(k) != KeySize {
			return nil, fmt.Errorf("rediscache: key %d has %d bytes, want %d", i, len(k), KeySize)
		}
		sealKey, err := hkdf.Key(sha256.New, k, nil, "obo-gateway redis value v1", KeySize)
		if err != nil {
			return nil, err
		}
		block, err := aes.NewCipher(sealKey)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(sealKey)
		s.aeads = append(s.aeads, aead)
		s.ids = append(s.ids, [4]byte(sum[:4]))
		if i == 0 {
			if s.mac, err = hkdf.Key(sha256.New, k, nil, "obo-gateway redis key v1", 32); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// redisKey names the Redis key of a cache key without revealing it.
func (s *sealer) redisKey(prefix, cacheKey string) string {
	m := hmac.New(sha256.New, s.mac)
	m.Write([]byte(cacheKey))
	return prefix + hex.EncodeToString(m.Sum(nil))
}

// Value layout: version (1) | key id (4) | nonce (12) | AES-GCM(payload).
// Payload: issued, expires, usable-until, refresh-at (Unix ns, 8 bytes
// each) | token type length (1) | token type | token.
const version = 1

var errOpen = errors.New("value does not open")

func (s *sealer) seal(e *cache.Entry) []byte {
	aead := s.aeads[0]
	payload := make([]byte, 0, 33+len(e.TokenType)+len(e.Token))
	for _, t := range []time.Time{e.IssuedAt, e.ExpiresAt, e.UsableUntil, e.RefreshAt} {
		payload = binary.BigEndian.AppendUint64(payload, uint64(t.UnixNano()))
	}
	payload = append(payload, byte(len(e.TokenType)))
	payload = append(payload, e.TokenType...)
	payload = append(payload, e.Token...)

	out := make([]byte, 5+aead.NonceSize(), 5+aead.NonceSize()+len(payload)+aead.Overhead())
	out[0] = version
	copy(out[1:5], s.ids[0][:])
	nonce := out[5 : 5+aead.NonceSize()]
	_, _ = rand.Read(nonce)
	return aead.Seal(out, nonce, payload, []byte(e.Key))
}

func (s *sealer) open(cacheKey string, v []byte) (*cache.Entry, error) {
	if len(v) < 5 || v[0] != version {
		return nil, errOpen
	}
	for i, id := range s.ids {
		if [4]byte(v[1:5]) != id {
			continue
		}
		aead := s.aeads[i]
		if len(v) < 5+aead.NonceSize() {
			return nil, errOpen
		}
		p, err := aead.Open(nil, v[5:5+aead.NonceSize()], v[5+aead.NonceSize():], []byte(cacheKey))
		if err != nil || len(p) < 33 || len(p) < 33+int(p[32]) {
			return nil, errOpen
		}
		t := func(i int) time.Time { return time.Unix(0, int64(binary.BigEndian.Uint64(p[8*i:]))) }
		n := int(p[32])
		return cache.RestoreEntry(cacheKey, string(p[33+n:]), string(p[33:33+n]), t(0), t(1), t(2), t(3)), nil
	}
	return nil, errOpen
}
