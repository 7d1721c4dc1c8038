#!/usr/bin/env bash
# Schemathesis (PyPI) against the running daemon's /api/v1/openapi.json: every operation gets
# a fixed number of generated requests (SCHEMATHESIS_EXAMPLES, default 25, derandomized);
# the run fails on any 5xx and on any response that does not match the document.
# Usage: scripts/schemathesis.sh PATH/TO/gantry
set -euo pipefail
gantry=${1:?usage: scripts/schemathesis.sh PATH/TO/gantry}
examples=${SCHEMATHESIS_EXAMPLES:-25}
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-schemathesis"
if ! "$venv/bin/python" -c "import schemathesis, hypothesis; assert hypothesis.__version__ == '6.129.5'" 2>/dev/null; then
  echo "schemathesis: installing it into $venv (PyPI)" >&2
  if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q 'schemathesis==3.39.16' 'hypothesis==6.129.5'; }; then
    rm -rf "$venv"
    echo "schemathesis: SKIPPED — could not install schemathesis from PyPI (no network?)" >&2
    exit 0
  fi
fi
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/spec"
cp -r "$root"/Manifests/examples/. "$work/spec/"
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token schemathesis admin * $(id -un)" > "$work/tokens"
# --runtime none: generated workloads are admitted, never started.
"$gantry" run --spec-dir "$work/spec" --state-dir "$work/state" --runtime none --local-gpus 8 \
  --listen 127.0.0.1:0 --tokens "$work/tokens" --watch-max-seconds 1 --log-format text > "$work/daemon.log" 2>&1 &
pid=$!
port=""
for _ in $(seq 1 200); do
  port=$(grep -o 'serving the HTTP API.*port=[0-9]*' "$work/daemon.log" 2>/dev/null | grep -o 'port=[0-9]*' | cut -d= -f2 || true)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/daemon.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "schemathesis: the daemon did not start its API" >&2; cat "$work/daemon.log" >&2; exit 1; }
for _ in $(seq 1 300); do
  python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/readyz', timeout=2)" >/dev/null 2>&1 && break
  sleep 0.1
done
"$venv/bin/st" run "http://127.0.0.1:$port/api/v1/openapi.json" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
  --experimental=openapi-3.1 --hypothesis-max-examples "$examples" --hypothesis-derandomize --hypothesis-deadline 5000 \
  -H "Authorization: Bearer $token" --request-timeout 10000 --show-trace 2>&1 | tail -60
status=${PIPESTATUS[0]}
if ! kill -0 "$pid" 2>/dev/null; then echo "schemathesis: the daemon died" >&2; tail -50 "$work/daemon.log" >&2; exit 1; fi
exit "$status"
