package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The gateway listener drains without losing a request a client has
// already sent: the listener stops accepting only after the connections
// already in its accept queue are taken and served; then answers carry
// Connection: close, so that clients stop reusing their connections (a new
// one is refused); and a connection is closed under its client only once it
// has been idle for idleGrace. Only then does http.Server.Shutdown run,
// which drops any request it reads. Keep-alive stays on until the listener
// is closed: connections opened to replace closed ones would race the
// close.
const (
	// idleGrace is how long a kept-alive connection must have been idle,
	// with no request arriving, before the drain closes it without telling
	// its client: one just taken from a pool has its request sent by then.
	idleGrace = time.Second
	// quiescePoll is how often the connections are looked at while
	// waiting for them to quiesce.
	quiescePoll = 5 * time.Millisecond
)

// errStoppedAccepting is what the drained listener's Accept returns once
// its accept queue is served and it is closed.
var errStoppedAccepting = fmt.Errorf("app: the gateway listener stopped accepting: %w", net.ErrClosed)

// drainListener is the gateway listener (a watchedListener over tcp). Its
// stopAccepting closes it without resetting a connection the kernel has
// already accepted into its queue.
type drainListener struct {
	net.Listener
	tcp *net.TCPListener

	mu sync.Mutex
	// plugAddr is the local address of the listener's own connection
	// that marks the end of the accept queue, known before it connects.
	plugAddr string
	// plug is the client end of that connection, closed with the
	// listener.
	plug net.Conn
	// stopping is closed by stopAccepting.
	stopping chan struct{}
	stopOnce sync.Once
}

func newDrainListener(ln net.Listener, tcp *net.TCPListener) *drainListener {
	return &drainListener{Listener: ln, tcp: tcp, stopping: make(chan struct{})}
}

// Accept returns the next connection. Once stopAccepting was called it
// returns the connections queued before the plug, then closes the
// listener and returns errStoppedAccepting.
func (l *drainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	select {
	case <-l.stopping:
	default:
		return c, err
	}
	if err != nil {
		// The plug did not come in time, or the listener failed.
		_ = l.Listener.Close()
		return nil, errStoppedAccepting
	}
	l.mu.Lock()
	plug := l.plugAddr
	l.mu.Unlock()
	if plug == "" || c.RemoteAddr().String() != plug {
		return c, nil
	}
	_ = c.Close()
	_ = l.Close()
	return nil, errStoppedAccepting
}

// stopAccepting makes the accept queue hold one connection at most, then
// dials the listener: once that connection (the plug) is queued, the
// kernel drops new connection attempts (the client retries its SYN and is
// refused once the listener is closed) instead of queueing connections
// that the close would reset. Accept serves what is queued before the plug
// and closes the listener when it takes the plug, or at deadline.
func (l *drainListener) stopAccepting(deadline time.Time) error {
	var err error
	l.stopOnce.Do(func() {
		_ = l.tcp.SetDeadline(deadline)
		close(l.stopping)
		if err = shrinkBacklog(l.tcp); err != nil {
			_ = l.Listener.Close() // what is queued is reset
			return
		}
		var plug net.Conn
		plug, err = dialPlug(dialable(l.tcp.Addr()), deadline, func(local string) {
			l.mu.Lock()
			l.plugAddr = local
			l.mu.Unlock()
		})
		if err != nil {
			_ = l.Listener.Close()
			return
		}
		l.mu.Lock()
		l.plug = plug
		l.mu.Unlock()
	})
	return err
}

// Close closes the listener and the plug's own end.
func (l *drainListener) Close() error {
	l.mu.Lock()
	if l.plug != nil {
		_ = l.plug.Close()
	}
	l.mu.Unlock()
	return l.Listener.Close()
}

// dialable returns addr with an unspecified IP replaced by the loopback
// address of its family.
func dialable(addr net.Addr) string {
	ta, ok := addr.(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return addr.String()
	}
	ip := net.IPv6loopback
	if ta.IP.To4() != nil {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return (&net.TCPAddr{IP: ip, Port: ta.Port}).String()
}

// connTracker follows the gateway listener's connections for the drain.
type connTracker struct {
	// closing is set once the listener stopped accepting: answers close
	// their connections.
	closing atomic.Bool

	mu    sync.Mutex
	conns map[*watchedConn]*connRecord
}

// connRecord is what the drain knows of one connection.
type connRecord struct {
	state http.ConnState
	// since is when the connection last became new or idle.
	since time.Time
	// told is set when the answer to its current request carries
	// Connection: close.
	told bool
}

func newConnTracker() *connTracker {
	return &connTracker{conns: make(map[*watchedConn]*connRecord)}
}

// connState records the server's state of c.
func (t *connTracker) connState(c net.Conn, s http.ConnState) {
	wc, ok := c.(*watchedConn)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch s {
	case http.StateClosed, http.StateHijacked:
		delete(t.conns, wc)
	case http.StateActive:
		if rec := t.conns[wc]; rec != nil {
			rec.state, rec.told = s, false
		}
	default:
		t.conns[wc] = &connRecord{state: s, since: time.Now()}
	}
}

// closeAfter makes the answer to r close its connection once closing is
// set, and records that its client was told.
func (t *connTracker) closeAfter(w http.ResponseWriter, r *http.Request) {
	if !t.closing.Load() {
		return
	}
	w.Header().Set("Connection", "close")
	wc, ok := r.Context().Value(connWatchKey{}).(*watchedConn)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if rec := t.conns[wc]; rec != nil {
		rec.told = true
	}
}

// quiesce waits until no connection can carry a request the server would
// read and then drop: every connection left is answering a request with
// Connection: close. Connections idle (or new) for idleGrace, with no
// request arriving, are closed. It returns early with ctx's error.
func (t *connTracker) quiesce(ctx context.Context) error {
	tick := time.NewTicker(quiescePoll)
	defer tick.Stop()
	for {
		if t.closeQuietIdle() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// closeQuietIdle closes the connections idle for idleGrace and reports
// whether only told ones are left.
func (t *connTracker) closeQuietIdle() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	done := true
	now := time.Now()
	for wc, rec := range t.conns {
		switch {
		case rec.state == http.StateActive && rec.told:
		case rec.state == http.StateActive || wc.pending.Load():
			done = false
		case now.Sub(rec.since) >= idleGrace:
			_ = wc.Close()
			delete(t.conns, wc)
		default:
			done = false
		}
	}
	return done
}

// isStoppedAccepting reports whether err is the drained listener's end.
func isStoppedAccepting(err error) bool { return errors.Is(err, errStoppedAccepting) }
