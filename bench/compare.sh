#!/usr/bin/env bash
# convoy against the hand-written OpenSSH floor (bench/floor.sh), side by
# side on one fleet of sshd hosts (tests/fleet/fleet.sh). Needs root.
#
#   bench/compare.sh [-n HOSTS] [-s MB] [-r RUNS] [--rtt MS] [--forks F] [--busy-ok]
#   bench/compare.sh --scale "50 100 200" [-s MB] [--forks F] [--busy-ok]
#   bench/compare.sh --pull [-n HOSTS] [-s MB] [-r RUNS] [--forks F] [--busy-ok]
#   bench/compare.sh --against BIN [-n HOSTS] [-s MB] [-r RUNS] [--rtt MS] [--forks F] [--busy-ok]
#
#   -n HOSTS    fleet hosts (default 20, at most 200)
#   -s MB       artifact size, incompressible (default 20; 1 with --scale)
#   -r RUNS     runs of each tool per scenario (default 3); the median counts
#   --rtt MS    add MS of round-trip time to every host: a relay (bench/relay.py)
#               on each host's path delays each chunk by MS/2 each way
#   --forks F   convoy's --forks (default 10, convoy's default)
#   --busy-ok   run on a busy machine anyway; the figures are labelled unreliable
#   --against BIN  A/B: another convoy binary (a build of the base branch) in
#               the floor's place, same chains, same figures; its column is
#               `base`. CPU figures (cgroups) stay meaningful on a shared
#               machine when the two alternate like this; wall time does not
#   --scale L   convoy alone on fleets of each size in L (small artifact): wall
#               time, controller CPU and peak RSS per host, ssh processes and
#               masters (each one control socket) alive at once, convoy's open
#               file descriptors (under ulimit -n 1024)
#   --pull      convoy alone, push against pull on the same HOSTS (default
#               50): the artifact served by `python3 -m http.server` on one
#               more fleet host, which the others fetch it from (an http
#               source); prints wall time, CPU, the bytes the controller sent
#               per host (its bridge's counter: 0 artifact bytes for pull),
#               the bytes each host received, and the server's CPU
#
# Each run is a chain on freshly reset hosts: first deploy (1), no-op re-run
# (1 again), upgrade (2), rollback (to 1). The tools alternate, chain by
# chain. Every run's end state is checked on every host (current, every
# file's sha256 and mode, the shared link, the hook's file, the store, keep,
# previous) before its figures count. Per scenario it prints the medians of:
#   wall s      wall-clock seconds of the whole command
#   ctl CPU s   CPU seconds of the tool and everything it started (ssh
#               clients and masters): a cgroup around the command
#   host CPU s  CPU seconds on the hosts: sshd and everything under it (the
#               hosts' sshds run in a cgroup of their own)
#   RT/host     remote commands per host (convoy's recap `round_trips`; the
#               floor counts its own `ssh` commands)
#   KB/host     bytes on the wire to each host (the host's veth counter:
#               ssh's framing and encryption included)
#   others s    CPU seconds the rest of the machine used meanwhile: noise
# and the ratio convoy/floor.
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C

HOSTS=20
SIZE=
RUNS=3
RTT=0
FORKS=10
BUSY_OK=0
SCALE=
PULL=0
AGAINST=
HOSTS_GIVEN=0
BUSY_MAX=25 # % of all CPUs used by other processes that makes the figures meaningless

die() {
    echo "bench/compare.sh: $*" >&2
    exit 1
}
usage() {
    sed -n '/^#   bench/,/^#               control/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 3
}
while (($#)); do
    case $1 in
    -n) HOSTS=$2; HOSTS_GIVEN=1; shift ;;
    -s) SIZE=$2; shift ;;
    -r) RUNS=$2; shift ;;
    --rtt) RTT=$2; shift ;;
    --forks) FORKS=$2; shift ;;
    --busy-ok) BUSY_OK=1 ;;
    --scale) SCALE=$2; shift ;;
    --pull) PULL=1 ;;
    --against) AGAINST=$2; shift ;;
    -h | --help) usage ;;
    *) echo "bench/compare.sh: unknown argument $1" >&2; usage ;;
    esac
    shift
