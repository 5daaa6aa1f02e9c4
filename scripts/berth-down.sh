#!/usr/bin/env bash
# Stops what scripts/berth-up.sh started: berthd and the local registry, each by its pid file
# (SIGTERM, then SIGKILL after BERTH_STOP_TIMEOUT seconds), and removes the pid files. Pods and
# their containers keep running (conmon outlives berthd) unless --purge.
#
# --purge also removes what berth-up installed: first every pod (stopped and removed through
# berthd, which berth-down starts for the purpose if it is not running), then what berthd still
# has mounted under its state and root dirs, the CNI config berth-up added and its bridge, the
# config drop-ins and config file it wrote, the berthd/berthctl links, the local registry's data,
# and the state and root dirs. Paths as in scripts/lib-berth.sh (overridable from the
# environment). Needs root.
set -euo pipefail
purge=
for a in "$@"; do
  case $a in
    --purge) purge=1 ;;
    -h | --help)
      sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "usage: berth-down.sh [--purge]" >&2
      exit 2
      ;;
  esac
done
# shellcheck source=scripts/lib-berth.sh
. "$(dirname "$0")/lib-berth.sh"
cd "$BERTH_REPO"
BERTHD_PATTERN=berthd/main.js
berthctl() { node dist/cmd/berthctl/main.js -r "unix://$BERTH_SOCKET" -t 10 "$@"; }
# (-t given twice: the last wins)

if [ -n "$purge" ] && [ -d "$BERTH_ROOT_DIR" ]; then
  # Pods go through berthd, so their containers, network (CNI DEL), mounts and cgroups go too.
  # (a berthd already answering on the socket, ours or one systemd runs, is used as it is)
  if ! berthctl -t 2 version >/dev/null 2>&1 && ! berth_pid_alive "$BERTH_PID_FILE" "$BERTHD_PATTERN" >/dev/null &&
    [ -f dist/cmd/berthd/main.js ]; then
    echo "berth-down: starting berthd to remove its pods"
    mapfile -t config_args < <(berth_config_args)
    mkdir -p "$BERTH_STATE_DIR" "$(dirname "$BERTH_LOG")"
    nohup node dist/cmd/berthd/main.js "${config_args[@]}" --state "$BERTH_STATE_DIR" \
      --root "$BERTH_ROOT_DIR" --socket "$BERTH_SOCKET" >>"$BERTH_LOG" 2>&1 </dev/null &
    echo $! >"$BERTH_PID_FILE"
    for _ in $(seq 150); do
      berthctl version >/dev/null 2>&1 && break
      kill -0 "$(cat "$BERTH_PID_FILE")" 2>/dev/null || break
      sleep 0.2
    done
  fi
  if berthctl version >/dev/null 2>&1; then
    n=$(berthctl pods -q | wc -l)
    if [ "$n" -gt 0 ]; then
      echo "berth-down: removing $n pod(s)"
      berthctl rmp -f -a >/dev/null || echo "berth-down: removing the pods failed; going on" >&2
    fi
  else
    echo "berth-down: berthd does not answer on $BERTH_SOCKET; pods (if any) are not removed cleanly" >&2
  fi
fi

berth_stop_pidfile berthd "$BERTH_PID_FILE" "$BERTHD_PATTERN"
berth_stop_pidfile "the local registry" "$BERTH_REGISTRY_PID_FILE" docker-registry
rm -f "$BERTH_REGISTRY_DIR/registry.addr"

[ -n "$purge" ] || exit 0
if berthctl -t 1 version >/dev/null 2>&1; then
  echo "berth-down: a berthd berth-up did not start still answers on $BERTH_SOCKET; stop it first (e.g. systemctl stop berthd), then purge" >&2
  exit 1
fi

# Whatever berthd left mounted under its dirs (netns pins, rootfs overlays), deepest first.
for dir in "$BERTH_STATE_DIR" "$BERTH_ROOT_DIR"; do
  [ -d "$dir" ] || continue
  real=$(realpath "$dir")
  findmnt -rn -o TARGET | awk -v d="$real" '$0 == d || index($0, d "/") == 1' | sort -r |
    while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" || echo "berth-down: could not unmount $m" >&2
    done
done

removed=()
if [ -f "$BERTH_INSTALLED" ]; then
  # links and files first, then bridges, then dirs, then the dirs that were created empty
  for kind in link file bridge dir emptydir; do
    while read -r k path; do
      [ "$k" = "$kind" ] || continue
      case $k in
        link)
          # only our link (to this checkout's dist), never a file someone put there since
          if [ -L "$path" ] && [[ "$(readlink "$path")" == "$BERTH_REPO"/dist/* ]]; then
            rm -f "$path" && removed+=("$path")
          fi
          ;;
        file) [ -e "$path" ] && rm -f "$path" && removed+=("$path") ;;
        bridge)
          if ip link show "$path" >/dev/null 2>&1; then
            ip link del "$path" && removed+=("bridge $path")
          fi
          ;;
        dir) [ -e "$path" ] && rm -rf "$path" && removed+=("$path") ;;
      esac
    done <"$BERTH_INSTALLED"
  done
fi
for d in "$BERTH_STATE_DIR" "$BERTH_ROOT_DIR"; do
  [ -e "$d" ] && rm -rf "$d" && removed+=("$d")
done
if [ -f "$BERTH_INSTALLED" ]; then
  installed=$(tac "$BERTH_INSTALLED")
  rm -f "$BERTH_INSTALLED"
  while read -r k path; do
    [ "$k" = emptydir ] || continue
    rmdir "$path" 2>/dev/null && removed+=("$path")
  done <<<"$installed"
fi
if [ ${#removed[@]} -gt 0 ]; then
  printf 'berth-down: removed %s\n' "${removed[@]}"
fi
echo "berth-down: purged"
