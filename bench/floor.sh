#!/usr/bin/env bash
# The floor: bench/project/deploy.yml done by hand with plain OpenSSH, the
# way someone who knows what they are doing would write it. compare.sh
# measures convoy against this.
#
#   bench/floor.sh deploy   -F SSH_CONFIG -a ARTIFACT [-s SHA256] -v VERSION [-b BATCH] [-c COUNTS_DIR] HOST...
#   bench/floor.sh rollback -F SSH_CONFIG [-b BATCH] [-c COUNTS_DIR] HOST...
#
# Hosts go in batches of BATCH (default 5), the hosts of a batch in
# parallel; per host:
#   - one ControlMaster connection (ssh -M), every command below a session on it;
#   - deploy: a probe (is the artifact in the store? is the release live?);
#     the artifact sent with `cat` if the store lacks it (hashed once,
#     locally, unless -s gives the hash); one shell script for the rest: unpack
#     into releases/.tmp-V, the shared path linked, the two release files
#     (rendered here, the floor knows their content), renamed into place,
#     `current` switched by rename(2), the restart hook, keep 3;
#   - rollback: one script: `current` back to the previous release, the hook.
# The layout on the host is convoy's (see README, Distributions), so that
# both leave the same end state: releases/V, shared/log, current,
# .convoy/artifacts/SHA, .convoy/releases/V.json, .convoy/previous.
#
# COUNTS_DIR, when given, gets one line per remote command in COUNTS_DIR/HOST
# (the round trips; connections are not counted, as convoy does not count
# them either). A failed host stops the run after its batch (exit 2).
set -euo pipefail

R=/srv/bench
KEEP=3
BATCH=5
COUNTS=
ACTION=${1:-}
shift || true
while getopts 'F:a:s:v:b:c:' opt; do
    case $opt in
    F) CONFIG=$OPTARG ;;
    a) ARTIFACT=$OPTARG ;;
    s) SHA=$OPTARG ;;
    v) VERSION=$OPTARG ;;
    b) BATCH=$OPTARG ;;
    c) COUNTS=$OPTARG ;;
    *) exit 3 ;;
    esac
done
shift $((OPTIND - 1))
HOSTS=("$@")
[[ -n ${CONFIG:-} && ${#HOSTS[@]} -gt 0 ]] || {
    sed -n '/^#   bench/p' "$0" >&2
    exit 3
}
case $ACTION in
deploy)
    [[ -n ${ARTIFACT:-} && -n ${VERSION:-} ]] || {
        echo "floor.sh: deploy needs -a and -v" >&2
        exit 3
    }
    # Hashed once, locally (without -s, here: that is part of the deploy).
    SHA=${SHA:-$(sha256sum "$ARTIFACT" | cut -d' ' -f1)}
    ;;
rollback) ;;
*)
    echo "floor.sh: deploy or rollback, not '$ACTION'" >&2
    exit 3
    ;;
esac

CTL=$(mktemp -d /tmp/floor.XXXX)
trap 'for s in "$CTL"/*; do [[ -S $s ]] && ssh -F "$CONFIG" -o ControlPath="$s" -O exit x >/dev/null 2>&1; done; rm -rf "$CTL"' EXIT

# One remote command over the host's master.
remote() {
    local h=$1
    shift
    [[ -z $COUNTS ]] || echo x >>"$COUNTS/$h"
    ssh -F "$CONFIG" -o ControlMaster=no -o ControlPath="$CTL/$h" "$h" "$@"
}

# The release files, as bench/project/templates renders them for host $1.
app_conf() { printf '# app on %s, release %s\nhost = %s\nport = 8080\n' "$1" "$VERSION" "$1"; }
release_conf() { printf '# release %s, the same on every host\nversion = %s\nworkers = 4\n' "$VERSION" "$VERSION"; }

