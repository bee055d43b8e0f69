package e2e

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/localidp"
	"github.com/obo-gateway/obo-gateway/proxy"
)

// cookieRoute is an extra route to the echo API that forwards cookies.
const cookieRoute = `  - name: cookies
    path_prefix: /cookies
    upstream: ${ECHO_URL}/base
    scopes: [` + echoScope + `]
    forward_cookies: true
`

func TestCookiesRemovedUnlessTheRouteForwardsThem(t *testing.T) {
	e := start(t, options{extraRoutes: cookieRoute})
	tok := e.token("cookie-user")
	tests := []struct {
		path string
		want []string
	}{
		{"/echo/x", nil},
		{"/cookies/x", []string{"session=abc; theme=dark"}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			a := e.get(tc.path, tok, "Cookie", "session=abc; theme=dark", "Cookie2", `$Version="1"`)
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			h := a.echoed(t).Headers
			if got := h["Cookie"]; strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("downstream Cookie = %q, want %q", got, tc.want)
			}
			if tc.want == nil && h["Cookie2"] != nil {
				t.Errorf("downstream Cookie2 = %q, want none", h["Cookie2"])
			}
		})
	}
}

func TestHopByHopAndConnectionListedHeadersRemoved(t *testing.T) {
	e := start(t, options{})
	tok := e.token("hop-user")
	// Each request names its own header in Connection, next to the
	// standard hop-by-hop headers.
	tests := []struct {
		name   string
		header []string
		gone   []string
	}{
		{"Connection-listed", []string{"Connection", "X-Hop-One, x-hop-two", "X-Hop-One", "1", "X-Hop-Two", "2"}, []string{"Connection", "X-Hop-One", "X-Hop-Two"}},
		{"Connection-listed identity header", []string{"Connection", "X-Custom-User", "X-Custom-User", "admin"}, []string{"X-Custom-User"}},
		{"Keep-Alive", []string{"Keep-Alive", "timeout=5"}, []string{"Keep-Alive"}},
		{"Proxy-Authorization", []string{"Proxy-Authorization", "Basic dXNlcjpwYXNz"}, []string{"Proxy-Authorization"}},
		{"Proxy-Connection", []string{"Proxy-Connection", "keep-alive"}, []string{"Proxy-Connection"}},
		{"Upgrade", []string{"Upgrade", "h2c"}, []string{"Upgrade"}},
		{"TE other than trailers", []string{"Te", "gzip"}, []string{"Te"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := e.get("/echo/x", tok, append(tc.header, "X-Kept", "yes")...)
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			h := a.echoed(t).Headers
			for _, name := range tc.gone {
				if h[http.CanonicalHeaderKey(name)] != nil {
					t.Errorf("%s reached the downstream: %q", name, h[http.CanonicalHeaderKey(name)])
				}
			}
			if h["X-Kept"] == nil {
				t.Error("an ordinary header was removed too")
			}
		})
	}
}

func TestForwardingHeadersReplacedNotTrusted(t *testing.T) {
	e := start(t, options{})
	a := e.get("/echo/x", e.token("fwd-user"),
		"X-Forwarded-For", "6.6.6.6, 10.0.0.1",
		"X-Forwarded-Host", "admin.evil.example",
		"X-Forwarded-Proto", "https",
		"X-Forwarded-Port", "443",
		"X-Forwarded-Prefix", "/admin",
		"X-Forwarded-Server", "evil",
		"Forwarded", `for=6.6.6.6;host=admin.evil.example;proto=https`,
		"X-Real-IP", "6.6.6.6",
		"X-Original-URL", "/admin/delete",
		"X-Rewrite-URL", "/admin/delete",
		// CGI-style servers read X_Forwarded_For as X-Forwarded-For.
		"X_Forwarded_For", "6.6.6.6",
		"X_Forwarded_Host", "admin.evil.example")
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	h := a.echoed(t).Headers
	want := map[string][]string{
		"X-Forwarded-For":   {"127.0.0.1"},
		"X-Forwarded-Host":  {strings.TrimPrefix(e.gw, "http://")},
		"X-Forwarded-Proto": {"http"},
	}
	for name, v := range want {
		if strings.Join(h[name], "|") != strings.Join(v, "|") {
			t.Errorf("%s = %q, want the gateway's own %q", name, h[name], v)
		}
	}
	for _, name := range []string{"Forwarded", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Real-Ip", "X-Original-Url", "X-Rewrite-Url"} {
		if h[name] != nil {
			t.Errorf("%s reached the downstream: %q", name, h[name])
		}
	}
	for name := range h {
		if strings.Contains(name, "_") {
			t.Errorf("%s reached the downstream", name)
		}
	}
}

