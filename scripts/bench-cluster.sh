#!/usr/bin/env bash
# Two Draft nodes on one three-server JetStream cluster (R3, `sync_interval: always`), loopback:
#   1. KV puts (every one a compare-and-set append to `_draft`) from one writing node, then
#      from both nodes at once (wrk, keys spread over 1,000);
#   2. If-Match writes to one hot key (read the revision, put with If-Match, 412 on a lost
#      race) from one node, then from both;
#   3. the fail-over gap: one client puts keys one after another on node A, and another
#      produces batches of 100 events (100 KiB) one after another on node B, while each
#      server in turn gets SIGTERM (then restarts), then kill -9 (then restarts); the longest
#      wait between two acknowledged writes around each stop, p50 and max.
#
#   scripts/bench-cluster.sh    (needs target/release/dctl, or $DCTL, and wrk:
#                                scripts/install-bench-tools.sh; installs nats-server into
#                                target/tools on first use)
#   DURATION=10                 seconds per throughput run
#   ONLY=failover               the fail-over gap only
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PATH="$("$here/install-test-tools.sh" nats):$PATH"
duration=${DURATION:-10}
dctl="${DCTL:-target/release/dctl}"
[ -x "$dctl" ] || { echo "bench-cluster.sh: no $dctl (cargo build --release -p dctl)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "bench-cluster.sh: no wrk (scripts/install-bench-tools.sh)" >&2; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
. "$here/node.sh"
. "$here/nats-cluster.sh"

start_servers c 3
echo "== nats-server $(nats-server --version | awk '{print $2}') x3, R3, sync_interval: always"
start_node a --backend jetstream --nats-url "$urls" --replicas 3 --node-name a
url_a=$url
start_node b --backend jetstream --nats-url "$urls" --replicas 3 --node-name b \
  --keeper-ttl-ms 10000
url_b=$url

if [ "${ONLY:-}" != failover ]; then
summary() { awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} /Non-2xx|Socket errors/ {e=e" "$0} END {printf "%12s req/s   p50 %8s   p99 %8s  %s\n", r, p50, p99, e}'; }
printf 'kv put, one node (-c32):        '
wrk -t2 -c32 -d"${duration}s" --latency -s "$(dirname "$0")/kv-put.lua" "$url_a" | summary
wrk -t1 -c16 -d"${duration}s" --latency -s "$(dirname "$0")/kv-put.lua" "$url_a" >"$work/wa" &
wb=$!
wrk -t1 -c16 -d"${duration}s" --latency -s "$(dirname "$0")/kv-put.lua" "$url_b" >"$work/wb"
wait "$wb"
printf 'kv put, two nodes, A (-c16):    '; summary <"$work/wa"
printf 'kv put, two nodes, B (-c16):    '; summary <"$work/wb"

python3 "$here/bench-cluster.py" if-match "$duration" "$url_a"
python3 "$here/bench-cluster.py" if-match "$duration" "$url_a" "$url_b"
fi

# The fail-over gap.
python3 "$here/bench-cluster.py" writer "$url_a" "$work/acks" "$work/writer.stop" &
writer=$!
python3 "$here/bench-cluster.py" batches "$url_b" "$work/batch-acks" "$work/writer.stop" &
batcher=$!
pids+=("$writer" "$batcher")
sleep 2
restart() { # i
  local i=$1
  nats-server -c "$work/c-$i.conf" >>"$work/c-$i.log" 2>&1 & pids+=($!); servers[$((i - 1))]=$!
  sleep 4
}
for signal in TERM KILL; do
  for i in 1 2 3; do
    echo "$signal $(date +%s.%N)" >>"$work/stops"
    kill "-$signal" "${servers[$((i - 1))]}"
    wait "${servers[$((i - 1))]}" 2>/dev/null || true
    sleep 4
    restart "$i"
  done
done
touch "$work/writer.stop"
wait "$writer" "$batcher" || true
python3 "$here/bench-cluster.py" gaps "kv puts on A" "$work/acks" "$work/stops"
python3 "$here/bench-cluster.py" gaps "batches on B" "$work/batch-acks" "$work/stops"
