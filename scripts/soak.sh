#!/usr/bin/env bash
# Soak test ("bounded everything"): a fresh `dctl up` on loopback with an echo upstream behind
# its ingress, under every kind of traffic at once for SOAK_SECS (default 600) seconds: HTTP and
# pipelined WebSocket produce, WebSocket consumers (reading, stalled on purpose, reconnecting
# from their last offset), registry churn, KV puts and deletes, proxied requests. Samples the
# node's RSS, open descriptors and threads every 10 s into samples.csv, plots them (rss.png;
# matplotlib installed into target/tools on first use), prints a summary and a verdict, and
# exits 1 if memory grew, descriptors leaked or the node answered 5xx.
#
#   scripts/soak.sh                         (SOAK_SECS=90 for a short run)
#
#   DCTL           the binary (default target/release/dctl if built, else target/debug/dctl)
#   ECHO_UPSTREAM  the upstream (default echo-upstream next to DCTL)
#   SOAK_NODE_FLAGS  more `dctl up` flags
#   SOAK_OUT       where the CSV, the plot, the totals and the logs go (default
#                  target/soak/<timestamp>/)
#   SOAK_HTTP_RATE, SOAK_WS_RATE, SOAK_CONSUMERS, SOAK_STALLED, SOAK_RECONNECTING,
#   SOAK_INSTANCES, SOAK_KV_RATE, SOAK_PROXY_RATE, ...  the load (see scripts/soak_load.py)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
secs=${SOAK_SECS:-600}
if [ -n "${DCTL:-}" ]; then dctl=$DCTL
elif [ -x "$root/target/release/dctl" ]; then dctl=$root/target/release/dctl
else dctl=$root/target/debug/dctl; fi
upstream_bin=${ECHO_UPSTREAM:-$(dirname "$dctl")/echo-upstream}
for b in "$dctl" "$upstream_bin"; do
  [ -x "$b" ] || { echo "soak.sh: no binary at $b (cargo build, or set DCTL/ECHO_UPSTREAM)" >&2; exit 2; }
done
out=${SOAK_OUT:-$root/target/soak/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# matplotlib for the plot, pinned, into target/tools (as scripts/install-test-tools.sh does).
mpl_version=3.9.2
tools="$root/target/tools"
mpl="$tools/matplotlib-$mpl_version"
mkdir -p "$tools"
(
  exec 9>"$tools/.install.lock"
  flock 9
  if [ ! -e "$mpl/.installed" ]; then
    rm -rf "$mpl" "$mpl.partial"
    if python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        --timeout 20 --retries 1 --only-binary=:all: --target "$mpl.partial" \
        "matplotlib==$mpl_version" >"$work/pip.log" 2>&1; then
      touch "$mpl.partial/.installed"
      mv "$mpl.partial" "$mpl"
    else
      rm -rf "$mpl.partial"
      echo "soak.sh: could not install matplotlib from PyPI ($(tail -n1 "$work/pip.log")); no plot, the CSV is still written" >&2
    fi
  fi
)

. "$here/node.sh"
# SOAK_NODE_FLAGS: more `dctl up` flags (e.g. --durability buffered).
# shellcheck disable=SC2086
start_node soak ${SOAK_NODE_FLAGS:-}
[ -n "$url" ] || { echo "soak.sh: the node did not start:" >&2; cat "$work/node-soak.out" >&2; exit 1; }
ingress=$(grep -m1 "^listening api=" "$work/node-soak.out" | sed 's/.* ingress=\([^ ]*\).*/\1/')

"$upstream_bin" soak-upstream 127.0.0.1:0 >"$work/upstream.out" 2>&1 &
pids+=($!)
line=""
for _ in $(seq 1 100); do
  line=$(grep -m1 "^listening http://" "$work/upstream.out" 2>/dev/null || true)
  [ -n "$line" ] && break; sleep 0.1
done
[ -n "$line" ] || { echo "soak.sh: echo-upstream did not start" >&2; cat "$work/upstream.out" >&2; exit 1; }
upstream=${line#listening http://}

echo "soak: $secs s against $dctl (pid $node_pid, api $url, ingress $ingress, upstream $upstream); output in $out"
status=0
python3 "$here/soak_load.py" --api "$url" --ingress "$ingress" --upstream "$upstream" \
  --pid "$node_pid" --secs "$secs" --csv "$out/samples.csv" --stats "$out/stats.json" || status=$?
cp "$work/node-soak.out" "$out/node.log"
if [ "$status" -ne 0 ] || ! kill -0 "$node_pid" 2>/dev/null; then
  echo "soak.sh: the load failed (exit $status) or the node died; node log in $out/node.log" >&2
  exit 1
fi
[ -e "$mpl/.installed" ] && export PYTHONPATH="$mpl${PYTHONPATH:+:$PYTHONPATH}"
verdict=0
python3 "$here/soak_report.py" "$out/samples.csv" "$out/stats.json" "$out/rss.png" \
  >"$out/summary.txt" || verdict=$?
cat "$out/summary.txt"
exit "$verdict"
