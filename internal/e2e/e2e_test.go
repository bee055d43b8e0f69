package e2e

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

func TestDownstreamReceivesTokenBNeverTokenA(t *testing.T) {
	e := start(t, options{})
	tokA := e.token("user-1")
	a := e.do(http.MethodPost, "/echo/items/42?x=1&y=%20z", tokA, strings.NewReader(`{"hello":"world"}`),
		"Content-Type", "application/json", "X-Custom", "kept", "Connection", "close, X-Hop", "X-Hop", "dropped",
		"X-Forwarded-For", "6.6.6.6")
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	ec := a.echoed(t)
	if ec.Method != http.MethodPost || ec.Path != "/base/items/42" || ec.Query != "x=1&y=%20z" || ec.Body != `{"hello":"world"}` {
		t.Errorf("request not preserved: %+v", ec)
	}
	issued := e.idp.IssuedTokens()
	if len(issued) != 1 {
		t.Fatalf("authority issued %d tokens, want 1", len(issued))
	}
	if got := ec.Headers["Authorization"]; len(got) != 1 || got[0] != "Bearer "+issued[0].Token {
		t.Errorf("downstream Authorization = %q, want token B", got)
	}
	if c := jwtClaims(t, issued[0].Token); c["aud"] != "api://echo-api" || c["oid"] != "user-1" {
		t.Errorf("token B claims = %v", c)
	}
	if strings.Contains(string(a.body), tokA) {
		t.Error("token A reached the downstream API")
	}
	if ec.Headers["X-Custom"] == nil || ec.Headers["X-Hop"] != nil {
		t.Errorf("headers: custom %v, hop-by-hop %v", ec.Headers["X-Custom"], ec.Headers["X-Hop"])
	}
	if xff := ec.Headers["X-Forwarded-For"]; len(xff) != 1 || xff[0] != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %v, want the gateway's own peer only", xff)
	}
	if xfh := ec.Headers["X-Forwarded-Host"]; len(xfh) != 1 || xfh[0] != strings.TrimPrefix(e.gw, "http://") {
		t.Errorf("X-Forwarded-Host = %v", xfh)
	}

	// The query goes downstream byte for byte, parameters net/url cannot
	// parse (a semicolon) included: the gateway routes on the path alone,
	// so it has no reading of the query that could differ from the
	// downstream's, and dropping parameters would change what the API asked.
	a = e.do(http.MethodGet, "/echo/items?$filter=a;b&x=1", tokA, nil)
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	if q := a.echoed(t).Query; q != "$filter=a;b&x=1" {
		t.Errorf("downstream query = %q, want %q unchanged", q, "$filter=a;b&x=1")
	}
}

func TestOneExchangePerUser(t *testing.T) {
	e := start(t, options{})
	tok := e.token("user-20")
	for i := range 20 {
		if a := e.get("/echo/x", tok); a.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, a.status, a.body)
		}
	}
	if n := e.idp.OnBehalfOfRequestsFor("user-20"); n != 1 {
		t.Errorf("20 requests caused %d exchanges, want 1", n)
	}
	// A new token A of the same user reuses the cached token B.
	if a := e.get("/echo/x", e.token("user-20")); a.status != http.StatusOK {
		t.Fatal(a.status)
	}
	if n := e.idp.OnBehalfOfRequestsFor("user-20"); n != 1 {
		t.Errorf("a second token A of the same user caused %d exchanges, want 1", n)
	}
	hits := e.metric(`obo_gateway_cache_lookups_total{result="hit",route="echo"}`)
	if len(hits) != 1 || !strings.HasSuffix(hits[0], " 20") {
		t.Errorf("cache hit metric = %v, want 20", hits)
	}
}

