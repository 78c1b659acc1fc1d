#!/usr/bin/env bash
# End-to-end test of the .deb: install it in a booted Debian bookworm whose PID 1 is
# systemd, run chappyd@emails as users do (apt install, /etc/chappyd.env, systemctl),
# then purge it and check that nothing is left.
#
#   packaging/test-deb.sh                      # builds dist/*.deb from HEAD first
#   packaging/test-deb.sh --worktree           # ... from HEAD plus uncommitted changes
#   CHAPPY_DEB=dist/chappyd_0.1.0_all.deb packaging/test-deb.sh
#
# Needs root (debootstrap, systemd-nspawn, nsenter); installs its host tools with apt
# when missing (packaging/host-deps.sh). The container:
# - its root is debootstrapped once (--variant=minbase, ~45 s) with Debian's python3-*
#   libraries, redis-server and man-db pre-installed, and cached under
#   $CHAPPY_TEST_CACHE (default /var/cache/chappyd-test) keyed by a hash of what it
#   holds; runs share it read-only (--volatile=overlay keeps it clean);
# - it boots with --register=no --keep-unit (no D-Bus or machined on the host) and
#   --private-network: its own loopback, so its Redis on 6379 meets no other server and
#   `apt install ./chappyd_*.deb` resolves every dependency from the cached root;
# - it is driven with `nsenter -t <its PID 1> -a systemctl ...`.
#
# CHAPPY_DEB_PENDING names parts of chappyd that are still being written elsewhere. For
# each name listed, while the built package lacks that part, the steps needing it are
# reported as PENDING (loudly, and in the closing summary) instead of failing; once the
# part is in the package its steps run whatever this says. Empty (the default, since every
# part is on main) requires everything.
#   master    chappyd/daemon/master.py, the prefork master (docs/design.md §6): READY=1 under
#             Type=notify, reload by HUP, graceful drain on stop, a killed child's job
#             re-run. Without it the unit runs with a drop-in Type=exec, WatchdogSec=0.
#   redis     chappyd/drivers/redis/: the 100-job scenario on Debian's redis-server
#             (without it, those steps run on the SQLite default instead).
#   postgres  chappyd/drivers/postgres/: 20 jobs on Debian's PostgreSQL 15.
#   manpages  man/chappyd.8 and man/chappyctl.1 (lintian no-manual-page; verify --man).
: "${CHAPPY_DEB_PENDING=}"
export CHAPPY_DEB_PENDING
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${CHAPPY_TEST_CACHE:-/var/cache/chappyd-test}
suite=bookworm
include=systemd,systemd-sysv,dbus
# In the cached root so that the test does not download them each time; the .deb's own
# Depends are added below, so a new dependency changes the key and rebuilds the root.
extras=(redis-server postgresql man-db)
unit=chappyd@emails.service

passed=0
pendings=()
work=""
own_cgroup=""
nspawn_pid=""
cpid=""

# shellcheck source=packaging/e2e/lib.sh
source "$repo/packaging/e2e/lib.sh"
# shellcheck source=packaging/e2e/container.sh
source "$repo/packaging/e2e/container.sh"

trap cleanup EXIT
trap 'exit 130' INT TERM HUP  # through cleanup: the container is powered off

# has_part NAME PATH-IN-DEB: 0 if the package has the part; 1 (reported PENDING) if it
# lacks it and CHAPPY_DEB_PENDING allows that; fails otherwise.
has_part() {
    if grep -q " \./$2\$" <<<"$listing"; then
        if [[ " $CHAPPY_DEB_PENDING " == *" $1 "* ]]; then
            say "note: '$1' is in the package now; drop it from CHAPPY_DEB_PENDING"
        fi
        return 0
    fi
    [[ " $CHAPPY_DEB_PENDING " == *" $1 "* ]] && return 1
    fail "the package has no /$2 ('$1'), and CHAPPY_DEB_PENDING does not list '$1'"
}

# ------------------------------------------------------------------ the package

[ "$(id -u)" -eq 0 ] || fail "needs root (debootstrap, systemd-nspawn, nsenter)"
cd "$repo"
bash packaging/host-deps.sh
if [ -z "${CHAPPY_DEB:-}" ]; then
    bash packaging/build-deb.sh "$@"
    version=$(dpkg-parsechangelog -S Version)
    CHAPPY_DEB=dist/chappyd_${version}_all.deb
