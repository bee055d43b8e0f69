package heapstat

import (
	"runtime"
	"testing"
)

func TestAfterGCCountsWhatIsHeld(t *testing.T) {
	before := AfterGC()
	held := make([]*[64]byte, 10_000)
	for i := range held {
		held[i] = new([64]byte)
	}
	after := AfterGC()
	if n := after.Objects - before.Objects; n < 10_000 {
		t.Errorf("10,001 objects held, %d counted", n)
	}
	if n := after.Live - before.Live; n < 10_000*64 {
		t.Errorf("%d bytes held, %d counted live", 10_000*64, n)
	}
	if after.InUse < after.Live {
		t.Errorf("spans in use (%d) hold less than the live heap (%d)", after.InUse, after.Live)
	}
	if n := after.Scan - before.Scan; n < 10_000*8 {
		t.Errorf("%d bytes of pointers held, %d counted for scanning", 10_000*8, n)
	}
	runtime.KeepAlive(held)
}
