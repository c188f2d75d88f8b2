#!/usr/bin/env bash
# What checking tokens costs (issue 15's budget: at most 5% of single-event produce
# throughput): single-event produce over 64 connections (`dctl bench produce`, 200-byte data,
# durable) against a fresh release node per run, alternating auth off and auth on (with the
# node's admin token) for ROUNDS rounds of SECS seconds each, so that the machine's drift
# hits both sides alike. Prints every run, the medians, and on/off, for two figures: events/s
# (which the disk's fsync latency makes swing by tens of percent from run to run here) and the
# node's CPU time per event (user + system, from /proc; steadier, and what a token check adds
# to).
#
#   scripts/bench-auth.sh [target-dir]        (needs a release build of dctl)
#   ROUNDS=8 SECS=5 scripts/bench-auth.sh     (defaults 6 and 5)
#
# The ingress checks no tokens (routes are public by design), so proxied throughput has no
# token cost to measure.
set -euo pipefail
target=${1:-target}
dctl="$target/release/dctl"
[ -x "$dctl" ] || { echo "bench-auth.sh: no $dctl (cargo build --release -p dctl)" >&2; exit 2; }
rounds=${ROUNDS:-6}
secs=${SECS:-5}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
. "$(dirname "$0")/node.sh"

# The node's CPU time so far (user + system), in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$node_pid/stat"; }

# One run: a fresh node with flags "$2...", produce for $secs s; prints events/s and the
# node's CPU microseconds per event during the load.
run() {
  local name=$1; shift
  start_node "$name" "$@"
  local token=()
  [ -f "$work/node-$name/admin.token" ] && token=(--token-file "$work/node-$name/admin.token")
  local rate before after hz
  hz=$(getconf CLK_TCK)
  before=$(cpu_ticks)
  rate=$("$dctl" bench produce --url "$url" "${token[@]}" --connections 64 --duration "$secs" \
    | awk '$1 == "events/s" { gsub(",", "", $2); print $2 }')
  after=$(cpu_ticks)
  stop_node
  awk -v r="${rate:-0}" -v t=$((after - before)) -v hz="$hz" -v s="$secs" \
    'BEGIN { printf "%d %.2f\n", r, (r > 0) ? t / hz * 1e6 / (r * s) : 0 }'
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

off=(); on=(); cpu_off=(); cpu_on=()
for i in $(seq 1 "$rounds"); do
  # Alternate which side goes first, so neither always gets the warmer machine.
  if [ $((i % 2)) -eq 1 ]; then
    read -r a ca < <(run "off-$i"); read -r b cb < <(run "on-$i" --auth on)
  else
    read -r b cb < <(run "on-$i" --auth on); read -r a ca < <(run "off-$i")
  fi
  off+=("$a"); on+=("$b"); cpu_off+=("$ca"); cpu_on+=("$cb")
  echo "round $i: auth off $a events/s ($ca us CPU/event), auth on $b events/s ($cb us CPU/event)"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
m_off=$(printf '%s\n' "${off[@]}" | median); m_on=$(printf '%s\n' "${on[@]}" | median)
c_off=$(printf '%s\n' "${cpu_off[@]}" | median); c_on=$(printf '%s\n' "${cpu_on[@]}" | median)
echo "median events/s: auth off $m_off, auth on $m_on, on/off $(ratio "$m_on" "$m_off")"
echo "median node CPU per event: auth off $c_off us, auth on $c_on us, on/off $(ratio "$c_on" "$c_off")"
