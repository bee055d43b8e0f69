package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

// TestDrainLosesNoKeepAliveRequest runs the binary under 32 clients that
// POST back to back over kept-alive connections, as an application's HTTP
// client does, and sends SIGTERM; each client stops once it sees the
// process gone. A POST is never retried by Go's transport, so every
// request must end with its answer, except one refused on a new connection
// once the shutdown delay is over: then the gateway has told every
// connection to close and stopped accepting, and a refusal is the answer.
func TestDrainLosesNoKeepAliveRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	idp, echoURL := drainParts(t)
	for _, delay := range []time.Duration{0, 2 * time.Second} {
		t.Run(fmt.Sprintf("shutdown_delay %s", delay), func(t *testing.T) {
			keepAliveDrain(t, idp, echoURL, delay)
		})
	}
}

// postOutcome is how one POST of TestDrainLosesNoKeepAliveRequest ended.
type postOutcome struct {
	start, end time.Time
	answered   bool
	refused    bool
	reused     bool
	err        string // why it is not an answer; "" when it is
}

func keepAliveDrain(t *testing.T, idp *localidp.Server, echoURL string, delay time.Duration) {
	g := startGateway(t, delayedConfig(delay.String(), idp, echoURL))
	const users, workers = 4, 32
	tr := &http.Transport{MaxIdleConns: 2 * workers, MaxIdleConnsPerHost: 2 * workers, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 15 * time.Second}
	tokens := make([]string, users)
	for i := range tokens {
		tok, err := idp.IssueToken(localidp.UserToken{ObjectID: fmt.Sprintf("poster-%d", i), Audience: drainAPI, Scopes: []string{"access_as_user"}})
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = tok
		if o := post(client, g.addr, tok, "warm-up"); !o.answered {
			t.Fatalf("warm-up: %s", o.err)
		}
	}

	var (
		mu       sync.Mutex
		outcomes []postOutcome
		wg       sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-g.exited:
					return
				default:
				}
				o := post(client, g.addr, tokens[(w+i)%users], fmt.Sprintf("worker %d request %d", w, i))
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				if o.refused {
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	term := time.Now()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !g.exitsWithin(20 * time.Second) {
		t.Fatalf("the gateway did not exit within 20 s of SIGTERM; its log:\n%s", g.logs)
	}
	exited := time.Since(term)
	wg.Wait()
	if g.exitErr != nil {
		t.Errorf("the gateway exited with %v", g.exitErr)
	}

	var answered, afterTerm, inDelay, refused, lost int
	stopAccepting := term.Add(delay)
	for _, o := range outcomes {
		switch {
		case o.answered:
			answered++
			if o.start.After(term) {
				afterTerm++
			}
			if o.start.After(term.Add(delay/2)) && o.end.Before(stopAccepting) {
				inDelay++
			}
		case o.refused && o.end.After(stopAccepting):
			refused++
		default:
			lost++
			if lost <= 10 {
				t.Errorf("request %s–%s (SIGTERM at %s) lost: %s", o.start.Format("15:04:05.000"), o.end.Format("15:04:05.000"), term.Format("15:04:05.000"), o.err)
			}
		}
	}
	t.Logf("shutdown_delay %s: %d requests sent, %d answered (%d sent after SIGTERM), %d refused after the delay, %d lost; exited %v after SIGTERM",
		delay, len(outcomes), answered, afterTerm, refused, lost, exited.Round(time.Millisecond))
	if afterTerm == 0 {
		t.Error("no request sent after SIGTERM was answered: the drain was not exercised")
	}
	if delay > 0 && inDelay == 0 {
		t.Error("no request was answered in the second half of the delay")
	}
}

// post sends one POST and judges how it ended: answered means a 200 whose
// echoed body is the one sent.
func post(client *http.Client, addr, tok, body string) postOutcome {
	o := postOutcome{start: time.Now()}
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { o.reused = i.Reused }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodPost,
		"http://"+addr+"/echo/items", bytes.NewReader([]byte(body)))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "text/plain")
	res, err := client.Do(req)
	if err != nil {
		o.end = time.Now()
		o.refused = errors.Is(err, syscall.ECONNREFUSED)
		o.err = describeFailure(err, o.reused)
		return o
	}
	got, err := io.ReadAll(res.Body)
	res.Body.Close()
	o.end = time.Now()
	var e struct {
		Body string `json:"body"`
	}
	switch {
	case err != nil:
		o.err = "the answer was cut: " + describeFailure(err, o.reused)
	case res.StatusCode != http.StatusOK:
		o.err = fmt.Sprintf("status %d: %.200q", res.StatusCode, got)
	case json.Unmarshal(got, &e) != nil || e.Body != body:
		o.err = fmt.Sprintf("200 with an unexpected body: %.200q", got)
	default:
		o.answered = true
	}
	return o
}
