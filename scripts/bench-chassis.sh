#!/usr/bin/env bash
# Chassis (issue 14), on a release build: the node on core 0, the service on core 1 (taskset).
#
# - one hook with a no-op handler in a new consumer group, over 1,000,000 stored events:
#   handled and acknowledged per second (beside it, plain replay of the same events by
#   `dctl bench consume`, the same session's peer);
# - a service's producer (pipelined WebSocket, the node fsyncs before every ack), 1,000,000
#   events, against `dctl bench produce --transport ws` from one connection;
# - start to registered and ready, and SIGTERM to exit, of the probe service (20 runs each);
# - resident memory of an idle service (the probe service, and the example `orders`).
#
#   scripts/bench-chassis.sh [target-dir]   (cargo build --release -p dctl -p example-orders
#                                            -p draft-tests --bins; cargo build --release
#                                            -p draft-chassis --example bench)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target=${1:-target}
dctl="$target/release/dctl"
bench="$target/release/examples/bench"
probe="$target/release/probe-service"
orders="$target/release/orders"
count=${COUNT:-1000000}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
. "$here/node.sh"
load() { taskset -c 1 "$@"; }
export NODE_CPUS=0

start_node chassis
export DRAFT_URL=$url RUST_LOG=warn
echo "== $count events stored in batches of 100"
load "$dctl" bench produce --url "$url" --channel hooked --connections 64 --batch 100 --count "$count" --duration 60 | grep -E "events/s"
echo "== plain replay (the peer)"
load "$dctl" bench consume --url "$url" --channel hooked --from earliest --count "$count" | grep -E "events/s"
echo "== one hook, no-op handler, a new group"
load "$bench" hook hooked "$count"
echo "== the service's producer, 1,024 in flight"
load "$bench" produce produced "$count" 1024
echo "== dctl bench produce over one WebSocket (the peer)"
load "$dctl" bench produce --url "$url" --channel produced-peer --transport ws --connections 1 --duration 10 | grep -E "events/s"
echo "node RSS: $(rss)"

echo "== start to registered and ready, SIGTERM to exit (probe service, 20 runs each)"
python3 - "$probe" "$url" <<'PY'
import os, subprocess, sys, time, urllib.request
probe, url = sys.argv[1], sys.argv[2]
def run(drain_ms):
    env = dict(os.environ, DRAFT_URL=url, DRAFT_DRAIN_DELAY_MS=str(drain_ms), RUST_LOG="warn")
    t0 = time.perf_counter()
    p = subprocess.Popen(["taskset", "-c", "1", probe], env=env, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()  # printed once registered
    addr = line.split()[1]
    while True:
        try:
            if urllib.request.urlopen(addr + "/readyz", timeout=1).status == 200:
                break
        except Exception:
            time.sleep(0.001)
    ready = time.perf_counter() - t0
    t1 = time.perf_counter()
    p.terminate()
    p.wait()
    stopped = time.perf_counter() - t1
    return ready * 1000, stopped * 1000, p.returncode
for drain in (0, 200):
    runs = [run(drain) for _ in range(20)]
    ready = sorted(r[0] for r in runs); stop = sorted(r[1] for r in runs)
    codes = {r[2] for r in runs}
    print(f"drain delay {drain} ms: start->ready median {ready[10]:.1f} ms (max {ready[-1]:.1f}); "
          f"SIGTERM->exit median {stop[10]:.1f} ms (max {stop[-1]:.1f}); exit codes {codes}")
PY

echo "== idle memory"
for svc in "$probe" "$orders"; do
  "$svc" >"$work/idle.out" 2>&1 & p=$!; pids+=("$p")
  sleep 5
  echo "$(basename "$svc"): $(awk '/VmRSS/ {print $2, $3}' "/proc/$p/status") resident after 5 s idle"
  kill "$p"; wait "$p" 2>/dev/null || true
done
stop_node
