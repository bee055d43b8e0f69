package obo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var fuzzNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// tokenErrorMessages are the only messages parseToken may fail with: none
// quotes the answer, which may hold token B.
var tokenErrorMessages = regexp.MustCompile(`^obo: (` +
	`decode token response: (not valid JSON \(at byte \d+\)` +
	`|field [a-z_]+ has the wrong type` +
	`|the answer is not a JSON object` +
	`|a lifetime field \(expires_in, ext_expires_in or refresh_in\) is not a number of seconds` +
	`|not a token response)` +
	`|token response has no access_token` +
	`|token response has no positive expires_in` +
	`|token response: access_token is not a b64token \(RFC 6750\): it cannot be sent in a header` +
	`|token response: token_type is not an HTTP token \(RFC 9110\): it cannot be an authentication scheme)$`)

// FuzzParseToken: whatever the authority answers with 200, parseToken does
// not panic, and it either returns a usable token or fails with a message
// that holds no part of the answer.
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{
		`{"token_type":"Bearer","scope":"api://b/read","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAi.eyJhdWQi.c2ln"}`,
		`{"access_token":"eyJ0eXAi.eyJhdWQi.c2ln","expires_in":"3600","refresh_in":"1800","refresh_token":"0.ARoA-secret"}`,
		`{"access_token":"eyJ0eXAi.eyJhdWQi.c2ln","expires_in":"eyJ0eXAi.eyJhdWQi.c2ln"}`,
		`{"access_token":12345678901234567890,"expires_in":60}`,
		`{"access_token":"secret-token-b","expires_in":-5}`,
		`{"access_token":"secret-token-b","expires_in":60,"token_type":["x"]}`,
		`["secret-token-b"]`,
		`{"access_token":"secret-token-b", "expires_in": 60`,
		`<html>secret-token-b</html>`,
		`null`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := parseToken(body, fuzzNow)
		if err != nil {
			if tok != nil {
				t.Fatal("parseToken returned a token and an error")
			}
			if !tokenErrorMessages.MatchString(err.Error()) {
				t.Fatalf("parseToken(%q) error %q is not one of the documented messages", body, err)
			}
			return
		}
		if tok.AccessToken == "" || !tok.ExpiresAt.After(fuzzNow) || tok.RefreshIn < 0 || tok.TokenType == "" {
			t.Fatalf("parseToken(%q) accepted an unusable token: %+v", body, tok)
		}
	})
}

// FuzzParseError: whatever the authority answers with an error status,
// parseError does not panic; the error's message is exactly the documented
// one (status, error code, suberror, first line of error_description), so
// no other part of the answer — an echoed assertion, claims, an HTML page —
// reaches a log line; and the Retry-After delay is between 0 and
// maxRetryAfter.
func FuzzParseError(f *testing.F) {
	f.Add(400, "application/json; charset=utf-8", "",
		[]byte(`{"error":"invalid_grant","error_description":"AADSTS50076: Due to a configuration change made by your administrator...\r\nTrace ID: 1","error_codes":[50076],"timestamp":"2025-06-01 12:00:00Z","trace_id":"t","correlation_id":"c","suberror":"basic_action","claims":"{\"access_token\":{\"capolids\":{\"essential\":true}}}"}`))
	f.Add(401, "application/json", "", []byte(`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","assertion":"eyJ0eXAi.eyJzdWIi.secret-token-a"}`))
	f.Add(429, "application/json", "7", []byte(`{"error":"temporarily_unavailable"}`))
	f.Add(503, "text/html", "Wed, 21 Oct 2099 07:28:00 GMT", []byte(`<html><body>client_secret=hunter2-very-secret</body></html>`))
	f.Add(502, "", "99999999999", []byte(`{"error_description":"no code","claims":"eyJ0eXAi.eyJzdWIi.secret-token-a"}`))
	f.Add(503, "application/json", "10000000000", []byte(`{"error":"temporarily_unavailable"}`)) // overflows seconds→Duration
	f.Add(500, "application/json", "-1", []byte(`{"error":["not","a","string"],"refresh_token":"0.ARoA-secret"}`))
	f.Add(400, "application/json", "", []byte(`{"ERROR":"case","Error_Description":"folded"}`))
	f.Add(404, "application/json", "", []byte(`null`))
	f.Fuzz(func(t *testing.T, status int, contentType, retryAfter string, body []byte) {
		res := &http.Response{StatusCode: status, Header: http.Header{}}
		if contentType != "" {
			res.Header.Set("Content-Type", contentType)
		}
		if retryAfter != "" {
			res.Header.Set("Retry-After", retryAfter)
		}
		e := parseError(res, body, fuzzNow)
		if e == nil {
			t.Fatal("parseError returned nil")
		}
		if e.StatusCode != status {
			t.Fatalf("StatusCode = %d, want %d", e.StatusCode, status)
		}
		if e.RetryAfter < 0 || e.RetryAfter > maxRetryAfter {
			t.Fatalf("Retry-After %q gave a delay of %v, want 0 to %v", retryAfter, e.RetryAfter, maxRetryAfter)
		}
		if s, err := strconv.Atoi(strings.TrimSpace(retryAfter)); err == nil && s >= 0 {
			want := maxRetryAfter
			if s < int(maxRetryAfter/time.Second) {
				want = time.Duration(s) * time.Second
			}
			if e.RetryAfter != want {
				t.Fatalf("Retry-After %q gave %v, want %v", retryAfter, e.RetryAfter, want)
			}
		}
		msg := e.Error()
		if want := documentedMessage(e); msg != want {
			t.Fatalf("Error() = %q, want only the documented parts %q", msg, want)
		}
		// Nothing the authority sent outside error, suberror and
		// error_description is in the message.
		var doc any
		if json.Unmarshal(body, &doc) != nil {
			if e.Code != "" || e.SubError != "" || !strings.HasPrefix(e.Description, "non-OAuth answer (") {
				t.Fatalf("a body that is not JSON filled fields: %+v", e)
			}
			return
		}
		documented := e.Code + "\x00" + e.SubError + "\x00" + e.Description + "\x00obo: authority answered (suberror ): "
		for _, v := range undocumentedStrings(doc, "") {
			if len(v) >= 8 && !strings.Contains(documented, v) && strings.Contains(msg, v) {
				t.Fatalf("Error() %q holds %q, which the authority sent outside error, suberror and error_description", msg, v)
			}
		}
	})
}

// documentedMessage is what Error's documentation promises: the status,
// the code, the suberror and the first line of the description.
func documentedMessage(e *Error) string {
	msg := fmt.Sprintf("obo: authority answered %d", e.StatusCode)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.SubError != "" {
		msg += " (suberror " + e.SubError + ")"
	}
	if e.Description != "" {
		d, _, _ := strings.Cut(strings.ReplaceAll(e.Description, "\r", "\n"), "\n")
		msg += ": " + d
	}
	return msg
}

// undocumentedStrings returns the strings of a decoded JSON document (keys
// and values) except the values of its top-level error, suberror and
// error_description members.
func undocumentedStrings(v any, key string) []string {
	switch v := v.(type) {
	case string:
		switch strings.ToLower(key) {
		case "error", "suberror", "error_description":
			return nil
		}
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, undocumentedStrings(x, "")...)
		}
		return out
	case map[string]any:
		var out []string
		for k, x := range v {
			out = append(out, k)
			if key != "" { // only the top level's members are documented
				k = ""
			}
			out = append(out, undocumentedStrings(x, k)...)
		}
		return out
	}
	return nil
}
