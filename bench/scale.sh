#!/usr/bin/env bash
# How convoy's own work grows with the fleet's size, without SSH: N hosts
# with `ansible_connection: local` and a play of templated tasks that run
# nothing remote (debug, set_fact), then a second play reading every host's
# facts through hostvars. No root, no network.
#
#   bench/scale.sh [N...]     (default: 250 500 1000)
#
# Wall seconds and peak RSS from /usr/bin/time, with the release binary.
# Growth should stay near linear: each host's templates see `hostvars` and
# `groups` of the whole fleet, shared per play rather than copied per host.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "bench/scale.sh: needs GNU time (apt-get install time)" >&2; exit 1; }
SIZES=("$@")
((${#SIZES[@]})) || SIZES=(250 500 1000)

cargo build --release --quiet
BIN=$PWD/target/release/convoy
WORK=$(mktemp -d /tmp/cvs.XXXX)
trap 'rm -rf "$WORK"' EXIT

cat >"$WORK/play.yml" <<'YAML'
- hosts: app
  tasks:
    - debug: { msg: "{{ inventory_hostname }} in rack {{ hostvars[inventory_hostname].rack }}" }
    - set_fact: { peers: "{{ groups['app'] | length }}", label: "{{ inventory_hostname }}-{{ rack }}" }
    - debug: { msg: "{{ peers }} {{ label }}" }
- hosts: app
  tasks:
    - debug: { msg: "{{ hostvars[groups['app'][0]].label }}" }
YAML

printf '%-34s %8s %12s\n' "what" "wall" "peak RSS"
for n in "${SIZES[@]}"; do
    {
        echo "all:"
        echo "  vars: { ansible_connection: local, region: eu }"
        echo "  children:"
        echo "    app:"
        echo "      hosts:"
        for ((i = 0; i < n; i++)); do
            echo "        h$i: { ansible_host: 10.0.$((i / 250)).$((i % 250 + 1)), rack: r$((i % 20)) }"
        done
    } >"$WORK/inv.yml"
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$BIN" run "$WORK/play.yml" -i "$WORK/inv.yml" -f 50 --output json >"$WORK/out" 2>&1 || true
    read -r wall rss <"$WORK/time"
    code=$(grep -o '"exit_code":[0-9]*' "$WORK/out" | tail -1 | cut -d: -f2)
    printf '%-34s %7ss %8s KiB  exit %s\n' "$n local hosts, 4 tasks, 2 plays" "$wall" "$rss" "${code:-?}"
done
