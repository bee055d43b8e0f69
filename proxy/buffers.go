package proxy

import (
	"crypto/sha256"
	"sync"
)

// copyBufferSize is the size of the buffers that carry bodies between the
// caller and the upstream: the size io.Copy and ReverseProxy use.
const copyBufferSize = 32 << 10

// bufferPool lends the reverse proxies their copy buffers, so proxying a
// body does not allocate (and later collect) 32 KiB per request. It
// implements httputil.BufferPool.
type bufferPool struct{ pool sync.Pool }

// Get returns a buffer of copyBufferSize bytes.
func (b *bufferPool) Get() []byte {
	if p, ok := b.pool.Get().(*[]byte); ok {
		return *p
	}
	return make([]byte, copyBufferSize)
}

// Put returns a buffer from Get to the pool.
func (b *bufferPool) Put(buf []byte) {
	if cap(buf) != copyBufferSize {
		return
	}
	buf = buf[:copyBufferSize]
	b.pool.Put(&buf)
}

// maxPooledToken is the largest token whose hash input comes from the
// pool; larger tokens (rare, and never remembered by the verified-token
// cache) are copied the ordinary way.
const maxPooledToken = MaxCachedTokenBytes

// tokenSums hashes raw tokens without allocating a copy of each: the hash
// takes bytes, a token arrives as a string, and a token is about 1 KiB.
type tokenSums struct{ pool sync.Pool }

// sum returns the SHA-256 of raw.
func (t *tokenSums) sum(raw string) [sha256.Size]byte {
	if len(raw) > maxPooledToken {
		return sumToken(raw)
	}
	p, ok := t.pool.Get().(*[]byte)
	if !ok {
		b := make([]byte, 0, maxPooledToken)
		p = &b
	}
	b := append((*p)[:0], raw...)
	s := sha256.Sum256(b)
	clear(b) // the pool does not keep token bytes
	t.pool.Put(p)
	return s
}
