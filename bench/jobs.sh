#!/usr/bin/env bash
# Per-target overhead of `convoy job` over one SSH connection: the time a
# target costs beyond its command's own time, for N targets (default 300)
# on one sshd host of a real fleet on this machine (tests/fleet/fleet.sh;
# needs root).
#
#   bench/jobs.sh [N]
#
# overhead per target = (wall(N targets) - wall(1 target)) / (N - 1)
#                       - the command's own time (the same command run N
#                         times on the host in one shell, divided by N)
# Measured serially (concurrency 1: the full cost of each target, nothing
# hidden by overlap) and with concurrency 8 (what a job usually sees).
# Goal: under 5 ms per target.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-300}
[[ $EUID -eq 0 ]] || { echo "bench/jobs.sh: must run as root (network namespaces)" >&2; exit 1; }

cargo build --release --quiet
BIN=$PWD/target/release/convoy
WORK=$(mktemp -d /tmp/cvj.XXXX)
FLEET=$WORK/fleet
mkdir -p "$FLEET"
trap 'bash tests/fleet/fleet.sh down "$FLEET" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
bash tests/fleet/fleet.sh up "$FLEET" 1 >/dev/null
read -r name addr <"$FLEET/hosts.txt"
cat >"$WORK/inventory.yml" <<YAML
all:
  vars: { convoy_ssh_config: $FLEET/ssh_config }
  hosts:
    $name: { ansible_host: $addr }
YAML
CMD='echo {{ target }} > /dev/null'

playbook() { # name, targets, concurrency
    local targets
    targets=$(seq -f 't%04g' "$2" | paste -sd, -)
    cat >"$WORK/$1.yml" <<YAML
- hosts: all
  job:
    name: $1
    targets: [$targets]
    run: "$CMD"
    concurrency: $3
YAML
}

now() { date +%s.%N; }
wall() { # name: seconds of one `convoy job run`
    local t0 t1
    t0=$(now)
    (cd "$WORK" && "$BIN" job run "$1.yml" -i inventory.yml >"$WORK/$1.out" 2>&1) ||
        { cat "$WORK/$1.out"; exit 1; }
    t1=$(now)
    echo "$t1 - $t0" | bc -l
}

# The command's own time on the host: N times in one shell (sh -c, as the wrapper runs it).
t0=$(now)
bash tests/fleet/fleet.sh exec "$FLEET" 1 -- sh -c "i=0; while [ \$i -lt $N ]; do sh -c 'echo t0001 > /dev/null'; i=\$((i+1)); done"
own=$(echo "($(now) - $t0) / $N" | bc -l)

printf 'targets: %d on 1 host, one ssh connection; command: %s\n' "$N" "$CMD"
printf 'command own time: %.2f ms per target\n' "$(echo "$own * 1000" | bc -l)"
for c in 1 8; do
    playbook "one$c" 1 "$c"
    playbook "all$c" "$N" "$c"
    w1=$(wall "one$c")
    wn=$(wall "all$c")
    grep -q "JOB END $N targets: done=$N " "$WORK/all$c.out" || { cat "$WORK/all$c.out"; exit 1; }
    per=$(echo "($wn - $w1) / ($N - 1)" | bc -l)
    over=$(echo "($per - $own) * 1000" | bc -l)
    printf 'concurrency %d: 1 target %.2fs, %d targets %.2fs -> %.2f ms per target, overhead %.2f ms per target\n' \
        "$c" "$w1" "$N" "$wn" "$(echo "$per * 1000" | bc -l)" "$over"
done
