#!/usr/bin/env bash
# Builds the release binary of obo-gateway: the one build command, run by the
# Dockerfile for each target platform and by CI for linux/arm64, so that the
# two cannot drift apart.
#
#   GOOS=linux GOARCH=arm64 VERSION=v1.2.3 COMMIT=abc1234 bash hack/go-build.sh OUTPUT
#
# GOOS and GOARCH default to the host's; VERSION and COMMIT are stamped into
# the binary (obo-gateway version). The binary is static (CGO_ENABLED=0), so
# it cross-compiles without a C toolchain and runs on distroless/static.
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: go-build.sh OUTPUT" >&2
	exit 2
fi
out=$1
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CGO_ENABLED=0
# urfave_cli_no_docs leaves out urfave/cli's man-page generator, whose
# Markdown tables every garbage collection would otherwise scan.
go build -trimpath -tags urfave_cli_no_docs \
	-ldflags "-s -w -X main.version=${VERSION:-dev} -X main.commit=${COMMIT:-unknown}" \
	-o "$out" ./cmd/obo-gateway

# A binary for this machine can show that it runs.
if [[ $(go env GOOS)/$(go env GOARCH) == $(go env GOHOSTOS)/$(go env GOHOSTARCH) ]]; then
	"$out" version
fi
