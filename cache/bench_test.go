package cache

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/heapstat"
)

func BenchmarkFetchHit(b *testing.B) {
	c, err := New(Config{MaxBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	now := time.Now()
	key := UserKey("72f988bf-86f1-41af-91ab-2d7cd011db47", "00000000-0000-4000-8000-0000000a11ce", nil, "https://graph.microsoft.com/user.read")
	c.Set(NewEntry(key, string(make([]byte, 1800)), "Bearer", now, now.Add(time.Hour), 0))
	fetch := func(context.Context) (*Entry, error) { b.Fatal("miss"); return nil, nil }
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, res, _ := c.Fetch(ctx, key, fetch); res != Hit {
				b.Fatal("not a hit")
			}
		}
	})
}

func BenchmarkUserKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = UserKey("72f988bf-86f1-41af-91ab-2d7cd011db47", "00000000-0000-4000-8000-0000000a11ce", nil, "https://graph.microsoft.com/user.read")
	}
}

// BenchmarkHeapPerEntry reports the live heap bytes each cached token
// costs, next to the token's own size, and the heap spans in use per token
// (which also count the free slots that the inserts' garbage leaves until
// later allocations reuse them).
func BenchmarkHeapPerEntry(b *testing.B) {
	const tokenBytes, entries = 1800, 20000
	for b.Loop() {
		c, err := New(Config{MaxBytes: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		h0 := heapstat.AfterGC()
		now := time.Now()
		for i := range entries {
			tok := make([]byte, tokenBytes)
			copy(tok, fmt.Sprint(i))
			c.Set(NewEntry(UserKey("tenant", fmt.Sprintf("user-%08d", i), nil, "scope"), string(tok), "Bearer", now, now.Add(time.Hour), 0))
		}
		h := heapstat.AfterGC()
		per := float64(h.Live-h0.Live) / entries
		b.ReportMetric(per, "heapB/entry")
		b.ReportMetric(per/tokenBytes, "x-token-size")
		b.ReportMetric(float64(h.InUse-h0.InUse)/entries/tokenBytes, "spans-x-token-size")
		c.Close()
	}
}
