package heapfloor

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name              string
		floor             uint64
		base              int
		live, roots       uint64
		want              int
		wantGoalNearFloor bool
	}{
		{"small heap: the goal is the floor", 64 * mib, 100, 4 * mib, 0, 1500, true},
		{"roots count in the goal", 64 * mib, 100, 4 * mib, 2 * mib, 1000, true},
		{"rounded up, never short of the floor", 64 * mib, 100, 7 * mib, 0, 815, true},
		{"base reaches the floor: base", 64 * mib, 100, 40 * mib, 0, 100, false},
		{"live above the floor: base", 64 * mib, 100, 80 * mib, 0, 100, false},
		{"a higher base is kept", 64 * mib, 300, 20 * mib, 0, 300, false},
		{"tiny heap: the minimum heap reaches the floor", 64 * mib, 100, 1024, 0, 1600, true},
		{"floor below the minimum heap: base", 2 * mib, 100, 1024, 0, 100, false},
		{"huge floor: within SetGCPercent's int32", 1 << 62, 100, 1 << 20, 0, math.MaxInt32, false},
		{"nothing measured yet: base", 64 * mib, 100, 0, 0, 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Percent(tc.floor, tc.base, tc.live, tc.roots)
			if got != tc.want {
				t.Fatalf("Percent(%d, %d, %d, %d) = %d, want %d", tc.floor, tc.base, tc.live, tc.roots, got, tc.want)
			}
			if tc.wantGoalNearFloor {
				goal := max(tc.live+(tc.live+tc.roots)*uint64(got)/100, minHeap*uint64(got)/100)
				if goal < tc.floor || goal > tc.floor+(tc.live+tc.roots)/100 {
					t.Errorf("goal %d for floor %d", goal, tc.floor)
				}
			}
		})
	}
}

// sink keeps allocations from being optimised away.
var sink []byte

// collections allocates n bytes of garbage in 4 KiB pieces and returns how
// many collections the runtime started on its own meanwhile.
func collections(n int) uint64 {
	before := read("/gc/cycles/automatic:gc-cycles")
	for i := 0; i < n; i += 4 << 10 {
		sink = make([]byte, 4<<10)
	}
	sink = nil
	return read("/gc/cycles/automatic:gc-cycles") - before
}

func read(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// waitPercent waits until the cleanup that follows a collection has set
// GOGC to want.
func waitPercent(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for gcPercent() != want {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC %d, want %d", gcPercent(), want)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFloorMakesCollectionsRarer runs the same allocations without and
// with a floor of 64 MiB over this test's small heap: with the floor the
// runtime collects a fraction as often, its goal sits at the floor, and
// Stop gives GOGC back.
func TestFloorMakesCollectionsRarer(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	const floor = 64 << 20
	const garbage = 1 << 30
	runtime.GC()
	without := collections(garbage)

	p := Start(floor)
	defer p.Stop()
	if gcPercent() <= 100 {
		t.Fatalf("GOGC %d when Start returns, with a floor of %d bytes over a heap of %d", gcPercent(), floor, read("/gc/heap/live:bytes"))
	}
	if goal := read("/gc/heap/goal:bytes"); goal < floor*9/10 || goal > floor*11/10 {
		t.Errorf("heap goal %d bytes, want about the floor %d", goal, floor)
	}
	with := collections(garbage)
	t.Logf("%d MiB of garbage: %d collections without a floor, %d with one of %d MiB", garbage>>20, without, with, floor>>20)
	if with == 0 || with*4 > without {
		t.Errorf("%d collections with a floor, %d without: want at most a quarter", with, without)
	}

	p.Stop()
	if got := gcPercent(); got != 100 {
		t.Errorf("GOGC %d after Stop, want the base 100", got)
	}
	for range 3 { // a cleanup still armed would have run by now
		runtime.GC()
		time.Sleep(30 * time.Millisecond)
	}
	if got := gcPercent(); got != 100 {
		t.Errorf("GOGC %d after Stop and three collections, want the base 100", got)
	}
}

// TestBaseOnceLiveHeapReachesFloor: once what is live makes the base's goal
// reach the floor, GOGC goes back to the base, and up again when the heap
// shrinks.
func TestBaseOnceLiveHeapReachesFloor(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	const floor = 64 << 20
	p := Start(floor)
	defer p.Stop()
	held := make([][]byte, 48)
	for i := range held {
		held[i] = make([]byte, 1<<20)
	}
	waitPercent(t, 100)
	runtime.KeepAlive(held)
	held = nil
	deadline := time.Now().Add(5 * time.Second)
	for gcPercent() <= 100 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC %d after the held heap was dropped, want above 100", gcPercent())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStartLeavesAChosenPacing: with the collector off, or a floor of
// zero, Start changes nothing.
func TestStartLeavesAChosenPacing(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	p := Start(64 << 20)
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	runtime.GC()
	if got := gcPercent(); got != -1 {
		t.Errorf("GOGC %d with the collector off, want it left off", got)
	}
	p.Stop()
	debug.SetGCPercent(100)
	p = Start(0)
	defer p.Stop()
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	runtime.GC()
	if got := gcPercent(); got != 100 {
		t.Errorf("GOGC %d with a floor of zero, want 100", got)
	}
}
