package proxy

import (
	"context"
	"errors"
	"github.com/obo-gateway/obo-gateway/obo"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/obo-gateway/obo-gateway/cache"
)

// Call sends one request to route name's upstream with token entry, for
// the token API's downstream calls: relPath (with an optional query after
// "?") is resolved under the upstream's base path with the proxy path's
// containment rules, so the request never leaves the upstream. The caller
// closes the response body. A failure to reach the upstream is counted in
// downstream_errors_total.
func (h *Handler) Call(ctx context.Context, name string, entry *cache.Entry, method, relPath string, body io.Reader, contentType string) (*http.Response, error) {
	rt := h.routeNamed(name)
	if rt == nil {
		return nil, refusal(http.StatusNotFound, "no_route", "no route has this name")
	}
	p, query, _ := strings.Cut(relPath, "?")
	clean, err := cleanPath("/" + strings.TrimPrefix(p, "/"))
	if err != nil {
		h.m.BadRequests.WithLabelValues("bad_path").Inc()
		return nil, refusal(http.StatusBadRequest, "bad_path", "optionsOverride.RelativePath: "+err.Error())
	}
	if clean == "/" && p == "" {
		clean = ""
	}
	u := url.URL{Scheme: rt.upstream.Scheme, Host: rt.upstream.Host, Path: rt.outPath(rt.prefix + clean), RawQuery: query}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, refusal(http.StatusBadRequest, "bad_request", "optionsOverride.HttpMethod or RelativePath cannot form a request")
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if rt.bearer {
		req.Header.Set("Authorization", entry.Credential())
	} else {
		req.Header.Set(rt.present.Header, rt.present.Value(entry.Token))
	}
	res, err := rt.proxy.Transport.RoundTrip(req)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			h.m.DownstreamErrors.WithLabelValues(rt.name).Inc()
		}
		return nil, &DownstreamError{Route: rt.name, Err: err}
	}
	if res.StatusCode == http.StatusUnauthorized && hasClaimsChallenge(res.Header) {
		h.cache.Delete(entry.Key)
		h.m.CacheChallengeEvictions.WithLabelValues(rt.name).Inc()
	}
	return res, nil
}

// DownstreamError is a downstream API that could not be reached.
type DownstreamError struct {
	Route string
	Err   error
}

func (e *DownstreamError) Error() string {
	return "proxy: the downstream API of route " + e.Route + " could not be reached: " + e.Err.Error()
}

func (e *DownstreamError) Unwrap() error { return e.Err }

// Validate is Authenticate with the gateway's policy on token A: a
// delegated token must carry one of the required scopes, an app-only token
// an application role.
func (h *Handler) Validate(ctx context.Context, hdr http.Header) (*Caller, error) {
	c, err := h.Authenticate(ctx, hdr)
	if err != nil {
		return nil, err
	}
	if err := h.authorizeFlow(obo.FlowClientCredentials, c.claims); err != nil {
		return nil, err
	}
	return c, nil
}
