# The container of packaging/test-deb.sh (sourced): a cached bookworm root, booted with
# systemd as PID 1 under systemd-nspawn, and taken down again. Uses test-deb.sh's
# globals cache, suite, include, extras, deb and unit; sets root, work, own_cgroup,
# nspawn_pid and cpid.

# prepare_root: the cached root for this package's dependencies, debootstrapped if new.
prepare_root() {
    # The mirror apt uses on this host (debootstrap's default may not be reachable).
    mirror=$(apt-get indextargets --format '$(REPO_URI)' 'Created-By: Packages' \
        'Label: Debian' "Codename: $suite" 2>/dev/null | head -n 1)
    mirror=${mirror:-http://deb.debian.org/debian/}
    # The package's dependencies, without versions or alternatives (python3:any -> python3).
    local depends key
    mapfile -t depends < <(dpkg-deb -f "$deb" Depends | tr ',' '\n' |
        sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/[[:space:]]//g' | grep -v '^$')
    mapfile -t packages < <(printf '%s\n' "${extras[@]}" "${depends[@]}" | sort -u)
    key=$(printf '%s\n' v2 "$suite" "$mirror" "$include" "${packages[@]}" |
        sha256sum | cut -c1-16)
    root=$cache/root-$key

    mkdir -p "$cache"
    (
        flock -x 9
        if [ ! -d "$root" ]; then
            local started=$SECONDS old
            make_root
            say "root ready in $((SECONDS - started)) s"
            # Roots of other keys are stale unless a run holds them (shared lock): drop them.
            for old in "$cache"/root-*; do
                [ "$old" = "$root" ] || [[ "$old" == *.lock ]] || [[ "$old" == *.tmp ]] \
                    || ! flock -n -x "$old.lock" rm -rf "$old" "$old.lock" || true
            done
        fi
    ) 9>"$cache/lock"
    exec 8>"$root.lock"
    flock -s 8  # keeps this root from being pruned while the container runs
}

make_root() {
    local tmp=$root.tmp
    rm -rf "$tmp"
    say "debootstrapping $suite from $mirror into $root (cached for later runs)"
    if ! debootstrap --variant=minbase --include="$include" "$suite" "$tmp" "$mirror" \
            >"$cache/debootstrap.log" 2>&1; then
        tail -n 20 "$cache/debootstrap.log" >&2
        fail "debootstrap failed (log: $cache/debootstrap.log)"
    fi
    # No service may start inside a chroot: policy-rc.d says no while apt runs.
    printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
    chmod 0755 "$tmp/usr/sbin/policy-rc.d"
    if ! env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
            chroot "$tmp" apt-get install -y -q --no-install-recommends "${packages[@]}" \
            >"$cache/chroot-apt.log" 2>&1; then
        tail -n 20 "$cache/chroot-apt.log" >&2
        fail "installing ${packages[*]} in the root failed (log: $cache/chroot-apt.log)"
    fi
    rm -f "$tmp/usr/sbin/policy-rc.d"
    # The chroot shared the host's network, so a PostgreSQL there made the new cluster
    # pick 5433; in the container's own network 5432 is free, where tests expect it.
    sed -i 's/^port = [0-9]*/port = 5432/' "$tmp"/etc/postgresql/*/main/postgresql.conf
    chroot "$tmp" apt-get clean
    mv "$tmp" "$root"
}

# boot_container FILE...: boot $root (read-only, through an overlay) with FILEs under
# /mnt/chappyd-test, and wait for its systemd.
boot_container() {
    work=$(mktemp -d /tmp/chappyd-test-deb.XXXXXX)
    mkdir "$work/mnt"
    cp "$@" "$work/mnt/"
    local booted=$SECONDS state cgroup2
    # --keep-unit puts the container's cgroups (payload/, supervisor/) under nspawn's own
    # cgroup, which for a process outside any systemd unit is the root: two runs at once
    # would then share one cgroup tree, and each container's systemd would see and kill
    # the other's services. So each run gets a cgroup of its own first.
    cgroup2=$(findmnt -n -t cgroup2 -o TARGET | head -n 1)
    [ -n "$cgroup2" ] || fail "no cgroup2 hierarchy is mounted on this host"
    own_cgroup=$cgroup2/chappyd-test-$$
    mkdir "$own_cgroup"
    (
        echo "$BASHPID" >"$own_cgroup/cgroup.procs"
        exec env SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn --quiet \
            --directory="$root" --boot --register=no --keep-unit --volatile=overlay \
            --private-network --machine="chappyd-test-$$" \
            --bind-ro="$work/mnt:/mnt/chappyd-test"
    ) >"$work/console.log" 2>&1 </dev/null &
    nspawn_pid=$!
    wait_until 30 "container's PID 1" container_pid
    # A container outlives a SIGKILLed nspawn: should this script be SIGKILLed (no trap
    # runs), a watcher in its own session kills the container's PID 1, and so all of it.
    setsid bash -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
        [ "$(cat "/proc/$2/comm" 2>/dev/null)" = systemd ] && kill -KILL "$2"
        kill -0 "$1" 2>/dev/null && exit 0
        rm -rf "$3"
        for _ in $(seq 30); do
            find "$4" -depth -type d -exec rmdir {} + 2>/dev/null && break
            sleep 1
        done' \
        watch-container "$$" "$cpid" "$work" "$own_cgroup" </dev/null >/dev/null 2>&1 &
    wait_until 60 "container's systemd listening" in_ct test -S /run/systemd/private
    state=$(timeout 120 nsenter -t "$cpid" -a systemctl is-system-running --wait || true)
    case "$state" in
        running) ;;
        degraded)  # a unit of the base system failed: not ours (none is installed yet)
            say "note: the container booted degraded: $(in_ct systemctl --failed --no-legend |
                awk '{print $2}' | tr '\n' ' ')" ;;
        *) fail "container booted '$state', expected 'running'" ;;
    esac
    ok "booted bookworm under systemd in $((SECONDS - booted)) s"
}

# The container's PID 1: nspawn's child that is PID 1 in its own PID namespace and runs
# systemd. (nspawn first forks a short-lived helper that sets up the mounts: entering its
# namespaces instead would be a race lost under load.)
container_pid() {
    local pid
    for pid in $(pgrep -P "$nspawn_pid"); do
        if [ "$(awk '/^NSpid:/ {print $NF}' "/proc/$pid/status" 2>/dev/null)" = 1 ] &&
                [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd ]; then
            cpid=$pid
            return 0
        fi
    done
    return 1
}

# cleanup (the EXIT trap): on failure show the console and the unit's journal, then
# power the container off (nspawn forwards TERM to its systemd) and drop the work dir.
cleanup() {
    local status=$?
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        if [ "$status" -ne 0 ] && [ -f "$work/console.log" ]; then
            say "container console (last 30 lines):"
            tail -n 30 "$work/console.log" >&2
        fi
        if [ "$status" -ne 0 ] && [ -n "$cpid" ]; then
            say "journal of $unit (last 60 lines):"
            in_ct journalctl -u "$unit" --no-pager -n 60 >&2 2>/dev/null || true
        fi
        kill -TERM "$nspawn_pid" 2>/dev/null || true
        for _ in $(seq 150); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$nspawn_pid" 2>/dev/null || true
        wait "$nspawn_pid" 2>/dev/null || true
    fi
    # The run's cgroup tree, deepest first; its processes are gone with the container.
    if [ -n "$own_cgroup" ] && [ -d "$own_cgroup" ]; then
        find "$own_cgroup" -depth -type d -exec rmdir {} + 2>/dev/null \
            || say "note: could not remove cgroup $own_cgroup"
    fi
    [ -n "$work" ] && rm -rf "$work"
    return "$status"
}
