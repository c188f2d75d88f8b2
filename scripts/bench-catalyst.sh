#!/usr/bin/env bash
# Catalyst with `dctl bench` against a fresh node (200-byte data, loopback only): single-event
# produce over 64 connections, batches of 100, replay of 1,000,000 events over one WebSocket,
# produce-to-consume latency at 1,000/s, fan-out to 200 consumers at 2,000/s; node RSS after;
# then single-event produce with wrk as the load generator, if wrk is installed.
#
#   scripts/bench-catalyst.sh [target-dir]   (needs a release build of dctl)
#   AUTH=on scripts/bench-catalyst.sh         every node checks tokens and the load generators
#                                             send its admin token: run both in one session to
#                                             see what checking tokens costs (budget: 5%)
set -euo pipefail
target=${1:-target}
dctl="$target/release/dctl"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
. "$(dirname "$0")/node.sh"

node_flags=()
[ "${AUTH:-off}" = on ] && node_flags=(--auth on)
# The token flag for node NAME's load generators (nothing with auth off).
token_of() { [ "${AUTH:-off}" = on ] && echo "--token-file $work/node-$1/admin.token" || true; }
echo "auth: ${AUTH:-off}"

# Each run gets a fresh node: one that has just taken a run's events is still flushing and
# compacting them, and its 2 cores are shared with the next run.
start_node a "${node_flags[@]}"
# shellcheck disable=SC2046 # the token flag is two words or none
"$dctl" bench produce --url "$url" $(token_of a) --connections 64 --duration 10
stop_node
start_node b "${node_flags[@]}"
# shellcheck disable=SC2046
"$dctl" bench produce --url "$url" $(token_of b) --channel batched --connections 64 --batch 100 --count 1000000 --duration 60
# shellcheck disable=SC2046
"$dctl" bench consume --url "$url" $(token_of b) --channel batched --from earliest --count 1000000
echo "node RSS after 1M events: $(rss)"
stop_node
start_node c "${node_flags[@]}"
# shellcheck disable=SC2046
"$dctl" bench latency --url "$url" $(token_of c) --rate 1000 --duration 10
# shellcheck disable=SC2046
"$dctl" bench fanout --url "$url" $(token_of c) --consumers 200 --rate 2000 --duration 10
echo "node RSS after fan-out: $(rss)"

# Single-event produce again with wrk as the load generator (C, cheaper per request than any
# Rust client here), when it is installed: how much of the 2 cores the generator itself takes.
if command -v wrk >/dev/null; then
  stop_node
  start_node d "${node_flags[@]}"
  : >"$work/produce.lua"
  if [ "${AUTH:-off}" = on ]; then
    echo "wrk.headers[\"Authorization\"] = \"Bearer $(cat "$work/node-d/admin.token")\"" >"$work/produce.lua"
  fi
  cat >>"$work/produce.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/cloudevents+json"
local n = 0
local pad = string.rep("x", 190)
request = function()
  n = n + 1
  local body = '{"specversion":"1.0","id":"' .. n .. '-' .. math.random(1e9) ..
    '","source":"/bench/wrk","type":"bench.event","datacontenttype":"application/json",' ..
    '"data":{"pad":"' .. pad .. '"}}'
  return wrk.format(nil, "/v1/channels/wrk/events", nil, body)
end
LUA
  echo "wrk -t1 -c64 -d10s: single-event produce"
  wrk -t1 -c64 -d10s --latency -s "$work/produce.lua" "$url" | grep -E "Requests/sec|  50%|  99%|Non-2xx|Socket errors"
  auth_header=()
  [ "${AUTH:-off}" = on ] && auth_header=(-H "Authorization: Bearer $(cat "$work/node-d/admin.token")")
  echo "events stored: $(curl -sf "${auth_header[@]}" "$url/v1/channels/wrk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')"
fi
