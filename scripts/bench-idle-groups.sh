#!/usr/bin/env bash
# Node RSS with 1,000 idle consumer groups and 100 WebSocket producers that never read their
# acknowledgements (issue 13), sampled every 10 s for 60 s on a fresh node.
#
#   scripts/bench-idle-groups.sh [target-dir]   (needs a release build of dctl; installs the
#                                                `websockets` package into target/tools)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target=${1:-target}
dctl="$target/release/dctl"
venv="$here/../target/tools/bench-python"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import websockets' 2>/dev/null || "$venv/bin/pip" install --quiet 'websockets==15.*'
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
. "$here/node.sh"
ulimit -n 65536 2>/dev/null || true
# Every client is on 127.0.0.1: lift the per-address cap (default 512) above them all.
start_node idle --max-connections-per-address 4096
echo "fresh node RSS: $(rss)"
"$venv/bin/python" "$here/bench-idle-load.py" "$url" "$node_pid" "${IDLE_GROUPS:-1000}" "${PRODUCERS:-100}" "${DURATION:-60}" 10
echo "after the load: $(rss)"
stop_node
