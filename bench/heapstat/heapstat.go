// Package heapstat reads the heap figures the benchmarks and memory tests
// report, right after a garbage collection.
package heapstat

import (
	"runtime"
	"runtime/metrics"
)

// Stats are heap figures right after a collection.
type Stats struct {
	// Live is the bytes of live heap objects.
	Live uint64
	// InUse is the bytes of heap spans in use, which also count the free
	// slots of spans that hold a live object.
	InUse uint64
	// Scan is the bytes of heap the collector scans for pointers (the
	// objects that hold any).
	Scan uint64
	// Objects is the number of live heap objects.
	Objects uint64
}

// AfterGC collects garbage, then returns the heap's Stats.
func AfterGC() Stats {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/heap:bytes"}, {Name: "/gc/heap/objects:objects"}}
	metrics.Read(s)
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return Stats{Live: s[0].Value.Uint64(), InUse: m.HeapInuse, Scan: s[1].Value.Uint64(), Objects: s[2].Value.Uint64()}
}
