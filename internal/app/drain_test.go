package app

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestStopAcceptingServesTheQueue: connections the kernel accepted into
// the listener's queue before it stopped accepting are taken and served,
// none is reset; once it is closed, a new connection is refused.
func TestStopAcceptingServesTheQueue(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dl := newDrainListener(watchedListener{ln}, ln.(*net.TCPListener))
	defer dl.Close()
	// Queued, not yet taken: nobody calls Accept.
	const queued = 8
	clients := make([]net.Conn, queued)
	for i := range clients {
		if clients[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
		defer clients[i].Close()
		if _, err := clients[i].Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
	}
	var served sync.WaitGroup
	acceptDone := make(chan error, 1)
	go func() {
		for {
			c, err := dl.Accept()
			if err != nil {
				acceptDone <- err
				return
			}
			served.Go(func() {
				defer c.Close()
				b := make([]byte, 4)
				if _, err := io.ReadFull(c, b); err == nil {
					_, _ = c.Write([]byte("pong"))
				}
			})
		}
	}()
	if err := dl.stopAccepting(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-acceptDone:
		if !isStoppedAccepting(err) {
			t.Errorf("Accept ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the listener did not stop accepting")
	}
	served.Wait()
	for i, c := range clients {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 4)
		if _, err := io.ReadFull(c, b); err != nil || string(b) != "pong" {
			t.Errorf("queued connection %d: %q, %v; want its answer", i, b, err)
		}
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Errorf("a new connection after the stop: %v, want refused", err)
	}
}
