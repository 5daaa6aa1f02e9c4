#!/usr/bin/env bash
# A local image registry for a machine without internet access: Debian's docker-registry on
# 127.0.0.1 (port 5000 unless taken), with its own data dir (/var/lib/berth-registry), seeded with
# busybox and the pause image built from busybox-static, and a berthd config drop-in that mirrors
# docker.io and registry.k8s.io to it. So `berthctl pull busybox` and the default pause image
# (registry.k8s.io/pause:3.10) work offline, and keep their usual names.
#
# It never uses a registry it did not start: when the port is held by another program it picks the
# next free port (or, with BERTH_REGISTRY_PORT set explicitly, fails naming the holder;
# BERTH_REGISTRY_PORT_STRICT=0 makes an explicit port a preference too). It writes
# its pid file (BERTH_REGISTRY_PID_FILE); scripts/berth-down.sh stops it. Paths: see
# scripts/lib-berth.sh. Needs root and a build (scripts/berth-up.sh runs this). Idempotent.
set -euo pipefail
port_given=${BERTH_REGISTRY_PORT:-}
# an explicit port must be that port, unless BERTH_REGISTRY_PORT_STRICT=0
strict=${BERTH_REGISTRY_PORT_STRICT:-$([ -n "$port_given" ] && echo 1 || echo 0)}
# shellcheck source=scripts/lib-berth.sh
. "$(dirname "$0")/lib-berth.sh"
cd "$BERTH_REPO"
dir=$BERTH_REGISTRY_DIR
[ -d "$dir" ] || berth_record dir "$dir"
mkdir -p "$dir"

registry_up() { curl -fsS --max-time 2 "http://$1/v2/" >/dev/null 2>&1; }

addr=
# Ours already running (its pid file, and it holds the port it was started on): keep it.
if pid=$(berth_pid_alive "$BERTH_REGISTRY_PID_FILE" docker-registry) && [ -f "$dir/registry.addr" ]; then
  prev=$(cat "$dir/registry.addr")
  holder=$(berth_port_holder "${prev##*:}" || true)
  if [[ "$holder" == "pid $pid "* ]] && registry_up "$prev" &&
    { [ "$strict" != 1 ] || [ "${prev##*:}" = "$port_given" ]; }; then
    addr=$prev
    echo "local-registry: already running (pid $pid) on http://$addr"
  else
    berth_stop_pidfile "the local registry" "$BERTH_REGISTRY_PID_FILE" docker-registry
  fi
fi

if [ -z "$addr" ]; then
  port=${port_given:-5000}
  if holder=$(berth_port_holder "$port"); then
    if [ "$strict" = 1 ]; then
      echo "local-registry: port $port is already in use by $holder; not using it (free it, or pick another BERTH_REGISTRY_PORT)" >&2
      exit 1
    fi
    echo "local-registry: port $port is in use by $holder; looking for a free port"
    found=
    for p in $(seq $((port + 1)) $((port + 100))); do
      if ! berth_port_holder "$p" >/dev/null; then
        found=$p
        break
      fi
    done
    if [ -z "$found" ]; then
      echo "local-registry: no free port in $((port + 1))-$((port + 100))" >&2
      exit 1
    fi
    port=$found
  fi
  addr=127.0.0.1:$port
  cat >"$dir/config.yml" <<YML
version: 0.1
log: { level: warn, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $dir/data }, delete: { enabled: true } }
http: { addr: $addr }
YML
  mkdir -p "$(dirname "$BERTH_REGISTRY_LOG")" "$(dirname "$BERTH_REGISTRY_PID_FILE")"
  nohup docker-registry serve "$dir/config.yml" >>"$BERTH_REGISTRY_LOG" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$BERTH_REGISTRY_PID_FILE"
  echo "$addr" >"$dir/registry.addr"
  ok=
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    # up, and the answer comes from the process we started (not one that took the port meanwhile)
    if registry_up "$addr" && [[ "$(berth_port_holder "$port" || true)" == "pid $pid "* ]]; then
      ok=1
      break
    fi
    sleep 0.1
  done
  if [ -z "$ok" ]; then
    echo "local-registry: docker-registry did not come up on $addr; last log lines:" >&2
    tail -n 10 "$BERTH_REGISTRY_LOG" >&2 || true
    berth_stop_pidfile "the local registry" "$BERTH_REGISTRY_PID_FILE" docker-registry >&2
    exit 1
  fi
fi

node dist/test/lab/seed.js "http://$addr"
mkdir -p "$(dirname "$BERTH_REGISTRY_DROPIN")"
berth_record file "$BERTH_REGISTRY_DROPIN"
berth_record dir "$dir"
cat >"$BERTH_REGISTRY_DROPIN" <<JSON
{ "registry": { "mirrors": { "docker.io": ["http://$addr"], "registry.k8s.io": ["http://$addr"] } } }
JSON
echo "local-registry: serving on http://$addr (pid $(cat "$BERTH_REGISTRY_PID_FILE"), pid file $BERTH_REGISTRY_PID_FILE, data $dir); mirrors in $BERTH_REGISTRY_DROPIN"