fi
deb=$(realpath "$CHAPPY_DEB")
[ -f "$deb" ] || fail "no package at $CHAPPY_DEB"
say "testing $deb"

listing=$(dpkg-deb -c "$deb")
have_master=0 have_redis=0 have_postgres=0 have_manpages=0
has_part master usr/lib/python3/dist-packages/chappyd/daemon/master.py && have_master=1
has_part redis usr/lib/python3/dist-packages/chappyd/drivers/redis/driver.py && have_redis=1
has_part postgres usr/lib/python3/dist-packages/chappyd/drivers/postgres/driver.py && have_postgres=1
has_part manpages usr/share/man/man8/chappyd.8.gz && have_manpages=1

# ------------------------------------------------------------------ the container

prepare_root
boot_container "$deb" packaging/e2e/chappy_e2e.py

# ------------------------------------------------------------------ install

if ! in_ct env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        "/mnt/chappyd-test/$(basename "$deb")" >"$work/install.log" 2>&1; then
    cat "$work/install.log" >&2
    fail "apt install ./$(basename "$deb")"
fi
ok "apt install ./$(basename "$deb")"

expect_eq "/etc/chappyd.env mode" "$(in_ct stat -c '%a %U:%G' /etc/chappyd.env)" \
    "640 root:chappyd"
expect_eq "/etc/chappyd mode" "$(in_ct stat -c '%a %U:%G' /etc/chappyd)" "2750 root:chappyd"
expect_eq "/var/lib/chappyd mode" "$(in_ct stat -c '%a %U:%G' /var/lib/chappyd)" \
    "750 chappyd:chappyd"
expect_eq "user chappyd" "$(in_ct getent passwd chappyd | cut -d: -f6,7)" \
    "/var/lib/chappyd:/usr/sbin/nologin"
uid=$(in_ct id -u chappyd)
[ "$uid" -lt 1000 ] || fail "chappyd's uid $uid is not a system uid"
expect_eq "chappyd.target enabled" "$(in_ct systemctl is-enabled chappyd.target)" enabled
expect_eq "chappyd.target active" "$(in_ct systemctl is-active chappyd.target)" active
expect_eq "$unit not auto-enabled" "$(in_ct systemctl is-enabled "$unit" || true)" disabled

man_flag=--man=yes
if [ "$have_manpages" -eq 0 ]; then
    man_flag=--man=no
    pending "systemd-analyze verify of Documentation=man:chappyd(8) [manpages]"
else
    expect_eq "man -w chappyd.8" "$(in_ct man -w 8 chappyd)" /usr/share/man/man8/chappyd.8.gz
    expect_eq "man -w chappyctl.1" "$(in_ct man -w 1 chappyctl)" \
        /usr/share/man/man1/chappyctl.1.gz
fi
verify=$(in_ct systemd-analyze verify "$man_flag" /lib/systemd/system/chappyd@.service \
    /lib/systemd/system/chappyd.target /lib/systemd/system/chappyd-web.service 2>&1) ||
    fail "systemd-analyze verify: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify is not clean: $verify"
ok "systemd-analyze verify $man_flag: clean"
security=$(in_ct systemd-analyze security --no-pager "$unit" | tail -n 1)
exposure=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p' \
    <<<"$security")
case "$exposure" in
    *" SAFE" | *" OK") ok "systemd-analyze security $unit: exposure $exposure" ;;
    *) fail "systemd-analyze security: '$security', expected SAFE or OK" ;;
esac

# The job module: a plain module on Debian's python3 path, which the hardened unit can
# read (ProtectSystem=strict leaves /usr readable): no PYTHONPATH drop-in needed.
sitedir=$(in_ct python3 -c 'import site; print(site.getsitepackages()[0])')
in_ct install -D -m 0644 /mnt/chappyd-test/chappy_e2e.py "$sitedir/chappy_e2e.py"
ok "job module chappy_e2e installed in $sitedir"

if [ "$have_master" -eq 0 ]; then
    # chappyd without its master runs one worker in-process and never sends READY=1:
    # under the shipped Type=notify every start would time out. A drop-in stands in.
    in_ct mkdir -p /run/systemd/system/chappyd@.service.d
    printf '[Service]\nType=exec\nWatchdogSec=0\n' |
        in_ct tee /run/systemd/system/chappyd@.service.d/50-pending-master.conf >/dev/null
    in_ct systemctl daemon-reload
    pending "Type=notify READY=1 and WatchdogSec (ran with a Type=exec drop-in) [master]"
