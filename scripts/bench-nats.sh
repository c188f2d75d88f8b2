#!/usr/bin/env bash
# NATS JetStream side by side with Catalyst, at equal durability: `sync_interval: always` makes
# the server fsync every write before acknowledging it, as Draft's `sync` durability does.
# Scenarios mirror scripts/bench-catalyst.sh: 64 publishers one at a time, 64 publishers with
# 100 in flight each (the nearest JetStream has to Catalyst's batches), replay of what the
# stream holds (up to 1,000,000). Then the same against `dctl up` (target/release/dctl, or
# $DCTL) with `--durability sync` and `buffered`.
#
#   scripts/bench-nats.sh    (installs nats-server into target/tools on first use; builds the
#                             JetStream client in scripts/nats-bench with its own lock file)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PATH="$("$here/install-test-tools.sh" nats):$PATH"
duration=${DURATION:-10}
(cd "$here/nats-bench" && cargo build --release --quiet)
bench="$here/nats-bench/target/release/nats-bench"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_server() { # name sync_interval
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$work/$1.conf" <<CONF
listen: 127.0.0.1:$port
jetstream {
  store_dir: "$work/$1"
  sync_interval: $2
}
CONF
  nats-server -c "$work/$1.conf" >"$work/$1.log" 2>&1 & pids+=($!)
  nats_pid=$!
  for _ in $(seq 1 100); do grep -q "Server is ready" "$work/$1.log" && break; sleep 0.1; done
  url="nats://127.0.0.1:$port"
  echo "== nats-server $(nats-server --version | awk '{print $2}'), sync_interval: $2"
}

# Equal durability: every message fsynced before its acknowledgement.
start_server durable always
"$bench" publish "$url" "$duration"
"$bench" pipelined "$url" "$duration"
"$bench" replay "$url" 1000000
echo "nats-server RSS: $(awk '/VmRSS/ {print $2, $3}' "/proc/$nats_pid/status")"
kill "$nats_pid"

# JetStream's default (fsync every 2 minutes: acknowledged messages can be lost on power loss),
# for reference; it also fills enough messages for a larger replay.
start_server default 2m
"$bench" publish "$url" "$duration"
"$bench" pipelined "$url" "$duration"
"$bench" replay "$url" 1000000
echo "nats-server RSS: $(awk '/VmRSS/ {print $2, $3}' "/proc/$nats_pid/status")"
kill "$nats_pid"

# Draft's side, same shapes, when a release build of dctl is there: `sync` and `buffered`.
dctl="${DCTL:-target/release/dctl}"
. "$here/node.sh"
if [ -x "$dctl" ]; then
  for durability in sync buffered; do
    start_node "$durability" --durability "$durability"
    echo "== Draft, durability $durability"
    "$dctl" bench produce --url "$url" --channel single --connections 64 --duration "$duration" | grep "events/s"
    "$dctl" bench produce --url "$url" --channel batched --connections 64 --batch 100 --duration "$duration" | grep "events/s"
    if [ "$durability" = sync ]; then
      # Everything the batched run stored (up to a minute of it).
      "$dctl" bench consume --url "$url" --channel batched --from earliest --duration 60 | grep "events/s"
    fi
    echo "dctl RSS: $(rss)"
    stop_node
  done
fi