// folded returns the values of every header of h whose name is name when
// compared as CGI-style servers do: any case, "_" for "-".
func folded(h map[string][]string, name string) []string {
	fold := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "-")) }
	var out []string
	for k, v := range h {
		if fold(k) == fold(name) {
			out = append(out, v...)
		}
	}
	return out
}

func TestIdentityHeadersStripped(t *testing.T) {
	e := start(t, options{inboundExtra: []string{"strip_headers: [X-Tenant-Override, x-acting-user]"}})
	tok := e.token("identity-user")
	names := append(proxy.IdentityHeaders(), "X-Tenant-Override", "X-Acting-User", "X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Access-Token")
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			// The caller's own token A is the worst thing to find there.
			a := e.get("/echo/x", tok, name, tok, strings.ToLower(name), "admin",
				strings.ReplaceAll(name, "-", "_"), "admin", "X-Kept", "yes")
			if a.status != http.StatusOK {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
			h := a.echoed(t).Headers
			if v := folded(h, name); v != nil {
				t.Errorf("%s (in some spelling) reached the downstream (%d values)", name, len(v))
			}
			if h["X-Kept"] == nil {
				t.Error("an ordinary header was removed too")
			}
		})
	}
}

func TestTooManyHeadersRefusedBeforeAnyExchange(t *testing.T) {
	e := start(t, options{})
	tok := e.token("many-headers")
	// Authorization, User-Agent and Accept-Encoding come with every request.
	const sent = 3
	tests := []struct {
		name   string
		fields int
		split  bool // the extra fields are values of one name
		value  int  // length of each value; 0 means 1
		status int
		server bool // refused by the HTTP server (64 KiB of headers), without the JSON body
	}{
		{name: "at the limit", fields: proxy.DefaultMaxRequestHeaders, status: http.StatusOK},
		{name: "one over", fields: proxy.DefaultMaxRequestHeaders + 1, status: http.StatusRequestHeaderFieldsTooLarge},
		{name: "one over, repeated name", fields: proxy.DefaultMaxRequestHeaders + 1, split: true, status: http.StatusRequestHeaderFieldsTooLarge},
		{name: "far over", fields: 500, status: http.StatusRequestHeaderFieldsTooLarge},
		{name: "few but over 64 KiB", fields: sent + 2, value: 40 << 10, status: http.StatusRequestHeaderFieldsTooLarge, server: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			for i := range tc.fields - sent {
				name := fmt.Sprintf("X-H%d", i)
				if tc.split {
					name = "X-Repeated"
				}
				hdr = append(hdr, name, strings.Repeat("v", max(tc.value, 1)))
			}
			exchanges, hits := e.idp.TokenRequests(), e.echoHits.Load()
			before := e.metric(`obo_gateway_bad_requests_total{reason="too_many_headers"}`)
			a := e.get("/echo/x", tok, hdr...)
			if a.status != tc.status {
				t.Fatalf("%d header fields: status %d, want %d: %s", tc.fields, a.status, tc.status, a.body)
			}
			if tc.status == http.StatusOK {
				return
			}
			if e.idp.TokenRequests() != exchanges || e.echoHits.Load() != hits {
				t.Error("a refused request caused an exchange or a downstream call")
			}
			if tc.server {
				return
			}
			if body := a.json(t); body["error"] != "invalid_request" || a.header.Get("Cache-Control") != "no-store" {
				t.Errorf("431 answer: %q %v", a.header.Get("Cache-Control"), body)
			}
			after := e.metric(`obo_gateway_bad_requests_total{reason="too_many_headers"}`)
			if counterValue(t, after)-counterValue(t, before) != 1 {
				t.Errorf("bad_requests{too_many_headers}: %v then %v, want one more", before, after)
			}
		})
	}
}

