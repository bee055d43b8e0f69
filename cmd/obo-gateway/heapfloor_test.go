package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

// TestCollectorPacedToCacheBudget runs the binary with caches whose
// budgets add up to 80 MiB: the collector's heap goal starts at that floor
// (GOGC raised over the small live heap), also with an empty GOGC, and it
// starts at Go's own when the GOGC environment variable sets a value.
func TestCollectorPacedToCacheBudget(t *testing.T) {
	idp, err := localidp.New(localidp.Options{Clients: []localidp.Client{{ID: drainClientID, Secret: drainSecret, IdentifierURI: drainAPI}}})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	const floor = 80 << 20
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
log: {format: json}
authority: {url: %s}
client: {id: %s, secret: %s}
inbound: {audiences: [%s], verified_cache_bytes: 16MiB}
cache: {max_bytes: 64MiB}
routes:
  - {name: echo, path_prefix: /echo, upstream: http://127.0.0.1:9/api, scopes: [api://echo-api/Echo.Read]}
`, idp.Authority(), drainClientID, drainSecret, drainAPI)
	gauge := func(t *testing.T, g *gatewayProcess, series string) float64 {
		t.Helper()
		v, err := strconv.ParseFloat(metricValue(t, g.admin, series), 64)
		if err != nil {
			t.Fatalf("%s: %v", series, err)
		}
		return v
	}

	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"GOGC unset", nil},
		{"GOGC empty, which the runtime reads as 100", []string{"GOGC="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOGC", "")
			os.Unsetenv("GOGC") // t.Setenv puts it back afterwards
			g := startGateway(t, yaml, tc.env...)
			if p := gauge(t, g, "go_gc_gogc_percent"); p <= 100 {
				t.Errorf("GOGC %v, want it raised over the small live heap", p)
			}
			if goal := gauge(t, g, "go_memstats_next_gc_bytes"); goal < floor*0.95 || goal > floor*1.05 {
				t.Errorf("heap goal %v bytes, want about the caches' budget %d", goal, floor)
			}
			if !strings.Contains(g.logs.String(), fmt.Sprintf(`"heap_floor_bytes":%d`, floor)) {
				t.Errorf("no start-up log line names the heap floor; log:\n%s", g.logs)
			}
		})
	}
	t.Run("GOGC set", func(t *testing.T) {
		g := startGateway(t, yaml, "GOGC=100")
		if p := gauge(t, g, "go_gc_gogc_percent"); p != 100 {
			t.Errorf("GOGC %v with GOGC=100 in the environment, want 100", p)
		}
		if goal := gauge(t, g, "go_memstats_next_gc_bytes"); goal > floor/4 {
			t.Errorf("heap goal %v bytes with GOGC=100, want Go's own, far below %d", goal, floor)
		}
		if strings.Contains(g.logs.String(), "heap_floor_bytes") {
			t.Errorf("GOGC is set, yet the log names a heap floor:\n%s", g.logs)
		}
	})
}
