#!/usr/bin/env bash
# Installs the C system libraries Gantry builds against, when any is missing, and (best
# effort, never failing the set-up) what the tests and benchmarks use: chromium for the
# dashboard's browser tests, python3's venv for schemathesis, wrk for make bench-api.
# Debian/Ubuntu (apt-get). Idempotent: does nothing when everything is present.
set -euo pipefail
need=()
pkgconf_ok() { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$1"; }
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
pkgconf_ok yaml-0.1 || need+=(libyaml-dev)
pkgconf_ok sqlite3 || need+=(libsqlite3-dev)
pkgconf_ok libcurl || need+=(libcurl4-openssl-dev)
pkgconf_ok libmicrohttpd || need+=(libmicrohttpd-dev)
optional=()
if [ -z "${GANTRY_NO_TEST_TOOLS:-}" ]; then
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || optional+=(chromium)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || optional+=(python3-venv)
  command -v wrk >/dev/null 2>&1 || optional+=(wrk)
fi
if [ ${#need[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if ! command -v apt-get >/dev/null 2>&1; then
  if [ ${#need[@]} -gt 0 ]; then
    echo "install-deps: apt-get not found; install these packages by hand: ${need[*]}" >&2
    exit 1
  fi
  echo "install-deps: apt-get not found; the tests that need ${optional[*]} will say they are skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends pkg-config libyaml-dev libsqlite3-dev libcurl4-openssl-dev libmicrohttpd-dev >/dev/null
fi
if [ ${#optional[@]} -gt 0 ]; then
  echo "install-deps: installing the test tools ${optional[*]} (best effort; GANTRY_NO_TEST_TOOLS=1 skips)" >&2
  { [ ${#need[@]} -gt 0 ] || $SUDO apt-get update -qq; } >/dev/null 2>&1 || true
  $SUDO apt-get install -y -qq --no-install-recommends "${optional[@]}" >/dev/null 2>&1 \
    || echo "install-deps: could not install ${optional[*]}; the tests that need them will say they are skipped" >&2
fi
