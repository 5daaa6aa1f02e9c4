#!/usr/bin/env bash
# A local image registry for a machine without internet access: Debian's docker-registry on
# 127.0.0.1:5000 (storage in /var/lib/berth-registry), seeded with busybox and the pause image
# built from busybox-static, and a berthd config drop-in that mirrors docker.io and
# registry.k8s.io to it. So `berthctl pull busybox` and the default pause image
# (registry.k8s.io/pause:3.10) work offline, and keep their usual names.
# Needs root and a build (scripts/berth-up.sh runs this). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
addr=127.0.0.1:5000
dir=/var/lib/berth-registry
mkdir -p "$dir"
if ! curl -fsS "http://$addr/v2/" >/dev/null 2>&1; then
  cat >"$dir/config.yml" <<YML
version: 0.1
log: { level: warn, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $dir/data }, delete: { enabled: true } }
http: { addr: $addr }
YML
  nohup docker-registry serve "$dir/config.yml" >>/var/log/berth-registry.log 2>&1 &
  echo $! >"$dir/registry.pid"
  for _ in $(seq 50); do curl -fsS "http://$addr/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
fi
node dist/test/lab/seed.js "http://$addr"
mkdir -p /etc/berth/config.d
cat >/etc/berth/config.d/50-local-registry.json <<JSON
{ "registry": { "mirrors": { "docker.io": ["http://$addr"], "registry.k8s.io": ["http://$addr"] } } }
JSON
echo "local-registry: serving on http://$addr (pid $(cat "$dir/registry.pid" 2>/dev/null || echo '?')); mirrors in /etc/berth/config.d/50-local-registry.json"
