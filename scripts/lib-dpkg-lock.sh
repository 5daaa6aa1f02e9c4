# Waiting for the dpkg lock (sourced by install-deps.sh): another apt-get, dpkg or
# unattended-upgrades may hold it, and install-deps waits for it, saying who holds it, instead of
# failing at once.
# The locks apt-get and dpkg take (BERTH_DPKG_LOCKS: a space-separated override, for tests).
read -r -a DPKG_LOCKS <<<"${BERTH_DPKG_LOCKS:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock}"

# dpkg_lock_holder: "pid N (command)" of a process holding one of the locks, or nothing.
dpkg_lock_holder() {
  local pid cmd path
  while read -r pid cmd path; do
    for l in "${DPKG_LOCKS[@]}"; do
      if [ "$path" = "$l" ]; then
        echo "pid $pid ($cmd) holds $l"
        return 0
      fi
    done
  done < <(lslocks -n -r -o PID,COMMAND,PATH 2>/dev/null)
  return 1
}

# wait_dpkg_lock DEADLINE: returns once no process holds the locks; fails at DEADLINE ($SECONDS).
wait_dpkg_lock() {
  local holder last=-1
  while holder=$(dpkg_lock_holder); do
    if [ "$SECONDS" -ge "$1" ]; then
      echo "install-deps: gave up waiting for the dpkg lock: $holder (raise BERTH_DPKG_LOCK_TIMEOUT, or retry when it is done)" >&2
      exit 1
    fi
    if [ $((SECONDS - last)) -ge 10 ] || [ "$last" -lt 0 ]; then
      echo "install-deps: waiting for the dpkg lock: $holder (up to $(($1 - SECONDS))s more)"
      last=$SECONDS
    fi
    sleep 1
  done
}
