package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/obo-gateway/obo-gateway/internal/app"
	"github.com/obo-gateway/obo-gateway/internal/config"
	"github.com/obo-gateway/obo-gateway/internal/echo"
	"github.com/obo-gateway/obo-gateway/internal/localidp"
)

// The demo's fixed identities.
const (
	devClientID = "00000000-0000-4000-8000-00000000a11a"
	devAPIURI   = "api://obo-gateway-dev"
	devAlice    = "00000000-0000-4000-8000-0000000a11ce"
	devBob      = "00000000-0000-4000-8000-000000000b0b"
	// The demo's agent identity, of the blueprint devClientID, and its
	// agent user.
	devAgent     = "00000000-0000-4000-8000-00000000a6e7"
	devAgentUser = "00000000-0000-4000-8000-0000a6e7b5e7"
	devAgentUPN  = "agent@obo-gateway.dev"
)

func devCommand() *cli.Command {
	return &cli.Command{
		Name:  "dev",
		Usage: "run a local demo: identity provider, echo API and gateway, no cloud account needed",
		Description: "Starts a local identity provider that signs real tokens, an echo API that shows what it\n" +
			"receives, and the gateway between them, then prints user tokens and curl commands to try.\n" +
			"Stops on Ctrl-C.",
		Flags: append(append(listenFlags("127.0.0.1:8080", "127.0.0.1:9090"), &cli.StringFlag{
			Name:    "token-api-listen",
			Usage:   "serve the Microsoft-compatible token API on `HOST:PORT` (loopback)",
			EnvVars: []string{"OBO_GATEWAY_TOKEN_API_LISTEN"},
			Value:   "127.0.0.1:5178",
		}), logFlags()...),
		Action: func(c *cli.Context) error {
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return runDev(ctx, c, c.App.Writer)
		},
	}
}

func runDev(ctx context.Context, c *cli.Context, out io.Writer) error {
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	idp, err := localidp.New(localidp.Options{
		Clients: []localidp.Client{{ID: devClientID, Secret: hex.EncodeToString(secret), IdentifierURI: devAPIURI}},
		AgentIdentities: []localidp.AgentIdentity{{ID: devAgent, Blueprint: devClientID,
			Users: []localidp.AgentUser{{ObjectID: devAgentUser, UPN: devAgentUPN}}}},
	})
	if err != nil {
		return fmt.Errorf("dev: identity provider: %w", err)
	}
	defer idp.Close()
	idp.SetUserBehavior(devBob, localidp.Behavior{Kind: localidp.BehaviorMFA})

	echoLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("dev: echo API: %w", err)
	}
	echoSrv := &http.Server{Handler: echo.NewHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = echoSrv.Serve(echoLn) }()
	defer echoSrv.Close()
	echoURL := "http://" + echoLn.Addr().String()

	yaml := fmt.Sprintf(`listen: %s
admin_listen: %s
authority:
  url: %s
client:
  id: %s
  secret: ${OBO_DEV_SECRET}
inbound:
  audiences: [%s, %s]
  required_scopes: [access_as_user]
routes:
  - name: echo
    path_prefix: /echo
    upstream: %s/api
    scopes: [api://echo-api/Echo.Read]
  - name: echo-app
    path_prefix: /echo-app
    upstream: %s/app
    scopes: [api://echo-api/.default]
    flow: client_credentials
  - name: echo-agent
    path_prefix: /echo-agent
    upstream: %s/agent
    scopes: [api://echo-api/.default]
    flow: agent_app
  - name: echo-agent-user
    path_prefix: /echo-agent-user
    upstream: %s/agent-user
    scopes: [api://echo-api/Echo.Read]
    flow: agent_user
agents:
  identities: [%s]
token_api:
  listen: %s
log:
  level: %s
  format: %s
  requests: all
`, c.String("listen"), c.String("admin-listen"), idp.Authority(), devClientID, devAPIURI, devClientID,
		echoURL, echoURL, echoURL, echoURL, devAgent, c.String("token-api-listen"),
		orDefault(c.String("log-level"), "info"), orDefault(c.String("log-format"), "text"))
	env := func(k string) (string, bool) {
		if k == "OBO_DEV_SECRET" {
			return hex.EncodeToString(secret), true
		}
		return "", false
	}
	cfg, err := config.Parse([]byte(yaml), "dev.yaml", env)
	if err != nil {
		return fmt.Errorf("dev: configuration: %w", err)
	}
	log, err := app.NewLogger(os.Stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	a, err := app.New(app.Options{Config: cfg, Logger: log, Version: version})
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}

	alice, err := idp.IssueToken(localidp.UserToken{ObjectID: devAlice, Audience: devAPIURI, Scopes: []string{"access_as_user"}, Lifetime: time.Hour})
	if err != nil {
		return err
	}
	bob, err := idp.IssueToken(localidp.UserToken{ObjectID: devBob, Audience: devAPIURI, Scopes: []string{"access_as_user"}, Lifetime: time.Hour})
	if err != nil {
		return err
	}
	gw, admin, api := "http://"+a.Addr(), "http://"+a.AdminAddr(), "http://"+a.TokenAPIAddr()
	fmt.Fprintf(out, `obo-gateway dev is running (Ctrl-C stops it)

  identity provider  %s
  echo API           %s
  gateway            %s  (admin %s)
  token API          %s

The configuration it runs (secret generated for this run):

%s
Try it. Tokens are valid for one hour.

  export TOKEN=%s
  export MFA_TOKEN=%s

  # 1. Call the echo API through the gateway. The echo API shows the token it
  #    received, its claims decoded under "token": token B (aud api://echo-api,
  #    scp Echo.Read, azp the gateway's client id), never your token A.
  curl -s -H "Authorization: Bearer $TOKEN" %s/echo/hello

  # 2. Call again: token B comes from the cache, no second exchange.
  curl -s -H "Authorization: Bearer $TOKEN" %s/echo/hello
  curl -s %s/metrics | grep -E '^obo_gateway_(exchanges_total|cache_lookups_total)'

  # 3. Bob must pass MFA: the gateway answers 401 with the authority's claims challenge.
  curl -si -H "Authorization: Bearer $MFA_TOKEN" %s/echo/hello

  # 4. No token, or a bad one: 401 with a Bearer challenge.
  curl -si %s/echo/hello

  # 5. An autonomous agent: the agent identity's own app token (azp the agent
  #    identity), no token A. Agent routes are for the local agent process.
  curl -s -H "X-Agent-Identity: %s" %s/echo-agent/hello

  # 6. The agent's user account: a token of the agent user (oid %s).
  curl -s -H "X-Agent-Identity: %s" -H "X-Agent-User: %s" %s/echo-agent-user/hello

  # 7. Microsoft's sidecar API, as its clients call it: an authorization header.
  curl -s "%s/AuthorizationHeaderUnauthenticated/echo-agent?AgentIdentity=%s"

`, idp.Authority(), echoURL, gw, admin, api, yaml, alice, bob, gw, gw, admin, gw, gw,
		devAgent, gw, devAgentUser, devAgent, devAgentUPN, gw, api, devAgent)
	return a.Run(ctx)
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
