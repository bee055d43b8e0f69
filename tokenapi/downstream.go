package tokenapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
)

// maxContent bounds the downstream answer the API reads into its JSON
// result.
const maxContent = 8 << 20

// maxBody bounds the request body sent downstream.
const maxBody = 8 << 20

// contentHeaders are the downstream answer's headers the result carries:
// Microsoft's sidecar returns the content headers only.
var contentHeaders = []string{"Allow", "Content-Disposition", "Content-Encoding", "Content-Language",
	"Content-Length", "Content-Location", "Content-MD5", "Content-Range", "Content-Type", "Expires", "Last-Modified"}

// downstreamAPI answers POST /DownstreamApi/{name} (token A required when
// authenticated) and /DownstreamApiUnauthenticated/{name}: the gateway calls
// the route's upstream with the token and answers with the downstream's
// status, content headers and content.
func (s *Server) downstreamAPI(authenticated bool) http.HandlerFunc {
	endpoint := endpointCallAnonymous
	if authenticated {
		endpoint = endpointCall
	}
	return func(w http.ResponseWriter, r *http.Request) {
		callOf(r).endpoint = endpoint
		q := r.URL.Query()
		method := strings.ToUpper(q.Get(paramHTTPMethod))
		if method == "" {
			method = http.MethodGet
		}
		if !isToken(method) {
			s.badRequest(w, r, "bad_override", paramHTTPMethod+" must be an HTTP method")
			return
		}
		entry, ok := s.token(w, r, authenticated)
		if !ok {
			return
		}
		// As Microsoft's: the body goes downstream only with a content
		// type.
		var body io.Reader
		contentType := r.Header.Get("Content-Type")
		if _, _, err := mime.ParseMediaType(contentType); contentType != "" && err == nil {
			b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
			if err != nil {
				s.problem(w, r, problem{Status: http.StatusRequestEntityTooLarge, Detail: "the request body is too large"}, "body_too_large")
				return
			}
			body = strings.NewReader(string(b))
		} else {
			contentType = ""
		}
		res, err := s.cfg.Handler().Call(r.Context(), callOf(r).route, entry, method, q.Get(paramRelativePath), body, contentType)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		defer res.Body.Close()
		content, err := io.ReadAll(io.LimitReader(res.Body, maxContent+1))
		if err == nil && len(content) > maxContent {
			err = errors.New("too large")
		}
		if err != nil {
			s.problem(w, r, problem{Status: http.StatusBadGateway, Detail: "the downstream answer could not be read whole"}, "downstream_error")
			return
		}
		headers := map[string][]string{}
		for _, k := range contentHeaders {
			if v := res.Header.Values(k); len(v) > 0 {
				headers[k] = v
			}
		}
		var text *string
		if len(content) > 0 {
			s := string(content)
			text = &s
		}
		writeJSON(w, struct {
			StatusCode int                 `json:"statusCode"`
			Headers    map[string][]string `json:"headers"`
			Content    *string             `json:"content"`
		}{res.StatusCode, headers, text})
	}
}

// isToken reports whether s is an HTTP token (a method name).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}