done
((PULL && !HOSTS_GIVEN)) && HOSTS=50
[[ -z $SCALE ]] || ((!PULL)) || die "--scale and --pull are separate benchmarks: give one"
[[ $HOSTS =~ ^[0-9]+$ && $RUNS =~ ^[1-9][0-9]*$ && $RTT =~ ^[0-9]+$ && $FORKS =~ ^[1-9][0-9]*$ ]] || usage
SIZE=${SIZE:-$([[ -n $SCALE ]] && echo 1 || echo 20)}
[[ $SIZE =~ ^[1-9][0-9]*$ ]] || usage
if [[ -n $AGAINST ]] && { [[ -n $SCALE ]] || ((PULL)); }; then die "--against compares two convoy binaries on the four scenarios: not with --scale or --pull"; fi
[[ -z $AGAINST || -x $AGAINST ]] || die "--against $AGAINST: not an executable"
[[ -z $AGAINST ]] || AGAINST=$(realpath "$AGAINST")

[[ $EUID -eq 0 ]] || die "must run as root: the fleet is network namespaces with an sshd each (tests/fleet/fleet.sh)"
command -v python3 >/dev/null || die "needs python3 (the +RTT relay, and the figures' medians)"
[[ -x /usr/bin/time ]] || die "needs GNU time (/usr/bin/time, package time)"

# ------------------------------------------------------------ CPU accounting
# cgroup v1 cpuacct or v2: CPU of a process tree, including ssh masters that
# daemonize (they leave the process tree but not the cgroup).
if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    CG_ROOT=/sys/fs/cgroup
    cg_ns() { echo $(($(awk '$1 == "usage_usec" { print $2 }' "$1/cpu.stat") * 1000)); }
elif [[ -d /sys/fs/cgroup/cpuacct ]]; then
    CG_ROOT=/sys/fs/cgroup/cpuacct
    cg_ns() { cat "$1/cpuacct.usage"; }
else
    die "no cgroup with CPU accounting (cgroup v2, or v1 cpuacct) to measure CPU seconds with"
fi
CG=$CG_ROOT/convoy-bench-$$

# Jiffies the whole machine was busy (all CPUs), from /proc/stat.
busy_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
HZ=$(getconf CLK_TCK)

# Refuses (or warns, with --busy-ok) when other processes keep the machine
# busy: the share of all CPUs used over 3 s, and the processes that used it.
check_machine() {
    local report pct top
    report=$(python3 - <<'PY'
import os, time
def procs():
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        fields = s[s.rindex(")") + 2:].split()
        out[pid] = (comm, int(fields[11]) + int(fields[12]))
    return out
def busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[:3]) + sum(v[5:8]), sum(v[:8])
p0, (b0, t0) = procs(), busy()
time.sleep(3)
p1, (b1, t1) = procs(), busy()
print(round(100 * (b1 - b0) / max(1, t1 - t0)))
hz = os.sysconf("SC_CLK_TCK")
used = sorted(((j - p0[pid][1], comm) for pid, (comm, j) in p1.items() if pid in p0), reverse=True)
for j, comm in used[:5]:
    if j > 0:
        print(f"  {100 * j / hz / 3:.0f}% of a CPU: {comm}")
PY
)
    pct=${report%%$'\n'*}
    top=$(tail -n +2 <<<"$report")
    LOAD_NOTE="before the runs ${pct}% of $(nproc) CPUs were busy (3 s), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    if ((pct > BUSY_MAX)); then
        if ((BUSY_OK)); then
            UNRELIABLE=1
            echo "bench/compare.sh: WARNING: the machine is busy (${pct}% of all CPUs over 3 s, more than ${BUSY_MAX}%); figures are UNRELIABLE. Busiest:
