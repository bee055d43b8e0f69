package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
)

// maxRequestHead is the largest request head (request line, header
// fields and the blank line) the gateway reads on a new connection, as
// docs/security.md states: MaxHeaderBytes (64 KiB) plus the 4096 bytes
// Go's server reads beyond it.
const maxRequestHead = 64<<10 + 4096

// maxRequestHeadKeptAlive is the same for a later request on a kept-alive
// connection: the up to 4096 bytes the server reads while the connection
// is idle do not count either.
const maxRequestHeadKeptAlive = 64<<10 + 2*4096

// headAnswer sends a request whose head is exactly size bytes on conn and
// returns the status of the answer.
func headAnswer(t *testing.T, c net.Conn, br *bufio.Reader, size int) int {
	t.Helper()
	head := "GET /nowhere HTTP/1.1\r\nHost: gateway\r\nX-Pad: "
	pad := size - len(head) - len("\r\n\r\n")
	if _, err := fmt.Fprintf(c, "%s%s\r\n\r\n", head, strings.Repeat("a", pad)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestRequestHeadLimit finds the largest request head the gateway answers,
// on a new connection and after a first request on a kept-alive one; one
// byte more is 431.
func TestRequestHeadLimit(t *testing.T) {
	e := start(t, options{})
	for _, tc := range []struct {
		name string
		want int
		// first is the size of a request sent before on the same
		// connection, or 0.
		first int
	}{
		{"new connection", maxRequestHead, 0},
		{"kept-alive connection", maxRequestHeadKeptAlive, 100},
	} {
		t.Run(tc.name, func(t *testing.T) { findHeadLimit(t, e, tc.first, tc.want) })
	}
}

func findHeadLimit(t *testing.T, e *env, first, want int) {
	accepted := func(size int) bool {
		c, err := net.Dial("tcp", strings.TrimPrefix(e.gw, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if first > 0 {
			headAnswer(t, c, br, first)
		}
		return headAnswer(t, c, br, size) != http.StatusRequestHeaderFieldsTooLarge
	}
	lo, hi := 1024, 256<<10 // accepted, refused
	if !accepted(lo) || accepted(hi) {
		t.Fatalf("%d accepted %t, %d accepted %t", lo, accepted(lo), hi, accepted(hi))
	}
	for hi-lo > 1 {
		if mid := (lo + hi) / 2; accepted(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	t.Logf("largest request head answered: %d bytes", lo)
	if lo != want {
		t.Errorf("the gateway reads request heads of up to %d bytes, docs/security.md says %d", lo, want)
	}
}
