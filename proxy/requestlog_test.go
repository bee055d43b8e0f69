package proxy

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequestLog(t *testing.T) {
	for _, tc := range []struct {
		mode             string
		wantOK, wantFail bool
	}{
		{"failures", false, true},
		{"", false, true}, // the default
		{"all", true, true},
		{"none", false, false},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			mode, err := ParseRequestLog(tc.mode)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			h, tok := testHandler(t, true, slog.New(slog.NewTextHandler(&buf, nil)), mode)
			serve := func(auth string) int {
				req := httptest.NewRequest(http.MethodGet, "/api/items/1", nil)
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				return rec.Code
			}
			if code := serve("Bearer " + tok); code != http.StatusOK {
				t.Fatalf("good token: status %d", code)
			}
			gotOK := strings.Contains(buf.String(), "status=200")
			if code := serve(""); code != http.StatusUnauthorized {
				t.Fatalf("no token: status %d", code)
			}
			gotFail := strings.Contains(buf.String(), "status=401")
			if gotOK != tc.wantOK || gotFail != tc.wantFail {
				t.Errorf("logged the 200: %v (want %v), the 401: %v (want %v); log:\n%s", gotOK, tc.wantOK, gotFail, tc.wantFail, buf.String())
			}
			if tc.wantFail && !strings.Contains(buf.String(), "reason=") {
				t.Errorf("the refusal's line has no reason:\n%s", buf.String())
			}
		})
	}
	if _, err := ParseRequestLog("some"); err == nil {
		t.Error(`ParseRequestLog("some") accepted`)
	}
}
