package echo

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	maxBodyBytes  = 32 << 20
	maxChunks     = 10000
	chunkInterval = 10 * time.Millisecond
)

// Answer is the JSON body the echo handler answers with.
type Answer struct {
	// Method is the request method.
	Method string `json:"method"`
	// Path is the decoded request path.
	Path string `json:"path"`
	// RawPath is the request path as sent, escapes included.
	RawPath string `json:"raw_path"`
	// Query is the raw query string, without the '?'.
	Query string `json:"query"`
	// Host is the Host header of the request.
	Host string `json:"host"`
	// Headers are all request headers (Host excepted, see Host).
	Headers map[string][]string `json:"headers"`
	// Body is the request body.
	Body string `json:"body"`
	// BodyBytes is the length of the request body in bytes.
	BodyBytes int `json:"body_bytes"`
	// Token is what the echo API reads of the bearer token in the
	// Authorization header; nil when the request has none.
	Token *Token `json:"token,omitempty"`
}

// NewHandler returns the echo handler. It answers every request, whatever
// its method and path, as the package documentation describes.
func NewHandler() http.Handler {
	return http.HandlerFunc(serveEcho)
}

// CAEClaims is the claims request of the continuous access evaluation
// challenge the echo API sends for a revoked token.
const CAEClaims = `{"access_token":{"nbf":{"essential":true,"value":"1764000000"}}}`

// CAEChallenge is the WWW-Authenticate value of that challenge, as a
// CAE-enabled Microsoft API writes it.
var CAEChallenge = `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="` +
	base64.StdEncoding.EncodeToString([]byte(CAEClaims)) + `"`

// revoked reports whether the request's bearer token has the SHA-256 (hex)
// sum.
func revoked(r *http.Request, sum string) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	got := sha256.Sum256([]byte(tok))
	return strings.EqualFold(hex.EncodeToString(got[:]), sum)
}

func serveEcho(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		http.Error(w, "echo: reading the request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	status := http.StatusOK
	if v := r.Header.Get("X-Echo-Status"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 || n > 599 {
			http.Error(w, "echo: X-Echo-Status must be an HTTP status code", http.StatusBadRequest)
			return
		}
		status = n
	}
	if v := r.Header.Get("X-Echo-WWW-Authenticate"); v != "" {
		w.Header().Set("WWW-Authenticate", v)
	}
	if v := r.Header.Get("X-Echo-Revoke-Sha256"); v != "" && revoked(r, v) {
		status = http.StatusUnauthorized
		if w.Header().Get("WWW-Authenticate") == "" {
			w.Header().Set("WWW-Authenticate", CAEChallenge)
		}
	}
	if v := r.Header.Get("X-Echo-Stream"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxChunks {
			http.Error(w, fmt.Sprintf("echo: X-Echo-Stream must be a number from 1 to %d", maxChunks), http.StatusBadRequest)
			return
		}
		stream(w, r, status, n)
		return
	}

	answer, err := json.Marshal(Answer{
		Method:    r.Method,
		Path:      r.URL.Path,
		RawPath:   r.URL.EscapedPath(),
		Query:     r.URL.RawQuery,
		Host:      r.Host,
		Headers:   r.Header,
		Body:      string(body),
		BodyBytes: len(body),
		Token:     readToken(r.Header.Get("Authorization")),
	})
	if err != nil {
		http.Error(w, "echo: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(answer)
}

// stream writes n chunks, flushing each and pausing between them; it stops
// when the client goes away.
func stream(w http.ResponseWriter, r *http.Request, status, n int) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	for i := range n {
		if i > 0 {
			select {
			case <-time.After(chunkInterval):
			case <-r.Context().Done():
				return
			}
		}
		if _, err := fmt.Fprintf(w, "chunk %d\n", i); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
