package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestOptionsAsteriskIsTheGatewaysAnswer: OPTIONS * (which Go's server
// would answer itself, 200 without the gateway's headers) gets the
// gateway's 404 JSON answer with Cache-Control: no-store, and is counted.
func TestOptionsAsteriskIsTheGatewaysAnswer(t *testing.T) {
	e := start(t, options{})
	before := e.counter(`obo_gateway_bad_requests_total{reason="no_route"}`)
	c, err := net.Dial("tcp", strings.TrimPrefix(e.gw, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "OPTIONS * HTTP/1.1\r\nHost: gateway\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Error string `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != http.StatusNotFound ||
		body.Error != "not_found" || res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("OPTIONS *: %d %v, error %q (%v); want 404 not_found with Cache-Control: no-store", res.StatusCode, res.Header, body.Error, err)
	}
	if n := e.counter(`obo_gateway_bad_requests_total{reason="no_route"}`) - before; n != 1 {
		t.Errorf("bad_requests_total{reason=\"no_route\"} grew by %d, want 1", n)
	}
}
