# obo-gateway container image, for one platform or several:
#
#   docker build --build-arg VERSION=v1.2.3 --build-arg COMMIT=$(git rev-parse --short HEAD) -t obo-gateway .
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=v1.2.3 -t obo-gateway .
#
# The build stage runs on the builder's own platform and cross-compiles for
# the target one (the binary is pure Go), so no platform is emulated. The go
# build command is hack/go-build.sh, which CI also runs for linux/arm64; its
# flags are those cmd/obo-gateway/main_test.go builds with, and
# internal/chartcheck checks that they agree.
# Lint: bash hack/lint-dockerfile.sh

# Build stage. Keep the Go minor version in step with the go directive of go.mod.
FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build

WORKDIR /src

# Module downloads get a layer of their own, rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .

# TARGETOS and TARGETARCH are set by BuildKit from --platform (empty with
# the legacy builder, which builds for the host).
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
RUN GOOS=${TARGETOS} GOARCH=${TARGETARCH} VERSION=${VERSION} COMMIT=${COMMIT} \
        bash hack/go-build.sh /out/obo-gateway

# Final stage: static binary on distroless, no shell, non-root. The gateway
# writes nothing to disk, so the root file system can be mounted read-only.
FROM gcr.io/distroless/static-debian12:nonroot

ARG VERSION=dev
ARG COMMIT=unknown
# licenses: the SPDX identifier of LICENSE (internal/chartcheck checks that they agree).
LABEL org.opencontainers.image.title="obo-gateway" \
      org.opencontainers.image.description="Sidecar reverse proxy that exchanges the caller's token for downstream tokens with the OAuth 2.0 On-Behalf-Of flow (Microsoft identity platform)" \
      org.opencontainers.image.source="https://github.com/obo-gateway/obo-gateway" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"

COPY --from=build /out/obo-gateway /usr/local/bin/obo-gateway

USER 65532:65532
# 8080: the gateway (the application calls it on 127.0.0.1); 9090: /healthz, /readyz, /metrics.
EXPOSE 8080 9090

ENTRYPOINT ["obo-gateway"]
CMD ["serve", "--config", "/etc/obo-gateway/config.yaml"]
