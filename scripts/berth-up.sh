#!/usr/bin/env bash
# Brings Berth up on this machine: installs what is missing, builds, installs the example CNI
# config if the node has none, starts a local registry (offline mirror), starts berthd in the
# background on its default socket (/run/berth/berth.sock) logging to /var/log/berthd.log with its
# pid in /run/berth/berthd.pid, and links `berthd` and `berthctl` into /usr/local/bin. Needs root.
# Re-running it restarts berthd. scripts/berth-down.sh stops it all (--purge also removes what
# this installed). Extra arguments go to berthd.
#
# Every path is overridable from the environment (see scripts/lib-berth.sh), and
# BERTH_SKIP_DEPS=1 / BERTH_SKIP_BUILD=1 skip install-deps.sh / the build,
# BERTH_NO_LOCAL_REGISTRY=1 the local registry.
set -euo pipefail
# shellcheck source=scripts/lib-berth.sh
. "$(dirname "$0")/lib-berth.sh"
cd "$BERTH_REPO"

# dirs this creates (removed by berth-down --purge when empty)
for d in "$BERTH_CONFIG_DIR" "$BERTH_CONFIG_DIR/config.d" "$BERTH_CNI_CONF_DIR" "$BERTH_BIN_DIR" \
  ${BERTH_CNI_DATA_DIR:+"$BERTH_CNI_DATA_DIR"}; do
  [ -d "$d" ] || berth_record emptydir "$d"
done
mkdir -p "$BERTH_CONFIG_DIR/config.d"

[ "${BERTH_SKIP_DEPS:-}" = 1 ] || bash scripts/install-deps.sh
if [ "${BERTH_SKIP_BUILD:-}" != 1 ]; then
  npm run build:native --silent
  npm run build --silent
fi

# The example CNI config, with this machine's bridge and subnet, when the node has none.
if ! ls "$BERTH_CNI_CONF_DIR"/*.conf* >/dev/null 2>&1; then
  mkdir -p "$BERTH_CNI_CONF_DIR"
  conflist=$BERTH_CNI_CONF_DIR/10-berth.conflist
  jq --arg br "$BERTH_BRIDGE" --arg net "$BERTH_SUBNET" --arg data "$BERTH_CNI_DATA_DIR" '
    .plugins |= map(if .type == "bridge" then
      .bridge = $br | .ipam.ranges = [[{subnet: $net}]]
      | (if $data != "" then .ipam.dataDir = $data else . end)
    else . end)' deploy/cni/10-berth.conflist >"$conflist.tmp"
  mv "$conflist.tmp" "$conflist"
  berth_record file "$conflist"
  berth_record bridge "$BERTH_BRIDGE"
  # host-local's reservations for this network (its default dir unless BERTH_CNI_DATA_DIR)
  berth_record dir "${BERTH_CNI_DATA_DIR:-/var/lib/cni/networks}/$(jq -r .name "$conflist")"
  echo "berth-up: installed the example CNI config as $conflist (bridge $BERTH_BRIDGE, subnet $BERTH_SUBNET)"
fi

# Offline machines: a local registry with busybox and pause, mirrored for docker.io and
# registry.k8s.io (skip with BERTH_NO_LOCAL_REGISTRY=1).
if [ "${BERTH_NO_LOCAL_REGISTRY:-}" != 1 ]; then
  bash scripts/local-registry.sh
fi

if berth_pid_alive "$BERTH_PID_FILE" berthd/main.js >/dev/null; then
  berth_stop_pidfile "the berthd started earlier" "$BERTH_PID_FILE" berthd/main.js
fi
[ -d "$BERTH_STATE_DIR" ] || berth_record dir "$BERTH_STATE_DIR"
[ -d "$BERTH_ROOT_DIR" ] || berth_record dir "$BERTH_ROOT_DIR"
mkdir -p "$BERTH_STATE_DIR" "$BERTH_ROOT_DIR" "$(dirname "$BERTH_PID_FILE")" "$(dirname "$BERTH_LOG")"
mapfile -t config_args < <(berth_config_args)
# run as a command, so that the node flags on its #! line apply (the systemd unit does the same)
nohup dist/cmd/berthd/main.js "${config_args[@]}" --state "$BERTH_STATE_DIR" --root "$BERTH_ROOT_DIR" \
  --socket "$BERTH_SOCKET" "$@" >>"$BERTH_LOG" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$BERTH_PID_FILE"

# berthd and berthctl on PATH: links to the built entry points (no npx start-up per command).
mkdir -p "$BERTH_BIN_DIR"
for cmd in berthd berthctl; do
  target=$BERTH_REPO/dist/cmd/$cmd/main.js
  link=$BERTH_BIN_DIR/$cmd
  if [ -e "$link" ] && [ ! -L "$link" ]; then
    echo "berth-up: $link exists and is not a link; leaving it alone" >&2
    continue
  fi
  ln -sfn "$target" "$link"
  berth_record link "$link"
done

for _ in $(seq 150); do
  if node dist/cmd/berthctl/main.js -r "unix://$BERTH_SOCKET" version >/dev/null 2>&1; then
    echo "berth-up: berthd is running (pid $pid, pid file $BERTH_PID_FILE), socket $BERTH_SOCKET, log $BERTH_LOG"
    echo "berth-up: berthd and berthctl are linked in $BERTH_BIN_DIR; try: berthctl version"
    echo "berth-up: stop with scripts/berth-down.sh (--purge also removes what berth-up installed)"
    exit 0
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
echo "berth-up: berthd did not come up; last log lines:" >&2
tail -n 20 "$BERTH_LOG" >&2
exit 1
