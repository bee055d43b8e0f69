package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// raw writes req on a new connection to the gateway, then reads the answer
// (or nil when the gateway closed without one). closeWrite half-closes the
// connection after req.
func (e *env) raw(req string, closeWrite bool) (*http.Response, []byte) {
	e.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.gw, "http://"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		e.t.Fatal(err)
	}
	if closeWrite {
		_ = conn.(*net.TCPConn).CloseWrite()
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatalf("no answer: %v", err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

// downstreamBlame returns what would blame the downstream: its error
// counter, the 5xx answers counted, and the warning of a failed proxying.
func (e *env) downstreamBlame() string {
	e.t.Helper()
	five := 0
	for _, l := range e.metric("obo_gateway_requests_total{") {
		if strings.Contains(l, `code="5xx"`) {
			n, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			if err != nil {
				e.t.Fatal(err)
			}
			five += int(n)
		}
	}
	return fmt.Sprintf("downstream_errors %d, 5xx %d, warnings %d", e.counter(`obo_gateway_downstream_errors_total{route="echo"}`),
		five, strings.Count(e.logs.String(), "downstream request failed"))
}

// TestBrokenRequestBodyIsTheCallers: a request body that cannot be read is
// answered 400 and counted as bad_requests_total{reason="body"}; a caller
// that goes away mid-upload is logged as 499 and counted as
// {reason="client_closed"}; neither blames the downstream.
func TestBrokenRequestBodyIsTheCallers(t *testing.T) {
	e := start(t, options{})
	tok := e.token("body-user")
	if a := e.get("/echo/x", tok); a.status != 200 { // token B is cached from now on
		t.Fatalf("warm-up: %d %s", a.status, a.body)
	}
	head := "POST /echo/x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + tok + "\r\n"
	blame := e.downstreamBlame()
	for name, req := range map[string]string{
		"bare LF chunk":                 head + "Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n",
		"shorter than Content-Length":   head + "Content-Length: 100\r\n\r\nhello",
		"chunk longer than it says":     head + "Transfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n",
		"chunked body ends before last": head + "Transfer-Encoding: chunked\r\n\r\n5\r\nhel",
	} {
		before := e.counter(`obo_gateway_bad_requests_total{reason="body"}`)
		res, body := e.raw(req, true)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "invalid_request") {
			t.Errorf("%s: %d %s, want 400 invalid_request", name, res.StatusCode, body)
		}
		if got := e.counter(`obo_gateway_bad_requests_total{reason="body"}`) - before; got != 1 {
			t.Errorf("%s: counted %d times as reason body, want 1", name, got)
		}
	}

	// The caller resets its connection while the downstream waits for the
	// rest of the body.
	hits := e.echoHits.Load()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.gw, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, head+"Content-Length: 100000\r\n\r\n"+strings.Repeat("x", 1000)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the upload reaches the downstream", func() bool { return e.echoHits.Load() > hits })
	_ = conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
	waitUntil(t, "the caller gone counted", func() bool {
		return e.counter(`obo_gateway_bad_requests_total{reason="client_closed"}`) == 1
	})
	waitUntil(t, "the caller gone logged as 499", func() bool {
		return strings.Contains(e.logs.String(), `"status":499,`) && strings.Contains(e.logs.String(), `"reason":"client_closed"`)
	})
	if got := e.downstreamBlame(); got != blame {
		t.Errorf("the caller's broken bodies blamed the downstream: before %s, after %s", blame, got)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wsUpstream is a downstream that speaks just enough WebSocket: it answers
// an upgrade with 101, then echoes what it reads. It records the
// Authorization header of each upgrade request.
type wsUpstream struct {
	url  string
	auth chan string
}

func newWSUpstream(t *testing.T) *wsUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &wsUpstream{url: "http://" + ln.Addr().String(), auth: make(chan string, 8)}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		u.auth <- r.Header.Get("Authorization")
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = rw.Flush()
		_, _ = io.Copy(conn, rw)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return u
}

// TestUpgradesAndTrace: TRACE is answered 405 with Allow and no exchange;
// h2c is never forwarded; a WebSocket upgrade goes through, with token B,
// only on a route with websocket: true, and elsewhere reaches the
// downstream as a plain request.
func TestUpgradesAndTrace(t *testing.T) {
	ws := newWSUpstream(t)
	e := start(t, options{extraRoutes: fmt.Sprintf(`  - name: ws
    path_prefix: /ws
    upstream: %s/
    scopes: [%s]
    websocket: true
`, ws.url, echoScope)})
	tok := e.token("upgrade-user")

	exchanges, hits := e.idp.TokenRequests(), e.echoHits.Load()
	for _, path := range []string{"/echo/x", "/ws/x"} {
		a := e.do(http.MethodTrace, path, tok, nil)
		if a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") == "" || a.json(t)["error"] != "invalid_request" {
			t.Errorf("TRACE %s: %d Allow %q %s", path, a.status, a.header.Get("Allow"), a.body)
		}
	}
	if e.idp.TokenRequests() != exchanges || e.echoHits.Load() != hits {
		t.Error("TRACE caused an exchange or a downstream call")
	}
	if got := e.counter(`obo_gateway_bad_requests_total{reason="method"}`); got != 2 {
		t.Errorf("TRACE refusals counted %d, want 2", got)
	}

	for name, hdr := range map[string][]string{
		"h2c":                        {"Connection", "Upgrade, HTTP2-Settings", "Upgrade", "h2c", "HTTP2-Settings", "AAMAAABkAAQAAP__"},
		"websocket on a plain route": {"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "13"},
	} {
		a := e.get("/echo/x", tok, hdr...)
		if a.status != 200 {
			t.Errorf("%s: %d %s", name, a.status, a.body)
			continue
		}
		seen := a.echoed(t).Headers
		for _, h := range []string{"Upgrade", "Connection", "Http2-Settings"} {
			if v, ok := seen[h]; ok {
				t.Errorf("%s: the downstream saw %s: %q", name, h, v)
			}
		}
	}
	// h2c on the WebSocket route is not a WebSocket upgrade either.
	if a := e.get("/ws/x", tok, "Connection", "Upgrade", "Upgrade", "h2c"); a.status != http.StatusUpgradeRequired {
		t.Errorf("h2c on the websocket route: %d %s, want the downstream's 426 to a plain request", a.status, a.body)
	}
	select {
	case <-ws.auth:
		t.Error("h2c reached the WebSocket downstream as an upgrade")
	default:
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(e.gw, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(conn, "GET /ws/chat HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer "+tok+
		"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(res.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("websocket upgrade: %d %v", res.StatusCode, res.Header)
	}
	if auth := <-ws.auth; auth != "Bearer "+e.lastIssued().Token || strings.Contains(auth, tok) {
		t.Errorf("the upgrade request carried %.20q..., want token B", auth)
	}
	_, _ = io.WriteString(conn, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Errorf("through the upgraded connection: %q %v", line, err)
	}
}