func TestConcurrentFirstRequestsCauseOneExchange(t *testing.T) {
	e := start(t, options{})
	e.idp.SetLatency(100 * time.Millisecond) // keep the flight open while the others arrive
	tok := e.token("user-50")
	var wg sync.WaitGroup
	statuses := make(chan int, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- e.get("/echo/x", tok).status
		}()
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Errorf("status %d", s)
		}
	}
	if n := e.idp.OnBehalfOfRequestsFor("user-50"); n != 1 {
		t.Errorf("50 concurrent first requests caused %d exchanges, want 1", n)
	}
}

func TestUsersNeverShareTokenB(t *testing.T) {
	e := start(t, options{})
	users := []string{"alice", "bob", "carol", "dave"}
	tokens := map[string]string{}
	for _, u := range users {
		tokens[u] = e.token(u)
	}
	var wg sync.WaitGroup
	for round := range 10 {
		for _, u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := e.get(fmt.Sprintf("/echo/r%d", round), tokens[u])
				if a.status != http.StatusOK {
					t.Errorf("%s: %d", u, a.status)
					return
				}
				authz := a.echoed(t).Headers["Authorization"][0]
				if got := jwtClaims(t, strings.TrimPrefix(authz, "Bearer "))["oid"]; got != u {
					t.Errorf("user %s received token B of %v", u, got)
				}
			}()
		}
	}
	wg.Wait()
	for _, u := range users {
		if n := e.idp.OnBehalfOfRequestsFor(u); n != 1 {
			t.Errorf("%s: %d exchanges", u, n)
		}
	}
}

