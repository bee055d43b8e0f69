package proxy

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
		if got := k.Has(kid); got != want {
			t.Errorf("Has(%q) = %v, want %v", kid, got, want)
		}
	}
}

func TestKeySetCloseAfterContextEnds(t *testing.T) {
	j := newJWKSServer(t)
	j.publish(t, newSigner(t, "a"), nil)
	ctx, cancel := context.WithCancel(context.Background())
	k := newTestKeySet(t, ctx, j.srv.URL)
	cancel()
	time.Sleep(1500 * time.Millisecond) // let the sync loop tick on the stopped cache
	done := make(chan struct{})
	go func() { _ = k.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung after the context ended")
	}
}
