#!/usr/bin/env bash
# Catalyst on JetStream (`dctl up --backend jetstream`) beside JetStream's own publish figures,
# in one session, at equal durability (`sync_interval: always`: every server fsyncs each write
# before acknowledging it): one server with R1 streams, then a three-server cluster with R3.
# For each: JetStream's 64 publishers one at a time and with 100 in flight each
# (scripts/nats-bench), the same with a `Nats-Msg-Id` on every message (as Draft sends), and
# atomic batches of 100 and of 1,000 (what Draft's group commit makes of 64 producers' batches
# of 100); then Draft nodes: single-event produce over 64 connections and batches of 100
# (`dctl bench produce`).
# After each run, where its CPU went: the servers, the node, the load generator, and how busy
# the cores were.
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

# Every run gets servers of its own, started empty: a server that has taken a run before is
# slower for the next one (perhaps its heap still holds that run's duplicate window; measured on R3,
# atomic batches of 100 ran at 65,100 msgs/s on fresh servers and 39,042-41,565/s on the
# same servers right after), so a shared cluster would favour whichever run goes first.
fresh=0
fresh_servers() { # replicas
  fresh=$((fresh + 1))
  start_servers "r$1-$fresh" "$1"
  first=${urls%%,*}
  servers_cpu="servers=$(IFS=,; echo "${servers[*]}")"
}
jetstream() { # replicas mode
  fresh_servers "$1"
  with_cpu "$servers_cpu" env REPLICAS="$1" "$bench" "$2" "$first" "$duration"
  stop_servers
}
draft() { # replicas dctl-bench-args...
  local replicas=$1
  shift
  fresh_servers "$replicas"
  start_node "r$replicas-$fresh" --backend jetstream --nats-url "$urls" --replicas "$replicas"
  with_cpu "$servers_cpu node=$node_pid" "$dctl" bench produce --url "$url" \
    --connections 64 --duration "$duration" "$@" | grep -E "events/s|^CPU"
  echo "dctl RSS: $(rss)"
  stop_node
  stop_servers
}

for replicas in 1 3; do
  echo "== JetStream R$replicas ($(nats-server --version | awk '{print $2}'), sync_interval: always)"
  for mode in publish pipelined pipelined-ids batched batched-1000; do
    jetstream "$replicas" "$mode"
  done
  echo "== Draft on JetStream R$replicas"
  draft "$replicas" --channel single
  draft "$replicas" --channel batched --batch 100
done
