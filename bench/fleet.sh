#!/usr/bin/env bash
# Wall time, peak memory and bytes on the wire of convoy against a real
# fleet of N sshd hosts on this machine (tests/fleet/fleet.sh; needs root).
#
#   bench/fleet.sh [N]        (default 20)
#
# Measures, with the release binary:
#   1. the example playbook (copy + template + command + handler): first run, re-run
#   2. a distribution with a 20 MB artifact: first deploy, no-op re-run (artifact bytes per host)
#   3. a rollout in batches of 5 to a new version, then a fleet-wide rollback
#   4. status and unlock, which ask every host once
# Timings come from /usr/bin/time (wall seconds, peak RSS of convoy itself).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
[[ $EUID -eq 0 ]] || { echo "bench/fleet.sh: must run as root (network namespaces)" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "bench/fleet.sh: needs GNU time (apt-get install time)" >&2; exit 1; }

cargo build --release --quiet
BIN=$PWD/target/release/convoy
WORK=$(mktemp -d /tmp/cvb.XXXX)
FLEET=$WORK/fleet
mkdir -p "$FLEET"
trap 'bash tests/fleet/fleet.sh down "$FLEET" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
bash tests/fleet/fleet.sh up "$FLEET" "$N" >/dev/null

# An inventory of the fleet with the example's variables.
{
    echo "all:"
    echo "  vars: { convoy_ssh_config: $FLEET/ssh_config, app_name: hello, app_port: 8080, app_greeting: hi, app_root: /srv }"
    echo "  children:"
    echo "    app:"
    echo "      hosts:"
    while read -r name addr; do echo "        $name: { ansible_host: $addr }"; done <"$FLEET/hosts.txt"
} >"$WORK/inventory.yml"

# The example project, and a 20 MB incompressible artifact.
cp -r playbooks templates files app "$WORK/"
mkdir -p "$WORK/dist/app"
head -c 20000000 /dev/urandom >"$WORK/dist/app/blob.bin"
echo 1.0.0 >"$WORK/dist/app/VERSION"
tar -C "$WORK/dist/app" -czf "$WORK/dist/big.tar.gz" .
cat >"$WORK/big.yml" <<'YAML'
- name: Deploy big
  hosts: app
  vars: { version: "1.0.0" }
  distribution:
    name: big
    version: "{{ version }}"
    source: dist/big.tar.gz
    root: /srv/big
    keep: 3
  rollout:
    batch: 5
YAML

measure() { # label, then the command; prints wall seconds and peak RSS
    local label=$1
    shift
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >"$WORK/out" 2>&1 || true
    read -r wall rss <"$WORK/time"
    local recap bytes changed
    recap=$(grep '"event":"recap"' "$WORK/out" || true)
    bytes=$(grep -o '"artifact_bytes":[0-9]*' <<<"$recap" | cut -d: -f2 | sort -n | tail -1 || true)
    changed=$(grep -o '"changed":[0-9]*' <<<"$recap" | cut -d: -f2 | sort -n | tail -1 || true)
    printf '%-44s %8ss %8s KiB  max changed/host %-3s max artifact bytes/host %s\n' "$label" "$wall" "$rss" "${changed:-?}" "${bytes:-?}"
}

echo "convoy against $N fleet hosts ($(nproc) cores)"
printf '%-44s %9s %12s\n' "what" "wall" "peak RSS"
measure "example playbook, first run" "$BIN" run "$WORK/playbooks/site.yml" -i "$WORK/inventory.yml" --output json
measure "example playbook, re-run (0 changed)" "$BIN" run "$WORK/playbooks/site.yml" -i "$WORK/inventory.yml" --output json
measure "20 MB distribution, first deploy" "$BIN" run "$WORK/big.yml" -i "$WORK/inventory.yml" --output json
measure "20 MB distribution, no-op re-run" "$BIN" run "$WORK/big.yml" -i "$WORK/inventory.yml" --output json
measure "rollout to 2.0.0 in batches of 5" "$BIN" run "$WORK/big.yml" -i "$WORK/inventory.yml" -e version=2.0.0 --output json
measure "fleet-wide rollback (batches of 5)" "$BIN" rollback "$WORK/big.yml" -i "$WORK/inventory.yml" --output json
measure "status (every host, read-only)" "$BIN" status "$WORK/big.yml" -i "$WORK/inventory.yml" --output json
measure "unlock (every host, none locked)" "$BIN" unlock "$WORK/big.yml" -i "$WORK/inventory.yml"
