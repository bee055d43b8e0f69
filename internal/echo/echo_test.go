package echo

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestEcho(t *testing.T) {
	srv := httptest.NewServer(NewHandler())
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/a%2Fb/c?x=1&y=2", strings.NewReader("hello"))
	req.Header.Set("Authorization", "Bearer token-b")
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a Answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if a.Method != "PUT" || a.Path != "/a/b/c" || a.RawPath != "/a%2Fb/c" || a.Query != "x=1&y=2" ||
		a.Host != strings.TrimPrefix(srv.URL, "http://") || a.Body != "hello" || a.BodyBytes != 5 {
		t.Errorf("answer %+v", a)
	}
	if got := a.Headers["Authorization"]; len(got) != 1 || got[0] != "Bearer token-b" {
		t.Errorf("Authorization = %v", got)
	}
	if got := a.Headers["X-Multi"]; len(got) != 2 || got[1] != "two" {
		t.Errorf("X-Multi = %v", got)
	}
}

func TestEchoStatusAndChallenge(t *testing.T) {
	srv := httptest.NewServer(NewHandler())
	defer srv.Close()

	const challenge = `Bearer error="insufficient_claims", claims="eyJ9"`
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/me", nil)
	req.Header.Set("X-Echo-Status", "401")
	req.Header.Set("X-Echo-WWW-Authenticate", challenge)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a Answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != challenge || a.Path != "/me" {
		t.Errorf("status %d, WWW-Authenticate %q, path %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), a.Path)
	}

	req.Header.Set("X-Echo-Status", "abc")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 400 {
		t.Errorf("bad X-Echo-Status answered %d", resp2.StatusCode)
	}
}

func TestEchoStream(t *testing.T) {
	srv := httptest.NewServer(NewHandler())
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/stream", nil)
	req.Header.Set("X-Echo-Stream", "5")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var lines []string
	var first time.Duration
	for sc.Scan() {
		if lines == nil {
			first = time.Since(start)
		}
		lines = append(lines, sc.Text())
	}
	total := time.Since(start)
	if strings.Join(lines, ",") != "chunk 0,chunk 1,chunk 2,chunk 3,chunk 4" {
		t.Errorf("lines %q", lines)
	}
	// The first chunk arrives before the stream ends: it was flushed.
	if total < 40*time.Millisecond || first >= total {
		t.Errorf("first chunk after %v, stream took %v", first, total)
	}
}
