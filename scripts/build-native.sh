#!/usr/bin/env bash
# Builds native/ (the N-API helper) against this machine's Node headers; no download.
set -euo pipefail
cd "$(dirname "$0")/.."
nodedir=$(npm config get nodedir 2>/dev/null || true)
if [ -z "$nodedir" ] || [ "$nodedir" = undefined ] || [ ! -f "$nodedir/include/node/node_api.h" ]; then
  nodedir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
fi
out=native/build/Release/berth_native.node
if [ -f "$out" ] && [ -z "$(find native/src native/binding.gyp -newer "$out" 2>/dev/null)" ]; then
  exit 0
fi
npx node-gyp rebuild --silent --directory=native --nodedir="$nodedir"