func TestInvalidTokensAreRefusedWithoutExchange(t *testing.T) {
	e := start(t, options{})
	now := time.Now()
	foreign, err := localidp.New(localidp.Options{
		TenantID: e.idp.TenantID(),
		Clients:  []localidp.Client{{ID: clientID, Secret: "x", IdentifierURI: apiURI}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()
	foreignTok, err := foreign.IssueToken(localidp.UserToken{ObjectID: "u", Audience: apiURI, Scopes: []string{"access_as_user"}, Issuer: e.idp.Issuer()})
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	payload := b64(fmt.Sprintf(`{"iss":%q,"aud":%q,"oid":"u","tid":"t","scp":"access_as_user","exp":%d}`, e.idp.Issuer(), apiURI, now.Add(time.Hour).Unix()))
	tests := []struct {
		name, token, want string
	}{
		{"wrong audience", e.token("u", func(u *localidp.UserToken) { u.Audience = "https://graph.microsoft.com" }), "audience"},
		{"expired", e.token("u", func(u *localidp.UserToken) {
			u.IssuedAt, u.NotBefore, u.Lifetime = now.Add(-2*time.Hour), now.Add(-2*time.Hour), time.Hour
		}), "expired"},
		{"not yet valid", e.token("u", func(u *localidp.UserToken) { u.NotBefore = now.Add(time.Hour) }), "not valid before"},
		{"wrong issuer", e.token("u", func(u *localidp.UserToken) { u.Issuer = "https://evil.example/v2.0" }), "issuer"},
		{"unknown key", foreignTok, "key id"},
		{"alg none", b64(`{"alg":"none","typ":"JWT"}`) + "." + payload + ".", "none"},
		{"HS256", b64(`{"alg":"HS256","typ":"JWT"}`) + "." + payload + ".c2ln", "HS256"},
		{"garbage", "not-a-jwt", "segments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, hits := e.idp.TokenRequests(), e.echoHits.Load()
			a := e.get("/echo/x", tc.token)
			if a.status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", a.status, a.body)
			}
			ch := a.header.Get("WWW-Authenticate")
			if !strings.HasPrefix(ch, `Bearer error="invalid_token"`) || !strings.Contains(ch, tc.want) {
				t.Errorf("WWW-Authenticate = %q, want invalid_token mentioning %q", ch, tc.want)
			}
			if body := a.json(t); body["error"] != "invalid_token" {
				t.Errorf("body = %v", body)
			}
			if e.idp.TokenRequests() != before || e.echoHits.Load() != hits {
				t.Error("an invalid token caused an exchange or a downstream call")
			}
		})
	}
	if l := e.metric(`obo_gateway_inbound_rejections_total{reason="audience"}`); len(l) != 1 || !strings.HasSuffix(l[0], " 1") {
		t.Errorf("rejection metric = %v", l)
	}
}

func TestMissingTokenAndScopes(t *testing.T) {
	e := start(t, options{})
	a := e.get("/echo/x", "")
	if a.status != http.StatusUnauthorized || a.header.Get("WWW-Authenticate") != "Bearer" || a.json(t)["error"] == nil {
		t.Errorf("no token: %d %q %s", a.status, a.header.Get("WWW-Authenticate"), a.body)
	}
	// Another scheme is no bearer token either (RFC 6750, 3.1): a bare
	// challenge, counted as missing.
	a = e.do(http.MethodGet, "/echo/x", "", nil, "Authorization", "Basic dXNlcjpwYXNz")
	if a.status != http.StatusUnauthorized || a.header.Get("WWW-Authenticate") != "Bearer" {
		t.Errorf("Basic credentials: %d %q %s", a.status, a.header.Get("WWW-Authenticate"), a.body)
	}
	if n := e.counter(`obo_gateway_inbound_rejections_total{reason="missing"}`); n != 2 {
		t.Errorf("rejections counted as missing = %d, want 2", n)
	}
	app := e.token("daemon", func(u *localidp.UserToken) { u.AppOnly = true })
	a = e.get("/echo/x", app)
	if a.status != http.StatusForbidden || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), `Bearer error="insufficient_scope", scope="access_as_user", `) {
		t.Errorf("app-only token on an OBO route: %d %q", a.status, a.header.Get("WWW-Authenticate"))
	}
	// A token with neither scp nor roles (an ID token for API A, say) may not
	// use the application's own permissions either.
	idLike := e.token("daemon", func(u *localidp.UserToken) { u.AppOnly = true; u.Roles = nil; u.Extra = map[string]any{"roles": nil} })
	if a := e.get("/app/x", idLike); a.status != http.StatusForbidden {
		t.Errorf("token without scp or roles on a client credentials route: %d %s", a.status, a.body)
	}
	noScope := e.token("u", func(u *localidp.UserToken) { u.Scopes = []string{"something_else"} })
	a = e.get("/echo/x", noScope)
	if a.status != http.StatusForbidden || !strings.Contains(a.header.Get("WWW-Authenticate"), `scope="access_as_user"`) {
		t.Errorf("missing required scope: %d %q", a.status, a.header.Get("WWW-Authenticate"))
	}
	if body := a.json(t); body["error"] != "insufficient_scope" {
		t.Errorf("403 body: %v", body)
	}
	if e.idp.TokenRequests() != 0 || e.echoHits.Load() != 0 {
		t.Error("refused requests caused an exchange or a downstream call")
	}
	if a := e.get("/nowhere", e.token("u")); a.status != http.StatusNotFound {
		t.Errorf("no route: %d", a.status)
	}
}

func TestMFAChallengeIsRelayedAndNotCached(t *testing.T) {
	e := start(t, options{})
	claims := `{"access_token":{"capolids":{"essential":true,"values":["5ce5b4d9-0000-0000-0000-000000000001"]}}}`
	e.idp.SetUserBehavior("mfa-user", localidp.Behavior{Kind: localidp.BehaviorMFA, Claims: claims})
	tok := e.token("mfa-user")
	for i := range 2 {
		a := e.get("/echo/x", tok)
		if a.status != http.StatusUnauthorized {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
		ch := a.header.Get("WWW-Authenticate")
		if !strings.HasPrefix(ch, `Bearer error="insufficient_claims", claims="`) {
			t.Fatalf("WWW-Authenticate = %q", ch)
		}
		enc := strings.SplitN(strings.SplitN(ch, `claims="`, 2)[1], `"`, 2)[0]
		dec, err := base64.StdEncoding.DecodeString(enc)
		if err != nil || string(dec) != claims {
			t.Errorf("claims decode to %q (%v), want %q", dec, err, claims)
		}
		body := a.json(t)
		if body["error"] != "invalid_grant" || body["suberror"] != "basic_action" || body["claims"] != claims ||
			body["trace_id"] == nil || body["correlation_id"] == nil || body["error_codes"] == nil {
			t.Errorf("body lacks the authority's fields: %v", body)
		}
		if n := e.idp.OnBehalfOfRequestsFor("mfa-user"); n != int64(i+1) {
			t.Errorf("after %d requests: %d exchanges; the challenge was cached", i+1, n)
		}
	}
	e.idp.SetUserBehavior("ir-user", localidp.Behavior{Kind: localidp.BehaviorInteractionRequired})
	a := e.get("/echo/x", e.token("ir-user"))
	if a.status != http.StatusUnauthorized || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), `Bearer error="interaction_required"`) {
		t.Errorf("interaction_required: %d %q", a.status, a.header.Get("WWW-Authenticate"))
	}
	if e.echoHits.Load() != 0 {
		t.Error("a challenged request reached the downstream API")
	}
}

