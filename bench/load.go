package main

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// result is what one load run measured.
type result struct {
	requests int
	errors   int
	elapsed  time.Duration
	p50, p99 time.Duration
	cpu      time.Duration // CPU time the server under test spent, when known
	// calls is the number of read and write system calls the server made
	// during the run, when known.
	calls int64
}

func (r result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// perRequest is the server's CPU time per request in microseconds.
func perRequest(r result) float64 {
	return float64(r.cpu.Nanoseconds()) / 1000 / float64(max(r.requests, 1))
}

// target gives each request its URL and token; worker is the index of the
// connection, n the request's sequence number on it.
type target func(worker, n int) (url, token string, ok bool)

// newLoadClient returns a client with one keep-alive connection per worker.
func newLoadClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}}
}

// run drives conns workers for d (or until target says stop) and reports
// throughput and latency. Every non-200 answer counts as an error.
func run(ctx context.Context, client *http.Client, conns int, d time.Duration, tgt target) result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		all    []time.Duration
		errs   atomic.Int64
		start  = time.Now()
		buffer = 4096
	)
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, buffer)
			buf := make([]byte, 4096)
			for n := 0; ctx.Err() == nil; n++ {
				url, tok, ok := tgt(w, n)
				if !ok {
					break
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if tok != "" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				for {
					if _, err := res.Body.Read(buf); err != nil {
						break
					}
				}
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	r := result{requests: len(all), errors: int(errs.Load()), elapsed: time.Since(start)}
	if len(all) > 0 {
		slices.Sort(all)
		r.p50 = all[len(all)/2]
		r.p99 = all[len(all)*99/100]
	}
	return r
}

// drain discards a body.
func drain(r io.Reader) { _, _ = io.Copy(io.Discard, r) }