// counterValue reads the value of a one-line metric, 0 when absent.
func counterValue(t *testing.T, lines []string) float64 {
	t.Helper()
	if len(lines) == 0 {
		return 0
	}
	var v float64
	if _, err := fmt.Sscanf(lines[0][strings.LastIndexByte(lines[0], ' ')+1:], "%g", &v); err != nil {
		t.Fatalf("metric %q: %v", lines[0], err)
	}
	return v
}

// pattern is an endless deterministic byte stream.
type pattern struct{ n int }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(p.n*7 + p.n/4096)
		p.n++
	}
	return len(b), nil
}

// sink is a downstream API that reads the request body as it arrives,
// without keeping it, and answers with its length and SHA-256. It reports
// on firstMB when the first MiB has arrived.
type sink struct {
	firstMB chan struct{}
	once    sync.Once
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := r.Body.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if n >= 1<<20 {
			s.once.Do(func() { close(s.firstMB) })
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"bytes": n, "sha256": hex.EncodeToString(h.Sum(nil)), "authorization": r.Header.Get("Authorization") != ""})
}

// TestLargeUploadIsStreamed sends 10 MiB through the gateway. The sink
// receives the first MiB before the client sends the rest, which a buffered
// body could not do, and the process allocates far less than the body
// (nothing in the path — client, gateway, sink — keeps it). With CAE on,
// only the bounded replay buffer is kept.
func TestLargeUploadIsStreamed(t *testing.T) {
	const size = 10 << 20
	tests := []struct {
		name    string
		cae     bool
		chunked bool
	}{
		{"content length", false, false},
		{"chunked", false, true},
		{"CAE on, content length", true, false},
		{"CAE on, chunked (replay buffer filled, then streamed)", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sk := &sink{firstMB: make(chan struct{})}
			sinkSrv := httptest.NewServer(sk)
			defer sinkSrv.Close()
			e := start(t, options{cae: tc.cae, env: map[string]string{"SINK_URL": sinkSrv.URL}, extraRoutes: `  - name: upload
    path_prefix: /upload
    upstream: ${SINK_URL}/in
    scopes: [` + echoScope + `]
`})
			tok := e.token("uploader")
			// Token B cached, connections open; an empty body does not
			// count towards the first MiB.
			if a := e.get("/upload/warm", tok); a.status != http.StatusOK {
				t.Fatalf("warm-up: %d %s", a.status, a.body)
			}

			want := sha256.New()
			pr, pw := io.Pipe()
			writeErr := make(chan error, 1)
			go func() { writeErr <- writeUpload(pw, want, size, sk.firstMB) }()
			req, err := http.NewRequest(http.MethodPut, e.gw+"/upload/file", pr)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/octet-stream")
			if !tc.chunked {
				req.ContentLength = size
			}

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			runtime.ReadMemStats(&after)
			if err := <-writeErr; err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			var got struct {
				Bytes         int64  `json:"bytes"`
				SHA256        string `json:"sha256"`
				Authorization bool   `json:"authorization"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("sink answer %q: %v", body, err)
			}
			if got.Bytes != size || got.SHA256 != hex.EncodeToString(want.Sum(nil)) || !got.Authorization {
				t.Errorf("sink received %d bytes, sha256 %s, token %v; want %d bytes, sha256 %x", got.Bytes, got.SHA256, got.Authorization, size, want.Sum(nil))
			}
			allocated := after.TotalAlloc - before.TotalAlloc
			grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			t.Logf("10 MiB upload: %.2f MiB allocated in the process during the request, heap %+.2f MiB", float64(allocated)/(1<<20), float64(grown)/(1<<20))
			// Generous: a buffered body alone would allocate 10 MiB or more.
			if allocated > size/2 {
				t.Errorf("the process allocated %.1f MiB during a 10 MiB upload: the body was buffered", float64(allocated)/(1<<20))
			}
		})
	}
}

// writeUpload writes size bytes of a pattern to w (and to sum): the first
// MiB, then, once the downstream has received it, the rest.
func writeUpload(w *io.PipeWriter, sum hash.Hash, size int64, firstMB <-chan struct{}) error {
	src := io.TeeReader(io.LimitReader(&pattern{}, size), sum)
	if _, err := io.CopyN(w, src, 1<<20); err != nil {
		w.CloseWithError(err)
		return err
	}
	select {
	case <-firstMB:
	case <-time.After(15 * time.Second):
		err := errors.New("the downstream did not receive the first MiB before the rest was sent: the body is not streamed")
		w.CloseWithError(err)
		return err
	}
	_, err := io.Copy(w, src)
	w.CloseWithError(err)
	return err
}

// TestGatewayAnswersAreNotCacheable: every answer the gateway writes itself
// carries Cache-Control: no-store and a JSON error body.
func TestGatewayAnswersAreNotCacheable(t *testing.T) {
	e := start(t, options{authorityTimeout: "1s"})
	e.idp.SetUserBehavior("mfa-nc", localidp.Behavior{Kind: localidp.BehaviorMFA})
	tests := []struct {
		name   string
		do     func() answer
		status int
	}{
		{"400 bad path", func() answer { return e.get("/echo/a%5c..%5cb", e.token("u")) }, http.StatusBadRequest},
		{"401 no token", func() answer { return e.get("/echo/x", "") }, http.StatusUnauthorized},
		{"401 invalid token", func() answer { return e.get("/echo/x", "not-a-jwt") }, http.StatusUnauthorized},
		{"401 claims challenge", func() answer { return e.get("/echo/x", e.token("mfa-nc")) }, http.StatusUnauthorized},
		{"403 missing scope", func() answer {
			return e.get("/echo/x", e.token("u", func(u *localidp.UserToken) { u.Scopes = []string{"other"} }))
		}, http.StatusForbidden},
		{"404 no route", func() answer { return e.get("/nowhere", e.token("u")) }, http.StatusNotFound},
		{"502 downstream unreachable", func() answer { return e.get("/dead/x", e.token("u")) }, http.StatusBadGateway},
		{"503 authority unavailable", func() answer {
			e.idp.SetHang(true)
			defer e.idp.SetHang(false)
			return e.get("/echo/x", e.token("cold-nc"))
		}, http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.do()
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if cc := a.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
			if ct := a.header.Get("Content-Type"); ct != "application/json" || a.json(t)["error"] == nil {
				t.Errorf("Content-Type %q, body %s: want a JSON error", ct, a.body)
			}
		})
	}
	t.Run("503 before the authority is loaded", func(t *testing.T) {
		early := start(t, options{authorityURL: "http://127.0.0.1:1/tenant/v2.0", noWait: true})
		a := early.get("/echo/x", early.token("early"))
		if a.status != http.StatusServiceUnavailable || a.header.Get("Cache-Control") != "no-store" {
			t.Errorf("status %d, Cache-Control %q", a.status, a.header.Get("Cache-Control"))
		}
	})
}

// TestRequestsTheHTTPServerRefusesAreCounted sends, each on a connection of
// its own, requests that Go's HTTP server answers or drops before the
// gateway's handler sees them, and requests that reach the handler.
func TestRequestsTheHTTPServerRefusesAreCounted(t *testing.T) {
	e := start(t, options{})
	const series = `obo_gateway_bad_requests_total{reason="unreadable"}`
	addr := strings.TrimPrefix(e.gw, "http://")
	tests := []struct {
		name    string
		send    string
		status  int  // the answer's status; 0 = none
		counted bool // as unreadable
	}{
		{"malformed request line", "GARBAGE\r\n\r\n", http.StatusBadRequest, true},
		{"invalid header field name", "GET /echo/x HTTP/1.1\r\nHost: gw\r\nBad Name: x\r\n\r\n", http.StatusBadRequest, true},
		{"no Host", "GET /echo/x HTTP/1.1\r\n\r\n", http.StatusBadRequest, true},
		// Over 64 KiB and the server's slack: it reads 4 KiB more, and on a
		// kept-alive connection up to 4 KiB it had buffered besides.
		{"headers over 64 KiB", "GET /echo/x HTTP/1.1\r\nHost: gw\r\nX-Big: " + strings.Repeat("v", 80<<10) + "\r\n\r\n",
			http.StatusRequestHeaderFieldsTooLarge, true},
		{"unknown transfer encoding", "POST /echo/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip\r\n\r\n", http.StatusNotImplemented, true},
		{"unsupported expectation", "GET /echo/x HTTP/1.1\r\nHost: gw\r\nExpect: 200-ok\r\n\r\n", http.StatusExpectationFailed, true},
		{"protocol version 3.0", "GET /echo/x HTTP/3.0\r\nHost: gw\r\n\r\n", http.StatusHTTPVersionNotSupported, true},
		{"part of a request, then gone", "GET /echo/x HTTP/1.1\r\nHost: gw\r\n", 0, true},
		{"nothing sent", "", 0, false},
		{"whole request, Connection: close", "GET /nowhere HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n", http.StatusNotFound, false},
		{"whole request, then gone", "GET /nowhere HTTP/1.1\r\nHost: gw\r\n\r\n", http.StatusNotFound, false},
		// The server hands HTTP/2's preface to the handler when HTTP/2
		// without TLS is off: no route matches it.
		{"HTTP/2 without TLS", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", http.StatusNotFound, false},
	}
	// exchange sends one request on a connection of its own, reads the
	// answer and closes the connection; after a served request on the same
	// connection when afterOne is set.
	exchange := func(t *testing.T, send string, status int, afterOne bool) {
		t.Helper()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		if afterOne {
			if _, err := io.WriteString(c, "GET /nowhere HTTP/1.1\r\nHost: gw\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("reading the first answer: %v", err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusNotFound {
				t.Fatalf("first request: status %d, want 404", res.StatusCode)
			}
		}
		if _, err := io.WriteString(c, send); err != nil {
			t.Fatal(err)
		}
		if status == 0 {
			return
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		res.Body.Close()
		if res.StatusCode != status {
			t.Fatalf("status %d, want %d", res.StatusCode, status)
		}
	}
	// waitFor polls the counter until it reaches want.
	waitFor := func(t *testing.T, want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for e.counter(series) < want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := e.counter(series); got != want {
			t.Fatalf("%s = %d, want %d", series, got, want)
		}
	}
	start, steps := e.counter(series), 0
	for _, tc := range tests {
		for _, afterOne := range []bool{false, true} {
			name := tc.name
			if afterOne {
				name += ", after a served request"
			}
			steps++
			t.Run(name, func(t *testing.T) {
				before := e.counter(series)
				lines := strings.Count(e.logs.String(), `"reason":"unreadable"`)
				exchange(t, tc.send, tc.status, afterOne)
				if tc.counted {
					waitFor(t, before+1)
					if got := strings.Count(e.logs.String(), `"reason":"unreadable"`); got != lines+1 {
						t.Errorf("%d more log lines with reason unreadable, want 1", got-lines)
					}
					return
				}
				// A request counted for sure, on a connection opened after
				// this one was closed, then nothing more.
				exchange(t, "GARBAGE\r\n\r\n", http.StatusBadRequest, false)
				waitFor(t, before+1)
			})
		}
	}
	// Every step counted one: a request that must not count, counted
	// late, shows here.
	time.Sleep(100 * time.Millisecond)
	if got := e.counter(series); got != start+steps {
		t.Errorf("%s = %d after %d steps, want %d", series, got, steps, start+steps)
	}
}
