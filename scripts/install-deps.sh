#!/usr/bin/env bash
# Installs the C system libraries Gantry builds against, when any is missing.
# Debian/Ubuntu (apt-get). Idempotent: does nothing when everything is present.
set -euo pipefail
need=()
pkgconf_ok() { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$1"; }
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
pkgconf_ok yaml-0.1 || need+=(libyaml-dev)
pkgconf_ok sqlite3 || need+=(libsqlite3-dev)
pkgconf_ok libcurl || need+=(libcurl4-openssl-dev)
pkgconf_ok libmicrohttpd || need+=(libmicrohttpd-dev)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
echo "install-deps: installing ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: apt-get not found; install these packages by hand: ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends pkg-config libyaml-dev libsqlite3-dev libcurl4-openssl-dev libmicrohttpd-dev >/dev/null
