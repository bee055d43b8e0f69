package telemetry

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// The OTLP protocols the exporter speaks.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// DefaultServiceName is the service.name of the gateway's spans unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES names another.
const DefaultServiceName = "obo-gateway"

// The standard variables that decide whether traces are exported and how.
// The exporter and the SDK read the others themselves (headers, timeout,
// compression, certificates, resource attributes, sampler, batching).
const (
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
	EnvTracesExporter = "OTEL_TRACES_EXPORTER"
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
)

// Options configures Traces.
type Options struct {
	// Endpoint is telemetry.otlp.endpoint: the collector's base URL, as
	// OTEL_EXPORTER_OTLP_ENDPOINT (http/protobuf posts to Endpoint +
	// "/v1/traces"). When set it wins over the variables.
	Endpoint string
	// Protocol is telemetry.otlp.protocol; empty means the variables'
	// protocol, or ProtocolHTTP.
	Protocol string
	// Version is the service.version of the spans.
	Version string
}

// Traces is the gateway's tracer provider and what it exports to.
type Traces struct {
	// Provider makes the gateway's tracers: the SDK's when traces are on,
	// a no-op provider otherwise.
	Provider trace.TracerProvider
	// Protocol and Endpoint say where spans go, for the startup log
	// (Endpoint without user information or query); both are empty when
	// off.
	Protocol, Endpoint string
	sdk                *sdktrace.TracerProvider
}

// Off returns Traces that export nothing.
func Off() *Traces { return &Traces{Provider: noop.NewTracerProvider()} }

// New returns the gateway's Traces: on when opts.Endpoint,
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set,
// unless OTEL_SDK_DISABLED is true or OTEL_TRACES_EXPORTER is none. Nothing
// is dialled here.
func New(ctx context.Context, opts Options) (*Traces, error) {
	if !enabled(opts) {
		return Off(), nil
	}
	protocol, err := protocolOf(opts)
	if err != nil {
		return nil, err
	}
	exp, endpoint, err := newExporter(ctx, protocol, opts.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(DefaultServiceName), semconv.ServiceVersion(opts.Version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: last, so they win
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	// The sampler is the SDK's choice from OTEL_TRACES_SAMPLER and
	// OTEL_TRACES_SAMPLER_ARG, parentbased_always_on by default.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Traces{Provider: tp, Protocol: protocol, Endpoint: endpoint, sdk: tp}, nil
}

// On reports whether spans are exported.
func (t *Traces) On() bool { return t.sdk != nil }

// Shutdown exports the spans not sent yet and stops the exporter, within
// ctx. It is a no-op when traces are off or already shut down.
func (t *Traces) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry: flush spans: %w", err)
	}
	return nil
}

// enabled reports whether opts and the environment turn traces on.
func enabled(opts Options) bool {
	if strings.EqualFold(strings.TrimSpace(os.Getenv(EnvSDKDisabled)), "true") {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(os.Getenv(EnvTracesExporter)), "none") {
		return false
	}
	return opts.Endpoint != "" || os.Getenv(EnvEndpoint) != "" || os.Getenv(EnvTracesEndpoint) != ""
}

// protocolOf returns the OTLP protocol: opts.Protocol, then the traces
// variable, then the general one, then ProtocolHTTP.
func protocolOf(opts Options) (string, error) {
	p := cmp.Or(opts.Protocol, strings.TrimSpace(os.Getenv(EnvTracesProtocol)), strings.TrimSpace(os.Getenv(EnvProtocol)), ProtocolHTTP)
	if p != ProtocolHTTP && p != ProtocolGRPC {
		return "", fmt.Errorf("telemetry: OTLP protocol %q is not supported: use %s or %s", p, ProtocolHTTP, ProtocolGRPC)
	}
	return p, nil
}

// newExporter returns the OTLP exporter of protocol, sending to endpoint
// when it is set (otherwise to the endpoint of the variables), and the
// endpoint to report.
func newExporter(ctx context.Context, protocol, endpoint string) (*otlptrace.Exporter, string, error) {
	shown := cmp.Or(redacted(endpoint), redacted(os.Getenv(EnvTracesEndpoint)), redacted(os.Getenv(EnvEndpoint)))
	if protocol == ProtocolGRPC {
		var o []otlptracegrpc.Option
		if endpoint != "" {
			o = append(o, otlptracegrpc.WithEndpointURL(endpoint))
		}
		exp, err := otlptracegrpc.New(ctx, o...)
		return exp, shown, err
	}
	var o []otlptracehttp.Option
	if endpoint != "" {
		o = append(o, otlptracehttp.WithEndpointURL(strings.TrimSuffix(endpoint, "/")+"/v1/traces"))
	}
	exp, err := otlptracehttp.New(ctx, o...)
	return exp, shown, err
}

// redacted returns raw without user information and query (where a
// credential could hide), or "" when it is not a URL.
func redacted(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return ""
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}
