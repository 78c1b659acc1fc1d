#!/usr/bin/env bash
# Build chappyd_<version>_all.deb into dist/, from a clean export of the source.
#
#   packaging/build-deb.sh              # builds what HEAD holds (what CI tests)
#   packaging/build-deb.sh --worktree   # HEAD plus uncommitted changes to tracked files
#
# The tree is exported with `git archive` into a temporary directory, so nothing
# untracked (.venv, caches, old build/ output) can leak into the package, and built
# with Debian's own python3 and a minimal environment (a developer's pyenv or venv on
# PATH would otherwise build against the wrong interpreter). Then lintian must report
# no error and no warning (overrides, each with its reason: debian/*.lintian-overrides).
#
# CHAPPY_DEB_PENDING: see packaging/test-deb.sh; "manpages" in it tolerates lintian's
# no-manual-page while man/chappyd.8 and man/chappyctl.1 are not written yet.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bash packaging/host-deps.sh

ref=HEAD
if [ "${1:-}" = --worktree ]; then
    ref=$(git stash create)  # a commit of the working tree; empty when it is clean
    ref=${ref:-HEAD}
fi

work=$(mktemp -d /tmp/chappyd-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
git archive --format=tar "$ref" | tar -x -C "$work/src"

# The Debian version and the Python one are kept in step by hand: say so if they drift.
deb_version=$(cd "$work/src" && dpkg-parsechangelog -S Version)
py_version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$work/src/chappyd/__init__.py")
if [ "$deb_version" != "$py_version" ]; then
    echo "build-deb: debian/changelog says $deb_version but chappyd.__version__ is" \
         "$py_version: add a changelog entry (dch -v $py_version)" >&2
    exit 1
fi

echo "build-deb: building chappyd $deb_version from $(git rev-parse --short "$ref")" >&2
if ! (cd "$work/src" && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work" \
        LANG=C.UTF-8 DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -us -uc -b \
        >"$work/build.log" 2>&1); then
    tail -n 40 "$work/build.log" >&2
    echo "build-deb: dpkg-buildpackage failed (last 40 lines above)" >&2
    exit 1
fi

mkdir -p dist
deb="dist/chappyd_${deb_version}_all.deb"
cp "$work/chappyd_${deb_version}_all.deb" "$deb"
cp "$work"/chappyd_"${deb_version}"_*.buildinfo "$work"/chappyd_"${deb_version}"_*.changes dist/

suppress=()
if [[ " ${CHAPPY_DEB_PENDING:-} " == *" manpages "* ]] \
        && ! { [ -f "$work/src/man/chappyd.8" ] && [ -f "$work/src/man/chappyctl.1" ]; }; then
    echo "build-deb: PENDING manpages: lintian's no-manual-page is tolerated until" \
         "man/chappyd.8 and man/chappyctl.1 exist" >&2
    suppress=(--suppress-tags no-manual-page)
fi
# Lint what would be uploaded (the .changes: the .deb and its .buildinfo). lintian warns
# that it runs as root, which CI does; that line is not a finding.
changes=$(ls dist/chappyd_"${deb_version}"_*.changes)
status=0
report=$(lintian --fail-on error,warning "${suppress[@]}" "$changes" 2>&1) || status=$?
printf '%s\n' "$report" | grep -v 'running with root privileges' >&2 || true
if [ "$status" -ne 0 ]; then
    echo "build-deb: lintian reports errors or warnings (above)" >&2
    exit 1
fi
echo "build-deb: $deb ($(stat -c %s "$deb") bytes); lintian: no errors, no warnings${suppress[*]:+ (${suppress[*]})}" >&2
