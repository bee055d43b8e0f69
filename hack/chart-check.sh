#!/usr/bin/env bash
# Lints and renders the Helm chart charts/obo-gateway: helm lint --strict and
# helm template with the default values and with each file of
# charts/obo-gateway/examples, once for a recent Kubernetes (a native
# sidecar) and once without --kube-version, as a newcomer runs it (a helm
# built with go install assumes 1.20 there: a classic sidecar). The deeper checks (manifests decoded into
# their Kubernetes types, the sidecar's wiring, obo-gateway check on the
# rendered configuration) are the Go tests of internal/chartcheck.
#
#   bash hack/chart-check.sh
#
# Uses helm v3 from PATH or $(go env GOPATH)/bin, and installs it there with
# go install when it is missing (HELM_VERSION).
set -euo pipefail

HELM_VERSION=v3.22.0
# The recent Kubernetes rendered; gateway.nativeSidecar auto makes a native
# sidecar from 1.29.
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
for kube in "$KUBE_VERSION" ""; do
	for c in "${cases[@]}"; do
		name="${c%%:*}, Kubernetes ${kube:-as helm assumes}"
		file=${c#*:}
		args=()
		[[ -z $kube ]] || args+=(--kube-version "$kube")
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
		sidecar=classic
		if grep -q '^ *restartPolicy: Always$' "$out/render.yaml"; then
			sidecar=native
		fi
		echo "chart-check: ok   $name: $kinds; $sidecar sidecar"
	done
done
exit "$failed"
