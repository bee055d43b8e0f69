// Command obo-gateway is a sidecar reverse proxy that exchanges the caller's
// token for downstream tokens with the OAuth 2.0 On-Behalf-Of flow.
//
//	obo-gateway serve --config FILE    run the sidecar
//	obo-gateway check --config FILE    validate a configuration and list its routes
//	obo-gateway dev                    run a local demo: identity provider, echo API, gateway
//	obo-gateway version                print the version
//
// Every flag can also be set with an OBO_GATEWAY_* environment variable,
// named in the flag's help.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	if err := newApp(os.Stdout, os.Stderr).Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "obo-gateway:", err)
		os.Exit(1)
	}
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:      "obo-gateway",
		Usage:     "a sidecar that swaps the caller's token for downstream tokens (OAuth 2.0 On-Behalf-Of)",
		Version:   version,
		Writer:    stdout,
		ErrWriter: stderr,
		// Errors are printed once, by main, or as cli.Exit messages.
		ExitErrHandler:  func(*cli.Context, error) {},
		HideHelpCommand: true,
		Commands: []*cli.Command{
			serveCommand(),
			checkCommand(),
			devCommand(),
			{
				Name:  "version",
				Usage: "print the version and commit",
				Action: func(c *cli.Context) error {
					fmt.Fprintf(c.App.Writer, "obo-gateway %s (commit %s)\n", version, commit)
					return nil
				},
			},
		},
	}
}

func configFlag() *cli.StringFlag {
	return &cli.StringFlag{
		Name:     "config",
		Aliases:  []string{"c"},
		Usage:    "read the configuration from `FILE` (YAML)",
		EnvVars:  []string{"OBO_GATEWAY_CONFIG"},
		Required: true,
	}
}

func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name:    "log-level",
			Usage:   "log `LEVEL`: debug, info, warn or error (overrides log.level)",
			EnvVars: []string{"OBO_GATEWAY_LOG_LEVEL"},
		},
		&cli.StringFlag{
			Name:    "log-format",
			Usage:   "log `FORMAT`: text or json (overrides log.format)",
			EnvVars: []string{"OBO_GATEWAY_LOG_FORMAT"},
		},
	}
}

func listenFlags(listenDefault, adminDefault string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name:    "listen",
			Usage:   "serve the gateway on `HOST:PORT` (overrides listen)",
			EnvVars: []string{"OBO_GATEWAY_LISTEN"},
			Value:   listenDefault,
		},
		&cli.StringFlag{
			Name:    "admin-listen",
			Usage:   "serve /healthz, /readyz and /metrics on `HOST:PORT` (overrides admin_listen)",
			EnvVars: []string{"OBO_GATEWAY_ADMIN_LISTEN"},
			Value:   adminDefault,
		},
	}
}
