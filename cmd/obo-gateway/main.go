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
	"errors"
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
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run runs the command line and returns the exit status: 0 on success, the
// code of a cli.ExitCoder (2 for an invalid configuration), 1 otherwise.
func run(args []string, stdout, stderr io.Writer) int {
	err := newApp(stdout, stderr).Run(args)
	if err == nil {
		return 0
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintln(stderr, "obo-gateway:", err)
	return 1
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
