package cache

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// admissionRun drives a cache as the proxy does (FreshRef through a Ref
// kept per key, then Fetch or FetchMissing), with warm keys, each asked for
// once per round, among a stream of keys asked for once, in a cache with
// room for capacity entries. It returns the exchanges the warm keys needed
// after the first round.
func admissionRun(t *testing.T, warm, capacity, rounds, oneTimePerRound int) int {
	t.Helper()
	t0 := time.Now()
	token := strings.Repeat("0", 1000)
	entryBytes := NewEntry("warm-000000", token, "Bearer", t0, t0.Add(time.Hour), 0).cost()
	c, err := New(Config{MaxBytes: int64(capacity) * entryBytes, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	request := func(r *Ref, key string) (exchanged bool) {
		// A server's request goroutine waits on the network, and
		// ristretto's policy goroutine runs meanwhile; a loop that
		// never yields would starve it, and its hits would be dropped.
		runtime.Gosched()
		e, ok := c.FreshRef(r, key)
		if ok {
			return false
		}
		fetch := func(context.Context) (*Entry, error) {
			exchanged = true
			return NewEntry(key, token, "Bearer", t0, t0.Add(time.Hour), 0), nil
		}
		var err error
		if e != nil {
			_, _, err = c.Fetch(context.Background(), key, fetch)
		} else {
			_, _, err = c.FetchMissing(context.Background(), key, fetch)
		}
		if err != nil {
			t.Fatal(err)
		}
		return exchanged
	}
	refs := make([]Ref, warm)
	exchanges, next := 0, 0
	for round := range rounds {
		for i := range refs {
			if request(&refs[i], fmt.Sprintf("warm-%06d", i)) && round > 0 {
				exchanges++
			}
		}
		for range oneTimePerRound {
			request(new(Ref), fmt.Sprintf("once-%06d", next))
			next++
		}
	}
	return exchanges
}

// TestWarmKeysOutliveOneTimeKeys: when memory is short, users who keep
// calling keep their token B while a stream of users seen once passes
// through. The admission policy tells them apart only by the warm keys'
// hits, three in four of which a Ref serves without the store (refSample);
// a Ref that let too few through would make warm keys look as cold as
// one-time keys. With refSample patched, the median of the nine runs on a
// 2-CPU machine was 2 to 7 exchanges at 1 in 4 (also beside two busy
// loops), 6 to 11 counting every hit, 13 to 23 at 1 in 8, 38 to 47 at 1 in
// 16, and about 150 with no hit let through: the limit fails the last two
// always, and 1 in 8 in most runs.
//
// It does not run under the race detector, whose sync.Pool drops items at
// random: ristretto hands hits to its policy in pooled buffers, so the
// policy would see almost none (.ci/run runs it without -race).
func TestWarmKeysOutliveOneTimeKeys(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops ristretto's hit buffers; run without -race")
	}
	const warm, capacity, rounds, oneTime, runs = 100, 200, 40, 50, 9
	requests := warm * (rounds - 1)
	got := make([]int, runs)
	for i := range got {
		got[i] = admissionRun(t, warm, capacity, rounds, oneTime)
	}
	slices.Sort(got)
	median := got[runs/2]
	t.Logf("warm keys' exchanges after the first round, of %d requests, in %d runs: %v", requests, runs, got)
	if limit := requests * 4 / 1000; median > limit {
		t.Errorf("warm keys needed %d exchanges after the first round (median of %d runs), want at most %d (0.4%% of their requests)", median, runs, limit)
	}
}
