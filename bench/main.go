// Command bench is obo-gateway's load benchmark. It starts, on loopback,
// the local identity provider, a minimal upstream API, a bare
// httputil.ReverseProxy in front of it (the floor) and the gateway — the
// obo-gateway binary built from this checkout — drives each with the same
// load, and prints throughput, latency and each server's CPU time per
// request:
//
//	go run ./bench                 # the full run, about six minutes
//	go run ./bench -quick          # one round, for a smoke test
//	go run ./bench -only tokenapi  # the token API scenario alone
//
// The servers and the load generator (wrk when installed, otherwise a Go
// one) run in processes of their own; with taskset, the load generator and
// the upstream are pinned to the first CPU and the proxy under test to the
// others, so that on a small machine the proxy's queue holds its own work
// only and the difference between the bare proxy and the gateway is the
// gateway's.
//
// Scenarios: direct to the upstream; bare proxy, and an identical twin
// whose difference from it is the noise of the machine; gateway warm
// (token B cached, token A verification cached) with the default request
// log and with every request logged; gateway warm with the verified-token
// cache off; the gateway, and the twin, run side by side with the bare
// proxy on the same CPU (CPU per request measured over the same moments);
// latency of the two bare proxies and the gateway at a fixed rate; the
// cold path (every request a new user, authority latency 50 ms);
// N concurrent first requests of one user; refresh-ahead under steady load
// with short-lived tokens; a rollout of replicas with and without Redis; heap
// per cached token for 100k users; the token API's warm
// /AuthorizationHeader against the warm proxy path and the upstream.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/app"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

const (
	clientID = "00000000-0000-4000-8000-0000000bench"
	secret   = "bench-secret"
	apiURI   = "api://bench-api-a"
	scope    = "api://bench-upstream/Data.Read"
)

