#!/usr/bin/env bash
# The whole test suite, as CI runs it: dependencies, build, proto compatibility, type-check, lint,
# format, unit tests, then integration tests against real runc/conmon/CNI/registry. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
npm run build:native --silent
npm run build --silent
echo "== proto compatibility"
npm run proto:check --silent
echo "== lint"
npx eslint .
echo "== format"
npx prettier --check . >/dev/null || { npx prettier --check .; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rc=0
echo "== unit tests"
npx jest --selectProjects unit --ci --json --outputFile="$out/unit.json" || rc=1
echo "== integration tests"
npx jest --selectProjects integration --ci --runInBand --json --outputFile="$out/integration.json" || rc=1
node scripts/summary.js "$out/unit.json" "$out/integration.json" || rc=1
exit $rc
