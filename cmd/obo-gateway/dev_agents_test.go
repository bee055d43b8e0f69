package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/obo-gateway/obo-gateway/internal/echo"
)

// curlLine is one printed "curl -s [-H "K: V"]... URL" command.
var (
	curlHeader = regexp.MustCompile(`-H "([^:"]+): ([^"]+)"`)
	curlURL    = regexp.MustCompile(`"?(http://[^"\s]+)"?$`)
)

// run performs a printed curl command.
func runCurl(t *testing.T, line string) []byte {
	t.Helper()
	m := curlURL.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no URL in %q", line)
	}
	req, _ := http.NewRequest(http.MethodGet, m[1], nil)
	for _, h := range curlHeader.FindAllStringSubmatch(line, -1) {
		req.Header.Set(h[1], h[2])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", line, res.StatusCode, b)
	}
	return b
}

// checkAgentCalls runs the agent calls dev printed: an autonomous agent's
// and an agent user's call through the gateway, and the token API's
// authorization header, each with the token localidp issued for that leg.
func (s *devSession) checkAgentCalls(t *testing.T) {
	t.Helper()
	if len(s.agentCalls) != 3 {
		t.Fatalf("dev printed %d agent calls, want 3: %q", len(s.agentCalls), s.agentCalls)
	}
	claims := func(line string) map[string]any {
		var a echo.Answer
		if err := json.Unmarshal(runCurl(t, line), &a); err != nil || a.Token == nil {
			t.Fatalf("%s: %v", line, err)
		}
		return a.Token.Claims
	}
	if c := claims(s.agentCalls[0]); c["azp"] != devAgent || c["idtyp"] != "app" {
		t.Errorf("autonomous agent call: token B %v, want an app token of %s", c, devAgent)
	}
	if c := claims(s.agentCalls[1]); c["azp"] != devAgent || c["oid"] != devAgentUser {
		t.Errorf("agent user call: token B %v, want the agent user %s", c, devAgentUser)
	}
	var v struct {
		AuthorizationHeader string `json:"authorizationHeader"`
	}
	if err := json.Unmarshal(runCurl(t, s.agentCalls[2]), &v); err != nil || !strings.HasPrefix(v.AuthorizationHeader, "Bearer ") {
		t.Fatalf("token API answered %+v (%v)", v, err)
	}
	parts := strings.Split(strings.TrimPrefix(v.AuthorizationHeader, "Bearer "), ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil || c["azp"] != devAgent {
		t.Errorf("token API token %s, want azp %s", payload, devAgent)
	}
}
