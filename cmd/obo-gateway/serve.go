package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
	"go.opentelemetry.io/otel"

	"github.com/obo-gateway/obo-gateway/internal/app"
	"github.com/obo-gateway/obo-gateway/internal/config"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the sidecar",
		Description: "Validates the caller's token, exchanges it for the route's scopes with the On-Behalf-Of flow,\n" +
			"and proxies the request to the route's upstream with the new token. Stops on SIGTERM or SIGINT\n" +
			"after in-flight requests finish (shutdown_timeout).",
		Flags:  append(append([]cli.Flag{configFlag()}, listenFlags("", "")...), logFlags()...),
		Action: runServe,
	}
}

func runServe(c *cli.Context) error {
	cfg, err := config.Load(c.String("config"))
	if err != nil {
		return cli.Exit(fmt.Sprintf("obo-gateway: configuration is invalid:\n%v", err), 2)
	}
	applyOverrides(c, cfg)
	if err := cfg.Validate(); err != nil {
		return cli.Exit(fmt.Sprintf("obo-gateway: configuration is invalid after flags:\n%v", err), 2)
	}
	log, err := app.NewLogger(os.Stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	log.Info("starting obo-gateway", "version", version, "commit", commit, "config", cfg.Redacted())
	// The exporter reports failed exports here (once per batch), in the
	// gateway's log format rather than the standard logger's.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("telemetry: OpenTelemetry error", "error", err.Error())
	}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// The first signal starts the shutdown; a second one, once the
	// handlers are gone, ends the process at once.
	context.AfterFunc(ctx, stop)
	a, err := app.New(app.Options{Config: cfg, Logger: log, Version: version})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// applyOverrides applies the flags (and their environment variables) that
// override configuration values.
func applyOverrides(c *cli.Context, cfg *config.Config) {
	if v := c.String("listen"); v != "" {
		cfg.Listen = v
	}
	if v := c.String("admin-listen"); v != "" {
		cfg.AdminListen = v
	}
	if v := c.String("log-level"); v != "" {
		cfg.Log.Level = v
	}
	if v := c.String("log-format"); v != "" {
		cfg.Log.Format = v
	}
}