func TestPathsStayUnderUpstreamBase(t *testing.T) {
	e := start(t, options{})
	tok := e.token("path-user")
	tests := []struct {
		raw    string
		status int
		path   string
	}{
		{"/echo/a/../b", 200, "/base/b"},
		{"/echo/a/%2e%2e/b", 200, "/base/b"},
		{"/echo/a/..%2Fb", 200, "/base/b"},
		{"/echo/a/b/..%2F..%2Fc", 200, "/base/c"},
		{"/echo/..%2F..%2Fsecret", 404, ""}, // climbs out of /echo: no route
		{"/echo/../../secret", 404, ""},
		{"/echo/%252e%252e/secret", 400, ""}, // double encoding
		{"/echo/a%5c..%5csecret", 400, ""},
		{"/echo//x", 200, "/base/x"},
		{"/echo/..;/secret", 400, ""}, // servlet containers resolve "..;" as ".."
		{"/echo/%2e%2e%3b/x", 400, ""},
		{"/echo/a/..;/..;/secret", 400, ""},
		{"/echo/a;v=1/b", 200, "/base/a;v=1/b"},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(http.MethodGet, e.gw, nil)
		req.URL.Opaque = tc.raw // send the path exactly as written
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var ec echoed
		if res.StatusCode == 200 {
			a := answer{status: 200}
			a.body = readAll(t, res)
			ec = a.echoed(t)
		}
		res.Body.Close()
		if res.StatusCode != tc.status || ec.Path != tc.path {
			t.Errorf("%s: %d %q, want %d %q", tc.raw, res.StatusCode, ec.Path, tc.status, tc.path)
		}
		if ec.Path != "" && !strings.HasPrefix(ec.Path, "/base/") {
			t.Errorf("%s escaped the upstream base path: %q", tc.raw, ec.Path)
		}
	}
}

func TestAuthorityOutage(t *testing.T) {
	e := start(t, options{authorityTimeout: "1s"})
	warm := e.token("warm-user")
	if a := e.get("/echo/x", warm); a.status != http.StatusOK {
		t.Fatal(a.status)
	}
	e.idp.SetHang(true)
	defer e.idp.SetHang(false)
	startAt := time.Now()
	a := e.get("/echo/x", e.token("cold-user"))
	if a.status != http.StatusServiceUnavailable {
		t.Errorf("cold user during outage: %d %s", a.status, a.body)
	}
	if d := time.Since(startAt); d > 3*time.Second {
		t.Errorf("503 took %v, want about the 1s authority timeout", d)
	}
	if a := e.get("/echo/x", warm); a.status != http.StatusOK {
		t.Errorf("cached user during outage: %d", a.status)
	}

	e.idp.SetHang(false)
	e.idp.SetDefaultBehavior(localidp.Behavior{Kind: localidp.BehaviorThrottle, RetryAfter: 7 * time.Second})
	a = e.get("/echo/x", e.token("throttled-user"))
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") != "7" {
		t.Errorf("throttled: %d Retry-After %q", a.status, a.header.Get("Retry-After"))
	}
	e.idp.SetDefaultBehavior(localidp.Behavior{Kind: localidp.BehaviorServerError})
	if a := e.get("/echo/x", e.token("5xx-user")); a.status != http.StatusServiceUnavailable {
		t.Errorf("authority 5xx: %d", a.status)
	}
	if l := e.metric(`obo_gateway_exchanges_total{flow="on_behalf_of",outcome="timeout",route="echo"}`); len(l) != 1 {
		t.Errorf("timeout not counted: %v", l)
	}
}

