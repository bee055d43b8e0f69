// Package telemetry sets up the gateway's OpenTelemetry traces: whether
// they are on, the OTLP exporter, the resource and the sampler, from the
// configuration's telemetry keys and the standard OTEL_* environment
// variables. Off, it hands out a no-op tracer provider, which costs nothing.
package telemetry
