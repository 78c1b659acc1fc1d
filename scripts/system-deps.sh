#!/usr/bin/env bash
# Install the Debian packages the test suite needs (it starts its own throwaway
# PostgreSQL and Redis servers from these binaries, and drives Chromium for the
# dashboard) when they are missing.
set -euo pipefail

missing=()
have_pg() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; }
have_pg || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
# the dashboard's browser test drives Debian's headless Chromium
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing ${missing[*]}; run: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
