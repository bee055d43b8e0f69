package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// loadGen drives one URL with keep-alive connections, each request
// carrying one of the tokens in its file (round robin), from a process of
// its own.
type loadGen struct {
	name   string // "wrk" or "go"
	cpus   string // taskset CPU list, or empty
	conns  int
	tokens string // file of tokens A, one per line
	script string // wrk's Lua script
}

// wrkScript sends GET requests to the URL's path with the tokens in turn,
// and prints one machine-readable line at the end.
const wrkScript = `local tokens = {}
for line in io.lines(%q) do tokens[#tokens + 1] = line end
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. tokens[(n %% #tokens) + 1]})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))
end
`

// wrkPaced, appended to wrkScript, holds wrk to a rate: each wrk thread
// keeps one schedule, its share of the rate, and every request of the
// thread takes the schedule's next slot on whichever of its connections is
// free, and waits for it (wrk's timers count whole milliseconds, so
// requests leave in millisecond ticks). A request late for its slot leaves
// at once, so a slow server meets the same schedule as a fast one. Latency
// counts from the request's write, as in wrk's other runs.
const wrkPaced = `local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local interval = %g -- milliseconds between two requests of this thread
local slot = nil
delay = function()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  local now = tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  slot = (slot or now) + interval
  return math.max(0, math.floor(slot - now))
end
`

// newLoadGen picks wrk when it is installed (it costs the least CPU per
// request), otherwise the Go load generator in a child process.
func newLoadGen(dir, cpus string, conns int, tokens []string, useWrk bool) (*loadGen, error) {
	g := &loadGen{name: "go", cpus: cpus, conns: conns, tokens: filepath.Join(dir, "tokens.txt")}
	if err := os.WriteFile(g.tokens, []byte(strings.Join(tokens, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("wrk"); err == nil && useWrk {
		g.name, g.script = "wrk", filepath.Join(dir, "load.lua")
		if err := os.WriteFile(g.script, []byte(fmt.Sprintf(wrkScript, g.tokens)), 0o600); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// threads is the number of load generator threads: one per CPU it may use.
func (g *loadGen) threads() int {
	if g.cpus == "" {
		return 1
	}
	n := 0
	for _, part := range strings.Split(g.cpus, ",") {
		lo, hi, ok := strings.Cut(part, "-")
		a, _ := strconv.Atoi(lo)
		b := a
		if ok {
			b, _ = strconv.Atoi(hi)
		}
		n += b - a + 1
	}
	return max(n, 1)
}

// drive runs the load against url for d, as fast as the server answers.
func (g *loadGen) drive(url string, d time.Duration) (result, error) {
	return g.driveAt(url, d, 0)
}

// driveAt runs the load against url for d; with rate > 0, at that many
// requests per second over all connections.
func (g *loadGen) driveAt(url string, d time.Duration, rate float64) (result, error) {
	var cmd *exec.Cmd
	if g.name == "wrk" {
		script := g.script
		if rate > 0 {
			script = strings.TrimSuffix(g.script, ".lua") + "-paced.lua"
			lua, err := os.ReadFile(g.script)
			if err == nil {
				lua = fmt.Appendf(lua, wrkPaced, 1000*float64(g.threads())/rate)
				err = os.WriteFile(script, lua, 0o600)
			}
			if err != nil {
				return result{}, err
			}
		}
		cmd = command(g.cpus, "wrk", "-t", strconv.Itoa(g.threads()), "-c", strconv.Itoa(g.conns),
			"-d", strconv.Itoa(max(1, int(d.Round(time.Second).Seconds())))+"s", "--timeout", "10s", "-s", script, url)
	} else {
		self, err := os.Executable()
		if err != nil {
			return result{}, err
		}
		cmd = command(g.cpus, self, "child", "load", "-url", url, "-tokens", g.tokens,
			"-conns", strconv.Itoa(g.conns), "-duration", d.String(), "-rate", strconv.FormatFloat(rate, 'f', 0, 64))
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("%s: %w: %s", g.name, err, out.String())
	}
	return parseResult(out.String())
}

// parseResult reads the "RESULT requests elapsed-µs p50-µs p99-µs errors"
// line both load generators print.
func parseResult(out string) (result, error) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 6 || f[0] != "RESULT" {
			continue
		}
		var v [5]int64
		for i := range v {
			n, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return result{}, fmt.Errorf("load generator: bad result line %q", line)
			}
			v[i] = n
		}
		return result{requests: int(v[0]), elapsed: time.Duration(v[1]) * time.Microsecond,
			p50: time.Duration(v[2]) * time.Microsecond, p99: time.Duration(v[3]) * time.Microsecond, errors: int(v[4])}, nil
	}
	return result{}, fmt.Errorf("load generator printed no result: %q", out)
}

// pacing says how driveAt holds a rate.
func (g *loadGen) pacing() string {
	if g.name == "wrk" {
		return "wrk, sending in millisecond ticks"
	}
	return "Go load generator"
}
