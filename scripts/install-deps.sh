#!/usr/bin/env bash
# Installs what Berth needs on a Debian 12 machine, only what is missing: the runtime's system
# packages (runc, conmon, CNI plugins, iptables for portmap, crun, criu), what the tests use (Debian's
# docker-registry, busybox-static, socat, htpasswd, skopeo), and the npm packages (npm ci).
# Idempotent and quick when everything is present. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(runc conmon containernetworking-plugins iptables iproute2 util-linux crun criu uidmap libseccomp-dev
  docker-registry busybox-static socat apache2-utils skopeo jq zstd openssl ca-certificates curl)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's docker-registry package starts a system registry on :5000; Berth's tests start their own
# on free loopback ports and need nothing else listening, so the packaged service stays off.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
