package e2e

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// jwksFetches reads obo_gateway_jwks_refreshes_total{outcome="success"}.
func (e *env) jwksFetches() int {
	e.t.Helper()
	l := e.metric(`obo_gateway_jwks_refreshes_total{outcome="success"}`)
	if len(l) != 1 {
		return 0
	}
	n, err := strconv.Atoi(l[0][strings.LastIndexByte(l[0], ' ')+1:])
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestKeyRolloverFailsNoRequest(t *testing.T) {
	e := start(t, options{})
	oldTok := e.token("roll-1")
	if a := e.get("/echo/x", oldTok); a.status != 200 {
		t.Fatalf("before rollover: %d", a.status)
	}
	before := e.jwksFetches()
	if _, err := e.idp.RotateKey(); err != nil {
		t.Fatal(err)
	}
	// A token signed with the new key, which the gateway has not fetched yet.
	newTok := e.token("roll-2")
	if a := e.get("/echo/x", newTok); a.status != 200 {
		t.Errorf("token signed with the new key: %d %s", a.status, a.body)
	}
	if a := e.get("/echo/x", oldTok); a.status != 200 {
		t.Errorf("token signed with the old, still published key: %d", a.status)
	}
	if got := e.jwksFetches() - before; got != 1 {
		t.Errorf("rollover caused %d key set fetches, want 1", got)
	}
}

func TestUnknownKeyIDsCannotAmplifyFetches(t *testing.T) {
	e := start(t, options{})
	before := e.jwksFetches()
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	payload := b64(fmt.Sprintf(`{"iss":%q,"aud":%q,"oid":"u","tid":"t","scp":"access_as_user","exp":%d}`,
		e.idp.Issuer(), apiURI, time.Now().Add(time.Hour).Unix()))
	for i := range 50 {
		tok := b64(fmt.Sprintf(`{"alg":"RS256","kid":"attacker-%d"}`, i)) + "." + payload + ".c2ln"
		if a := e.get("/echo/x", tok); a.status != http.StatusUnauthorized {
			t.Fatalf("random kid %d: %d", i, a.status)
		}
	}
	if got := e.jwksFetches() - before; got > 1 {
		t.Errorf("50 unknown kids caused %d key set fetches, want at most 1", got)
	}
	if e.idp.TokenRequests() != 0 {
		t.Error("a token with an unknown kid was exchanged")
	}
}

func TestSecretFile(t *testing.T) {
	e := start(t, options{secretFile: true})
	if a := e.get("/echo/x", e.token("file-user")); a.status != 200 {
		t.Errorf("with secret_file: %d %s", a.status, a.body)
	}
}

func TestNotReadyUntilAuthorityLoads(t *testing.T) {
	e := start(t, options{authorityURL: "http://127.0.0.1:1/tenant/v2.0", noWait: true})
	time.Sleep(200 * time.Millisecond)
	res, err := http.Get(e.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d while the authority is unreachable, want 503", res.StatusCode)
	}
	res, err = http.Get(e.admin + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("/healthz = %d, want 200 (the process is alive)", res.StatusCode)
	}
	a := e.get("/echo/x", e.token("early"))
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || a.json(t)["error"] != "temporarily_unavailable" {
		t.Errorf("request before the authority loaded: %d %q %s", a.status, a.header.Get("Retry-After"), a.body)
	}
	if l := e.metric(`obo_gateway_bad_requests_total{reason="starting"}`); len(l) != 1 || !strings.HasSuffix(l[0], " 1") {
		t.Errorf("the refusal while starting is not counted: %v", l)
	}
	if !strings.Contains(e.logs.String(), `"reason":"starting"`) {
		t.Error("the refusal while starting is not logged")
	}
}

// unknownKidToken returns a token A whose kid the authority never
// published, which makes the gateway refetch the key set.
func (e *env) unknownKidToken() string {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	return b64(`{"alg":"RS256","kid":"never-published"}`) + "." + b64(fmt.Sprintf(
		`{"iss":%q,"aud":%q,"oid":"u","tid":%q,"scp":"access_as_user","exp":%d}`,
		e.idp.Issuer(), apiURI, e.idp.TenantID(), time.Now().Add(time.Hour).Unix())) + ".c2ln"
}

func TestEmptyKeySetKeepsTheLastGoodOne(t *testing.T) {
	e := start(t, options{})
	warm := e.token("empty-1")
	if a := e.get("/echo/x", warm); a.status != 200 {
		t.Fatalf("before: %d %s", a.status, a.body)
	}
	// The authority publishes {"keys":[]}; an unknown kid makes the gateway look.
	e.idp.RemoveKey(e.idp.SigningKeyID())
	failures := e.counter(`obo_gateway_jwks_refreshes_total{outcome="failure"}`)
	if a := e.get("/echo/x", e.unknownKidToken()); a.status != http.StatusUnauthorized {
		t.Fatalf("unknown kid: %d", a.status)
	}
	if got := e.counter(`obo_gateway_jwks_refreshes_total{outcome="failure"}`) - failures; got != 1 {
		t.Errorf("the empty key set counted %d failed fetches, want 1", got)
	}
	if got := e.counter("obo_gateway_jwks_keys"); got != 1 {
		t.Errorf("obo_gateway_jwks_keys = %d after an empty set, want the last good set's 1", got)
	}
	if !strings.Contains(e.logs.String(), "key set fetch failed") {
		t.Error("the refused key set is not logged")
	}
	if a := e.get("/echo/x", warm); a.status != 200 {
		t.Errorf("warm token after the empty set: %d %s", a.status, a.body)
	}
}

func TestKeySetWithdrawingSomeKeysRevokesThem(t *testing.T) {
	e := start(t, options{})
	oldKID := e.idp.SigningKeyID()
	old := e.token("withdraw-1")
	if a := e.get("/echo/x", old); a.status != 200 {
		t.Fatalf("before: %d %s", a.status, a.body)
	}
	if _, err := e.idp.RotateKey(); err != nil {
		t.Fatal(err)
	}
	e.idp.RemoveKey(oldKID)
	// Signed with the new key, which makes the gateway fetch {new}.
	if a := e.get("/echo/x", e.token("withdraw-2")); a.status != 200 {
		t.Fatalf("token signed with the new key: %d %s", a.status, a.body)
	}
	if a := e.get("/echo/x", old); a.status != http.StatusUnauthorized {
		t.Errorf("warm token signed with the withdrawn key: %d, want 401", a.status)
	}
}
