package app

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// unreadWatch counts the requests that Go's HTTP server refuses, or cannot
// finish reading, before the gateway's handler sees them. The server
// answers those itself and closes the connection: a malformed request line
// or header field (400), headers over MaxHeaderBytes (431), a
// Transfer-Encoding it does not implement (501), an Expect other than
// 100-continue (417), a protocol version other than HTTP/1.x (505); or it
// closes without an answer when the client goes away, or runs out of
// ReadHeaderTimeout, part way through a request.
//
// The server marks a connection StateActive once it has read bytes of a
// request, whether or not the request turns out to be readable, and then
// either calls the handler or closes the connection. A connection closed
// while a request is pending, read from the network but never handed to
// the handler, therefore ends with an unread request; there is at most one,
// as the server closes the connection after it. (Requests pipelined behind
// another, already buffered, are read without the network and go unseen.)
type unreadWatch struct {
	conns sync.Map // net.Conn → *connWatch
	// unread is called once for every connection closed with an unread
	// request.
	unread func()
}

// connWatch is one connection's state.
type connWatch struct {
	// pending is set when the server starts reading a request from the
	// network and cleared when the handler receives it.
	pending atomic.Bool
}

type connWatchKey struct{}

// connContext is the server's ConnContext: it starts watching c and gives
// its requests' contexts the watch, for served.
func (u *unreadWatch) connContext(ctx context.Context, c net.Conn) context.Context {
	w := new(connWatch)
	u.conns.Store(c, w)
	return context.WithValue(ctx, connWatchKey{}, w)
}

// connState is the server's ConnState.
func (u *unreadWatch) connState(c net.Conn, s http.ConnState) {
	switch s {
	case http.StateActive:
		if w, ok := u.conns.Load(c); ok {
			w.(*connWatch).pending.Store(true)
		}
	case http.StateHijacked, http.StateClosed:
		if w, ok := u.conns.LoadAndDelete(c); ok && w.(*connWatch).pending.Load() {
			u.unread()
		}
	}
}

// served records that the handler received r.
func served(r *http.Request) {
	if w, ok := r.Context().Value(connWatchKey{}).(*connWatch); ok {
		w.pending.Store(false)
	}
}
