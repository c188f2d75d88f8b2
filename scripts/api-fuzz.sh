#!/usr/bin/env bash
# Checks a running node against its own OpenAPI document with schemathesis: thousands of
# generated requests, valid and invalid, against every documented HTTP operation (the three
# WebSocket endpoints aside). It fails on any 5xx, on a status, content type, header or body
# the document does not declare, on invalid input that is accepted, and on a method the path
# does not take answered with anything but 405.
#
# Not checked: that every schema-valid request is accepted. Some are refused by design
# (`?at=` a revision the node has not reached, `If-Match` with a stale revision: 400 and 412).
#
#   scripts/api-fuzz.sh <base-url> [extra schemathesis options]
#
# Installs schemathesis (pinned) into target/tools/schemathesis on first use, from PyPI.
set -euo pipefail
url=${1:?usage: scripts/api-fuzz.sh <base-url> [schemathesis options]}
shift
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/target/tools/schemathesis"
version=4.32.5
if [ ! -x "$venv/bin/st" ] || ! "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi
# schemathesis keeps its working files in .schemathesis/ under the current directory.
# One worker by default: with two, CPython 3.11 before 3.11.8 now and then fails an ast.parse
# that hypothesis makes in both threads at once ("SystemError: AST constructor recursion depth
# mismatch", python/cpython#106905), reported as a schemathesis Runtime Error. One worker took
# 25 s where two took 22 s.
cd "$root/target/tools"
exec "$venv/bin/st" run "$url/v1/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,unsupported_method \
  --exclude-path-regex '/(consume|produce|watch)$' \
  --max-examples "${API_FUZZ_EXAMPLES:-100}" \
  --seed "${API_FUZZ_SEED:-20261128}" \
  --generation-deterministic \
  --workers "${API_FUZZ_WORKERS:-1}" \
  --no-color \
  "$@"
