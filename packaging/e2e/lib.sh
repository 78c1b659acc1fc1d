# Helpers for packaging/test-deb.sh (sourced): reporting, running commands inside the
# container, bounded waits, and queries on the unit, its journal and the jobs' events.
# They use test-deb.sh's globals: cpid (the container's PID 1), unit, events.

say() { printf 'test-deb: %s\n' "$*" >&2; }
ok() { passed=$((passed + 1)); say "ok   $*"; }
fail() {
    say "FAIL $*"
    exit 1
}
pending() {
    pendings+=("$*")
    say "PENDING (not tested) $*"
}

# Run a command inside the container, with a clean environment.
in_ct() {
    nsenter -t "$cpid" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        SYSTEMD_PAGER=cat "$@"
}

# wait_until SECONDS WHAT COMMAND...: poll COMMAND until it succeeds, else fail.
wait_until() {
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "$what: not within ${seconds} s"
        sleep 0.2
    done
}

expect_eq() {  # expect_eq WHAT ACTUAL EXPECTED
    [ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
    ok "$1 = $3"
}

# write_ct PATH: stdin into PATH in the container, as an admin would with umask 027.
write_ct() { in_ct sh -c 'umask 027 && cat >"$1"' sh "$1"; }

# count_events EVENT SCENARIO-OR-TAG: how many event lines match.
count_events() {
    in_ct python3 - "$events" "$1" "$2" <<'EOF'
import json, sys
path, event, label = sys.argv[1:]
try:
    lines = open(path).read().splitlines()
except FileNotFoundError:
    lines = []
rows = [json.loads(line) for line in lines]
print(sum(1 for r in rows if r["event"] == event and label in (r.get("scenario"), r.get("tag"))))
EOF
}
# distinct_handled SCENARIO: how many different n were handled.
distinct_handled() {
    in_ct python3 - "$events" "$1" <<'EOF'
import json, sys
path, scenario = sys.argv[1:]
try:
    rows = [json.loads(line) for line in open(path).read().splitlines()]
except FileNotFoundError:
    rows = []
print(len({r["n"] for r in rows if r["event"] == "handled" and r.get("scenario") == scenario}))
EOF
}
# event_field EVENT TAG FIELD: FIELD of the last EVENT line with this tag.
event_field() {
    in_ct python3 - "$events" "$1" "$2" "$3" <<'EOF'
import json, sys
path, event, tag, field = sys.argv[1:]
rows = [json.loads(line) for line in open(path).read().splitlines()]
print([r for r in rows if r["event"] == event and r.get("tag") == tag][-1][field])
EOF
}
handled_is() { [ "$(distinct_handled "$1")" = "$2" ]; }
events_at_least() { [ "$(count_events "$1" "$2")" -ge "$3" ]; }
# The unit's journal for its current invocation, as the daemon's lines (systemd's own
# lines about the unit are left out): every one must be JSON.
journal_events() {  # journal_events [UNIT]
    local invocation
    invocation=$(in_ct systemctl show -p InvocationID --value "${1:-$unit}")
    in_ct journalctl "_SYSTEMD_INVOCATION_ID=$invocation" -o cat --no-pager |
        in_ct python3 -c '
import collections, json, sys
counts = collections.Counter()
for line in sys.stdin:
    try:
        counts[json.loads(line)["event"]] += 1
    except (ValueError, KeyError):
        sys.exit(f"not a JSON log line: {line!r}")
for event, n in sorted(counts.items()):
    print(event, n)'
}
job_done_lines() { journal_events "$@" | awk '$1 == "job_done" {print $2}'; }
main_pid() { in_ct systemctl show -p MainPID --value "$unit"; }
# The unit's processes other than its main one: the master's children.
children() {
    local cgroup
    cgroup=$(in_ct systemctl show -p ControlGroup --value "$unit")
    in_ct cat "/sys/fs/cgroup$cgroup/cgroup.procs" | { grep -vx "$(main_pid)" || true; } |
        sort -n
}
children_count_is() { [ "$(children | wc -l)" -eq "$1" ]; }
queue_is_empty() {  # queue_is_empty CHAPPYCTL-PREFIX...: no ready/reserved/failed job
    "$@" status --json | in_ct python3 -c '
import json, sys
doc = json.load(sys.stdin)
busy = [q for q in doc["queues"] if q["queue"] == "emails"
        and (q["ready"], q["delayed"], q["reserved"], q["failed"]) != (0, 0, 0, 0)]
sys.exit(1 if busy else 0)'
}
# push_records SCENARIO FIRST LAST [runuser -u USER --]: one chappyctl push per job, to
# the queue and with the configuration of instance $ctl_instance (default emails).
push_records() {
    local scenario=$1 first=$2 last=$3
    shift 3
    # Four at a time: each chappyctl is a Python start-up (~0.25 s here).
    in_ct "$@" sh -c 'seq "$1" "$2" | xargs -P 4 -I N chappyctl --instance="$4" push \
        --queue "$4" chappy_e2e.Record --data "{\"n\": N, \"scenario\": \"$3\"}" \
        >/dev/null' sh "$first" "$last" "$scenario" "${ctl_instance:-emails}" \
        || fail "chappyctl push #$first..$last"
}
# Seconds the unit has been active.
uptime_s() {
    local since now
    since=$(in_ct systemctl show -p ActiveEnterTimestampMonotonic --value "$unit")
    now=$(in_ct cat /proc/uptime | cut -d. -f1)
    echo $((now - since / 1000000))
}
uptime_above() { [ "$(uptime_s)" -gt "$1" ]; }
