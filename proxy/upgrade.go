package proxy

import (
	"net/http"
	"strings"
)

// allowedMethods is the Allow header of the answer to TRACE: the methods
// the gateway forwards (any other but TRACE is forwarded too).
const allowedMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

// refuseTrace answers a TRACE request with 405 and reports whether it did:
// a downstream that reflects TRACE would hand token B to the caller.
func (h *Handler) refuseTrace(st *request, r *http.Request) bool {
	if r.Method != http.MethodTrace {
		return false
	}
	st.w.Header().Set("Allow", allowedMethods)
	h.badRequest(st, "method", http.StatusMethodNotAllowed, "invalid_request",
		"TRACE is not forwarded; allowed: "+allowedMethods)
	return true
}

// dropUpgrade removes a protocol upgrade from out, the outbound header,
// unless it is a WebSocket upgrade and the route allows them (websocket).
// The reverse proxy has already removed every hop-by-hop header, then put
// back "Connection: Upgrade" and the Upgrade header when the caller asked
// for an upgrade; removing both sends the request as a plain HTTP/1.1
// request, as a server that ignores Upgrade would (RFC 9110 7.8). h2c is
// never forwarded, nor its HTTP2-Settings.
func dropUpgrade(out http.Header, websocket bool) {
	out.Del("Http2-Settings")
	up := out.Get("Upgrade")
	if up == "" || websocket && strings.EqualFold(up, "websocket") {
		return
	}
	out.Del("Upgrade")
	out.Del("Connection")
}
