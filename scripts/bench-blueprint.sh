#!/usr/bin/env bash
# Blueprint over HTTP with wrk: durable KV puts from 64 connections (keys spread over 1,000),
# KV gets (values are read from the log by revision: one hot 200 B key and one hot 64 KiB key,
# answered from the value cache, then 1,000 keys of 64 KiB, 62.5 MiB, mostly not), and how
# fast a registration reaches Fuse's routing. Loopback only.
#
#   scripts/bench-blueprint.sh [target-dir]   (needs release builds of dctl and draft-tests, and wrk: scripts/install-bench-tools.sh)
set -euo pipefail
target=${1:-target}
bin="$target/release"
duration=${DURATION:-10s}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
wait_line() {
  for _ in $(seq 1 300); do
    line=$(grep -m1 "^$2" "$1" 2>/dev/null || true)
    if [ -n "$line" ]; then echo "${line#"$2"}"; return; fi
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1" >&2; exit 1
}
RUST_LOG=warn "$bin/dctl" up --listen 127.0.0.1:0 --ingress 127.0.0.1:0 --data-dir "$work/node" >"$work/node.out" & pids+=($!)
line=$(wait_line "$work/node.out" "listening api=")
api=${line%% *}; ingress=${line##*ingress=}
node_pid=${pids[0]}

summary() { awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} /Non-2xx|Socket errors/ {e=e" "$0} END {printf "%12s req/s   p50 %8s   p99 %8s  %s\n", r, p50, p99, e}'; }
printf 'kv put  (durable, -c64): '; wrk -t2 -c64 -d"$duration" --latency -s "$(dirname "$0")/kv-put.lua" "$api" | summary
curl -sf -X PUT "$api/v1/kv/bench/hot" -d "$(head -c 200 /dev/zero | tr '\0' v)" >/dev/null
printf 'kv get  (-c64):          '; wrk -t2 -c64 -d"$duration" --latency "$api/v1/kv/bench/hot" | summary
head -c 65536 /dev/urandom >"$work/big"
curl -sf -X PUT "$api/v1/kv/bench/big" --data-binary @"$work/big" >/dev/null
printf 'kv get 64 KiB (-c64):    '; wrk -t2 -c64 -d"$duration" --latency "$api/v1/kv/bench/big" | summary
python3 - "$api" <<'PY'
import http.client, os, sys
host, port = sys.argv[1].removeprefix("http://").split(":")
c = http.client.HTTPConnection(host, int(port))
for i in range(1000):
    c.request("PUT", f"/v1/kv/spread/k{i}", os.urandom(65536)); r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
cat >"$work/spread.lua" <<'LUA'
request = function()
  return wrk.format(nil, "/v1/kv/spread/k" .. math.random(0, 999))
end
LUA
printf 'kv get 64 KiB, 1,000 keys (-c64): '; wrk -t2 -c64 -d"$duration" --latency -s "$work/spread.lua" "$api" | summary
echo "node RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$node_pid/status)"

# Route change latency: register a new route, then poll the ingress until it answers.
"$bin/echo-upstream" late 127.0.0.1:0 >"$work/upstream.out" 2>/dev/null & pids+=($!)
upstream=$(wait_line "$work/upstream.out" "listening http://")
python3 - "$api" "$ingress" "$upstream" <<'PY'
import http.client, json, sys, time
api, ingress, upstream = sys.argv[1:4]
def conn(url):
    host, port = url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port))
a, i = conn(api), conn(ingress)
samples = []
for n in range(20):
    body = json.dumps({"address": upstream, "routes": [{"prefix": f"/late{n}"}], "ttl_ms": 600000})
    start = time.perf_counter()
    a.request("PUT", f"/v1/services/late{n}/instances/l1", body); a.getresponse().read()
    acked = time.perf_counter()
    while True:
        i.request("GET", f"/late{n}"); r = i.getresponse(); r.read()
        if r.status == 200: break
    samples.append(((time.perf_counter() - acked) * 1000, (acked - start) * 1000))
samples.sort()
print("route live after the registration was acknowledged: median %.2f ms, max %.2f ms (registration itself: median %.2f ms)"
      % (samples[len(samples)//2][0], samples[-1][0], sorted(s[1] for s in samples)[len(samples)//2]))
PY
