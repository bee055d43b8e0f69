package proxy

import "sync"

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