func TestGatewayCredentialRejectedIs502(t *testing.T) {
	e := start(t, options{secret: "wrong-secret-value"})
	a := e.get("/echo/x", e.token("u"))
	if a.status != http.StatusBadGateway {
		t.Errorf("status %d: %s", a.status, a.body)
	}
	if strings.Contains(string(a.body), "wrong-secret-value") || strings.Contains(e.logs.String(), "wrong-secret-value") {
		t.Error("the client secret leaked")
	}
	if !strings.Contains(e.logs.String(), `"outcome":"invalid_client"`) {
		t.Error("the log does not say the credential was rejected")
	}
}

func TestDownstreamChallengeEvictsAndPassesThrough(t *testing.T) {
	e := start(t, options{})
	tok := e.token("cae-user")
	if a := e.get("/echo/x", tok); a.status != 200 {
		t.Fatal(a.status)
	}
	challenge := `Bearer realm="", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZX19fQ=="`
	a := e.get("/echo/x", tok, "X-Echo-Status", "401", "X-Echo-WWW-Authenticate", challenge)
	if a.status != http.StatusUnauthorized || a.header.Get("WWW-Authenticate") != challenge {
		t.Errorf("downstream challenge changed: %d %q", a.status, a.header.Get("WWW-Authenticate"))
	}
	if a := e.get("/echo/x", tok); a.status != 200 {
		t.Fatal(a.status)
	}
	if n := e.idp.OnBehalfOfRequestsFor("cae-user"); n != 2 {
		t.Errorf("%d exchanges, want 2 (the challenge evicts token B)", n)
	}
	// A plain downstream 401 without claims does not evict.
	e.get("/echo/x", tok, "X-Echo-Status", "401", "X-Echo-WWW-Authenticate", `Bearer error="invalid_token"`)
	e.get("/echo/x", tok)
	if n := e.idp.OnBehalfOfRequestsFor("cae-user"); n != 2 {
		t.Errorf("%d exchanges after a plain 401, want 2", n)
	}
}

func TestClientCredentialsRoute(t *testing.T) {
	e := start(t, options{})
	for _, u := range []string{"x", "y", "z"} {
		a := e.get("/app/jobs", e.token(u))
		if a.status != 200 {
			t.Fatalf("%d %s", a.status, a.body)
		}
		authz := a.echoed(t).Headers["Authorization"][0]
		if c := jwtClaims(t, strings.TrimPrefix(authz, "Bearer ")); c["idtyp"] != "app" || c["scp"] != nil {
			t.Errorf("token B is not app-only: %v", c)
		}
	}
	// A daemon holding an application role of API A may use the route too.
	daemon := e.token("daemon", func(u *localidp.UserToken) { u.AppOnly = true; u.Roles = []string{"Jobs.Run"} })
	if a := e.get("/app/jobs", daemon); a.status != 200 {
		t.Errorf("app token with a role on a client credentials route: %d %s", a.status, a.body)
	}
	if n := e.idp.ClientCredentialsRequests(); n != 1 {
		t.Errorf("%d client credentials requests for four callers, want 1 (cached per scope set)", n)
	}
}

