#!/usr/bin/env bash
# Install the Debian packages the test suite needs (it starts its own throwaway
# PostgreSQL and Redis servers from these binaries, and runs a PHP producer that writes
# as Chappy.php does with php-cli and its SQLite, PostgreSQL and Redis extensions, and
# drives Chromium for the dashboard, and the scale-out tests' PgBouncer and network
# namespaces) when they are missing.
set -euo pipefail

missing=()
have_pg() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; }
have_pg || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
php_has() { command -v php >/dev/null && php -m 2>/dev/null | grep -qix "$1"; }
command -v php >/dev/null || missing+=(php-cli)
php_has pdo_sqlite || missing+=(php-sqlite3)
php_has pdo_pgsql || missing+=(php-pgsql)
php_has redis || missing+=(php-redis)
# the dashboard's browser test drives Debian's headless Chromium
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
# the scale-out tests: a pooler, and network namespaces for the cut-off host
[ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null || missing+=(pgbouncer)
command -v ip >/dev/null || missing+=(iproute2)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing ${missing[*]}; run: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
