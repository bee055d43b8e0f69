package main

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"testing"
	"time"
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
		round int
		want  []int
	}{
		{0, []int{0, 5, 1, 2, 3, 4}},
		{1, []int{4, 3, 2, 1, 5, 0}},
		{2, []int{0, 5, 1, 2, 3, 4}},
	} {
		if got := roundOrder([]int{0, 5, 1, 2, 3, 4}, tc.round); !slices.Equal(got, tc.want) {
			t.Errorf("roundOrder(round %d) = %v, want %v", tc.round, got, tc.want)
		}
	}
}

func TestPaired(t *testing.T) {
	base := []result{{requests: 100, elapsed: time.Second}, {requests: 200, elapsed: time.Second}, {requests: 100, elapsed: time.Second}}
	other := []result{{requests: 90, elapsed: time.Second}, {requests: 100, elapsed: time.Second}, {requests: 120, elapsed: time.Second}}
	got := paired(base, other, func(b, o result) float64 { return o.rps() / b.rps() })
	if want := (spread{med: 0.9, lo: 0.5, hi: 1.2}); got != want {
		t.Errorf("paired = %+v, want %+v", got, want)
	}
	if s := got.format("%.2f", "ms"); s != "0.90ms (0.50 to 1.20)" {
		t.Errorf("format = %q", s)
	}
}

func TestPerEntry(t *testing.T) {
	for _, tc := range []struct {
		name          string
		before, after uint64
		n             int
		want          float64
		ok            bool
	}{
		{"growth shared", 1000, 5000, 4, 1000, true},
		{"heap shrank: the unsigned difference must not wrap", 5000, 1000, 4, 0, false},
		{"no growth", 5000, 5000, 4, 0, false},
		{"no entries", 1000, 5000, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := perEntry(tc.before, tc.after, tc.n)
			if got != tc.want || ok != tc.ok {
				t.Errorf("perEntry(%d, %d, %d) = %v, %v; want %v, %v", tc.before, tc.after, tc.n, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestCPURatio(t *testing.T) {
	// 50 µs per request against 55 µs: 0.909 of the throughput at equal CPU.
	bare := result{requests: 20000, cpu: time.Second}
	for _, tc := range []struct {
		name  string
		other result
		want  float64
	}{
		{"costlier", result{requests: 20000, cpu: 1100 * time.Millisecond}, 50.0 / 55},
		{"same CPU, fewer requests", result{requests: 10000, cpu: time.Second}, 0.5},
		{"no CPU time read", result{requests: 20000}, 0},
	} {
		if got := cpuRatio(bare, tc.other); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: cpuRatio = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestGatewayTagsAreTheDockerfiles: the bench measures the binary the
// image ships, built with the same tags as the image's build command,
// hack/go-build.sh.
func TestGatewayTagsAreTheDockerfiles(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("..", "hack", "go-build.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`go build[^\n]*\s-tags[ =]"?([^\s"]+)`).FindSubmatch(script)
	if m == nil {
		t.Fatal("the go build of hack/go-build.sh has no -tags")
	}
	if string(m[1]) != gatewayTags {
		t.Errorf("hack/go-build.sh builds with -tags %s, the bench with %s", m[1], gatewayTags)
	}
}

func TestFlagChecks(t *testing.T) {
	for _, tc := range []struct {
		env string
		ok  bool
	}{
		{"GOGC=400", true},
		{"GODEBUG=gctrace=1", true}, // the value may hold "="
		{"GOMEMLIMIT=", true},
		{"GOGC", false},
		{"=400", false},
		{"GO GC=400", false},
	} {
		if err := checkEnvPair(tc.env); (err == nil) != tc.ok {
			t.Errorf("checkEnvPair(%q) = %v, want ok %v", tc.env, err, tc.ok)
		}
	}
	for _, tc := range []struct {
		f  float64
		ok bool
	}{{0.5, true}, {1, true}, {0.01, true}, {0, false}, {-0.5, false}, {1.5, false}, {math.NaN(), false}} {
		if err := checkFraction(tc.f); (err == nil) != tc.ok {
			t.Errorf("checkFraction(%v) = %v, want ok %v", tc.f, err, tc.ok)
		}
	}
}

func TestStatusKiB(t *testing.T) {
	status := "Name:\tobo-gateway\nVmPeak:\t 1300000 kB\nVmHWM:\t   91234 kB\nVmRSS:\t   80000 kB\n"
	for _, tc := range []struct {
		name string
		want int64
	}{{"VmHWM", 91234}, {"VmRSS", 80000}, {"VmSwap", 0}, {"Name", 0}} {
		if got := statusKiB(status, tc.name); got != tc.want {
			t.Errorf("statusKiB(%s) = %d, want %d", tc.name, got, tc.want)
		}
	}
	if got := peakRSS(os.Getpid()); got <= 0 && runtime.GOOS == "linux" {
		t.Errorf("peakRSS of this process = %d", got)
	}
}
