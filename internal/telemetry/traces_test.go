package telemetry

import (
	"context"
	"strings"
	"testing"
)

// TestSwitch: which settings turn traces on, and with which protocol.
func TestSwitch(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		env      map[string]string
		on       bool
		protocol string
		endpoint string
		err      string
	}{
		{"nothing set", Options{}, nil, false, "", "", ""},
		{"the configuration's endpoint", Options{Endpoint: "http://127.0.0.1:4318"}, nil, true, ProtocolHTTP, "http://127.0.0.1:4318", ""},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", Options{}, map[string]string{EnvEndpoint: "http://127.0.0.1:4318"}, true, ProtocolHTTP, "http://127.0.0.1:4318", ""},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", Options{}, map[string]string{EnvTracesEndpoint: "https://u:p@127.0.0.3:4318/v1/traces?key=k"},
			true, ProtocolHTTP, "https://127.0.0.3:4318/v1/traces", ""},
		{"the configuration wins", Options{Endpoint: "http://127.0.0.1:4318"}, map[string]string{EnvEndpoint: "http://127.0.0.2:4318"},
			true, ProtocolHTTP, "http://127.0.0.1:4318", ""},
		{"grpc from the variable", Options{}, map[string]string{EnvEndpoint: "http://127.0.0.1:4317", EnvProtocol: "grpc"}, true, ProtocolGRPC, "http://127.0.0.1:4317", ""},
		{"the traces protocol wins", Options{}, map[string]string{EnvEndpoint: "http://127.0.0.1:4317", EnvProtocol: "http/protobuf", EnvTracesProtocol: "grpc"},
			true, ProtocolGRPC, "http://127.0.0.1:4317", ""},
		{"the configuration's protocol wins", Options{Protocol: ProtocolHTTP}, map[string]string{EnvEndpoint: "http://127.0.0.1:4318", EnvProtocol: "grpc"},
			true, ProtocolHTTP, "http://127.0.0.1:4318", ""},
		{"OTEL_SDK_DISABLED", Options{Endpoint: "http://127.0.0.1:4318"}, map[string]string{EnvSDKDisabled: "TRUE"}, false, "", "", ""},
		{"OTEL_SDK_DISABLED false", Options{Endpoint: "http://127.0.0.1:4318"}, map[string]string{EnvSDKDisabled: "false"}, true, ProtocolHTTP, "http://127.0.0.1:4318", ""},
		{"OTEL_TRACES_EXPORTER none", Options{}, map[string]string{EnvEndpoint: "http://127.0.0.1:4318", EnvTracesExporter: "none"}, false, "", "", ""},
		{"http/json", Options{}, map[string]string{EnvEndpoint: "http://127.0.0.1:4318", EnvProtocol: "http/json"}, false, "", "", `"http/json" is not supported`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{EnvSDKDisabled, EnvTracesExporter, EnvEndpoint, EnvTracesEndpoint, EnvProtocol, EnvTracesProtocol} {
				t.Setenv(k, tc.env[k])
			}
			tr, err := New(context.Background(), tc.opts)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Shutdown(context.Background())
			if tr.On() != tc.on || tr.Protocol != tc.protocol || tr.Endpoint != tc.endpoint {
				t.Errorf("on %v, protocol %q, endpoint %q; want %v, %q, %q", tr.On(), tr.Protocol, tr.Endpoint, tc.on, tc.protocol, tc.endpoint)
			}
		})
	}
}
