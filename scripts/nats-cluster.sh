# Sourced by the bench scripts: start and stop nats-servers on loopback ports, with
# `sync_interval: always`. Needs $work (a scratch directory), a `pids` array (killed on
# exit) and free_port.
#
#   start_servers NAME SIZE   SIZE servers NAME-1.. in one cluster; sets $urls, $servers
#                             (their pids); server i's config is $work/NAME-i.conf
#   stop_servers              SIGTERM every one, and waits

# Starts SIZE servers named NAME-1.. in one cluster (no cluster block for one); sets $urls
# (comma-separated client URLs) and $servers (their pids).
start_servers() { # name size
  local name=$1 size=$2 i
  local client=() route=()
  for i in $(seq 1 "$size"); do client+=("$(free_port)"); route+=("$(free_port)"); done
  local routes=""
  for i in $(seq 0 $((size - 1))); do routes+="nats-route://127.0.0.1:${route[$i]},"; done
  urls=""; servers=()
  for i in $(seq 1 "$size"); do
    local conf="$work/$name-$i.conf"
    {
      echo "server_name: $name-$i"
      echo "listen: 127.0.0.1:${client[$((i - 1))]}"
      echo "jetstream { store_dir: \"$work/$name-$i\", sync_interval: always }"
      if [ "$size" -gt 1 ]; then
        echo "cluster { name: $name, listen: 127.0.0.1:${route[$((i - 1))]}, routes: [${routes%,}] }"
      fi
    } >"$conf"
    nats-server -c "$conf" >"$work/$name-$i.log" 2>&1 & pids+=($!); servers+=($!)
    urls+="nats://127.0.0.1:${client[$((i - 1))]},"
  done
  urls=${urls%,}
  for i in $(seq 1 "$size"); do
    for _ in $(seq 1 100); do grep -q "Server is ready" "$work/$name-$i.log" && break; sleep 0.1; done
  done
  # A cluster elects its JetStream meta leader after the servers are ready.
  if [ "$size" -gt 1 ]; then
    for _ in $(seq 1 150); do
      cat "$work/$name"-*.log | grep -q "JetStream cluster new metadata leader\|Self is new JetStream cluster metadata leader" && break
      sleep 0.2
    done
  fi
}
stop_servers() { for p in "${servers[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
