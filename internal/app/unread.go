package app

import (
	"context"
	"net"
	"net/http"
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
// Between two requests a connection is StateNew (before its first) or
// StateIdle (after an answer); the bytes read from it then are the next
// request's. The gateway listener (watchedListener) wraps each connection
// so that such a read marks a request pending, and the handler clears the
// mark when it receives the request (served). A connection closed with the mark set
// ends with an unread request; there is at most one, as the server closes
// the connection after it. Bytes read while the handler runs (the request
// body, or a request pipelined behind it) do not count, so an unreadable
// request pipelined behind another goes unseen. Neither does a request the
// server reads but drops because it is shutting down (stopping).
type unreadWatch struct {
	// unread is called once for every connection closed with an unread
	// request.
	unread func()
	// stopping is set when the server begins to shut down.
	stopping atomic.Bool
}

// watchedConn is a TCP connection of the gateway listener, with the state
// the server last gave it and the mark of a pending request.
type watchedConn struct {
	*net.TCPConn // CloseWrite and ReadFrom stay the TCP connection's
	state        atomic.Int32
	pending      atomic.Bool
}

// Read reads from the connection; bytes read between requests mark a
// request pending.
func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if n > 0 {
		c.sawBytes()
	}
	return n, err
}

// sawBytes marks a request pending if the bytes just read came between
// requests.
func (c *watchedConn) sawBytes() {
	if s := http.ConnState(c.state.Load()); s == http.StateNew || s == http.StateIdle {
		c.pending.Store(true)
	}
}

// watchedListener is the gateway listener: its TCP connections are
// watched.
type watchedListener struct{ net.Listener }

// Accept returns the next connection, watched when it is a TCP one.
func (l watchedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		return &watchedConn{TCPConn: tc}, nil
	}
	return c, err
}

type connWatchKey struct{}

// connContext is the server's ConnContext: it gives the requests of a
// watched connection its mark, for served.
func (u *unreadWatch) connContext(ctx context.Context, c net.Conn) context.Context {
	if wc, ok := c.(*watchedConn); ok {
		return context.WithValue(ctx, connWatchKey{}, wc)
	}
	return ctx
}

// connState is the server's ConnState.
func (u *unreadWatch) connState(c net.Conn, s http.ConnState) {
	wc, ok := c.(*watchedConn)
	if !ok {
		return
	}
	wc.state.Store(int32(s))
	if (s == http.StateClosed || s == http.StateHijacked) && wc.pending.Load() && !u.stopping.Load() {
		u.unread()
	}
}

// served records that the handler received r.
func served(r *http.Request) {
	if wc, ok := r.Context().Value(connWatchKey{}).(*watchedConn); ok {
		wc.pending.Store(false)
	}
}