$top" >&2
        else
            die "the machine is busy: ${pct}% of all CPUs used over the last 3 s (more than ${BUSY_MAX}%), load average $(cut -d' ' -f1-3 /proc/loadavg); figures would mean nothing. Busiest processes:
$top
Run when it is idle, or pass --busy-ok to measure anyway (figures labelled unreliable)."
        fi
    fi
}

# ------------------------------------------------------------------ set-up
UNRELIABLE=0
echo "building the release binary..." >&2
cargo build --release --quiet || die "cargo build --release failed"
BIN=$PWD/target/release/convoy
check_machine

WORK=$(mktemp -d /tmp/cvc.XXXX)
FLEET=$WORK/fleet
RELAY_PID=
SERVER_PID=
cleanup() {
    [[ -z $RELAY_PID ]] || kill "$RELAY_PID" 2>/dev/null || true
    [[ -z $SERVER_PID ]] || kill "$SERVER_PID" 2>/dev/null || true
    bash tests/fleet/fleet.sh down "$FLEET" >/dev/null 2>&1 || true
    local d
    for d in "$CG"/*/ "$CG"; do [[ -d $d ]] && rmdir "$d" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$CG/ctl" "$CG/hosts" "$CG/relay" "$CG/server" || die "cannot create cgroups under $CG_ROOT"

MAX_HOSTS=$HOSTS
# --pull: one more host, the artifacts' HTTP server, deployed to by neither.
((PULL)) && MAX_HOSTS=$((HOSTS + 1))
if [[ -n $SCALE ]]; then
    MAX_HOSTS=0
    for n in $SCALE; do
        [[ $n =~ ^[0-9]+$ ]] || usage
        ((n > MAX_HOSTS)) && MAX_HOSTS=$n
    done
fi
((MAX_HOSTS >= 1 && MAX_HOSTS <= 200)) || die "hosts must be 1..200 (fleet.sh's limit, --pull takes one more for its server), got $MAX_HOSTS"
echo "starting a fleet of $MAX_HOSTS hosts..." >&2
mkdir -p "$FLEET"
if ! out=$(CONVOY_FLEET_OWNER=$$ FLEET_QUIET=1 bash tests/fleet/fleet.sh up "$FLEET" "$MAX_HOSTS" 2>&1); then
    die "the fleet could not start (tests/fleet/fleet.sh up $FLEET $MAX_HOSTS):
$out"
fi
K=$(cat "$FLEET/id")
addr() { echo "10.213.$K.$((10 + $1))"; }

# The hosts' sshds (and so every session, shell and command under them) in one cgroup.
for ((i = 1; i <= MAX_HOSTS; i++)); do
    for p in $(ip netns pids "cvf${K}h$i"); do
        [[ $(cat "/proc/$p/comm" 2>/dev/null) == sshd ]] && echo "$p" >"$CG/hosts/cgroup.procs"
    done
done

# Latency: one relay process, a port per host.
PORT0=$((20000 + (K % 200) * 200))
if ((RTT > 0)); then
    maps=()
    for ((i = 1; i <= MAX_HOSTS; i++)); do maps+=("$((PORT0 + i))=$(addr "$i"):22"); done
    # In a cgroup of its own: its CPU is neither the tools' nor the hosts', nor "others".
    sh -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' sh "$CG/relay" \
        python3 bench/relay.py "$(awk -v r="$RTT" 'BEGIN { print r / 2 }')" "${maps[@]}" >"$WORK/relay.out" 2>&1 &
    RELAY_PID=$!
    for _ in $(seq 100); do grep -q ready "$WORK/relay.out" 2>/dev/null && break; sleep 0.1; done
    grep -q ready "$WORK/relay.out" || die "the latency relay did not start: $(cat "$WORK/relay.out")"
fi

# One ssh_config for both tools: host hN is reached directly or through the relay.
{
    for ((i = 1; i <= MAX_HOSTS; i++)); do
        echo "Host h$i"
        if ((RTT > 0)); then
            printf '    HostName 127.0.0.1\n    Port %s\n' "$((PORT0 + i))"
        else
            printf '    HostName %s\n' "$(addr "$i")"
        fi
        printf '    HostKeyAlias %s\n' "$(addr "$i")"
    done
    sed -n '/^Host \*/,$p' "$FLEET/ssh_config"
} >"$WORK/ssh_config"

