package proxy

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// RequestLog says which requests the handler logs.
type RequestLog int

const (
	// LogFailures logs the requests answered with a status of 400 or
	// above, whether the gateway or the downstream API answered.
	LogFailures RequestLog = iota
	// LogAll logs every request.
	LogAll
	// LogNone logs no request.
	LogNone
)

// ParseRequestLog returns the RequestLog named failures, all or none.
func ParseRequestLog(s string) (RequestLog, error) {
	switch s {
	case "", "failures":
		return LogFailures, nil
	case "all":
		return LogAll, nil
	case "none":
		return LogNone, nil
	}
	return 0, fmt.Errorf("proxy: request log %q: want failures, all or none", s)
}

// Logs reports whether a request answered with status gets a line.
func (l RequestLog) Logs(status int) bool {
	switch l {
	case LogAll:
		return true
	case LogFailures:
		return status >= http.StatusBadRequest
	}
	return false
}

// RequestLine is what the request log says of one request. It never holds
// a token: User is a Fingerprint.
type RequestLine struct {
	Route    string // "none" before a route matched
	Method   string
	Path     string
	Status   int
	Duration time.Duration
	Cache    string // the cache.Result of the token B lookup
	User     string
	Reason   string // why the gateway answered itself
	TraceID  string // the trace the request is part of, in hex
}

// Write logs line at info level to log, if l logs requests answered with
// line.Status; a request with no status (one the server could not read)
// counts as a failure. Fields left empty or zero are left out, Route
// excepted.
func (l RequestLog) Write(ctx context.Context, log *slog.Logger, line RequestLine) {
	if !l.Logs(cmp.Or(line.Status, http.StatusBadRequest)) || !log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := make([]slog.Attr, 0, 9)
	attrs = append(attrs, slog.String("route", line.Route))
	for _, f := range [...]struct{ key, value string }{{"method", line.Method}, {"path", line.Path}} {
		if f.value != "" {
			attrs = append(attrs, slog.String(f.key, f.value))
		}
	}
	if line.Status != 0 {
		attrs = append(attrs, slog.Int("status", line.Status))
	}
	if line.Duration != 0 {
		attrs = append(attrs, slog.Float64("duration_ms", float64(line.Duration.Microseconds())/1000))
	}
	for _, f := range [...]struct{ key, value string }{{"cache", line.Cache}, {"user", line.User}, {"reason", line.Reason}, {"trace_id", line.TraceID}} {
		if f.value != "" {
			attrs = append(attrs, slog.String(f.key, f.value))
		}
	}
	log.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
}
