package main

import (
	"os/exec"
	"slices"
	"testing"
)

func TestChoosePlacement(t *testing.T) {
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset is not installed")
	}
	for _, tc := range []struct {
		name           string
		pin, withLoad  bool
		loadCPUs, ncpu int
		want           placement
	}{
		{"upstream with the load generator", true, true, 1, 2, placement{load: "0", upstream: "0", servers: "1"}},
		{"upstream with the proxies", true, false, 1, 2, placement{load: "0", upstream: "1", servers: "1"}},
		{"wider machine", true, true, 2, 8, placement{load: "0-1", upstream: "0-1", servers: "2-7"}},
		{"not asked to pin", false, true, 1, 2, placement{}},
		{"one CPU: nothing to spare", true, true, 1, 1, placement{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, note := choosePlacement(tc.pin, tc.withLoad, tc.loadCPUs, tc.ncpu)
			if got != tc.want {
				t.Errorf("choosePlacement(%v, %v, %d, %d) = %+v (%s), want %+v", tc.pin, tc.withLoad, tc.loadCPUs, tc.ncpu, got, note, tc.want)
			}
		})
	}
}

func TestRoundOrder(t *testing.T) {
	for _, tc := range []struct {
		n, round int
		want     []int
	}{
		{5, 0, []int{0, 1, 2, 3, 4}},
		{5, 1, []int{0, 2, 1, 3, 4}}, // gateway before bare proxy
		{5, 2, []int{0, 1, 2, 3, 4}},
		{2, 0, []int{0, 1}},
		{2, 1, []int{1, 0}},
	} {
		if got := roundOrder(tc.n, tc.round); !slices.Equal(got, tc.want) {
			t.Errorf("roundOrder(%d, %d) = %v, want %v", tc.n, tc.round, got, tc.want)
		}
	}
}
