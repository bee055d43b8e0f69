package rediscache

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// tracingHook makes a client span of every Redis command and pipeline run
// within a trace (not those of a connection's set-up, or of a refresh ahead
// of expiry, which belong to none). It records the command's name only:
// keys hold user fingerprints, and values are sealed tokens.
type tracingHook struct{ tracer trace.Tracer }

var _ redis.Hook = tracingHook{}

func (tracingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h tracingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			return next(ctx, cmd)
		}
		name := strings.ToUpper(cmd.Name())
		ctx, span := h.start(ctx, "redis "+name, semconv.DBOperationName(name))
		err := next(ctx, cmd)
		h.end(span, err)
		return err
	}
}

func (h tracingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			return next(ctx, cmds)
		}
		ctx, span := h.start(ctx, "redis pipeline", semconv.DBOperationBatchSize(len(cmds)))
		err := next(ctx, cmds)
		h.end(span, err)
		return err
	}
}

func (h tracingHook) start(ctx context.Context, name string, attr attribute.KeyValue) (context.Context, trace.Span) {
	return h.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.DBSystemNameRedis, attr))
}

// end ends span with the kind of err as its status: never the error's text,
// which may quote a command.
func (tracingHook) end(span trace.Span, err error) {
	switch {
	case err == nil || errors.Is(err, redis.Nil):
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		span.SetStatus(codes.Error, "timeout")
	case isNetError(err):
		span.SetStatus(codes.Error, "unavailable")
	default:
		span.SetStatus(codes.Error, "error")
	}
	span.End()
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}
