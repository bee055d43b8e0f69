package proxy

import (
	"crypto/sha256"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestTokenSums(t *testing.T) {
	var ts tokenSums
	for _, n := range []int{0, 1, 31, 32, 1033, maxPooledToken, maxPooledToken + 1, 64 << 10} {
		raw := strings.Repeat("x", n)
		if got, want := ts.sum(raw), sha256.Sum256([]byte(raw)); got != want {
			t.Errorf("sum of %d bytes = %x, want %x", n, got, want)
		}
	}
	// Concurrent callers with different tokens never see each other's bytes.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw := strings.Repeat(string(rune('a'+i)), 900+i)
			want := sha256.Sum256([]byte(raw))
			for range 500 {
				if got := ts.sum(raw); got != want {
					t.Errorf("goroutine %d: wrong sum", i)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestTokenSumsDoNotAllocate(t *testing.T) {
	var ts tokenSums
	raw := strings.Repeat("t", 1200)
	ts.sum(raw) // fills the pool
	if n := testing.AllocsPerRun(100, func() { ts.sum(raw) }); n != 0 {
		t.Errorf("hashing a 1200-byte token allocates %v times, want 0", n)
	}
}

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
