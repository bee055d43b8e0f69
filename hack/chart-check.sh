#!/usr/bin/env bash
# Lints and renders the Helm chart charts/obo-gateway: helm lint --strict and
# helm template with the default values and with each file of
# charts/obo-gateway/examples. The deeper checks (manifests decoded into
# their Kubernetes types, the sidecar's wiring, obo-gateway check on the
# rendered configuration) are the Go tests of internal/chartcheck.
#
#   bash hack/chart-check.sh
#
# Uses helm v3 from PATH or $(go env GOPATH)/bin, and installs it there with
# go install when it is missing (HELM_VERSION).
set -euo pipefail

HELM_VERSION=v3.22.0
# helm built with go install assumes Kubernetes 1.20 unless told otherwise;
# the chart's native sidecar needs 1.29.
KUBE_VERSION=1.33.0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
chart=$root/charts/obo-gateway

helm=$(command -v helm || true)
if [[ -z $helm ]]; then
	gobin=$(go env GOBIN)
	[[ -n $gobin ]] || gobin=$(go env GOPATH | cut -d: -f1)/bin
	if [[ ! -x $gobin/helm ]]; then
		echo "chart-check: installing helm $HELM_VERSION into $gobin" >&2
		go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
	fi
	helm=$gobin/helm
fi
version=$("$helm" version --template '{{.Version}}')
if [[ $version != v3.* ]]; then
	echo "chart-check: $helm is helm $version; need helm v3 (go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION)" >&2
	exit 1
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

cases=("default values:")
for f in "$chart"/examples/*.yaml; do
	cases+=("examples/$(basename "$f"):$f")
done

failed=0
for c in "${cases[@]}"; do
	name=${c%%:*}
	file=${c#*:}
	args=(--kube-version "$KUBE_VERSION")
	[[ -z $file ]] || args+=(--values "$file")
	if ! "$helm" lint --strict --quiet "${args[@]}" "$chart"; then
		echo "chart-check: FAIL helm lint --strict ($name)" >&2
		failed=1
		continue
	fi
	if ! "$helm" template release "$chart" --namespace apps "${args[@]}" >"$out/render.yaml"; then
		echo "chart-check: FAIL helm template ($name)" >&2
		failed=1
		continue
	fi
	kinds=$(grep -E '^kind: ' "$out/render.yaml" | sed 's/^kind: //' | sort | uniq -c | awk '{printf "%s%s×%s", sep, $2, $1; sep=", "}')
	echo "chart-check: ok   $name: $kinds"
done
exit "$failed"
