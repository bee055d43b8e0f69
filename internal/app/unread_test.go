package app

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkUnreadWatch measures what watching for unread requests adds to
// each request of a keep-alive connection: the server's StateActive and
// StateIdle calls and the handler's served.
func BenchmarkUnreadWatch(b *testing.B) {
	u := &unreadWatch{unread: func() { b.Fatal("a served request counted as unread") }}
	// Other connections in the map, as on a busy listener.
	for range 64 {
		c, _ := net.Pipe()
		u.connContext(b.Context(), c)
	}
	c, _ := net.Pipe()
	r := httptest.NewRequestWithContext(u.connContext(b.Context(), c), http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		u.connState(c, http.StateActive)
		served(r)
		u.connState(c, http.StateIdle)
	}
	u.connState(c, http.StateClosed)
}
