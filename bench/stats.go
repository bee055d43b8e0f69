package main

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// roundOrder is the order of a round's phases: order in even rounds,
// reversed in odd ones, so that phases run next to each other stay next to
// each other and a machine getting steadily faster or slower during a run
// favours neither of two compared phases.
func roundOrder(order []int, round int) []int {
	if round%2 == 0 {
		return order
	}
	r := slices.Clone(order)
	slices.Reverse(r)
	return r
}

// spread is the median and range of one comparison over the rounds.
type spread struct{ med, lo, hi float64 }

// paired compares two scenarios round by round with f and returns the
// median and range of the results.
func paired(base, other []result, f func(base, other result) float64) spread {
	v := make([]float64, len(base))
	for i := range v {
		v[i] = f(base[i], other[i])
	}
	slices.Sort(v)
	return spread{v[len(v)/2], v[0], v[len(v)-1]}
}

// throughputRatio is other's requests per second over base's.
func throughputRatio(base, other result) float64 { return other.rps() / base.rps() }

// cpuRatio is base's CPU per request over other's: other's throughput
// relative to base's when both have the same CPU (0 without CPU times).
func cpuRatio(base, other result) float64 {
	if base.cpu <= 0 || other.cpu <= 0 {
		return 0
	}
	return perRequest(base) / perRequest(other)
}

// sideBySide drives base and other at once for d, each with its own run of
// the load generator, and returns both results with the CPU time each
// server used meanwhile.
func sideBySide(load *loadGen, base, other *proc, d time.Duration) (result, result, error) {
	cpuB, cpuO := cpuTime(base.pid()), cpuTime(other.pid())
	var rb, ro result
	var errB, errO error
	var wg sync.WaitGroup
	wg.Go(func() { rb, errB = load.drive(base.addr+"/api/x", d) })
	wg.Go(func() { ro, errO = load.drive(other.addr+"/api/x", d) })
	wg.Wait()
	if err := errors.Join(errB, errO); err != nil {
		return result{}, result{}, err
	}
	// A failed request is cheap to answer and would flatter its server.
	if rb.errors > 0 || ro.errors > 0 {
		return result{}, result{}, fmt.Errorf("%d and %d requests failed", rb.errors, ro.errors)
	}
	rb.cpu, ro.cpu = cpuTime(base.pid())-cpuB, cpuTime(other.pid())-cpuO
	return rb, ro, nil
}

// addedP99ms is other's p99 latency minus base's, in milliseconds.
func addedP99ms(base, other result) float64 { return float64(other.p99-base.p99) / 1e6 }

// format prints the spread as "med (lo to hi)" with verb and unit.
func (s spread) format(verb, unit string) string {
	return fmt.Sprintf(verb+unit+" ("+verb+" to "+verb+")", s.med, s.lo, s.hi)
}

// medianP99 returns the round with the median p99 latency.
func medianP99(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int { return cmp.Compare(a.p99, b.p99) })
	return s[len(s)/2]
}

// median returns the round with the median throughput.
func median(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int { return cmp.Compare(a.rps(), b.rps()) })
	return s[len(s)/2]
}
