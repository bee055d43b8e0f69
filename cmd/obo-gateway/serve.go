package main

import (
	"cmp"
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
			"after in-flight requests finish (shutdown_timeout). Reads the configuration file again on SIGHUP\n" +
			"and when it changes, and applies what can change without a restart (docs/reload.md).",
		Flags: append(append([]cli.Flag{configFlag(), &cli.DurationFlag{
			Name:    "config-poll",
			Usage:   "look at the configuration file for a change every `INTERVAL`; 0 reloads on SIGHUP only",
			EnvVars: []string{"OBO_GATEWAY_CONFIG_POLL"},
			Value:   app.DefaultPoll,
		}}, listenFlags("", "")...), logFlags()...),
		Action: runServe,
	}
}

func runServe(c *cli.Context) error {
	// Registered first: SIGHUP's default action would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cfg, file, err := app.LoadConfigFile(app.ConfigFile{
		Path:     c.String("config"),
		Override: func(cfg *config.Config) { applyOverrides(c, cfg) },
		// The file's zero means the default; the flag's, no watch.
		Poll: cmp.Or(c.Duration("config-poll"), -1),
	})
	if err != nil {
		return cli.Exit(fmt.Sprintf("obo-gateway: configuration is invalid:\n%v", err), 2)
	}
	level, err := app.NewLevel(cfg.Log.Level)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	log, err := app.NewLoggerAt(os.Stderr, level, cfg.Log.Format)
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
	a, err := app.New(app.Options{Config: cfg, Logger: log, Version: version, File: file, LogLevel: level})
	if err != nil {
		return err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-hup:
				a.Reload()
			case <-done:
				return
			}
		}
	}()
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
