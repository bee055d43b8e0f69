#!/usr/bin/env bash
# Lints the Dockerfile with dockerfile-utils (npm), failing on every
# diagnostic, warnings included.
#
#   bash hack/lint-dockerfile.sh [DOCKERFILE]
#
# The linter is installed on first use into a cache directory
# (OBO_GATEWAY_TOOLS, default ${XDG_CACHE_HOME:-~/.cache}/obo-gateway-tools),
# pinned to DOCKERFILE_UTILS_VERSION. Needs node and npm.
set -euo pipefail

DOCKERFILE_UTILS_VERSION=0.16.3

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dockerfile=${1:-$root/Dockerfile}
tools=${OBO_GATEWAY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/obo-gateway-tools}
prefix=$tools/dockerfile-utils-$DOCKERFILE_UTILS_VERSION
linter=$prefix/node_modules/.bin/dockerfile-utils

for tool in node npm; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "lint-dockerfile: $tool is not installed (apt-get install nodejs npm)" >&2
		exit 1
	fi
done

if [[ ! -x $linter ]]; then
	echo "lint-dockerfile: installing dockerfile-utils@$DOCKERFILE_UTILS_VERSION into $prefix" >&2
	mkdir -p "$prefix"
	npm install --prefix "$prefix" --no-audit --no-fund --no-save --loglevel=error \
		"dockerfile-utils@$DOCKERFILE_UTILS_VERSION" >&2
fi

# dockerfile-utils exits 1 on errors only; read its JSON to fail on warnings too.
report=$("$linter" lint --json "$dockerfile") || true
node -e '
const diags = JSON.parse(process.argv[1]);
const file = process.argv[2];
for (const d of diags) {
	console.error(`${file}:${d.range.start.line + 1}:${d.range.start.character + 1}: ${d.severity}: ${d.message}`);
}
if (diags.length > 0) {
	console.error(`lint-dockerfile: ${diags.length} problem(s)`);
	process.exit(1);
}
console.log(`lint-dockerfile: ${file}: no problems (dockerfile-utils ${process.argv[3]})`);
' "$report" "${dockerfile#"$root"/}" "$DOCKERFILE_UTILS_VERSION"
