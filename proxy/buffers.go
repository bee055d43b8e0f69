package proxy

import "sync"

// copyBufferSize is the size of the buffers that carry bodies between the
// caller and the upstream: the size io.Copy and ReverseProxy use.
const copyBufferSize = 32 << 10

// copyBuffer is a pooled buffer. The pool holds pointers to arrays, which
// a slice of the whole array converts to and from without allocating (a
// pointer to a slice header would cost an allocation on every Put).
type copyBuffer [copyBufferSize]byte

// bufferPool lends the reverse proxies their copy buffers, so proxying a
// body does not allocate (and later collect) 32 KiB per request. It
// implements httputil.BufferPool.
type bufferPool struct{ pool sync.Pool }

// Get returns a buffer of copyBufferSize bytes.
func (b *bufferPool) Get() []byte {
	if p, ok := b.pool.Get().(*copyBuffer); ok {
		return p[:]
	}
	return new(copyBuffer)[:]
}

// Put returns a buffer from Get to the pool. A buffer of any other
// capacity is dropped.
func (b *bufferPool) Put(buf []byte) {
	if cap(buf) != copyBufferSize {
		return
	}
	b.pool.Put((*copyBuffer)(buf[:copyBufferSize]))
}
