// Package heapfloor paces Go's garbage collector so that it does not
// collect before the heap reaches a floor.
//
// The collector starts a cycle when the heap has grown by GOGC percent
// (100 by default) of what the last cycle found live, plus the goroutine
// stacks and globals. A proxy whose live heap is a few megabytes therefore
// collects after every few megabytes of allocation, many times a second
// under load, and every request that arrives while a cycle marks waits
// longer: on one CPU a cycle's marking runs in turns with the requests.
// A program that may, by its configuration, come to hold much more (caches
// with a budget in bytes) can use the room it is allowed as headroom until
// it does hold it, and collect far less often. Its peak heap is then no
// higher than with full caches at the base GOGC.
//
// A Pacer sets GOGC after every cycle to the percent whose goal is the
// floor, and back to the base once the live heap is large enough that the
// base reaches the floor by itself. The memory limit (GOMEMLIMIT) still
// caps the goal, as the runtime applies it over GOGC.
//
// The runtime sets each goal when a cycle's marking ends, with the GOGC in
// effect; the Pacer corrects GOGC shortly after, once the cycle has been
// swept. If the live heap jumps within one cycle (from 1 to 24 MiB, say),
// the goal between the two follows the old percent and can be several
// times the floor; the heap itself only grows by what is allocated in
// that moment. The peak heap is no higher than with full caches at the
// base GOGC in steady state, not through such a jump.
package heapfloor

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// minHeap is the runtime's smallest heap goal at GOGC=100: it scales the
// goal's minimum with GOGC, so that at a GOGC of p no goal is below
// minHeap×p/100 (runtime.defaultHeapMinimum; a runtime built with
// GOEXPERIMENT=heapminimum512kib uses 512 KiB, and its goals then fall
// short of the floor over a small live heap).
const minHeap = 4 << 20

// Pacer keeps the collector's heap goal at or above a floor. Start one with
// Start; Stop gives the collector its base GOGC back. GOGC is the
// process's, so a process runs at most one Pacer.
type Pacer struct {
	floor uint64
	base  int

	mu      sync.Mutex
	percent int // the GOGC last set
	stopped bool
}

// sentinel is dropped as soon as it is allocated; its cleanup therefore
// runs after the next collection that finds it unreachable (the one after
// next when it is allocated while a cycle marks). It holds a pointer so
// that it is never a tiny allocation, whose cleanup may not run.
type sentinel struct{ _ *byte }

// Start paces the collector so that its heap goal is at least floor bytes.
// It collects once, to measure the live heap, and returns with the first
// goal set. The base is the GOGC in effect (from the GOGC environment
// variable or debug.SetGCPercent); with the collector off, or with a floor
// of 0, the Pacer does nothing.
func Start(floor uint64) *Pacer {
	p := &Pacer{floor: floor, base: gcPercent()}
	p.percent = p.base
	if floor == 0 || p.base <= 0 {
		p.stopped = true
		return p
	}
	runtime.GC()
	p.cycle()
	return p
}

// Stop ends the pacing and sets GOGC back to its base.
func (p *Pacer) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	if p.percent != p.base {
		debug.SetGCPercent(p.base)
		p.percent = p.base
	}
}

func (p *Pacer) arm() {
	runtime.AddCleanup(&sentinel{}, (*Pacer).cycle, p)
}

// cycle runs after each collection: it sets GOGC for the next one and
// arms itself for the collection after that.
func (p *Pacer) cycle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	s := [...]metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}
	metrics.Read(s[:])
	want := Percent(p.floor, p.base, value(s[0]), value(s[1])+value(s[2]))
	if want != p.percent {
		debug.SetGCPercent(want)
		p.percent = want
	}
	p.arm()
}

// Percent is the GOGC whose heap goal, after a collection that found live
// bytes of heap and roots bytes of stacks and globals, is floor, never
// below base and at most math.MaxInt32 (debug.SetGCPercent takes an int32's
// range; a larger value would wrap to "off"). The runtime's goal is live + (live+roots) × GOGC/100, but at
// least its minimum heap scaled by GOGC/100; over a tiny live heap that
// minimum is what reaches the floor.
func Percent(floor uint64, base int, live, roots uint64) int {
	basis := live + roots
	if floor <= live || basis == 0 {
		return base
	}
	p := math.Ceil(float64(floor-live) * 100 / float64(basis))
	p = min(p, math.Floor(float64(floor)*100/minHeap), math.MaxInt32)
	return max(base, int(p))
}

// gcPercent reads the GOGC in effect; a negative value means off.
func gcPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 100
	}
	v := s[0].Value.Uint64()
	if v == math.MaxUint64 || v > math.MaxInt32 {
		return -1
	}
	return int(v)
}

func value(s metrics.Sample) uint64 {
	if s.Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s.Value.Uint64()
}