// options are the bench's flags.
type options struct {
	conns, rounds, users, memUsers int
	duration, refreshFor           time.Duration
	pin, upstreamWithLoad, wrk     bool
	loadCPUs                       int
	gatewayBin                     string
	// gatewayEnv is added to every gateway process's environment.
	gatewayEnv []string
	// fixedRate is the fraction of the bare proxy's saturated throughput
	// at which the fixed-rate phases send.
	fixedRate float64
	// only names the one scenario to run ("tokenapi"); empty runs all.
	only string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		if err := childMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.IntVar(&o.conns, "conns", 64, "concurrent connections")
	flag.DurationVar(&o.duration, "duration", 2*time.Second, "length of each throughput phase")
	flag.IntVar(&o.rounds, "rounds", 11, "interleaved rounds of the throughput phases (the median counts)")
	flag.IntVar(&o.users, "users", 1000, "distinct users in the warm phases")
	flag.DurationVar(&o.refreshFor, "refresh-duration", time.Minute, "length of the refresh-ahead phase")
	flag.IntVar(&o.memUsers, "memory-users", 100_000, "users in the memory phase")
	quick := flag.Bool("quick", false, "a smoke run: one round, 10s refresh-ahead, 20k users")
	flag.BoolVar(&o.pin, "pin", true, "pin the load generator and the servers to disjoint CPUs with taskset")
	flag.IntVar(&o.loadCPUs, "load-cpus", 1, "CPUs given to the load generator when pinning")
	flag.BoolVar(&o.upstreamWithLoad, "upstream-with-load", true, "when pinning, run the upstream on the load generator's CPUs, so that the proxy under test has the other CPUs to itself (false: the upstream shares the proxy's CPUs)")
	flag.BoolVar(&o.wrk, "wrk", true, "use wrk as the load generator when it is installed (otherwise the Go one)")
	flag.StringVar(&o.gatewayBin, "gateway-bin", "", "obo-gateway binary to measure (default: built from this checkout)")
	flag.Float64Var(&o.fixedRate, "fixed-rate", 0.5, "the fixed-rate phases' rate, as a `fraction` of the bare proxy's saturated throughput (0 to 1)")
	flag.Func("gateway-env", "add `NAME=VALUE` to the gateway processes' environment, such as GOGC=400 (repeatable)", func(v string) error {
		if err := checkEnvPair(v); err != nil {
			return err
		}
		o.gatewayEnv = append(o.gatewayEnv, v)
		return nil
	})
	flag.StringVar(&o.only, "only", "", "run only the `scenario` named: tokenapi (the token API against the proxy path)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process (not the servers) to `FILE`")
	flag.Parse()
	if err := checkFraction(o.fixedRate); err != nil {
		fmt.Fprintln(os.Stderr, "bench: -fixed-rate:", err)
		os.Exit(2)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *quick {
		o.rounds, o.refreshFor, o.memUsers = 1, 10*time.Second, 20_000
	}
	run := benchmark
	switch o.only {
	case "":
	case "tokenapi":
		run = tokenAPIBench
	default:
		fmt.Fprintln(os.Stderr, "bench: -only: unknown scenario", o.only)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// checkEnvPair checks that v is an environment entry, NAME=VALUE.
func checkEnvPair(v string) error {
	if name, _, ok := strings.Cut(v, "="); !ok || name == "" || strings.ContainsAny(name, " \t") {
		return fmt.Errorf("want NAME=VALUE, got %q", v)
	}
	return nil
}

// checkFraction checks that f is a share of a whole: above 0, at most 1.
func checkFraction(f float64) error {
	if !(f > 0 && f <= 1) {
		return fmt.Errorf("%v is not a fraction above 0 and at most 1", f)
	}
	return nil
}

func listen(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// gatewayYAML is the gateway's configuration for the bench: one route in
// front of upstream, with cacheExtra lines appended to the cache section.
// requestLog is log.requests: failures (the default), all or none.
func gatewayYAML(idp *localidp.Server, upstream, verifiedCache, requestLog, cacheExtra string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
log: {level: info, requests: %s}
authority: {url: %q}
client: {id: %q, secret: %q}
inbound:
  audiences: [%q]
  required_scopes: [access_as_user]
  verified_cache_bytes: %s
routes:
  - name: api
    path_prefix: /api
    upstream: %s
    scopes: [%q]
cache:
  max_bytes: 64MiB
%s`, requestLog, idp.Authority(), clientID, secret, apiURI, verifiedCache, upstream, scope, cacheExtra)
}

// gateway starts a gateway in this process, in front of upstream.
func gateway(idp *localidp.Server, upstream string, verifiedCache string) (*app.App, func(), error) {
	return gatewayWith(idp, upstream, verifiedCache, "failures", "")
}

// gatewayWith starts a gateway in this process, whose cache section gets
// cacheExtra lines.
func gatewayWith(idp *localidp.Server, upstream, verifiedCache, requestLog, cacheExtra string) (*app.App, func(), error) {
	yaml := gatewayYAML(idp, upstream, verifiedCache, requestLog, cacheExtra)
	cfg, err := config.Parse([]byte(yaml), "bench.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, nil, err
	}
	log, _ := app.NewLogger(io.Discard, cfg.Log.Level, "text")
	a, err := app.New(app.Options{Config: cfg, Logger: log, Version: "bench"})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get("http://" + a.AdminAddr() + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return a, func() { cancel(); <-done }, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	return nil, nil, fmt.Errorf("gateway not ready")
}

func mintTokens(idp *localidp.Server, prefix string, n int) ([]string, error) {
	toks := make([]string, n)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	per := (n + runtime.NumCPU() - 1) / runtime.NumCPU()
	for w := 0; w < n; w += per {
		wg.Add(1)
		go func(from, to int) {
			defer wg.Done()
			for i := from; i < to && i < n; i++ {
				t, err := idp.IssueToken(localidp.UserToken{ObjectID: prefix + strconv.Itoa(i), Audience: apiURI, Scopes: []string{"access_as_user"}, Lifetime: 2 * time.Hour})
				if err != nil {
					firstErr.Store(err)
					return
				}
				toks[i] = t
			}
		}(w, w+per)
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return nil, err
	}
	return toks, nil
}

// metric reads one series from the /metrics of the gateway whose admin
// listener is at admin.
func metric(admin, series string) float64 {
	res, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, series+" ") {
			v, _ := strconv.ParseFloat(l[len(series)+1:], 64)
			return v
		}
	}
	return 0
}

// bench is what every scenario starts with: a temporary directory, the
// placement of the processes, the gateway binary and the upstream.
type bench struct {
	dir            string
	place          placement
	placeNote, bin string
	up             *proc
}

// setUp prepares a bench; close releases it.
func setUp(o options, name string) (*bench, error) {
	dir, err := os.MkdirTemp("", name)
	if err != nil {
		return nil, err
	}
	b := &bench{dir: dir, bin: o.gatewayBin}
	b.place, b.placeNote = choosePlacement(o.pin, o.upstreamWithLoad, o.loadCPUs, runtime.NumCPU())
	if b.bin == "" {
		if b.bin, err = buildGateway(dir); err != nil {
			b.close()
			return nil, err
		}
	}
	if b.up, err = startChild(b.place.upstream, "upstream"); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *bench) close() {
	if b.up != nil {
		b.up.stop()
	}
	os.RemoveAll(b.dir)
}

func benchmark(o options) error {
	ctx := context.Background()
	printMachine()
	b, err := setUp(o, "obo-bench")
	if err != nil {
		return err
	}
	defer b.close()
	dir, place, placeNote, bin, up := b.dir, b.place, b.placeNote, b.bin, b.up
	bare, err := startChild(place.servers, "bare", "-upstream", up.addr)
	if err != nil {
		return err
	}
	defer bare.stop()
	// A second, identical bare proxy: how far two runs of the same program
	// differ is the noise every comparison below is read against.
	bare2, err := startChild(place.servers, "bare", "-upstream", up.addr)
	if err != nil {
		return err
	}
	defer bare2.stop()

	idp, err := localidp.New(localidp.Options{Clients: []localidp.Client{{ID: clientID, Secret: secret, IdentifierURI: apiURI}}})
	if err != nil {
		return err
	}
	defer idp.Close()

	// The gateway as configured by default, with every request logged, and
	// with the verified-token cache off.
	var gws []*proc
	for _, g := range []struct{ name, verifiedCache, requestLog string }{
		{"gateway", "16MiB", "failures"},
		{"gateway-log-all", "16MiB", "all"},
		{"gateway-no-vc", "0", "failures"},
	} {
		p, err := startGateway(bin, dir, g.name, gatewayYAML(idp, up.addr, g.verifiedCache, g.requestLog, ""), place.servers, o.gatewayEnv)
		if err != nil {
			return err
		}
		defer p.stop()
		gws = append(gws, p)
	}
	gw, gwLogAll, gwNoVC := gws[0], gws[1], gws[2]

	toks, err := mintTokens(idp, "warm-", o.users)
	if err != nil {
		return err
	}
	client := newLoadClient(o.conns)
	// Warm the gateways: one exchange per user, verifications cached.
	for _, g := range gws {
		run(ctx, client, o.conns, time.Minute, func(w, n int) (string, string, bool) {
			i := n*o.conns + w
			return g.addr + "/api/x", toks[i%len(toks)], i < len(toks)
		})
	}
	load, err := newLoadGen(dir, place.load, o.conns, toks, o.wrk)
	if err != nil {
		return err
	}
	fmt.Printf("load: %s, %d connections, %v per phase, median of %d interleaved rounds\n", load.name, o.conns, o.duration, o.rounds)
	fmt.Printf("processes: load generator, upstream, bare proxy and gateway each in its own; %s\n", placeNote)
	if len(o.gatewayEnv) > 0 {
		fmt.Printf("gateway environment: %s\n", strings.Join(o.gatewayEnv, " "))
	}
	fmt.Println()

	type row struct {
		name string
		r    result
	}
	var rows []row
	// Every scenario sends the same requests, Authorization header included:
	// the direct and bare-proxy runs carry (and forward) token A too. Each
	// scenario runs `rounds` times, interleaved, and the median round counts.
	type scenario struct {
		name   string
		server *proc // whose CPU time is charged to the requests
	}
	scenarios := []scenario{
		{"direct to upstream", up},
		{"bare reverse proxy", bare},
		{"gateway warm", gw},
		{"gateway warm, every request logged", gwLogAll},
		{"gateway warm, verified-token cache off", gwNoVC},
		{"bare reverse proxy, second instance", bare2},
	}
	// Each round runs the bare proxy between its twin and the gateway, so
	// that both comparisons are of phases run next to each other.
	runs := make([][]result, len(scenarios))
	for round := range o.rounds {
		for _, i := range roundOrder([]int{0, 5, 1, 2, 3, 4}, round) {
			sc := scenarios[i]
			cpu0 := cpuTime(sc.server.pid())
			calls0 := ioCalls(sc.server.pid())
			r, err := load.drive(sc.server.addr+"/api/x", o.duration)
			if err != nil {
				return fmt.Errorf("%s: %w", sc.name, err)
			}
			r.cpu = cpuTime(sc.server.pid()) - cpu0
			r.calls = ioCalls(sc.server.pid()) - calls0
			runs[i] = append(runs[i], r)
		}
	}
	for i, sc := range scenarios {
		rows = append(rows, row{sc.name, median(runs[i])})
	}
	bareR, warmR, logAllR, noVCR := rows[1].r, rows[2].r, rows[3].r, rows[4].r
	// The comparisons pair the bare proxy with the gateway (or with its
	// twin) of the same round, run next to each other, so that the
	// machine's drift between rounds cancels out; the median of the rounds'
	// figures counts.
	ratio := paired(runs[1], runs[2], throughputRatio)
	addedP99 := paired(runs[1], runs[2], addedP99ms)
	addedCPU := paired(runs[1], runs[2], func(b, g result) float64 { return perRequest(g) - perRequest(b) })
	twinRatio := paired(runs[1], runs[5], throughputRatio)
	twinP99 := paired(runs[1], runs[5], addedP99ms)

	// Side by side: the bare proxy and the gateway (or its twin) driven at
	// once, each by its own load generator, sharing the proxies' CPU. Both
	// then live through the same moments of the machine, so the drift from
	// one phase to the next, which the sequential comparisons can only pair
	// away, does not enter; both saturated, each one's throughput at equal
	// CPU is the inverse of its CPU per request.
	// side[0] pairs the bare proxy with the gateway, side[1] with the twin.
	side := [2]struct {
		other      *proc
		base, runs []result
	}{{other: gw}, {other: bare2}}
	for round := range o.rounds {
		for _, i := range roundOrder([]int{0, 1}, round) {
			s := &side[i]
			b, r, err := sideBySide(load, bare, s.other, o.duration)
			if err != nil {
				return fmt.Errorf("side by side: %w", err)
			}
			if cpuRatio(b, r) == 0 {
				continue // no CPU times here (not Linux)
			}
			s.base, s.runs = append(s.base, b), append(s.runs, r)
		}
	}
	var sideRatio, sideTwinRatio spread
	if len(side[0].runs) > 0 && len(side[1].runs) > 0 {
		sideRatio = paired(side[0].base, side[0].runs, cpuRatio)
		sideTwinRatio = paired(side[1].base, side[1].runs, cpuRatio)
	}

	// Latency at a fixed rate, by default about half of what the floor can
	// carry: what a request pays for the gateway when the CPU is not
	// saturated.
	rate := math.Max(100, math.Round(bareR.rps()*o.fixedRate/100)*100)
	fixed := []scenario{scenarios[1], scenarios[2], scenarios[5]}
	fixedRuns := make([][]result, len(fixed))
	for round := range o.rounds {
		for _, i := range roundOrder([]int{2, 0, 1}, round) {
			sc := fixed[i]
			r, err := load.driveAt(sc.server.addr+"/api/x", o.duration, rate)
			if err != nil {
				return fmt.Errorf("%s at %.0f/s: %w", sc.name, rate, err)
			}
			fixedRuns[i] = append(fixedRuns[i], r)
		}
	}
	fixedR := make([]result, len(fixed))
	for i := range fixed {
		fixedR[i] = medianP99(fixedRuns[i])
	}
	// As at saturation, each round's gateway and twin are compared with
	// that round's bare proxy.
	fixedAdded := paired(fixedRuns[0], fixedRuns[1], addedP99ms)
	fixedTwin := paired(fixedRuns[0], fixedRuns[2], addedP99ms)
	exchangesWarm := metric(gw.admin, `obo_gateway_exchanges_total{flow="on_behalf_of",outcome="success",route="api"}`)

	// Cold path: every request a new user, the authority answering in 50 ms.
	idp.SetLatency(50 * time.Millisecond)
	coldDur := min(o.duration, 5*time.Second)
	coldN := int(float64(o.conns)*coldDur.Seconds()/0.05*1.3) + o.conns
	cold, err := mintTokens(idp, "cold-", coldN)
	if err != nil {
		return err
	}
	var next atomic.Int64
	coldR := run(ctx, client, o.conns, coldDur, func(w, n int) (string, string, bool) {
		i := int(next.Add(1)) - 1
		if i >= len(cold) {
			return "", "", false
		}
		return gw.addr + "/api/x", cold[i], true
	})
	rows = append(rows, row{"cold path (new user per request, authority 50 ms)", coldR})

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\trequests/s\tp50\tp99\terrors\tserver CPU/req\tread+write calls/req\t")
	for _, r := range rows {
		cpu, calls := "-", "-"
		if r.r.cpu > 0 {
			n := float64(r.r.requests)
			cpu = fmt.Sprintf("%.1fµs", float64(r.r.cpu.Nanoseconds())/1000/n)
			calls = fmt.Sprintf("%.2f", float64(r.r.calls)/n)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%d\t%s\t%s\t\n", r.name, r.r.rps(), ms(r.r.p50), ms(r.r.p99), r.r.errors, cpu, calls)
	}
	tw.Flush()
	fmt.Printf("\nat a fixed %.0f requests/s over %d connections (%s):\n", rate, o.conns, load.pacing())
	fmt.Fprintln(tw, "scenario\trequests/s\tp50\tp99\terrors\t")
	for i, sc := range fixed {
		r := fixedR[i]
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%d\t\n", sc.name, r.rps(), ms(r.p50), ms(r.p99), r.errors)
	}
	tw.Flush()

	fmt.Printf("\nmedian of %d rounds, each comparing the gateway, and the bare proxy's twin, with the bare proxy run next to it (range):\n", len(runs[1]))
	fmt.Printf("gateway warm / bare proxy throughput:       %s   (target >= 0.90)\n", ratio.format("%.2f", ""))
	fmt.Printf("  the same for the twin (noise):            %s\n", twinRatio.format("%.2f", ""))
	fmt.Printf("gateway warm p99 - bare proxy p99:          %s   (target <= 1 ms; saturated, %d connections)\n", addedP99.format("%.2f", "ms"), o.conns)
	fmt.Printf("  the same for the twin (noise):            %s\n", twinP99.format("%.2f", "ms"))
	fmt.Printf("gateway warm p99 - bare proxy p99:          %s   (target <= 1 ms; at a fixed %.0f requests/s, %d connections)\n",
		fixedAdded.format("%.2f", "ms"), rate, o.conns)
	fmt.Printf("  the same for the twin (noise):            %s\n", fixedTwin.format("%.2f", "ms"))
	if sideRatio.med > 0 {
		fmt.Printf("\nside by side, median of %d rounds (the bare proxy and the gateway, or the twin, driven at once on the same CPU; throughput at equal CPU = the bare proxy's CPU per request / theirs):\n", len(side[0].runs))
		fmt.Printf("gateway warm / bare proxy throughput:       %s   (target >= 0.90)\n", sideRatio.format("%.2f", ""))
		fmt.Printf("  the same for the twin (noise):            %s\n", sideTwinRatio.format("%.2f", ""))
	}
	if bareR.cpu > 0 && warmR.cpu > 0 {
		fmt.Printf("gateway CPU per request - bare proxy:       %s\n", addedCPU.format("%.1f", "µs"))
		fmt.Printf("every request logged costs:                 %.1fµs more\n", perRequest(logAllR)-perRequest(warmR))
	}
	fmt.Printf("every request logged / failures only:       %.2f\n", logAllR.rps()/warmR.rps())
	fmt.Printf("verified-token cache off / on:              %.2f\n", noVCR.rps()/warmR.rps())
	fmt.Printf("exchanges during the warm phase:            %.0f for %d users (one each, at warm-up)\n", exchangesWarm, o.users)
	if b, g := peakRSS(bare.pid()), peakRSS(gw.pid()); b > 0 && g > 0 {
		fmt.Printf("peak resident memory:                       bare proxy %.0f MiB, gateway %.0f MiB\n", float64(b)/(1<<20), float64(g)/(1<<20))
	}

	// N concurrent first requests of one user.
	idp.SetLatency(50 * time.Millisecond)
	one, _ := mintTokens(idp, "burst-", 1)
	before := idp.OnBehalfOfRequestsFor("burst-0")
	var wg sync.WaitGroup
	for range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, gw.addr+"/api/x", nil)
			req.Header.Set("Authorization", "Bearer "+one[0])
			if res, err := client.Do(req); err == nil {
				drain(res.Body)
				res.Body.Close()
			}
		}()
	}
	wg.Wait()
	fmt.Printf("%d concurrent first requests of one user: %d exchange(s)   (target 1)\n", o.conns, idp.OnBehalfOfRequestsFor("burst-0")-before)
	idp.SetLatency(0)

	if err := refreshAhead(ctx, o.conns, o.refreshFor, up.addr); err != nil {
		return err
	}
	if err := replicas(ctx, up.addr, 4, 200); err != nil {
		return err
	}
	fmt.Println()
	tokenAPI := o
	tokenAPI.gatewayBin = bin
	if err := tokenAPIBench(tokenAPI); err != nil {
		return fmt.Errorf("token API: %w", err)
	}
	return memory(idp, o.memUsers)
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

func printMachine() {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	fmt.Printf("machine: %s, %d CPUs, %s %s/%s\n", model, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
