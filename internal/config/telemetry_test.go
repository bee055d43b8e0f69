package config

import (
	"strings"
	"testing"
)

func TestTelemetrySection(t *testing.T) {
	tests := []struct {
		name string
		otlp OTLP
		keys []string // problem keys, none when valid
	}{
		{"off", OTLP{}, nil},
		{"http collector", OTLP{Endpoint: "http://otel-collector.observability:4318"}, nil},
		{"https with a path", OTLP{Endpoint: "https://otlp.example.com/otlp", Protocol: "http/protobuf"}, nil},
		{"grpc", OTLP{Endpoint: "http://127.0.0.1:4317", Protocol: "grpc"}, nil},
		{"protocol alone (the endpoint from the environment)", OTLP{Protocol: "grpc"}, nil},
		{"http/json", OTLP{Endpoint: "http://127.0.0.1:4318", Protocol: "http/json"}, []string{"telemetry.otlp.protocol"}},
		{"no scheme", OTLP{Endpoint: "otel-collector:4318"}, []string{"telemetry.otlp.endpoint"}},
		{"not http", OTLP{Endpoint: "grpc://otel-collector:4317"}, []string{"telemetry.otlp.endpoint"}},
		{"credentials", OTLP{Endpoint: "https://user:key@otlp.example.com"}, []string{"telemetry.otlp.endpoint"}},
		{"query", OTLP{Endpoint: "https://otlp.example.com/?api-key=x"}, []string{"telemetry.otlp.endpoint"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			c.Telemetry.OTLP = tc.otlp
			err := c.Validate()
			if got := problemKeys(err); strings.Join(got, ",") != strings.Join(tc.keys, ",") {
				t.Errorf("problems at %v, want %v (%v)", got, tc.keys, err)
			}
		})
	}
	c := mustParse(t, minimal+"telemetry:\n  otlp:\n    endpoint: http://127.0.0.1:4318\n    protocol: grpc\n", testEnv)
	if c.Telemetry.OTLP != (OTLP{Endpoint: "http://127.0.0.1:4318", Protocol: "grpc"}) {
		t.Errorf("decoded %+v", c.Telemetry.OTLP)
	}
}

// problemKeys returns the keys of the Problems err holds, in order.
func problemKeys(err error) []string {
	var keys []string
	if ps, ok := err.(Problems); ok {
		for _, p := range ps {
			keys = append(keys, p.Key)
		}
	}
	return keys
}
