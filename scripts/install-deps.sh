#!/usr/bin/env bash
# Installs what Berth needs on a Debian 12 machine, only what is missing: the runtime's system
# packages (runc, conmon, CNI plugins, iptables for portmap, crun, criu), what the tests use (Debian's
# docker-registry, busybox-static, socat, htpasswd, skopeo), and the npm packages (npm ci).
# Idempotent and quick when everything is present. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(runc conmon containernetworking-plugins iptables iproute2 util-linux crun criu uidmap libseccomp-dev
  docker-registry busybox-static socat apache2-utils skopeo jq zstd openssl ca-certificates curl)

# shellcheck source=scripts/lib-dpkg-lock.sh
. scripts/lib-dpkg-lock.sh

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
  # Another apt/dpkg (unattended-upgrades, a user's apt-get) may hold the lock: wait for it, saying
  # so, up to BERTH_DPKG_LOCK_TIMEOUT seconds; apt-get waits the rest itself (DPkg::Lock::Timeout)
  # should the lock be taken again between our check and its start.
  deadline=$((SECONDS + ${BERTH_DPKG_LOCK_TIMEOUT:-600}))
  wait_dpkg_lock "$deadline"
  apt_wait=(-o "DPkg::Lock::Timeout=$((deadline > SECONDS ? deadline - SECONDS : 1))")
  apt-get "${apt_wait[@]}" update -qq
  wait_dpkg_lock "$deadline"
  apt_wait=(-o "DPkg::Lock::Timeout=$((deadline > SECONDS ? deadline - SECONDS : 1))")
  apt-get "${apt_wait[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's docker-registry package starts a system registry on :5000; Berth's tests start their own
# on free loopback ports and need nothing else listening, so the packaged service stays off.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
