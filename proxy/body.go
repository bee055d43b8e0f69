package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// inboundBody is the caller's request body as the reverse proxy reads it.
// It keeps the first read error, and returns it to every later read, so
// that a request that failed because its own body could not be read (a
// malformed chunk, a body shorter than its Content-Length, a caller gone)
// is told apart from a downstream that failed.
type inboundBody struct {
	rc      io.ReadCloser
	reading sync.Mutex // held during a read of rc
	err     atomic.Pointer[bodyReadError]
}

// bodyReadError is the failure to read the caller's request body.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return "reading the request body: " + e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

// wrapBody puts an inboundBody in front of r's body, when it has one, and
// returns it (or nil).
func wrapBody(r *http.Request) *inboundBody {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	b := &inboundBody{rc: r.Body}
	r.Body = b
	return b
}

func (b *inboundBody) Read(p []byte) (int, error) {
	if e := b.err.Load(); e != nil {
		return 0, e
	}
	b.reading.Lock()
	defer b.reading.Unlock()
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		e := &bodyReadError{err: err}
		b.err.CompareAndSwap(nil, e)
		return n, e
	}
	return n, err
}

func (b *inboundBody) Close() error { return b.rc.Close() }

// failure returns the error that reading the body met, or nil; a nil
// *inboundBody has none. A read that fails cancels the request's context
// before it returns, so the proxy may see the cancellation first: failure
// waits up to settleTime for a read in flight to end.
func (b *inboundBody) failure() *bodyReadError {
	if b == nil {
		return nil
	}
	for deadline := time.Now().Add(settleTime); !b.reading.TryLock(); {
		if time.Now().After(deadline) {
			return b.err.Load()
		}
		time.Sleep(time.Millisecond)
	}
	b.reading.Unlock()
	return b.err.Load()
}

// settleTime bounds the wait of inboundBody.failure for a read in flight.
const settleTime = 100 * time.Millisecond

// callerGone reports whether a body read failed because the caller's
// connection was reset or closed under it, rather than because the body
// it sent is broken (malformed chunking, or shorter than its
// Content-Length: the caller may still read the answer).
func callerGone(e *bodyReadError) bool {
	return errors.Is(e, syscall.ECONNRESET) || errors.Is(e, syscall.EPIPE) || errors.Is(e, net.ErrClosed)
}

// answerBodyFailure answers a request whose body could not be read: 400
// when the body is broken, 499 when the caller went away. Neither is the
// downstream's fault, so neither counts as a downstream error.
func (h *Handler) answerBodyFailure(w http.ResponseWriter, st *request, e *bodyReadError) {
	if callerGone(e) {
		h.clientClosed(w, st)
		return
	}
	st.reason = "body"
	h.m.BadRequests.WithLabelValues(st.reason).Inc()
	WriteError(w, http.StatusBadRequest, "", ErrorBody{Error: "invalid_request",
		Description: "the request body could not be read: it is malformed or shorter than its Content-Length"})
}

// clientClosed records a request whose caller went away before its answer
// (logged with status 499, nobody reads it), counted as
// bad_requests_total{reason="client_closed"}.
func (h *Handler) clientClosed(w http.ResponseWriter, st *request) {
	st.reason = "client_closed"
	h.m.BadRequests.WithLabelValues(st.reason).Inc()
	w.WriteHeader(statusClientClosed)
}
