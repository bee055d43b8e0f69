package app

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// NewLogger returns a slog.Logger writing to w at level ("debug", "info",
// "warn", "error") in format ("text" or "json").
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	lv, err := NewLevel(level)
	if err != nil {
		return nil, err
	}
	return NewLoggerAt(w, lv, format)
}

// NewLevel returns a level variable set to level ("debug", "info", "warn",
// "error"): a logger built on it with NewLoggerAt changes its level when
// the variable changes, as on a reload of log.level (Options.LogLevel).
func NewLevel(level string) (*slog.LevelVar, error) {
	l, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	var lv slog.LevelVar
	lv.Set(l)
	return &lv, nil
}

func parseLevel(level string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return 0, fmt.Errorf("app: log level %q: want debug, info, warn or error", level)
	}
	return l, nil
}

// NewLoggerAt returns a slog.Logger writing to w at level in format
// ("text" or "json").
func NewLoggerAt(w io.Writer, level slog.Leveler, format string) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("app: log format %q: want text or json", format)
}
