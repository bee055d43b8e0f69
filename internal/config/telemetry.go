package config

import "net/url"

// Telemetry configures the gateway's OpenTelemetry traces. The standard
// OTEL_* environment variables configure them too (and turn them on
// without this section); OTEL_SDK_DISABLED=true turns them off.
type Telemetry struct {
	// OTLP is where spans are exported.
	OTLP OTLP `yaml:"otlp"`
}

// OTLP configures the OTLP trace exporter.
type OTLP struct {
	// Endpoint is the collector's base URL, such as
	// http://otel-collector:4318, as OTEL_EXPORTER_OTLP_ENDPOINT: setting
	// it turns traces on, and it wins over the variables.
	Endpoint string `yaml:"endpoint"`
	// Protocol is http/protobuf or grpc; empty means the variables'
	// protocol, or http/protobuf.
	Protocol string `yaml:"protocol"`
}

func (c *Config) validateTelemetry(v *validator) {
	o := c.Telemetry.OTLP
	if o.Protocol != "" {
		v.oneOf("telemetry.otlp.protocol", o.Protocol, "http/protobuf", "grpc")
	}
	if o.Endpoint == "" {
		return
	}
	u, err := url.Parse(o.Endpoint)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		v.add("telemetry.otlp.endpoint", "must be an http:// or https:// URL, such as http://otel-collector:4318")
	case u.User != nil:
		// Configuration is logged and kept in a ConfigMap; a collector's
		// credential belongs in OTEL_EXPORTER_OTLP_HEADERS.
		v.add("telemetry.otlp.endpoint", "must not carry user information: set OTEL_EXPORTER_OTLP_HEADERS instead")
	case u.RawQuery != "" || u.Fragment != "":
		v.add("telemetry.otlp.endpoint", "must not have a query or a fragment")
	}
}
