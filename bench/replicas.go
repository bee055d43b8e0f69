package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/app"
	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

// replicas measures what the Redis second level saves after a rollout:
// `replicas` fresh gateways behind a load balancer, each user's requests
// spread over all of them at once. It counts the exchanges per user with
// and without a shared Redis.
func replicas(ctx context.Context, upstream string, n, users int) error {
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		fmt.Printf("\nreplicas: skipped, redis-server is not installed (apt-get install -y redis-server)\n")
		return nil
	}
	dir, err := os.MkdirTemp("", "obo-bench-redis")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	port := freePort()
	redis := exec.Command(redisBin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := redis.Start(); err != nil {
		return err
	}
	defer func() { _ = redis.Process.Kill(); _ = redis.Wait() }()
	keyFile := filepath.Join(dir, "keys")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n"), 0o600); err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond)

	fmt.Printf("\nrollout of %d replicas, %d users, each user's first requests spread over every replica at once (authority latency 50 ms)\n", n, users)
	for _, withRedis := range []bool{false, true} {
		idp, err := localidp.New(localidp.Options{Clients: []localidp.Client{{ID: clientID, Secret: secret, IdentifierURI: apiURI}}})
		if err != nil {
			return err
		}
		idp.SetLatency(50 * time.Millisecond)
		extra := ""
		if withRedis {
			extra = fmt.Sprintf("  redis:\n    url: redis://127.0.0.1:%d\n    encryption_key_file: %s\n    key_prefix: \"bench-%d:\"\n", port, keyFile, time.Now().UnixNano())
		}
		var gws []*app.App
		var stops []func()
		for range n {
			g, stop, err := gatewayWith(idp, upstream, "16MiB", "failures", extra)
			if err != nil {
				idp.Close()
				return err
			}
			gws, stops = append(gws, g), append(stops, stop)
		}
		toks, err := mintTokens(idp, "rollout-", users)
		if err != nil {
			return err
		}
		client := newLoadClient(64)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 64)
		failed := 0
		var mu sync.Mutex
		for _, tok := range toks {
			for _, g := range gws {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.Addr()+"/api/x", nil)
					req.Header.Set("Authorization", "Bearer "+tok)
					res, err := client.Do(req)
					if err == nil {
						drain(res.Body)
						res.Body.Close()
					}
					if err != nil || res.StatusCode != 200 {
						mu.Lock()
						failed++
						mu.Unlock()
					}
				}()
			}
		}
		wg.Wait()
		label := "without Redis"
		if withRedis {
			label = "with Redis   "
		}
		fmt.Printf("  %s: %.2f exchanges per user (%d exchanges, %d failed requests)\n",
			label, float64(idp.OnBehalfOfRequests())/float64(users), idp.OnBehalfOfRequests(), failed)
		for _, s := range stops {
			s()
		}
		idp.Close()
	}
	return nil
}