fi

# ------------------------------------------------------------------ configuration

check=$(in_ct runuser -u chappyd -- chappyd --instance=emails --check-config)
grep -qx 'QUEUE_DRIVER=database  # /etc/chappyd.env' <<<"$check" \
    || fail "chappyd --check-config as chappyd does not read /etc/chappyd.env: $check"
grep -qx 'CHAPPY_QUEUES=emails  # built-in default' <<<"$check" \
    || fail "instance emails does not serve queue emails: $check"
ok "user chappyd reads /etc/chappyd.env (0640); instance emails serves queue emails"

printf 'CHAPPY_QUEUES=emails,newsletters\n' | write_ct /etc/chappyd/mail.env
expect_eq "a new instance file's mode" "$(in_ct stat -c '%a %U:%G' /etc/chappyd/mail.env)" \
    "640 root:chappyd"
check=$(in_ct runuser -u chappyd -- chappyd --instance=mail --check-config)
grep -qx 'CHAPPY_QUEUES=emails,newsletters  # /etc/chappyd/mail.env' <<<"$check" \
    || fail "/etc/chappyd/mail.env's CHAPPY_QUEUES not used: $check"
in_ct rm /etc/chappyd/mail.env
ok "/etc/chappyd/mail.env's CHAPPY_QUEUES overrides the instance name"

# No /etc/chappyd.env at all: every built-in default, the SQLite file in /var/lib/chappyd.
in_ct mv /etc/chappyd.env /etc/chappyd.env.away
check=$(in_ct runuser -u chappyd -- chappyd --check-config)
in_ct mv /etc/chappyd.env.away /etc/chappyd.env
grep -qx 'DATABASE_URL=sqlite:////var/lib/chappyd/queue.sqlite3  # built-in default' \
    <<<"$check" || fail "chappyd --check-config without /etc/chappyd.env: $check"
ok "without /etc/chappyd.env: the SQLite default in /var/lib/chappyd"

# A bad setting: exit 78, one line naming the key and the file, and no restart loop.
printf 'CHAPPY_WORKERS=zero\n' | write_ct /etc/chappyd/bad.env
in_ct systemctl start chappyd@bad.service 2>/dev/null || true
wait_until 30 "chappyd@bad failed" in_ct systemctl is-failed --quiet chappyd@bad.service
expect_eq "chappyd@bad exit status" \
    "$(in_ct systemctl show -p ExecMainStatus --value chappyd@bad.service)" 78
expect_eq "chappyd@bad restarts" \
    "$(in_ct systemctl show -p NRestarts --value chappyd@bad.service)" 0
bad_log=$(in_ct journalctl -u chappyd@bad.service -o cat --no-pager)
grep -qF "CHAPPY_WORKERS='zero' (from /etc/chappyd/bad.env)" <<<"$bad_log" \
    || fail "the journal does not name CHAPPY_WORKERS and /etc/chappyd/bad.env"
ok "a bad setting is logged with its file and stops the unit for good (78)"
in_ct systemctl reset-failed chappyd@bad.service
in_ct rm /etc/chappyd/bad.env

events=/var/lib/chappyd/e2e/events.jsonl

# ------------------------------------------------------------------ SQLite, no backend config

# /etc/chappyd.env as shipped: no backend configured, so the embedded SQLite default in
# /var/lib/chappyd. The instance file only says which job module may run. chappyctl
# runs as chappyd, as install.md tells: the SQLite file and its WAL must stay the
# daemon's.
printf 'CHAPPY_JOBS=chappy_e2e\n' | write_ct /etc/chappyd/emails.env
in_ct systemctl enable --now "$unit" 2>/dev/null
expect_eq "$unit after enable --now" "$(in_ct systemctl is-active "$unit")" active
expect_eq "$unit enabled into chappyd.target" \
    "$(in_ct readlink /etc/systemd/system/chappyd.target.wants/$unit)" \
    /lib/systemd/system/chappyd@.service
