#!/usr/bin/env bash
# Install the Debian packages that build-deb.sh and test-deb.sh run on the host, when
# any is missing: the package build (dpkg-buildpackage, debhelper, dh-python, pybuild's
# pyproject plugin), lintian, and the container (debootstrap, systemd-nspawn).
set -euo pipefail

needed=(debootstrap systemd-container dpkg-dev debhelper dh-python pybuild-plugin-pyproject
        python3-all python3-setuptools lintian git util-linux)
missing=()
for package in "${needed[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null | grep -qx installed \
        || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "host-deps: missing ${missing[*]}; run: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "host-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
