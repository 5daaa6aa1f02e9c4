#!/usr/bin/env bash
# Runs the benchmarks in test/bench/ (all, or the ones named): npm run bench [-- pull pods ...]
# Needs root and the same packages as the tests; prints each benchmark's figures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm run build:native --silent
npm run build --silent
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  names=()
  for f in dist/test/bench/*.js; do names+=("$(basename "$f" .js)"); done
fi
for n in "${names[@]}"; do
  echo "== bench: $n"
  node "dist/test/bench/$n.js"
done
