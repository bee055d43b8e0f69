package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/obo-gateway/obo-gateway/bench/heapstat"
	"github.com/obo-gateway/obo-gateway/cache"
	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

// refreshAhead runs steady load with 10-second tokens B (usable 5 s,
// refreshed from 3.75 s) and counts requests that waited for the authority
// after warm-up.
func refreshAhead(ctx context.Context, conns int, d time.Duration, upstream string) error {
	idp, err := localidp.New(localidp.Options{
		Clients:       []localidp.Client{{ID: clientID, Secret: secret, IdentifierURI: apiURI}},
		TokenLifetime: 10 * time.Second,
	})
	if err != nil {
		return err
	}
	defer idp.Close()
	idp.SetLatency(20 * time.Millisecond)
	gw, stop, err := gateway(idp, upstream, "16MiB")
	if err != nil {
		return err
	}
	defer stop()
	const users = 50
	toks, err := mintTokens(idp, "steady-", users)
	if err != nil {
		return err
	}
	client := newLoadClient(conns)
	for i, t := range toks { // warm-up: the first request of each user waits
		req, _ := http.NewRequest(http.MethodGet, "http://"+gw.Addr()+"/api/x", nil)
		req.Header.Set("Authorization", "Bearer "+t)
		res, err := client.Do(req)
		if err != nil || res.StatusCode != 200 {
			return fmt.Errorf("warm-up of user %d failed", i)
		}
		drain(res.Body)
		res.Body.Close()
	}
	waited := func() float64 {
		return metric(gw.AdminAddr(), `obo_gateway_cache_lookups_total{result="miss",route="api"}`) +
			metric(gw.AdminAddr(), `obo_gateway_cache_lookups_total{result="shared",route="api"}`)
	}
	before := waited()
	var limiter atomic.Int64
	r := run(ctx, client, min(conns, 16), d, func(w, n int) (string, string, bool) {
		time.Sleep(5 * time.Millisecond) // steady, not saturating
		return "http://" + gw.Addr() + "/api/x", toks[int(limiter.Add(1))%users], true
	})
	fmt.Printf("\nrefresh-ahead: %v of steady load, %d users, tokens B living 10 s (authority latency 20 ms)\n", d, users)
	fmt.Printf("  requests: %d (%.0f/s), errors: %d, p99 %s\n", r.requests, r.rps(), r.errors, ms(r.p99))
	fmt.Printf("  refresh-ahead exchanges: %.0f succeeded, %.0f failed\n",
		metric(gw.AdminAddr(), `obo_gateway_refreshes_total{outcome="success"}`), metric(gw.AdminAddr(), `obo_gateway_refreshes_total{outcome="failure"}`))
	fmt.Printf("  requests that waited on the authority after warm-up: %.0f   (target 0)\n", waited()-before)
	return nil
}

// memory measures the heap cost of cached tokens B.
func memory(idp *localidp.Server, users int) error {
	// A real token B from the identity provider gives the token size.
	tok, err := idp.IssueToken(localidp.UserToken{ObjectID: "sample", Audience: apiURI, Scopes: []string{"access_as_user"}})
	if err != nil {
		return err
	}
	size := len(tok)
	c, err := cache.New(cache.Config{MaxBytes: 1 << 30})
	if err != nil {
		return err
	}
	defer c.Close()
	h0 := heapstat.AfterGC()
	now := time.Now()
	for i := range users {
		b := []byte(tok)
		copy(b[len(b)-12:], fmt.Sprintf("%012d", i)) // distinct strings
		key := cache.UserKey("72f988bf-86f1-41af-91ab-2d7cd011db47", fmt.Sprintf("00000000-0000-4000-8000-%012d", i), nil, "api://bench-upstream/data.read")
		c.Set(cache.NewEntry(key, string(b), "Bearer", now, now.Add(time.Hour), 0))
	}
	h := heapstat.AfterGC()
	fmt.Printf("\nmemory: %d cached users, token B of %d bytes\n", c.Len(), size)
	if per, ok := perEntry(h0.Live, h.Live, users); ok {
		fmt.Printf("  heap per cached token: %.0f bytes = %.2f x the token   (target <= 2; live heap after a collection)\n", per, per/float64(size))
	} else {
		fmt.Printf("  heap per cached token: not measurable: the live heap went from %d to %d bytes, the rest of the process moved it more than %d entries did (raise -memory-users)\n", h0.Live, h.Live, users)
	}
	if per, ok := perEntry(h0.InUse, h.InUse, users); ok {
		fmt.Printf("  heap spans in use per cached token: %.0f bytes = %.2f x the token   (also counts free slots the inserts' garbage left)\n", per, per/float64(size))
	}
	if per, ok := perEntry(h0.Scan, h.Scan, users); ok {
		fmt.Printf("  heap every collection scans per cached token: %.0f bytes   (objects holding pointers; the token's bytes are not scanned)\n", per)
	}
	fmt.Printf("  bytes charged against cache.max_bytes: %d (%.0f per entry)\n", c.Bytes(), float64(c.Bytes())/float64(users))

	small, err := cache.New(cache.Config{MaxBytes: 8 << 20})
	if err != nil {
		return err
	}
	defer small.Close()
	for i := range users {
		key := cache.UserKey("t", strconv.Itoa(i), nil, "s")
		small.Set(cache.NewEntry(key, tok, "Bearer", now, now.Add(time.Hour), 0))
	}
	fmt.Printf("  cache.max_bytes 8MiB after %d inserts: %d bytes held, %d entries   (bound respected: %v)\n",
		users, small.Bytes(), small.Len(), small.Bytes() <= 8<<20)
	return nil
}

// perEntry is the growth from before to after shared among n entries. It
// reports false when there is no growth to share: with few entries, memory
// the rest of the process released in between can outweigh theirs.
func perEntry(before, after uint64, n int) (float64, bool) {
	if after <= before || n <= 0 {
		return 0, false
	}
	return float64(after-before) / float64(n), true
}