func TestStreamingAndDownstreamUnreachable(t *testing.T) {
	e := start(t, options{})
	tok := e.token("s")
	a := e.get("/echo/stream", tok, "X-Echo-Stream", "5")
	if a.status != 200 || strings.Count(string(a.body), "chunk") != 5 {
		t.Errorf("stream: %d %q", a.status, a.body)
	}
	a = e.get("/dead/x", tok)
	if a.status != http.StatusBadGateway || a.json(t)["error"] != "bad_gateway" {
		t.Errorf("unreachable downstream: %d %s", a.status, a.body)
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	e := start(t, options{})
	e.idp.SetUserBehavior("mfa", localidp.Behavior{Kind: localidp.BehaviorMFA})
	toks := []string{e.token("a"), e.token("mfa"), e.token("x", func(u *localidp.UserToken) { u.Audience = "wrong" })}
	for _, tok := range toks {
		e.get("/echo/x", tok)
		e.get("/app/x", tok)
	}
	logs := e.logs.String()
	secrets := append([]string{clientSecret}, toks...)
	for _, it := range e.idp.IssuedTokens() {
		secrets = append(secrets, it.Token)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain a secret or token (%d bytes)", len(s))
		}
		// A JWT's signature alone identifies it too.
		if parts := strings.Split(s, "."); len(parts) == 3 && strings.Contains(logs, parts[2]) {
			t.Error("logs contain a token signature")
		}
	}
	if !strings.Contains(logs, `"msg":"request"`) || !strings.Contains(logs, `"user":"`) {
		t.Errorf("request lines with fingerprints missing:\n%s", logs)
	}
	if len(e.idp.IssuedTokens()) == 0 {
		t.Fatal("nothing was issued; the test proves nothing")
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	e := start(t, options{})
	tok := e.token("drain")
	done := make(chan answer)
	go func() { done <- e.get("/echo/slow", tok, "X-Echo-Stream", "30") }() // ~300ms
	time.Sleep(100 * time.Millisecond)
	e.stop()
	a := <-done
	if a.status != 200 || strings.Count(string(a.body), "chunk") != 30 {
		t.Errorf("in-flight request cut: %d, %d chunks", a.status, strings.Count(string(a.body), "chunk"))
	}
	if err := <-e.done; err != nil {
		t.Errorf("Run: %v", err)
	}
	e.done <- nil // for the cleanup
}

func TestAdminEndpoints(t *testing.T) {
	e := start(t, options{})
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		res, err := http.Get(e.admin + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("%s: %d", p, res.StatusCode)
		}
	}
	if a := e.get("/echo/x", e.token("metrics-user")); a.status != 200 {
		t.Fatal(a.status)
	}
	for prefix, want := range map[string]string{
		"obo_gateway_build_info":                                           "1",
		"obo_gateway_cache_entries":                                        "1",
		"obo_gateway_jwks_keys":                                            "1",
		`obo_gateway_jwks_refreshes_total{outcome="success"}`:              "",
		`obo_gateway_requests_total{code="2xx",method="GET",route="echo"}`: "1",
		"obo_gateway_requests_in_flight":                                   "0",
	} {
		l := e.metric(prefix)
		if len(l) != 1 || want != "" && !strings.HasSuffix(l[0], " "+want) {
			t.Errorf("%s: %v, want value %q", prefix, l, want)
		}
	}
	if l := e.metric("obo_gateway_cache_bytes"); len(l) != 1 || strings.HasSuffix(l[0], " 0") {
		t.Errorf("cache_bytes: %v", l)
	}
}

func readAll(t *testing.T, res *http.Response) []byte {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return []byte(b.String())
}

func TestTokenRequestIsNeverRedirected(t *testing.T) {
	var captured atomic.Int64
	thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		captured.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer thief.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, thief.URL+"/token", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	e := start(t, options{tokenEndpoint: redirector.URL + "/token"})
	a := e.get("/echo/x", e.token("redirected"))
	if a.status != http.StatusBadGateway {
		t.Errorf("redirected token request: %d %s", a.status, a.body)
	}
	if captured.Load() != 0 {
		t.Error("the token request, with the client secret and token A, followed a redirect")
	}
}
