#!/usr/bin/env bash
# What services need from Catalyst (issue 13), side by side with NATS JetStream in one run and
# on the same pinning: the broker on core 0, the load generator on core 1 (taskset).
#
# - one WebSocket producer pipelining single events (Draft, `sync`: fsync before every ack)
#   against JetStream's asynchronous publish from one connection and from 64 (its default
#   durability: fsync every 2 minutes);
# - 64 WebSocket producers;
# - produce-to-acknowledgement latency at 1,000 events/s (HTTP produce; `dctl bench latency`);
# - a consumer group acknowledging every 100 events against plain replay of the same events.
#
#   scripts/bench-services.sh [target-dir]   (needs a release build of dctl and taskset;
#                                             installs nats-server into target/tools on first use)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PATH="$("$here/install-test-tools.sh" nats):$PATH"
target=${1:-target}
dctl="$target/release/dctl"
duration=${DURATION:-10}
(cd "$here/nats-bench" && cargo build --release --quiet)
nats_bench="$here/nats-bench/target/release/nats-bench"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
. "$here/node.sh"
load() { taskset -c 1 "$@"; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listen: 127.0.0.1:%s\njetstream { store_dir: "%s/nats" }\n' "$port" "$work" >"$work/nats.conf"
taskset -c 0 nats-server -c "$work/nats.conf" >"$work/nats.log" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do grep -q "Server is ready" "$work/nats.log" && break; sleep 0.1; done
echo "== nats-server $(nats-server --version | awk '{print $2}'), default durability, on core 0"
load "$nats_bench" async "nats://127.0.0.1:$port" "$duration"
load "$nats_bench" pipelined "nats://127.0.0.1:$port" "$duration"
kill "${pids[-1]}"

export NODE_CPUS=0   # start_node pins the node to core 0
echo "== Draft (durability sync) on core 0"
start_node ws1
load "$dctl" bench produce --url "$url" --transport ws --connections 1 --duration "$duration" | grep -E "events/s|latency p50|latency p99 "
stop_node
start_node ws64
load "$dctl" bench produce --url "$url" --transport ws --connections 64 --duration "$duration" | grep -E "events/s|latency p99 "
echo "node RSS after 64 WebSocket producers: $(rss)"
stop_node
start_node latency
load "$dctl" bench latency --url "$url" --rate 1000 --duration "$duration" | grep -E "latency p50|latency p99 "
stop_node
start_node groups
load "$dctl" bench produce --url "$url" --channel replayed --connections 64 --batch 100 --count 1000000 --duration 60 | grep -E "events/s"
echo "plain replay:"
load "$dctl" bench consume --url "$url" --channel replayed --from earliest --count 1000000 | grep -E "events/s"
echo "group consumer, an ack every 100 events:"
load "$dctl" bench consume --url "$url" --channel replayed --from earliest --count 1000000 --group bench-g --ack-every 100 | grep -E "events/s|acks"
echo "node RSS: $(rss)"
stop_node
