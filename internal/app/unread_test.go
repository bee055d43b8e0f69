package app

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkUnreadWatch measures what watching for unread requests adds to
// each request of a keep-alive connection, the read system calls aside:
// marking the bytes read between requests, the server's StateActive and
// StateIdle calls, and the handler's served.
func BenchmarkUnreadWatch(b *testing.B) {
	u := &unreadWatch{unread: func() { b.Fatal("a served request counted as unread") }}
	wc := &watchedConn{TCPConn: &net.TCPConn{}}
	r := httptest.NewRequestWithContext(u.connContext(b.Context(), wc), http.MethodGet, "/", nil)
	u.connState(wc, http.StateNew)
	b.ReportAllocs()
	for b.Loop() {
		wc.sawBytes()
		u.connState(wc, http.StateActive)
		served(r)
		u.connState(wc, http.StateIdle)
	}
	u.connState(wc, http.StateClosed)
}

// TestUnreadWatch plays the server's calls on one connection, in order,
// and checks whether its close counts an unread request.
func TestUnreadWatch(t *testing.T) {
	const (
		bytes  = "bytes"  // the server reads bytes of a request
		serve  = "serve"  // the handler receives the request
		stop   = "stop"   // the server begins to shut down
		active = "active" // the ConnState calls
		idle   = "idle"
		closed = "closed"
		hijack = "hijacked"
	)
	tests := []struct {
		name   string
		events []string
		want   int
	}{
		{"nothing sent", []string{closed}, 0},
		{"first request unreadable", []string{bytes, active, closed}, 1},
		{"first request unreadable, read in two parts", []string{bytes, bytes, active, closed}, 1},
		{"first request part sent, then gone", []string{bytes, closed}, 1},
		{"first request served, closed", []string{bytes, active, serve, closed}, 0},
		{"served, its body read, idle, closed", []string{bytes, active, serve, bytes, idle, closed}, 0},
		{"served, then an unreadable one", []string{bytes, active, serve, idle, bytes, closed}, 1},
		{"served, then an unreadable one read in full", []string{bytes, active, serve, idle, bytes, active, closed}, 1},
		{"served twice", []string{bytes, active, serve, idle, bytes, active, serve, idle, closed}, 0},
		{"served, hijacked", []string{bytes, active, serve, hijack}, 0},
		{"read but dropped while shutting down", []string{bytes, active, stop, closed}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := 0
			u := &unreadWatch{unread: func() { got++ }}
			wc := &watchedConn{TCPConn: &net.TCPConn{}}
			r := httptest.NewRequestWithContext(u.connContext(t.Context(), wc), http.MethodGet, "/", nil)
			u.connState(wc, http.StateNew)
			for _, ev := range tc.events {
				switch ev {
				case bytes:
					wc.sawBytes()
				case serve:
					served(r)
				case stop:
					u.stopping.Store(true)
				case active:
					u.connState(wc, http.StateActive)
				case idle:
					u.connState(wc, http.StateIdle)
				case closed:
					u.connState(wc, http.StateClosed)
				case hijack:
					u.connState(wc, http.StateHijacked)
				}
			}
			if got != tc.want {
				t.Errorf("counted %d, want %d", got, tc.want)
			}
		})
	}
}
