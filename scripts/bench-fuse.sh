#!/usr/bin/env bash
# Proxied throughput and latency, side by side: the same upstream direct, through Fuse, and
# through Envoy, measured with wrk (keep-alive, small responses). Loopback only.
#
#   scripts/bench-fuse.sh [target-dir]     (default: target; needs a release build of
#                                           dctl and draft-tests: cargo build --release -p dctl -p draft-tests)
# Needs `wrk` and, for the Envoy column, `envoy`: scripts/install-bench-tools.sh installs both.
set -euo pipefail
target=${1:-target}
bin="$target/release"
duration=${DURATION:-10s}
threads=${THREADS:-1}
conns=${CONNS:-32}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_line() { # file prefix -> the rest of the first line starting with prefix
  for _ in $(seq 1 300); do
    line=$(grep -m1 "^$2" "$1" 2>/dev/null || true)
    if [ -n "$line" ]; then echo "${line#"$2"}"; return; fi
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1" >&2; exit 1
}

"$bin/echo-upstream" bench 127.0.0.1:0 >"$work/upstream.out" 2>/dev/null & pids+=($!)
upstream=$(wait_line "$work/upstream.out" "listening http://")
RUST_LOG=warn "$bin/dctl" up --listen 127.0.0.1:0 --ingress 127.0.0.1:0 --data-dir "$work/node" >"$work/node.out" & pids+=($!)
line=$(wait_line "$work/node.out" "listening api=")
api=${line%% *}; ingress=${line##*ingress=}
curl -sf -X PUT "$api/v1/services/bench/instances/b1" \
  -d "{\"address\":\"$upstream\",\"routes\":[{\"prefix\":\"/\"}],\"ttl_ms\":600000}" >/dev/null
sleep 0.2

run() { # name url
  out=$(wrk -t"$threads" -c"$conns" -d"$duration" --latency "$2/hello")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  errors=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
  printf '%-8s %12s req/s   p50 %8s   p99 %8s   %s\n' "$1" "$rps" "$p50" "$p99" "$errors"
}

echo "wrk -t$threads -c$conns -d$duration, upstream $upstream"
run direct "http://$upstream"
run fuse "$ingress"
if command -v envoy >/dev/null; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  host=${upstream%:*}; uport=${upstream##*:}
  cat >"$work/envoy.yaml" <<YAML
static_resources:
  listeners:
  - address: {socket_address: {address: 127.0.0.1, port_value: $port}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{match: {prefix: "/"}, route: {cluster: bench}}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: bench
    type: STATIC
    load_assignment:
      cluster_name: bench
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: $host, port_value: $uport}}}}]}]
YAML
  envoy -c "$work/envoy.yaml" --concurrency 1 -l error >"$work/envoy.log" 2>&1 & pids+=($!)
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/hello" >/dev/null && break; sleep 0.1; done
  run envoy "http://127.0.0.1:$port"
fi