ctl_sqlite=(in_ct runuser -u chappyd -- chappyctl --instance=emails)
started=$SECONDS
push_records sqlite 1 20 runuser -u chappyd --
ok "20 jobs pushed with chappyctl (SQLite) in $((SECONDS - started)) s"
wait_until 60 "20 SQLite jobs handled" handled_is sqlite 20
wait_until 30 "queue emails empty (SQLite)" queue_is_empty "${ctl_sqlite[@]}"
expect_eq "SQLite jobs handled, each once" "$(count_events handled sqlite)" 20
expect_eq "SQLite file" "$(in_ct stat -c %U /var/lib/chappyd/queue.sqlite3)" chappyd
expect_eq "JSON job_done lines in the journal (SQLite)" "$(job_done_lines)" 20
# Reinstalling (as an upgrade does) keeps an edited conffile and its mode, and
# restarts the running instance through chappyd.target (PartOf=) onto the new code.
before=$(main_pid)
printf '# edited by the admin\n' | in_ct tee -a /etc/chappyd.env >/dev/null
if ! in_ct env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall \
        "/mnt/chappyd-test/$(basename "$deb")" >"$work/reinstall.log" 2>&1; then
    cat "$work/reinstall.log" >&2
    fail "apt install --reinstall"
fi
in_ct grep -qx '# edited by the admin' /etc/chappyd.env || fail "reinstall lost an edit"
expect_eq "/etc/chappyd.env mode after reinstall" \
    "$(in_ct stat -c '%a %U:%G' /etc/chappyd.env)" "640 root:chappyd"
expect_eq "$unit after reinstall" "$(in_ct systemctl is-active "$unit")" active
[ "$(main_pid)" != "$before" ] || fail "reinstall did not restart $unit"
ok "reinstall restarted $unit (main pid $before -> $(main_pid))"
push_records sqlite 21 25 runuser -u chappyd --
wait_until 60 "5 SQLite jobs handled after reinstall" handled_is sqlite 25

in_ct systemctl disable --now "$unit" 2>/dev/null
expect_eq "$unit stop result (SQLite)" \
    "$(in_ct systemctl show -p Result --value "$unit")" success
in_ct rm /etc/chappyd/emails.env

# ------------------------------------------------------------------ PostgreSQL, one instance

# Debian's PostgreSQL 15 and psycopg 3.1, configured for one instance only (chappyd@reports
# serves the queue "reports"); its password must never reach the journal.
if [ "$have_postgres" -eq 0 ]; then
    pending "20 jobs on Debian's PostgreSQL through chappyd@reports [postgres]"
else
    pg_unit=chappyd@reports.service
    pg_password=e2e-Secret-$$
    wait_until 60 "PostgreSQL accepting connections" \
        in_ct runuser -u postgres -- psql -qtAc 'SELECT 1'
    in_ct runuser -u postgres -- psql -q -c "CREATE ROLE chappy LOGIN PASSWORD '$pg_password'" \
        -c "CREATE DATABASE chappy OWNER chappy"
    write_ct /etc/chappyd/reports.env <<EOF
DATABASE_URL=postgresql://chappy:$pg_password@127.0.0.1:5432/chappy
CHAPPY_JOBS=chappy_e2e
CHAPPY_WORKERS=1
EOF
    in_ct systemctl start "$pg_unit"
    expect_eq "$pg_unit on PostgreSQL" "$(in_ct systemctl is-active "$pg_unit")" active
    ctl_instance=reports
    push_records pg 1 20
    wait_until 60 "20 jobs handled (PostgreSQL)" handled_is pg 20
    expect_eq "JSON job_done lines in the journal (PostgreSQL)" "$(job_done_lines "$pg_unit")" 20
    pg_seen=$(in_ct journalctl -u "$pg_unit" -o cat --no-pager; in_ct chappyctl \
        --instance=reports status; in_ct chappyd --instance=reports --check-config)
    ! grep -qF "$pg_password" <<<"$pg_seen" || fail "the PostgreSQL password was shown"
    ok "the PostgreSQL password is in no log line, status or --check-config"
    in_ct systemctl stop "$pg_unit"
    expect_eq "$pg_unit stop result" "$(in_ct systemctl show -p Result --value "$pg_unit")" \
        success
    ctl_instance=emails
    in_ct rm /etc/chappyd/reports.env
fi

# ------------------------------------------------------------------ 100 jobs, the master's signals

# On Debian's redis-server, configured in /etc/chappyd.env as a user would. Without the
# Redis driver in the package (pending), the same steps run on the SQLite default.
if [ "$have_redis" -eq 1 ]; then
    backend=redis
    expect_eq "redis-server in the container" "$(in_ct systemctl is-active redis-server)" \
        active
    backend_config="QUEUE_DRIVER='redis'
REDIS_HOST=127.0.0.1
REDIS_PORT=6379"
    as_user=()  # root, as an admin would: the config is all chappyctl needs
