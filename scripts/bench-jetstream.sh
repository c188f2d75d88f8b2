#!/usr/bin/env bash
# Catalyst on JetStream (`dctl up --backend jetstream`) beside JetStream's own publish figures,
# in one session, at equal durability (`sync_interval: always`: every server fsyncs each write
# before acknowledging it): one server with R1 streams, then a three-server cluster with R3.
# For each: JetStream's 64 publishers one at a time and with 100 in flight each
# (scripts/nats-bench), then a fresh Draft node on the same servers, single-event produce over
# 64 connections and batches of 100 (`dctl bench produce`). After each run, where its CPU went:
# the servers, the node, the load generator, and how busy the cores were.
#
#   scripts/bench-jetstream.sh    (needs target/release/dctl, or $DCTL; installs nats-server
#                                  into target/tools on first use; builds scripts/nats-bench)
#   DURATION=10                    seconds per run
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PATH="$("$here/install-test-tools.sh" nats):$PATH"
duration=${DURATION:-10}
dctl="${DCTL:-target/release/dctl}"
[ -x "$dctl" ] || { echo "bench-jetstream.sh: no $dctl (cargo build --release -p dctl)" >&2; exit 2; }
(cd "$here/nats-bench" && cargo build --release --quiet)
bench="$here/nats-bench/target/release/nats-bench"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
. "$here/node.sh"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

. "$here/nats-cluster.sh"
. "$here/cpu.sh"

for replicas in 1 3; do
  start_servers "r$replicas" "$replicas"
  first=${urls%%,*}
  echo "== JetStream R$replicas ($(nats-server --version | awk '{print $2}'), sync_interval: always)"
  servers_cpu="servers=$(IFS=,; echo "${servers[*]}")"
  with_cpu "$servers_cpu" env REPLICAS=$replicas "$bench" publish "$first" "$duration"
  with_cpu "$servers_cpu" env REPLICAS=$replicas "$bench" pipelined "$first" "$duration"
  echo "== Draft on JetStream R$replicas"
  start_node "r$replicas" --backend jetstream --nats-url "$urls" --replicas "$replicas"
  with_cpu "$servers_cpu node=$node_pid" "$dctl" bench produce --url "$url" --channel single \
    --connections 64 --duration "$duration" | grep -E "events/s|^CPU"
  with_cpu "$servers_cpu node=$node_pid" "$dctl" bench produce --url "$url" --channel batched \
    --connections 64 --batch 100 --duration "$duration" | grep -E "events/s|^CPU"
  echo "dctl RSS: $(rss)"
  stop_node
  stop_servers
done
