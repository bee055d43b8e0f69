# obo-gateway container image.
#
#   docker build --build-arg VERSION=v1.2.3 --build-arg COMMIT=$(git rev-parse --short HEAD) -t obo-gateway .
#
# The build flags below are the ones cmd/obo-gateway/main_test.go builds the
# binary with; internal/chartcheck checks that the two agree.
# Lint: bash hack/lint-dockerfile.sh

# Build stage. Keep the Go minor version in step with the go directive of go.mod.
FROM golang:1.26.8-bookworm AS build

WORKDIR /src

# Module downloads get a layer of their own, rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .

ARG VERSION=dev
ARG COMMIT=unknown
ENV CGO_ENABLED=0
# urfave_cli_no_docs leaves out urfave/cli's man-page generator, whose
# Markdown tables every garbage collection would otherwise scan.
RUN go build -trimpath -tags urfave_cli_no_docs \
        -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
        -o /out/obo-gateway ./cmd/obo-gateway \
    && /out/obo-gateway version

# Final stage: static binary on distroless, no shell, non-root. The gateway
# writes nothing to disk, so the root file system can be mounted read-only.
FROM gcr.io/distroless/static-debian12:nonroot

ARG VERSION=dev
ARG COMMIT=unknown
# SPDX expression of the project's license; NOASSERTION until the repository has a LICENSE file.
ARG LICENSES=NOASSERTION
LABEL org.opencontainers.image.title="obo-gateway" \
      org.opencontainers.image.description="Sidecar reverse proxy that exchanges the caller's token for downstream tokens with the OAuth 2.0 On-Behalf-Of flow (Microsoft identity platform)" \
      org.opencontainers.image.source="https://github.com/obo-gateway/obo-gateway" \
      org.opencontainers.image.licenses="${LICENSES}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"

COPY --from=build /out/obo-gateway /usr/local/bin/obo-gateway

USER 65532:65532
# 8080: the gateway (the application calls it on 127.0.0.1); 9090: /healthz, /readyz, /metrics.
EXPOSE 8080 9090

ENTRYPOINT ["obo-gateway"]
CMD ["serve", "--config", "/etc/obo-gateway/config.yaml"]
