package proxy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// claimsChallenge carries a downstream CAE challenge from ModifyResponse to
// ErrorHandler.
type claimsChallenge struct{ claims string }

func (c *claimsChallenge) Error() string { return "downstream answered with a claims challenge" }

// checkChallenge is the reverse proxy's ModifyResponse: a downstream 401
// with a claims challenge evicts the cached token B, and under CAE, when
// the request can be sent again, becomes a claimsChallenge for retryWithClaims.
func (h *Handler) checkChallenge(st *request, res *http.Response) error {
	if res.StatusCode != http.StatusUnauthorized || !hasClaimsChallenge(res.Header) {
		return nil
	}
	h.cache.Delete(st.key)
	h.m.CacheChallengeEvictions.WithLabelValues(st.route.name).Inc()
	if h.cae && st.replayable && !st.retried {
		if claims := challengeClaims(res.Header); claims != "" {
			// Handled by ErrorHandler: nothing has been written yet.
			return &claimsChallenge{claims: claims}
		}
	}
	return nil
}

// retryWithClaims answers a downstream claims challenge under CAE: it
// exchanges token A again with the challenge's claims, stores the new
// token B and sends the caller's request once more, through the same hooks
// as the first time (so its forwarding headers are the caller's, not those
// of the first attempt). If the authority wants the user to interact, the
// caller gets the 401 claims challenge.
func (h *Handler) retryWithClaims(w http.ResponseWriter, st *request, claims string) {
	st.retried = true
	r := st.in
	entry, err := h.exchange(r.Context(), st, claims)
	if err != nil {
		st.reason = writeExchangeError(w, err).reason
		return
	}
	h.cache.Set(entry)
	h.m.CAERetries.WithLabelValues(st.route.name).Inc()
	st.entry = entry
	r.Body = io.NopCloser(bytes.NewReader(st.body))
	r.ContentLength = int64(len(st.body))
	st.route.proxy.ServeHTTP(w, r)
}

// keepBody reads up to limit bytes of the request body so that the request
// can be sent again after a CAE challenge. A larger body is not kept: what
// was read is put back in front of the rest, and it streams as usual.
func keepBody(r *http.Request, st *request, limit int64) {
	if r.Body == nil || r.Body == http.NoBody {
		st.replayable = true
		return
	}
	if r.ContentLength > limit {
		return
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil || int64(len(buf)) > limit {
		r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
		return
	}
	st.body, st.replayable = buf, true
	r.Body = io.NopCloser(bytes.NewReader(buf))
}

// readCloser reads from r and closes c.
type readCloser struct {
	io.Reader
	c io.Closer
}

func (rc readCloser) Close() error { return rc.c.Close() }

// challengeClaims returns the decoded claims parameter of a claims
// challenge, or "".
func challengeClaims(h http.Header) string {
	for _, v := range h.Values("WWW-Authenticate") {
		i := strings.Index(strings.ToLower(v), "claims=\"")
		if i < 0 {
			continue
		}
		enc, _, ok := strings.Cut(v[i+len(`claims="`):], `"`)
		if !ok {
			continue
		}
		for _, e := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := e.DecodeString(enc); err == nil && json.Valid(b) {
				return string(b)
			}
		}
	}
	return ""
}

// hasClaimsChallenge reports whether a downstream 401 carries a claims
// challenge (CAE or conditional access), which makes the cached token B
// useless.
func hasClaimsChallenge(h http.Header) bool {
	for _, v := range h.Values("WWW-Authenticate") {
		l := strings.ToLower(v)
		if strings.Contains(l, "claims=") || strings.Contains(l, "insufficient_claims") {
			return true
		}
	}
	return false
}