else
    backend=sqlite
    pending "the 100-job scenario on Debian's redis-server (ran on SQLite) [redis]"
    backend_config="QUEUE_DRIVER='database'"
    as_user=(runuser -u chappyd --)
fi
# Writing into the conffile keeps its 0640 root:chappyd.
write_ct /etc/chappyd.env <<EOF
# written by packaging/test-deb.sh
$backend_config
MAX_ATTEMPTS=3
CHAPPY_JOBS=chappy_e2e
CHAPPY_WORKERS=2
CHAPPY_GRACEFUL_TIMEOUT=20
EOF
expect_eq "/etc/chappyd.env mode after editing" \
    "$(in_ct stat -c '%a %U:%G' /etc/chappyd.env)" "640 root:chappyd"
in_ct systemctl enable --now "$unit" 2>/dev/null
expect_eq "$unit on $backend" "$(in_ct systemctl is-active "$unit")" active
master=$(main_pid)
if [ "$have_master" -eq 1 ]; then
    wait_until 30 "2 workers forked" children_count_is 2
    title=$(in_ct ps -o args= -p "$master")
    [[ "$title" == "chappyd: master [emails]"* ]] || fail "master's title: '$title'"
    ok "master titled '$title', 2 workers"
    status_text=$(in_ct systemctl show -p StatusText --value "$unit")
    [ -n "$status_text" ] || fail "the master sent no STATUS="
    ok "the master's STATUS= reads '$status_text'"
fi
ctl=(in_ct "${as_user[@]}" chappyctl --instance=emails)
started=$SECONDS
push_records main 1 100 "${as_user[@]}"
ok "100 jobs pushed with chappyctl ($backend) in $((SECONDS - started)) s"
wait_until 120 "100 jobs handled ($backend)" handled_is main 100
wait_until 30 "queue emails empty ($backend)" queue_is_empty "${ctl[@]}"
expect_eq "jobs handled, each once ($backend)" "$(count_events handled main)" 100
expect_eq "JSON job_done lines in the journal ($backend)" "$(job_done_lines)" 100
"${ctl[@]}" status >&2

if [ "$have_master" -eq 0 ]; then
    pending "systemctl reload (HUP) keeps serving [master]"
    pending "systemctl kill of one child: its job re-run, unit active [master]"
    pending "systemctl stop drains a running job, Result=success [master]"
else
    # reload: HUP re-reads the config and replaces the workers; the master stays.
    before=$(children | tr '\n' ' ')
    in_ct systemctl reload "$unit"
    replaced() {
        local now
        now=$(children | tr '\n' ' ')
        [ "$(wc -w <<<"$now")" -eq 2 ] && [ -z "$(comm -12 \
            <(tr ' ' '\n' <<<"$before" | sort) <(tr ' ' '\n' <<<"$now" | sort) |
            grep -v '^$')" ]
    }
    wait_until 60 "workers replaced after reload" replaced
    expect_eq "master after reload" "$(main_pid)" "$master"
    push_records main 101 110 "${as_user[@]}"
    wait_until 60 "10 jobs handled after reload" handled_is main 110
    expect_eq "$unit after reload" "$(in_ct systemctl is-active "$unit")" active
    ok "reload (HUP) replaced workers ($before-> $(children | tr '\n' ' ')) and kept serving"

    # Kill one child: `systemctl kill --kill-who=` can only pick main, control or
    # all, so the child is found in the unit's cgroup and signalled by its pid.
    "${ctl[@]}" push chappy_e2e.Slow --data '{"seconds": 5, "tag": "kill"}' >/dev/null
    wait_until 30 "Slow job started" events_at_least started kill 1
    victim=$(event_field started kill pid)
    grep -qx "$victim" <<<"$(children)" || fail "job pid $victim is not a child in $unit"
    expect_eq "victim's parent" "$(in_ct ps -o ppid= -p "$victim" | tr -d ' ')" "$master"
    in_ct kill -KILL "$victim"
    wait_until 60 "killed job re-run to the end" events_at_least finished kill 1
    expect_eq "attempt that finished" "$(event_field finished kill attempt)" 2
    expect_eq "$unit after a child's SIGKILL" "$(in_ct systemctl is-active "$unit")" active
    expect_eq "master after a child's SIGKILL" "$(main_pid)" "$master"
    expect_eq "restarts" "$(in_ct systemctl show -p NRestarts --value "$unit")" 0
    wait_until 30 "a worker forked in the killed one's place" children_count_is 2

    # Type=notify with WatchdogSec=30: alive past it with no restart means WATCHDOG=1
    # keeps coming from the master loop.
    watchdog_s=$(($(in_ct systemctl show -p WatchdogUSec --value "$unit" |
        sed 's/s$//') + 2))
    wait_until 60 "$unit up for ${watchdog_s} s" uptime_above "$watchdog_s"
    expect_eq "master after WatchdogSec" "$(main_pid)" "$master"
    expect_eq "restarts after WatchdogSec" \
        "$(in_ct systemctl show -p NRestarts --value "$unit")" 0

    # stop: a running job finishes (graceful drain), the unit ends in success.
    "${ctl[@]}" push chappy_e2e.Slow --data '{"seconds": 6, "tag": "drain"}' >/dev/null
    wait_until 30 "drain job started" events_at_least started drain 1
    started=$SECONDS
    in_ct systemctl stop "$unit"
    stop_s=$((SECONDS - started))
    expect_eq "drain job finished before stop returned" "$(count_events finished drain)" 1
    expect_eq "$unit stop result" "$(in_ct systemctl show -p Result --value "$unit")" \
        success
    expect_eq "$unit main exit status" \
        "$(in_ct systemctl show -p ExecMainStatus --value "$unit")" 0
    wait_until 30 "queue emails empty after the drain" queue_is_empty "${ctl[@]}"
    ok "systemctl stop drained the running job in ${stop_s} s"
