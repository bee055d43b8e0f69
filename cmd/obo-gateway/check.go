package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/urfave/cli/v2"

	"github.com/obo-gateway/obo-gateway/internal/app"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/obo"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "validate a configuration file and print its routes",
		Description: "Lists every problem (file, key, what is wrong) and exits 2 if there is any.\n" +
			"Reads only local files unless --online is given; then it also fetches the authority's\n" +
			"discovery document and key set.",
		Flags: []cli.Flag{
			configFlag(),
			&cli.BoolFlag{
				Name:    "online",
				Usage:   "also fetch the authority's discovery document and key set",
				EnvVars: []string{"OBO_GATEWAY_CHECK_ONLINE"},
			},
		},
		Action: runCheck,
	}
}

func runCheck(c *cli.Context) error {
	path := c.String("config")
	cfg, err := config.Load(path)
	if err != nil {
		return cli.Exit(fmt.Sprintf("%v\n%s: configuration is invalid", err, path), 2)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "%s: configuration is valid\n", path)
	for _, warning := range cfg.Warnings() {
		fmt.Fprintln(w, "warning: "+warning)
	}
	if cfg.Client.ManagedIdentity != nil {
		// Which endpoint serves the identity depends on the environment.
		if cred, err := cfg.Credential(nil); err == nil {
			fmt.Fprintf(w, "credential: %v\n", cred)
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tPATH PREFIX\tUPSTREAM\tFLOW\tSCOPES")
	for _, r := range cfg.Routes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.PathPrefix, r.Upstream, r.Flow, strings.Join(r.Scopes, " "))
	}
	tw.Flush()
	if !c.Bool("online") {
		return nil
	}
	fmt.Fprintln(w)
	ctx, cancel := context.WithTimeout(c.Context, 2*cfg.Authority.Timeout.D())
	defer cancel()
	// The metadata as serve resolves it: configured values first, the
	// discovery document for the rest.
	hc := app.AuthorityClient(cfg)
	md, discovered, err := app.ResolveAuthority(ctx, hc, cfg)
	if discovered {
		fmt.Fprintf(w, "discovery: %s ok\n", obo.DiscoveryURL(cfg.Authority.URL))
	}
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	fmt.Fprintf(w, "issuer: %s\ntoken endpoint: %s\n", md.Issuer, md.TokenEndpoint)
	n, err := countKeys(ctx, hc, md.JWKSURI)
	if err != nil {
		return cli.Exit(fmt.Sprintf("authority.jwks_uri: %v", err), 2)
	}
	fmt.Fprintf(w, "key set: %s has %d keys\n", md.JWKSURI, n)
	return nil
}

func countKeys(ctx context.Context, hc *http.Client, u string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	set, err := fetchKeySet(ctx, hc, u)
	if err != nil {
		return 0, err
	}
	return set.Len(), nil
}

func fetchKeySet(ctx context.Context, hc *http.Client, u string) (jwk.Set, error) {
	set, err := jwk.Fetch(ctx, u, jwk.WithHTTPClient(hc))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	return set, nil
}