# The project: bench/project and two incompressible artifacts.
PROJECT=$WORK/project
cp -r bench/project "$PROJECT"
mkdir -p "$PROJECT/dist"
declare -A SHA BLOB VFILE ASIZE
for v in 1 2; do
    d=$WORK/src-$v
    mkdir -p "$d"
    head -c $((SIZE * 1000000)) /dev/urandom >"$d/blob.bin"
    echo "$v" >"$d/VERSION"
    tar -C "$d" -czf "$PROJECT/dist/app-$v.tar.gz" blob.bin VERSION
    SHA[$v]=$(sha256sum "$PROJECT/dist/app-$v.tar.gz" | cut -d' ' -f1)
    ASIZE[$v]=$(stat -c %s "$PROJECT/dist/app-$v.tar.gz")
    BLOB[$v]=$(sha256sum "$d/blob.bin" | cut -d' ' -f1)
    VFILE[$v]=$(sha256sum "$d/VERSION" | cut -d' ' -f1)
done

inventory() { # N: an inventory of hosts h1..hN
    echo "all:"
    echo "  vars: { convoy_ssh_config: \"$WORK/ssh_config\" }"
    echo "  children:"
    echo "    app:"
    echo "      hosts:"
    for ((i = 1; i <= $1; i++)); do echo "        h$i: {}"; done
}

# ------------------------------------------------------------ measuring
host_root() { echo "$FLEET/h$1/fs/srv/bench"; }
reset_hosts() { for ((i = 1; i <= $1; i++)); do rm -rf "$(host_root "$i")"; done; }
# Bytes the controller (the root namespace, on the fleet's bridge) sent
# into the fleet so far: what it sent any host, and nothing hosts sent
# each other.
ctl_bytes() { cat "/sys/class/net/cvb$K/statistics/tx_bytes"; }
wire_bytes() { # bytes sent to hosts 1..N so far
    local i t=0
    for ((i = 1; i <= $1; i++)); do t=$((t + $(cat "/sys/class/net/cv${K}h$i/statistics/tx_bytes"))); done
    echo "$t"
}

# Checks every host's end state: VERSION live, PREV recorded as previous.
verify() { # N VERSION PREV
    local n=$1 v=$2 prev=$3 i r rel bad=
    local files_want="VERSION blob.bin config/app.conf config/release.conf"
    local rel_conf
    rel_conf=$(printf '# release %s, the same on every host\nversion = %s\nworkers = 4\n' "$v" "$v" | sha256sum | cut -d' ' -f1)
    for ((i = 1; i <= n; i++)); do
        r=$(host_root "$i")
        rel=$r/releases/$v
        local why=
        if [[ $(readlink "$r/current" 2>/dev/null) != "releases/$v" ]]; then
            why="current is '$(readlink "$r/current" 2>/dev/null)', not releases/$v"
        elif [[ $(cd "$rel" && find . -type f -printf '%P\n' | sort | tr '\n' ' ') != "$files_want " ]]; then
            why="files of $rel: $(cd "$rel" && find . -type f -printf '%P ' | sort)"
        elif [[ $(readlink "$rel/log") != /srv/bench/shared/log ]]; then
            why="$rel/log is not the shared link"
        elif [[ $(cat "$r/shared/log/restarted" 2>/dev/null) != "$v" ]]; then
            why="the restart hook did not run for $v"
        elif [[ $(stat -c %a "$rel/config/release.conf") != 640 ]]; then
            why="config/release.conf has mode $(stat -c %a "$rel/config/release.conf")"
        elif [[ $(stat -c %s "$r/.convoy/artifacts/${SHA[$v]}" 2>/dev/null) != "${ASIZE[$v]}" ]]; then
            why="the store lacks artifact ${SHA[$v]}"
        elif [[ -n $prev && $(cat "$r/.convoy/previous" 2>/dev/null) != "$prev" ]]; then
            why="previous is '$(cat "$r/.convoy/previous" 2>/dev/null)', not $prev"
        elif (($(ls -A "$r/releases" | wc -l) > 3)) || ls -A "$r/releases" | grep -q '^\.tmp'; then
            why="releases: $(ls -A "$r/releases" | tr '\n' ' ') (keep 3, no temporary)"
        else
            local sums
            sums=$(cd "$rel" && sha256sum blob.bin VERSION config/app.conf config/release.conf | cut -d' ' -f1 | tr '\n' ' ')
            local app
            app=$(printf '# app on %s, release %s\nhost = %s\nport = 8080\n' "h$i" "$v" "h$i" | sha256sum | cut -d' ' -f1)
            [[ $sums == "${BLOB[$v]} ${VFILE[$v]} $app $rel_conf " ]] || why="checksums of $rel: $sums"
        fi
        [[ -z $why ]] || bad+="h$i: $why"$'\n'
    done
    [[ -z $bad ]] || {
        printf '%s' "$bad" | head -5 >&2
        return 1
    }
}

