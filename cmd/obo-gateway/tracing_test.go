package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/echo"
	"github.com/obo-gateway/obo-gateway/internal/localidp"
	"github.com/obo-gateway/obo-gateway/internal/otlptest"
)

const (
	traceClientID = "11111111-2222-4333-8444-0000000007ce"
	traceSecret   = "trace-Secret~0123456789abcdef"
	traceAPI      = "api://trace-api"
)

// TestTracesFromTheEnvironment runs the binary with the standard OTEL_*
// variables and no telemetry section, sends one request with a caller's
// traceparent and stops the gateway with SIGTERM at once: the spans it
// must export arrive before it exits (flushed within the drain, long
// before the batch's own 5s delay), with the resource the variables say;
// the variables that turn traces off leave the collector without a byte.
func TestTracesFromTheEnvironment(t *testing.T) {
	idp, err := localidp.New(localidp.Options{
		Clients: []localidp.Client{{ID: traceClientID, Secret: traceSecret, IdentifierURI: traceAPI}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	echoSrv := httptest.NewServer(echo.NewHandler())
	defer echoSrv.Close()
	config := fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
log: {level: info, format: json, requests: all}
authority:
  url: %s
client:
  id: %s
  secret: ${TRACE_TEST_SECRET}
inbound:
  audiences: [%s]
routes:
  - name: echo
    path_prefix: /echo
    upstream: %s/api
    scopes: [api://echo-api/Echo.Read]
`, idp.Authority(), traceClientID, traceAPI, echoSrv.URL)

	const caller = "0af7651916cd43dd8448eb211c80319c"
	tests := []struct {
		name    string
		grpc    bool
		env     func(url string) []string
		spans   bool
		service string
	}{
		{"OTEL_EXPORTER_OTLP_ENDPOINT", false, func(u string) []string {
			return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + u, "OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=ci"}
		}, true, "obo-gateway"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", false, func(u string) []string {
			return []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=" + u + "/v1/traces", "OTEL_SERVICE_NAME=payments-gateway",
				"OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=ci"}
		}, true, "payments-gateway"},
		{"grpc", true, func(u string) []string {
			return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + u, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
				"OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=ci"}
		}, true, "obo-gateway"},
		{"OTEL_SDK_DISABLED", false, func(u string) []string {
			return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + u, "OTEL_SDK_DISABLED=true"}
		}, false, ""},
		{"OTEL_TRACES_EXPORTER=none", false, func(u string) []string {
			return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + u, "OTEL_TRACES_EXPORTER=none"}
		}, false, ""},
		{"sampled at zero", false, func(u string) []string {
			return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + u, "OTEL_TRACES_SAMPLER=traceidratio", "OTEL_TRACES_SAMPLER_ARG=0"}
		}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := otlptest.Start(t)
			if tc.grpc {
				c = otlptest.StartGRPC(t)
			}
			// A caller's sampled-out context: the sampler decides.
			flags := "01"
			if tc.name == "sampled at zero" {
				flags = "00"
			}
			g := startGateway(t, config, append(tc.env(c.URL()), "TRACE_TEST_SECRET="+traceSecret)...)
			tok, err := idp.IssueToken(localidp.UserToken{ObjectID: "trace-user-1", Audience: traceAPI, Scopes: []string{"access_as_user"}})
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodGet, "http://"+g.addr+"/echo/x", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Traceparent", "00-"+caller+"-b7ad6b7169203331-"+flags)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var seen struct {
				Headers map[string][]string `json:"headers"`
			}
			err = json.NewDecoder(res.Body).Decode(&seen)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("status %d, %v", res.StatusCode, err)
			}
			if down := seen.Headers["Traceparent"]; len(down) != 1 || !strings.HasPrefix(down[0], "00-"+caller+"-") {
				t.Errorf("the downstream received traceparent %q, want one of trace %s", down, caller)
			}
			if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if !g.exitsWithin(10 * time.Second) {
				t.Fatal("the gateway did not exit")
			}
			if !strings.Contains(g.logs.String(), `"trace_id":"`+caller+`"`) {
				t.Errorf("no request line with trace_id %s:\n%s", caller, g.logs)
			}
			spans := c.Spans()
			if !tc.spans {
				if n := len(c.Raw()); n != 0 {
					t.Errorf("%d exports arrived, want none", n)
				}
				return
			}
			var server *otlptest.Span
			for i, s := range spans {
				if s.Kind == 2 { // SPAN_KIND_SERVER
					server = &spans[i]
				}
			}
			if server == nil {
				t.Fatalf("the server span was not exported before the gateway exited (%d spans)", len(spans))
			}
			if server.TraceID() != caller || server.Parent() != "b7ad6b7169203331" {
				t.Errorf("server span of trace %s, parent %s", server.TraceID(), server.Parent())
			}
			if got := server.Resource["service.name"]; got != tc.service {
				t.Errorf("service.name %q, want %q", got, tc.service)
			}
			if got := server.Resource["deployment.environment.name"]; got != "ci" {
				t.Errorf("deployment.environment.name %q, want ci (OTEL_RESOURCE_ATTRIBUTES)", got)
			}
		})
	}
}

// TestUnsupportedOTLPProtocol: a protocol the exporter does not speak stops
// the gateway at start with the variable's value, rather than losing every
// span.
func TestUnsupportedOTLPProtocol(t *testing.T) {
	path := filepath.Join(t.TempDir(), "obo-gateway.yaml")
	err := os.WriteFile(path, []byte(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
authority: {url: "http://127.0.0.1:1/tenant/v2.0"}
client: {id: client, secret: not-used}
inbound: {audiences: [api://a]}
routes: [{name: a, path_prefix: /a, upstream: "http://127.0.0.1:1", scopes: [api://b/.default]}]
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--config", path)
	cmd.Env = append(cmd.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL=http/json")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the gateway started: %s", out)
	}
	if !strings.Contains(string(out), `OTLP protocol "http/json" is not supported`) {
		t.Errorf("output: %s", out)
	}
}