# After the release files: rename into place, switch, hook, keep.
FINISH='M=$R/.convoy/releases/$V.json
printf "{\"version\":\"%s\",\"sha256\":\"%s\"}\n" "$V" "$S" > "$M.tmp" && mv "$M.tmp" "$M"
rm -rf "$R/releases/$V"; mv "$T" "$R/releases/$V"
cd "$R"
old=$(readlink current || true)
ln -s "releases/$V" .current.tmp && mv -T .current.tmp current
[ -z "$old" ] || echo "${old#releases/}" > .convoy/previous
echo "$V" > shared/log/restarted
cd releases
cur=$V; prev=$(cat ../.convoy/previous 2>/dev/null || true); n=0; kept=" "
for v in "$cur" "$prev"; do [ -n "$v" ] && [ -d "$v" ] || continue; case "$kept" in *" $v "*) ;; *) kept="$kept$v "; n=$((n+1));; esac; done
for v in $(ls -1t); do
  case "$kept" in *" $v "*) continue;; esac
  if [ $n -lt '"$KEEP"' ]; then kept="$kept$v "; n=$((n+1)); else rm -rf -- "$v" "../.convoy/releases/$v.json"; fi
done
for a in ../.convoy/artifacts/*; do s=${a##*/}; grep -qs "\"sha256\":\"$s\"" ../.convoy/releases/*.json || rm -f -- "$a"; done'

deploy_host() {
    local h=$1 state
    state=$(remote "$h" "test -f $R/.convoy/artifacts/$SHA && echo have; test -d $R/releases/$VERSION && echo release; readlink $R/current || true")
    if grep -qx release <<<"$state" && grep -qx "releases/$VERSION" <<<"$state"; then
        return 0 # already live: nothing to do
    fi
    if ! grep -qx have <<<"$state"; then
        remote "$h" "mkdir -p $R/.convoy/artifacts && cat > $R/.convoy/artifacts/$SHA.part && mv $R/.convoy/artifacts/$SHA.part $R/.convoy/artifacts/$SHA" <"$ARTIFACT"
    fi
    remote "$h" "set -e; R=$R V=$VERSION S=$SHA; T=\$R/releases/.tmp-\$V.\$\$
mkdir -p \"\$R/releases\" \"\$R/shared/log\" \"\$R/.convoy/releases\"
mkdir \"\$T\"; trap 'rm -rf \"\$T\"' EXIT
tar -xzf \"\$R/.convoy/artifacts/\$S\" -C \"\$T\" --no-same-owner
ln -s \"\$R/shared/log\" \"\$T/log\"
mkdir -p \"\$T/config\"
cat > \"\$T/config/app.conf\" <<'EOF'
$(app_conf "$h")
EOF
cat > \"\$T/config/release.conf\" <<'EOF'
$(release_conf)
EOF
chmod 0640 \"\$T/config/release.conf\"
$FINISH
trap - EXIT"
}

rollback_host() {
    remote "$1" "set -e; cd $R; prev=\$(cat .convoy/previous); [ -d \"releases/\$prev\" ]
old=\$(readlink current)
ln -s \"releases/\$prev\" .current.tmp && mv -T .current.tmp current
echo \"\${old#releases/}\" > .convoy/previous
echo \"\$prev\" > shared/log/restarted"
}

one_host() {
    local h=$1
    ssh -F "$CONFIG" -o ControlMaster=yes -o ControlPath="$CTL/$h" -o ControlPersist=yes -fN "$h" || return
    local rc=0
    "${ACTION}_host" "$h" || rc=$?
    ssh -F "$CONFIG" -o ControlPath="$CTL/$h" -O exit "$h" >/dev/null 2>&1 || true
    return $rc
}

failed=0
for ((i = 0; i < ${#HOSTS[@]}; i += BATCH)); do
    pids=()
    for h in "${HOSTS[@]:i:BATCH}"; do
        one_host "$h" &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || failed=1; done
    if ((failed)); then
        echo "floor.sh: a host of batch $((i / BATCH + 1)) failed; stopping" >&2
        exit 2
    fi
done
