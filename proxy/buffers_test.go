package proxy

import (
	"runtime"
	"testing"
)

func TestBufferPool(t *testing.T) {
	var bp bufferPool
	b := bp.Get()
	if len(b) != copyBufferSize {
		t.Fatalf("Get returned %d bytes, want %d", len(b), copyBufferSize)
	}
	bp.Put(b)
	bp.Put(make([]byte, 10)) // a foreign buffer is dropped, not lent out
	for range 4 {
		if got := bp.Get(); len(got) != copyBufferSize {
			t.Fatalf("Get after Put returned %d bytes", len(got))
		}
	}
	// Lending and returning a buffer allocates nothing once the pool holds
	// one (a *[]byte pool allocated a slice header on every Put).
	bp.Put(bp.Get())
	if n := testing.AllocsPerRun(100, func() { bp.Put(bp.Get()) }); n != 0 {
		t.Errorf("Get and Put allocate %v times, want 0", n)
	}
}

// TestProxyingDoesNotAllocateCopyBuffers checks that the reverse proxies use
// the pool: without it every proxied response allocates a fresh 32 KiB
// buffer, which this average (client, gateway and upstream together) would
// show.
func TestProxyingDoesNotAllocateCopyBuffers(t *testing.T) {
	h, tok := benchHandler(t, true, false)
	do := func() { serveOK(t, h, "/api/items/1", tok) }
	for range 20 {
		do() // warm: token B cached, connections open, buffers pooled
	}
	const n = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		do()
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("%d bytes allocated per proxied request", per)
	if per >= copyBufferSize {
		t.Errorf("%d bytes allocated per proxied request; a pooled copy buffer keeps it under %d", per, copyBufferSize)
	}
}
