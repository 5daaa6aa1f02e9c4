#!/usr/bin/env bash
# Brings Berth up on this machine: installs what is missing, builds, installs the example CNI
# config if the node has none, and starts berthd in the background on its default socket
# (/run/berth/berth.sock), logging to /var/log/berthd.log. Needs root. Re-running it restarts berthd.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
npm run build:native --silent
npm run build --silent

if [ -d deploy/cni ] && ! ls /etc/cni/net.d/*.conf* >/dev/null 2>&1; then
  mkdir -p /etc/cni/net.d
  cp deploy/cni/*.conflist /etc/cni/net.d/
  echo "berth-up: installed the example CNI config into /etc/cni/net.d"
fi

# Offline machines: a local registry with busybox and pause, mirrored for docker.io and
# registry.k8s.io (skip with BERTH_NO_LOCAL_REGISTRY=1).
if [ "${BERTH_NO_LOCAL_REGISTRY:-}" != 1 ]; then
  bash scripts/local-registry.sh
fi

pidfile=/run/berth/berthd.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "berth-up: stopping the berthd started earlier (pid $(cat "$pidfile"))"
  kill -TERM "$(cat "$pidfile")"
  for _ in $(seq 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
fi
mkdir -p /run/berth
nohup node dist/cmd/berthd/main.js "$@" >>/var/log/berthd.log 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 100); do
  if node dist/cmd/berthctl/main.js version >/dev/null 2>&1; then
    echo "berth-up: berthd is running (pid $(cat "$pidfile")), socket /run/berth/berth.sock, log /var/log/berthd.log"
    echo "berth-up: try: npx berthctl version"
    exit 0
  fi
  kill -0 "$(cat "$pidfile")" 2>/dev/null || break
  sleep 0.2
done
echo "berth-up: berthd did not come up; last log lines:" >&2
tail -n 20 /var/log/berthd.log >&2
exit 1
