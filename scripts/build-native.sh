#!/usr/bin/env bash
# Builds native/ (the N-API helper) against this machine's Node headers; no download.
set -euo pipefail
cd "$(dirname "$0")/.."
nodedir=$(npm config get nodedir 2>/dev/null || true)
if [ -z "$nodedir" ] || [ "$nodedir" = undefined ] || [ ! -f "$nodedir/include/node/node_api.h" ]; then
  nodedir=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
fi
out=native/build/Release/berth_native.node
if [ ! -f "$out" ] || [ -n "$(find native/src native/binding.gyp ! -name exec-helper.c ! -name crun-launcher.c -newer "$out" 2>/dev/null)" ]; then
  npx node-gyp rebuild --silent --directory=native --nodedir="$nodedir"
fi
# berth-exec: the exec helper (a program, not part of the addon). Needs libseccomp's headers;
# without them it is not built and ExecSync stays on runc exec.
helper=native/build/Release/berth-exec
if [ ! -f "$helper" ] || [ native/src/exec-helper.c -nt "$helper" ]; then
  if [ -f /usr/include/seccomp.h ]; then
    # static where libseccomp.a is there: no dynamic loader work on each exec (measured: about a
    # third less wall time per exec than the dynamically linked build)
    static=()
    [ -f "$(${CC:-cc} -print-file-name=libseccomp.a)" ] && static=(-static)
    ${CC:-cc} -std=gnu11 -O2 -Wall -Wextra "${static[@]}" -o "$helper.tmp" native/src/exec-helper.c -lseccomp
    mv "$helper.tmp" "$helper"
  else
    echo "build-native: libseccomp headers missing (apt-get install libseccomp-dev): berth-exec not built" >&2
  fi
fi
# berth-crun-v1: the crun launcher for cgroup v1/v2 hybrid hosts (internal/runtime/crun-hybrid.ts);
# static where libc.a is there, like berth-exec. Without it berthd writes a shell launcher instead.
launcher=native/build/Release/berth-crun-v1
if [ ! -f "$launcher" ] || [ native/src/crun-launcher.c -nt "$launcher" ]; then
  static=()
  [ -f "$(${CC:-cc} -print-file-name=libc.a)" ] && static=(-static)
  ${CC:-cc} -std=gnu11 -O2 -Wall -Wextra "${static[@]}" -o "$launcher.tmp" native/src/crun-launcher.c
  mv "$launcher.tmp" "$launcher"
fi
