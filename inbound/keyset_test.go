package inbound

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// jwksServer publishes the public keys of signers, optionally slowly, and
// counts fetches.
type jwksServer struct {
	mu      sync.Mutex
	keys    []map[string]any
	delay   time.Duration
	fetches atomic.Int32
	srv     *httptest.Server
}

func newJWKSServer(t *testing.T) *jwksServer {
	j := &jwksServer{}
	j.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.fetches.Add(1)
		j.mu.Lock()
		delay, keys := j.delay, j.keys
		j.mu.Unlock()
		time.Sleep(delay)
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	t.Cleanup(j.srv.Close)
	return j
}

func (j *jwksServer) publish(t *testing.T, s *signer, extra map[string]any) {
	t.Helper()
	k, err := jwk.Import(s.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, s.kid)
	b, _ := json.Marshal(k)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for key, v := range extra {
		m[key] = v
	}
	j.mu.Lock()
	j.keys = append(j.keys, m)
	j.mu.Unlock()
}

func newTestKeySet(t *testing.T, ctx context.Context, url string) *KeySet {
	t.Helper()
	k, err := NewKeySet(ctx, KeySetConfig{URL: url, HTTPClient: &http.Client{Timeout: 5 * time.Second}, MinRefetch: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !k.Ready(ctx) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return k
}

func TestConcurrentRolloverWaitsForOneRefetch(t *testing.T) {
	j := newJWKSServer(t)
	j.publish(t, newSigner(t, "old"), nil)
	k := newTestKeySet(t, context.Background(), j.srv.URL)
	defer k.Close()
	j.mu.Lock()
	j.delay = 300 * time.Millisecond
	j.mu.Unlock()
	j.publish(t, newSigner(t, "new"), nil)
	before := j.fetches.Load()
	gen, ok := k.Published("old")
	if !ok || gen == 0 || gen != k.Generation() {
		t.Fatalf("Published(old) = %d, %v with Generation %d; want the current, nonzero generation", gen, ok, k.Generation())
	}

	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := k.Key(context.Background(), "new"); err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of 20 concurrent requests with the new key id failed during the refetch", n)
	}
	if n := j.fetches.Load() - before; n != 1 {
		t.Errorf("%d fetches for 20 concurrent unknown-kid requests, want 1", n)
	}
	// The refetched set is a new generation, which the verified-token cache
	// reads as a reason to look its tokens' keys up again.
	if g, ok := k.Published("new"); !ok || g <= gen || g != k.Generation() {
		t.Errorf("after the refetch Published(new) = %d, %v with Generation %d; want a generation above %d", g, ok, k.Generation(), gen)
	}
	// Within MinRefetch, unknown ids do not fetch again.
	for range 10 {
		if _, err := k.Key(context.Background(), "random"); err != ErrUnknownKey {
			t.Fatalf("random kid: %v", err)
		}
	}
	if n := j.fetches.Load() - before; n != 1 {
		t.Errorf("random kids caused %d fetches in all, want 1", n)
	}
}

func TestEncryptionKeysAreNotUsedForSignatures(t *testing.T) {
	j := newJWKSServer(t)
	j.publish(t, newSigner(t, "enc"), map[string]any{"use": "enc"})
	j.publish(t, newSigner(t, "wrap"), map[string]any{"key_ops": []string{"wrapKey"}})
	j.publish(t, newSigner(t, "sig"), map[string]any{"use": "sig", "key_ops": []string{"verify"}})
	k := newTestKeySet(t, context.Background(), j.srv.URL)
	defer k.Close()
	for kid, want := range map[string]bool{"enc": false, "wrap": false, "sig": true} {
		if _, got := k.Published(kid); got != want {
			t.Errorf("Published(%q) = %v, want %v", kid, got, want)
		}
	}
}

func TestKeySetCloseAfterContextEnds(t *testing.T) {
	j := newJWKSServer(t)
	j.publish(t, newSigner(t, "a"), nil)
	ctx, cancel := context.WithCancel(context.Background())
	k := newTestKeySet(t, ctx, j.srv.URL)
	cancel()
	time.Sleep(1500 * time.Millisecond) // let the stopped cache's goroutines wind down
	done := make(chan struct{})
	go func() { _ = k.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung after the context ended")
	}
}

// TestFailedRefreshKeepsLastGoodKeySet: whatever goes wrong with a refresh
// of the key set — an error status, a broken or hostile document, a hang,
// a cut connection, the authority gone — the keys fetched last keep
// verifying tokens, both after a refetch for an unknown key id and after
// background refreshes; and a later good fetch is picked up.
func TestFailedRefreshKeepsLastGoodKeySet(t *testing.T) {
	good, next := newSigner(t, "good"), newSigner(t, "next")
	setJSON := func(signers ...*signer) []byte {
		set := jwk.NewSet()
		for _, s := range signers {
			k, _ := s.publicSet(t).Key(0)
			_ = set.AddKey(k)
		}
		b, err := json.Marshal(set)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	faults := []struct {
		name  string
		serve func(w http.ResponseWriter, r *http.Request)
		gone  bool // the server is closed instead
	}{
		{name: "500", serve: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", http.StatusInternalServerError) }},
		{name: "404 HTML page", serve: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte("<html>not here</html>"))
		}},
		{name: "200 with broken JSON", serve: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"keys":[{"kty":"RSA",`)) }},
		{name: "200 with keys of the wrong type", serve: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"keys":"none"}`)) }},
		{name: "200 with an invalid key", serve: func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"keys":[{"kty":"RSA","kid":"good","n":"!!","e":"AQAB"}]}`))
		}},
		{name: "hangs past the client timeout", serve: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}},
		{name: "connection cut", serve: func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		}},
		{name: "authority gone", gone: true},
	}
	// Every fault runs at once, in phases, to keep the test short.
	type run struct {
		name    string
		gone    bool
		mode    atomic.Int32 // 0 good, 1 fault, 2 good with the next key too
		fetches atomic.Int32
		before  int32
		srv     *httptest.Server
		keys    *KeySet
	}
	runs := make([]*run, len(faults))
	for i, tc := range faults {
		r := &run{name: tc.name, gone: tc.gone}
		r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r.fetches.Add(1)
			switch r.mode.Load() {
			case 0:
				_, _ = w.Write(setJSON(good))
			case 1:
				tc.serve(w, req)
			default:
				_, _ = w.Write(setJSON(good, next))
			}
		}))
		t.Cleanup(r.srv.Close)
		k, err := NewKeySet(context.Background(), KeySetConfig{URL: r.srv.URL,
			HTTPClient: &http.Client{Timeout: 300 * time.Millisecond}, Refresh: time.Second, MinRefetch: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k.Close() })
		r.keys = k
		runs[i] = r
	}
	for _, r := range runs {
		waitFor(t, r.name+": the first fetch", func() bool { return r.keys.Ready(context.Background()) })
		r.mode.Store(1)
		if r.gone {
			r.srv.CloseClientConnections()
			r.srv.Listener.Close()
		}
		r.before = r.fetches.Load()
	}
	time.Sleep(60 * time.Millisecond) // past MinRefetch
	for _, r := range runs {
		if _, err := r.keys.Key(context.Background(), "next"); err != ErrUnknownKey {
			t.Errorf("%s: unknown kid during the fault: %v, want ErrUnknownKey (not keys unavailable)", r.name, err)
		}
		if !r.gone && r.fetches.Load() == r.before {
			t.Errorf("%s: the unknown kid did not cause a refetch", r.name)
		}
	}
	// Let background refreshes fail too.
	for _, r := range runs {
		waitFor(t, r.name+": a failed background refresh", func() bool { return r.gone || r.fetches.Load() >= r.before+2 })
	}
	time.Sleep(time.Second + 200*time.Millisecond)
	for _, r := range runs {
		if key, err := r.keys.Key(context.Background(), "good"); err != nil || key == nil {
			t.Errorf("%s: the last good key after failed refreshes: %v", r.name, err)
		}
		if _, ok := r.keys.Published("good"); !ok || r.keys.Len() != 1 {
			t.Errorf("%s: key set after failed refreshes: Published(good) %v, Len %d", r.name, ok, r.keys.Len())
		}
		r.mode.Store(2)
	}
	for _, r := range runs {
		if r.gone {
			continue
		}
		waitFor(t, r.name+": the next key after the fault", func() bool {
			_, err := r.keys.Key(context.Background(), "next")
			return err == nil
		})
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGenerationHoldsWhileTheSetDoes: the generation holds while the JWKS
// cache holds the same set, or the verified-token cache would look every key
// up again.
func TestGenerationHoldsWhileTheSetDoes(t *testing.T) {
	j := newJWKSServer(t)
	j.publish(t, newSigner(t, "a"), nil)
	k := newTestKeySet(t, context.Background(), j.srv.URL)
	defer k.Close()
	g := k.Generation()
	if g == 0 {
		t.Fatal("no key set after Ready")
	}
	time.Sleep(1300 * time.Millisecond)
	if got := k.Generation(); got != g {
		t.Errorf("generation moved from %d to %d with the same key set published", g, got)
	}
}
