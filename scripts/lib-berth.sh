# Shared by berth-up.sh, berth-down.sh and local-registry.sh (sourced, not run): where things go,
# each overridable from the environment so a test can run the whole cycle in temp dirs, and how a
# process started by these scripts is stopped by its pid file.
#
#   BERTH_SOCKET           berthd's socket              (default /run/berth/berth.sock)
#   BERTH_STATE_DIR        berthd --state               (default /run/berth)
#   BERTH_ROOT_DIR         berthd --root                (default /var/lib/berth)
#   BERTH_PID_FILE         berthd's pid file            (default $BERTH_STATE_DIR/berthd.pid)
#   BERTH_LOG              berthd's log                 (default /var/log/berthd.log)
#   BERTH_CONFIG_DIR       config dir with config.d/    (default /etc/berth)
#   BERTH_CNI_CONF_DIR     CNI config dir               (default /etc/cni/net.d)
#   BERTH_BRIDGE, BERTH_SUBNET, BERTH_CNI_DATA_DIR
#                          bridge, subnet and host-local dir of the CNI config berth-up installs
#                          (default berth0, 10.88.0.0/16, host-local's /var/lib/cni/networks)
#   BERTH_BIN_DIR          where berthd/berthctl are linked (default /usr/local/bin)
#   BERTH_REGISTRY_DIR     local registry's own data dir (default /var/lib/berth-registry)
#   BERTH_REGISTRY_PORT    its port on 127.0.0.1 (default 5000; when taken by another program, the
#                          next free one, unless the port was set explicitly: then it fails,
#                          unless BERTH_REGISTRY_PORT_STRICT=0)
#   BERTH_REGISTRY_PID_FILE, BERTH_REGISTRY_LOG
#   BERTH_STOP_TIMEOUT     seconds to wait after SIGTERM before SIGKILL (default 15)

BERTH_REPO=${BERTH_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BERTH_STATE_DIR=${BERTH_STATE_DIR:-/run/berth}
BERTH_ROOT_DIR=${BERTH_ROOT_DIR:-/var/lib/berth}
BERTH_SOCKET=${BERTH_SOCKET:-$BERTH_STATE_DIR/berth.sock}
BERTH_PID_FILE=${BERTH_PID_FILE:-$BERTH_STATE_DIR/berthd.pid}
BERTH_LOG=${BERTH_LOG:-/var/log/berthd.log}
BERTH_CONFIG_DIR=${BERTH_CONFIG_DIR:-/etc/berth}
BERTH_CNI_CONF_DIR=${BERTH_CNI_CONF_DIR:-/etc/cni/net.d}
BERTH_BRIDGE=${BERTH_BRIDGE:-berth0}
BERTH_SUBNET=${BERTH_SUBNET:-10.88.0.0/16}
BERTH_CNI_DATA_DIR=${BERTH_CNI_DATA_DIR:-}
BERTH_BIN_DIR=${BERTH_BIN_DIR:-/usr/local/bin}
BERTH_REGISTRY_DIR=${BERTH_REGISTRY_DIR:-/var/lib/berth-registry}
BERTH_REGISTRY_PID_FILE=${BERTH_REGISTRY_PID_FILE:-$BERTH_REGISTRY_DIR/registry.pid}
BERTH_REGISTRY_LOG=${BERTH_REGISTRY_LOG:-/var/log/berth-registry.log}
BERTH_STOP_TIMEOUT=${BERTH_STOP_TIMEOUT:-15}
# What berth-up installed (one "KIND PATH" a line), so berth-down --purge removes exactly that.
BERTH_INSTALLED=${BERTH_INSTALLED:-$BERTH_CONFIG_DIR/berth-up.installed}
# The drop-in local-registry.sh writes.
BERTH_REGISTRY_DROPIN=$BERTH_CONFIG_DIR/config.d/50-local-registry.json

# berth_record KIND PATH: notes that berth-up installed PATH (once).
berth_record() {
  mkdir -p "$(dirname "$BERTH_INSTALLED")"
  touch "$BERTH_INSTALLED"
  grep -qxF "$1 $2" "$BERTH_INSTALLED" || echo "$1 $2" >>"$BERTH_INSTALLED"
}

# berth_pid_alive PIDFILE PATTERN: prints the pid and succeeds when the pid file names a live
# process whose command line contains PATTERN (a stale file or a reused pid does not count).
berth_pid_alive() {
  local pidfile=$1 pattern=$2 pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pattern" || return 1
  echo "$pid"
}

# berth_stop_pidfile NAME PIDFILE PATTERN: SIGTERM, wait up to BERTH_STOP_TIMEOUT s, then SIGKILL
# and wait; removes the pid file either way.
berth_stop_pidfile() {
  local name=$1 pidfile=$2 pattern=$3 pid i
  if pid=$(berth_pid_alive "$pidfile" "$pattern"); then
    echo "berth: stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < BERTH_STOP_TIMEOUT * 10; i++)); do
      [ -d "/proc/$pid" ] || break
      sleep 0.1
    done
    if [ -d "/proc/$pid" ]; then
      echo "berth: $name (pid $pid) still running after ${BERTH_STOP_TIMEOUT}s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        [ -d "/proc/$pid" ] || break
        sleep 0.1
      done
    fi
  elif [ -f "$pidfile" ]; then
    echo "berth: $name is not running (stale pid file $pidfile)"
  fi
  rm -f "$pidfile"
}

# berth_port_holder PORT: "pid NNN (command)" of whatever listens on 127.0.0.1/any :PORT, or nothing.
berth_port_holder() {
  local line
  line=$(ss -Hltnp "sport = :$1" 2>/dev/null | head -n 1)
  [ -n "$line" ] || return 1
  if [[ "$line" =~ \(\(\"([^\"]*)\",pid=([0-9]+) ]]; then
    echo "pid ${BASH_REMATCH[2]} (${BASH_REMATCH[1]})"
  else
    echo "an unknown process"
  fi
}

# berth_config_args: prints berthd's --config arguments, one a line. Default: /etc/berth's
# config.{toml,json} and config.d/ as berthd finds them itself. With another BERTH_CONFIG_DIR or a
# CNI dir other than /etc/cni/net.d, it writes a config.json there (once) so berthd reads that
# dir's config.d/ drop-ins and the CNI dir.
berth_config_args() {
  local f
  for f in "$BERTH_CONFIG_DIR/config.toml" "$BERTH_CONFIG_DIR/config.json"; do
    if [ -f "$f" ]; then
      printf '%s\n' --config "$f"
      return
    fi
  done
  if [ "$BERTH_CONFIG_DIR" != /etc/berth ] || [ "$BERTH_CNI_CONF_DIR" != /etc/cni/net.d ]; then
    mkdir -p "$BERTH_CONFIG_DIR"
    f=$BERTH_CONFIG_DIR/config.json
    jq -n --arg cni "$BERTH_CNI_CONF_DIR" '{cni: {conf_dir: $cni}}' >"$f"
    berth_record file "$f"
    printf '%s\n' --config "$f"
  fi
}
