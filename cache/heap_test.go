package cache

import (
	"runtime"
	"runtime/metrics"
)

// heapBytes collects garbage, then returns the bytes of live heap objects
// and the bytes of heap spans in use; the second also counts the free slots
// of spans that hold a live object.
func heapBytes() (live, inUse uint64) {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return s[0].Value.Uint64(), m.HeapInuse
}