fi
in_ct systemctl disable --now "$unit" 2>/dev/null

# ------------------------------------------------------------------ remove, purge

# remove: every instance stops, enabled or started by hand; config, state and user stay.
in_ct systemctl enable --now "$unit" 2>/dev/null
printf 'CHAPPY_WORKERS=1\n' | write_ct /etc/chappyd/by-hand.env
in_ct systemctl start chappyd@by-hand.service
expect_eq "instances running before remove" \
    "$(in_ct systemctl is-active "$unit" chappyd@by-hand.service | tr '\n' ' ')" \
    "active active "
if ! in_ct env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q chappyd \
        >"$work/remove.log" 2>&1; then
    cat "$work/remove.log" >&2
    fail "apt remove chappyd"
fi
left=$(in_ct pgrep -u chappyd -a || true)
[ -z "$left" ] || fail "processes of chappyd left after remove: $left"
for path in /var/lib/chappyd /etc/chappyd.env /etc/chappyd/by-hand.env; do
    in_ct test -e "$path" || fail "remove deleted $path (only purge may)"
done
in_ct getent passwd chappyd >/dev/null || fail "remove deleted the user chappyd"
ok "apt remove stopped both instances, kept config, state and user"


if ! in_ct env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q chappyd \
        >"$work/purge.log" 2>&1; then
    cat "$work/purge.log" >&2
    fail "apt purge chappyd"
fi
ok "apt purge chappyd"
in_ct getent passwd chappyd >/dev/null && fail "user chappyd left after purge"
in_ct getent group chappyd >/dev/null && fail "group chappyd left after purge"
for path in /var/lib/chappyd /etc/chappyd.env /etc/chappyd /run/chappyd \
        /etc/systemd/system/chappyd.target.wants \
        /etc/systemd/system/multi-user.target.wants/chappyd.target \
        /lib/systemd/system/chappyd@.service /usr/bin/chappyd; do
    in_ct test -e "$path" && fail "$path left after purge"
done
left=$(in_ct find / -xdev -uid "$uid" 2>/dev/null | head -n 5)
[ -z "$left" ] || fail "files of uid $uid left after purge: $left"
grep -q chappyd <<<"$(in_ct dpkg-statoverride --list)" && fail "statoverrides left after purge"
[ -z "$(in_ct systemctl list-units --all --no-legend 'chappyd*')" ] \
    || fail "units left after purge: $(in_ct systemctl list-units --all --no-legend 'chappyd*')"
ok "nothing left after purge: user, group, state, config, units, uid $uid's files"

# ------------------------------------------------------------------ summary

say "$passed checks passed in $SECONDS s"
if [ ${#pendings[@]} -gt 0 ]; then
    say "PENDING, NOT TESTED (CHAPPY_DEB_PENDING='$CHAPPY_DEB_PENDING'):"
    for item in "${pendings[@]}"; do say "  PENDING $item"; done
fi
printf 'test-deb: %d passed, 0 failed\n' "$passed"
