package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

// tokenAPIYAML is the bench gateway's configuration with the token API on
// its own loopback port.
func tokenAPIYAML(idp *localidp.Server, upstream string, port int) string {
	return gatewayYAML(idp, upstream, "16MiB", "failures", "") + fmt.Sprintf("token_api:\n  listen: 127.0.0.1:%d\n", port)
}

// tokenAPIBench measures, in one run, warm GET /AuthorizationHeader/api of
// the token API (token B from the cache, no downstream hop) against the
// warm proxy path and the upstream called directly, interleaved over the
// rounds, with the same tokens A. It prints the median round of each and
// the token API's throughput over the proxy path's.
func tokenAPIBench(o options) error {
	ctx := context.Background()
	b, err := setUp(o, "obo-bench-tokenapi")
	if err != nil {
		return err
	}
	defer b.close()
	dir, place, placeNote, bin, up := b.dir, b.place, b.placeNote, b.bin, b.up
	idp, err := localidp.New(localidp.Options{Clients: []localidp.Client{{ID: clientID, Secret: secret, IdentifierURI: apiURI}}})
	if err != nil {
		return err
	}
	defer idp.Close()
	port := freePort()
	gw, err := startGateway(bin, dir, "gateway-token-api", tokenAPIYAML(idp, up.addr, port), place.servers, o.gatewayEnv)
	if err != nil {
		return err
	}
	defer gw.stop()
	api := fmt.Sprintf("http://127.0.0.1:%d", port)

	toks, err := mintTokens(idp, "warm-", o.users)
	if err != nil {
		return err
	}
	// Warm up through the proxy path: the token API serves the same cached
	// token B (same route, same user).
	client := newLoadClient(o.conns)
	run(ctx, client, o.conns, time.Minute, func(w, n int) (string, string, bool) {
		i := n*o.conns + w
		return gw.addr + "/api/x", toks[i%len(toks)], i < len(toks)
	})
	load, err := newLoadGen(dir, place.load, o.conns, toks, o.wrk)
	if err != nil {
		return err
	}
	fmt.Printf("token API: %s, %d connections, %v per phase, median of %d interleaved rounds; %s\n\n",
		load.name, o.conns, o.duration, o.rounds, placeNote)
	scenarios := []struct {
		name, url string
		server    *proc
	}{
		{"direct to upstream", up.addr + "/api/x", up},
		{"gateway warm, proxy path", gw.addr + "/api/x", gw},
		{"token API warm, GET /AuthorizationHeader/api", api + "/AuthorizationHeader/api", gw},
	}
	runs := make([][]result, len(scenarios))
	for round := range o.rounds {
		for _, i := range roundOrder([]int{0, 1, 2}, round) {
			sc := scenarios[i]
			cpu0 := cpuTime(sc.server.pid())
			r, err := load.drive(sc.url, o.duration)
			if err != nil {
				return fmt.Errorf("%s: %w", sc.name, err)
			}
			if r.errors > 0 {
				return fmt.Errorf("%s: %d requests failed", sc.name, r.errors)
			}
			r.cpu = cpuTime(sc.server.pid()) - cpu0
			runs[i] = append(runs[i], r)
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\trequests/s\tp50\tp99\tserver CPU/req\t")
	for i, sc := range scenarios {
		r := median(runs[i])
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%.1fµs\t\n", sc.name, r.rps(), ms(r.p50), ms(r.p99), perRequest(r))
	}
	tw.Flush()
	ratio := paired(runs[1], runs[2], throughputRatio)
	fmt.Printf("\ntoken API / gateway proxy path throughput:  %s   (target >= 1.5)\n", ratio.format("%.2f", ""))
	exchanges := metric(gw.admin, `obo_gateway_exchanges_total{flow="on_behalf_of",outcome="success",route="api"}`)
	fmt.Printf("exchanges:                                  %.0f for %d users (one each, at warm-up)\n", exchanges, o.users)
	return nil
}
