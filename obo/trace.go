package obo

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Attributes of an exchange's span. None holds a token, a user or the
// authority's error description (which may name the user).
const (
	attrFlow          = attribute.Key("obo_gateway.flow")
	attrOutcome       = attribute.Key("obo_gateway.outcome")
	attrLeg           = attribute.Key("obo_gateway.agent_leg")
	attrError         = attribute.Key("obo_gateway.authority.error")
	attrErrorCodes    = attribute.Key("obo_gateway.authority.error_codes")
	attrTraceID       = attribute.Key("obo_gateway.authority.trace_id")
	attrCorrelationID = attribute.Key("obo_gateway.authority.correlation_id")
)

// tracerOf returns the tracer of tp, a no-op one when tp is nil.
func tracerOf(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer("github.com/obo-gateway/obo-gateway/obo")
}

// Token performs req. On-Behalf-Of exchanges assertion (token A) for a
// token for the scopes; a refresh token in the answer is discarded, since
// the gateway always exchanges token A again. Client credentials ask for an
// app-only token for scopes of the form "<resource>/.default".
//
// Each call is one span of Config.TracerProvider, "exchange", with its
// flow and outcome and, when the authority refused, its error code, error
// codes, trace_id and correlation_id.
func (c *Client) Token(ctx context.Context, req Request) (*Token, error) {
	flow := req.Flow
	if flow == "" {
		flow = FlowOnBehalfOf
	}
	return c.traced(ctx, flow, "", func(ctx context.Context) (*Token, error) { return c.token(ctx, req) })
}

// traced runs one token request, do, in an "exchange" span of flow and,
// for an agent flow's intermediate token, its leg.
func (c *Client) traced(ctx context.Context, flow, leg string, do func(context.Context) (*Token, error)) (*Token, error) {
	attrs := []attribute.KeyValue{attrFlow.String(flow)}
	if leg != "" {
		attrs = append(attrs, attrLeg.String(leg))
	}
	ctx, span := c.tracer.Start(ctx, "exchange", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	tok, err := do(ctx)
	outcome := Outcome(err)
	span.SetAttributes(attrOutcome.String(outcome))
	if err == nil {
		return tok, nil
	}
	var ae *Error
	if errors.As(err, &ae) {
		span.SetAttributes(attrError.String(ae.Code), attrTraceID.String(ae.TraceID),
			attrCorrelationID.String(ae.CorrelationID))
		if len(ae.ErrorCodes) > 0 {
			codes := make([]int64, len(ae.ErrorCodes))
			for i, n := range ae.ErrorCodes {
				codes[i] = int64(n)
			}
			span.SetAttributes(attrErrorCodes.Int64Slice(codes))
		}
	}
	span.SetStatus(codes.Error, outcome)
	return tok, err
}