RESULTS=$WORK/results
: >"$RESULTS"

# measure TOOL SCENARIO N COMMAND...: runs it in the controller cgroup,
# appends "TOOL SCENARIO wall ctl host rt wire others rss" to RESULTS.
measure() {
    local tool=$1 scenario=$2 n=$3
    shift 3
    rm -rf "$WORK/counts"
    mkdir -p "$WORK/counts"
    local c0 h0 w0 b0 t0 t1 c1 h1 w1 b1 r0 r1 rc=0
    r0=$(cg_ns "$CG/relay")
    c0=$(cg_ns "$CG/ctl")
    h0=$(cg_ns "$CG/hosts")
    w0=$(wire_bytes "$n")
    b0=$(busy_jiffies)
    t0=$(date +%s%N)
    sh -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' sh "$CG/ctl" \
        /usr/bin/time -f '%M' -o "$WORK/rss" "$@" >"$WORK/out" 2>&1 || rc=$?
    t1=$(date +%s%N)
    c1=$(cg_ns "$CG/ctl")
    h1=$(cg_ns "$CG/hosts")
    w1=$(wire_bytes "$n")
    b1=$(busy_jiffies)
    r1=$(cg_ns "$CG/relay")
    if ((rc != 0)); then
        echo "bench/compare.sh: $tool $scenario failed (exit $rc):" >&2
        tail -20 "$WORK/out" >&2
        exit 1
    fi
    local rt
    if [[ $tool == convoy || -n $AGAINST ]]; then
        rt=$(grep '"event":"recap"' "$WORK/out" | grep -o '"round_trips":[0-9]*' | cut -d: -f2 | awk '{ s += $1 } END { print s + 0 }')
    else
        rt=$(cat "$WORK"/counts/* 2>/dev/null | wc -l)
    fi
    local ctl=$((c1 - c0)) host=$((h1 - h0))
    # Others: the machine's busy time minus what the two cgroups used.
    local others=$(((b1 - b0) * 1000000000 / HZ - ctl - host - (r1 - r0)))
    ((others > 0)) || others=0
    echo "$tool $scenario $((t1 - t0)) $ctl $host $rt $((w1 - w0)) $others $(cat "$WORK/rss") $n" >>"$RESULTS"
}

convoy_cmd() { convoy_bin_cmd "$BIN" "$@"; }
convoy_bin_cmd() { local bin=$1; shift; echo "$bin" "$@" "$PROJECT/deploy.yml" -i "$WORK/inventory.yml" -f "$FORKS" --output json; }
HOSTNAMES=()

# One chain of the four scenarios with TOOL, each run verified.
chain() {
    local tool=$1 n=$2
    reset_hosts "$n"
    local step v prev scenario
    for step in "first 1 -" "noop 1 -" "upgrade 2 1" "rollback 1 2"; do
        read -r scenario v prev <<<"$step"
        [[ $prev == - ]] && prev=
        if [[ $tool == convoy || -n $AGAINST ]]; then
            local bin=$BIN
            [[ $tool == convoy ]] || bin=$AGAINST
            if [[ $scenario == rollback ]]; then
                measure "$tool" "$scenario" "$n" $(convoy_bin_cmd "$bin" rollback)
            else
                measure "$tool" "$scenario" "$n" $(convoy_bin_cmd "$bin" run) -e "version=$v"
            fi
        else
            if [[ $scenario == rollback ]]; then
                measure floor "$scenario" "$n" bash bench/floor.sh rollback -F "$WORK/ssh_config" -b 5 -c "$WORK/counts" "${HOSTNAMES[@]}"
            else
                measure floor "$scenario" "$n" bash bench/floor.sh deploy -F "$WORK/ssh_config" -a "$PROJECT/dist/app-$v.tar.gz" -v "$v" -b 5 -c "$WORK/counts" "${HOSTNAMES[@]}"
            fi
        fi
        verify "$n" "$v" "$prev" || die "$tool $scenario: wrong end state on the hosts (above); figures discarded"
    done
}

# ------------------------------------------------------------------ report
# The table of medians from RESULTS (python3 for the arithmetic).
report() {
    python3 - "$RESULTS" "$@" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
mode = sys.argv[2]
against = len(sys.argv) > 3 and sys.argv[3] == "against"
def med(tool, scen, col, n=None):
    vals = [float(r[col]) for r in rows if r[0] == tool and r[1] == scen and (n is None or r[9] == n)]
    return statistics.median(vals) if vals else float("nan")
if mode == "compare":
    names = {"first": "first deploy", "noop": "no-op re-run", "upgrade": "upgrade", "rollback": "rollback"}
    print(f"{'scenario':<14} {'':<7} {'wall s':>8} {'ctl CPU s':>10} {'host CPU s':>11} {'RT/host':>8} {'KB/host':>9} {'others s':>9}")
    for scen in ["first", "noop", "upgrade", "rollback"]:
        per = {}
        for tool in ["convoy", "floor"]:
            n = next((float(r[9]) for r in rows if r[1] == scen), 1.0)
            per[tool] = [med(tool, scen, 2) / 1e9, med(tool, scen, 3) / 1e9, med(tool, scen, 4) / 1e9,
                         med(tool, scen, 5) / n, med(tool, scen, 6) / n / 1000, med(tool, scen, 7) / 1e9]
        for i, tool in enumerate(["convoy", "floor"]):
            w, c, h, rt, kb, o = per[tool]
            label = "base" if tool == "floor" and against else tool
            print(f"{names[scen] if i == 0 else '':<14} {label:<7} {w:>8.2f} {c:>10.2f} {h:>11.2f} {rt:>8.1f} {kb:>9.0f} {o:>9.2f}")
        ratio = [a / b if b else float("nan") for a, b in zip(per["convoy"], per["floor"])]
        print(f"{'':<14} {'ratio':<7} {ratio[0]:>8.2f} {ratio[1]:>10.2f} {ratio[2]:>11.2f} {ratio[3]:>8.2f} {ratio[4]:>9.2f}")
else:
    print(f"{'hosts':>6} {'scenario':<10} {'wall s':>8} {'ms/host':>8} {'ctl CPU s':>10} {'ctl ms/host':>12} {'peak RSS MB':>12} {'KB RSS/host':>12} {'max ssh':>8} {'max masters':>12} {'max fds':>8}")
    for r in rows:
        n = float(r[9])
        print(f"{r[9]:>6} {r[1]:<10} {float(r[2])/1e9:>8.2f} {float(r[2])/1e6/n:>8.1f} {float(r[3])/1e9:>10.2f} {float(r[3])/1e6/n:>12.1f} {float(r[8])/1024:>12.1f} {float(r[8])/n:>12.1f} {r[10]:>8} {r[11]:>12} {r[12]:>8}")
PY
}

header() {
    echo
    echo "$1"
    echo "machine: $(nproc) cores; $LOAD_NOTE"
    ((UNRELIABLE == 0)) || echo "*** UNRELIABLE: measured on a busy machine (--busy-ok); see 'others s' ***"
}

if [[ -z $SCALE ]] && ((!PULL)); then
    inventory "$HOSTS" >"$WORK/inventory.yml"
    for ((i = 1; i <= HOSTS; i++)); do HOSTNAMES+=("h$i"); done
    for ((r = 1; r <= RUNS; r++)); do
        echo "run $r of $RUNS..." >&2
        if ((r % 2)); then
            chain convoy "$HOSTS"
            chain floor "$HOSTS"
        else
            chain floor "$HOSTS"
            chain convoy "$HOSTS"
        fi
    done
    what="the OpenSSH floor"
    [[ -z $AGAINST ]] || what="base $AGAINST"
    header "convoy vs $what: $HOSTS hosts, ${SIZE} MB artifact, $( ((RTT)) && echo "+${RTT} ms RTT (relay)" || echo "direct"), batches of 5, convoy --forks $FORKS, median of $RUNS runs each (every end state verified)"
    report compare $([[ -z $AGAINST ]] || echo against)
    exit 0
fi

# ------------------------------------------------------------------ pull
if ((PULL)); then
    S=$((HOSTS + 1))
    SERVER=$(addr "$S")
    # The artifacts in the server host's /srv/dist (its own /srv), served from there.
    mkdir -p "$FLEET/h$S/fs/srv/dist"
    cp "$PROJECT"/dist/app-*.tar.gz "$FLEET/h$S/fs/srv/dist/"
    sh -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' sh "$CG/server" \
        env CONVOY_FLEET_OWNER=$$ FLEET_QUIET=1 bash tests/fleet/fleet.sh exec "$FLEET" "$S" -- \
        sh -c "cd /srv/dist && exec python3 -m http.server 8000 --bind $SERVER" >"$WORK/server.out" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do curl -fsS -o /dev/null "http://$SERVER:8000/app-1.tar.gz" 2>/dev/null && break; sleep 0.1; done
    curl -fsS -o /dev/null "http://$SERVER:8000/app-1.tar.gz" || die "the artifact server on h$S did not start: $(cat "$WORK/server.out")"
    # The same play, its source the server's URL (hosts fetch it, and check it against sha256).
    PULLED=$WORK/project-pull
    cp -r "$PROJECT" "$PULLED"
    rm -rf "$PULLED/dist"
    sed -i "s|^    source: .*|    source: \"http://$SERVER:8000/app-{{ version }}.tar.gz\"\n    sha256: \"{{ artifact_sha256 }}\"|" "$PULLED/deploy.yml"
    grep -q 'sha256: "{{ artifact_sha256 }}"' "$PULLED/deploy.yml" || die "could not make the pull variant of bench/project/deploy.yml"
    inventory "$HOSTS" >"$WORK/inventory.yml"
    pull_chain() { # SOURCE: push or pull; first deploy, then upgrade
        local how=$1 step v prev scenario project=$PROJECT c0 c1 s0 s1
        [[ $how == pull ]] && project=$PULLED
        reset_hosts "$HOSTS"
        for step in "first 1 -" "upgrade 2 1"; do
            read -r scenario v prev <<<"$step"
            [[ $prev == - ]] && prev=
            c0=$(ctl_bytes)
            s0=$(cg_ns "$CG/server")
            measure convoy "$how-$scenario" "$HOSTS" "$BIN" run "$project/deploy.yml" -i "$WORK/inventory.yml" \
                -f "$FORKS" --output json -e "version=$v" -e "artifact_sha256=${SHA[$v]}"
            c1=$(ctl_bytes)
            s1=$(cg_ns "$CG/server")
            sed -i "\$s/\$/ $((c1 - c0)) $((s1 - s0))/" "$RESULTS"
            verify "$HOSTS" "$v" "$prev" || die "$how $scenario: wrong end state on the hosts (above); figures discarded"
        done
    }
    for ((r = 1; r <= RUNS; r++)); do
        echo "run $r of $RUNS..." >&2
        if ((r % 2)); then pull_chain push; pull_chain pull; else pull_chain pull; pull_chain push; fi
    done
    header "push vs pull: $HOSTS hosts, ${SIZE} MB artifact, the pull's HTTP server on fleet host h$S (python3 -m http.server), convoy --forks $FORKS, median of $RUNS runs each (every end state verified)"
    python3 - "$RESULTS" "$HOSTS" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
n = float(sys.argv[2])
def med(scen, col):
    vals = [float(r[col]) for r in rows if r[1] == scen]
    return statistics.median(vals) if vals else float("nan")
print(f"{'scenario':<14} {'source':<6} {'wall s':>8} {'ctl CPU s':>10} {'host CPU s':>11} {'server CPU s':>13} {'RT/host':>8} {'ctl KB/host':>12} {'rx KB/host':>11}")
for scen, name in [("first", "first deploy"), ("upgrade", "upgrade")]:
    walls = {}
    for i, how in enumerate(["push", "pull"]):
        key = f"{how}-{scen}"
        walls[how] = med(key, 2) / 1e9
        print(f"{name if i == 0 else '':<14} {how:<6} {walls[how]:>8.2f} {med(key, 3) / 1e9:>10.2f} {med(key, 4) / 1e9:>11.2f} "
              f"{med(key, 11) / 1e9:>13.2f} {med(key, 5) / n:>8.1f} {med(key, 10) / n / 1000:>12.1f} {med(key, 6) / n / 1000:>11.0f}")
    print(f"{'':<14} {'ratio':<6} {walls['pull'] / walls['push']:>8.2f}   (pull / push wall)")
PY
    exit 0
fi

# ------------------------------------------------------------------ scale
# Samples, while convoy runs: ssh processes and control sockets alive, and
# the controller's open file descriptors; appends the maxima to RESULTS' last line.
sampler() {
    local max_ssh=0 max_master=0 max_fd=0 s m f pid
    while [[ ! -e $WORK/stop ]]; do
        s=0 m=0 f=0
        for pid in $(cat "$CG/ctl/cgroup.procs" 2>/dev/null); do
            case $(cat "/proc/$pid/comm" 2>/dev/null) in
            ssh)
                s=$((s + 1))
                # A master (-M) owns one control socket.
                tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- ' -M ' && m=$((m + 1))
                ;;
            convoy) f=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l) ;;
            esac
        done
        ((s > max_ssh)) && max_ssh=$s
        ((m > max_master)) && max_master=$m
        ((f > max_fd)) && max_fd=$f
        sleep 0.05
    done
    echo "$max_ssh $max_master $max_fd" >"$WORK/sampled"
}
for n in $SCALE; do
    echo "scale: $n hosts..." >&2
    inventory "$n" >"$WORK/inventory.yml"
    reset_hosts "$n"
    for step in "first 1 -" "noop 1 -" "upgrade 2 1"; do
        read -r scenario v prev <<<"$step"
        [[ $prev == - ]] && prev=
        rm -f "$WORK/stop"
        sampler &
        spid=$!
        (
            ulimit -n 1024
            measure convoy "$scenario" "$n" $(convoy_cmd run) -e "version=$v"
        )
        touch "$WORK/stop"
        wait "$spid"
        sed -i "\$s/\$/ $(cat "$WORK/sampled")/" "$RESULTS"
        verify "$n" "$v" "$prev" || die "scale $n $scenario: wrong end state on the hosts (above)"
    done
done
header "convoy at scale: ${SIZE} MB artifact, --forks $FORKS, ulimit -n 1024, $( ((RTT)) && echo "+${RTT} ms RTT" || echo "direct")"
report scale
