# Sourced by the bench scripts: start and stop a fresh `dctl up` on free ports.
# Needs $dctl (the binary), $work (a scratch directory) and a `pids` array (killed on exit).
#
#   start_node NAME [dctl up flags...]   sets $url, $node_pid; data in $work/node-NAME
#                                        (with NODE_CPUS=LIST set: pinned there by taskset)
#   stop_node                            SIGTERM, and waits for it to exit
#   rss                                  the node's resident memory

start_node() {
  local name=$1; shift
  local pin=()
  [ -n "${NODE_CPUS:-}" ] && pin=(taskset -c "$NODE_CPUS")
  RUST_LOG=${RUST_LOG:-warn} "${pin[@]}" "$dctl" up --listen 127.0.0.1:0 --ingress 127.0.0.1:0 \
    --data-dir "$work/node-$name" "$@" >"$work/node-$name.out" &
  node_pid=$!; pids+=("$node_pid")
  local line=""
  for _ in $(seq 1 300); do
    line=$(grep -m1 "^listening api=" "$work/node-$name.out" 2>/dev/null || true)
    [ -n "$line" ] && break; sleep 0.1
  done
  url=${line#listening api=}; url=${url%% *}
}
stop_node() { kill "$node_pid"; wait "$node_pid" 2>/dev/null || true; }
rss() { awk '/VmRSS/ {print $2, $3}' "/proc/$node_pid/status"; }
