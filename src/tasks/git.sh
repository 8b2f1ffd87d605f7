# The git module on the host: ansible-core's ansible/modules/git.py main(),
# step for step, with the same git commands in the same order (so that
# the same repository ends in the same state, and the same failures give
# the same messages).
#
# Set before this code (each a quoted word, empty when off): R (repo, as
# given), RX (repo, `~` expanded, when TILDE), TILDE, D (dest, may be
# empty), V (version), REMOTE, FORCE, DEPTH, CLONE, UPDATE, BARE, SINGLE,
# RECURSIVE, CHECK, UMASK, EXE, SSHOPTS, SSHOPTS_SET, ACCEPT_HOST,
# ACCEPT_NEW, KEY.
#
# The answer goes to fd 3, as NUL-terminated `key=value` records; git's
# own output goes to stderr.
exec 3>&1 1>&2
emit() { printf '%s=%s\0' "$1" "$2" >&3; }
warn() { emit warning "$1"; }
# The module's fail_json(msg): the message alone; `fail_with_result`
# keeps the result so far (`fail_json(msg, **result)`).
fail() { emit failed "$1"; exit 0; }
fail_with_result() { emit keep 1; fail "$1"; }

W=$PWD
# A private directory for each command's stderr and status.
T=$(mktemp -d "${TMPDIR:-/tmp}/convoy-git.XXXXXXXX") || { emit failed "cannot create a temporary directory"; exit 0; }
trap 'rm -rf -- "$T"' EXIT

# run_command: `run CWD CMD...` sets OUT, ERR and RC; CWD is `dest` (the
# module's cwd=dest, ignored when dest is not a directory) or `here`.
run() {
    where=$1
    shift
    OUT=$(
        if [ "$where" = dest ] && [ -d "$D" ]; then cd -- "$D" || exit 1; fi
        "$@" 2>"$T/err"
        echo "$?" >"$T/rc"
        printf x
    )
    OUT=${OUT%x}
    RC=$(cat "$T/rc")
    ERR=$(cat "$T/err"; printf x)
    ERR=${ERR%x}
}
# run_command(check_rc=True): the message is stderr, trailing space removed.
run_ok() {
    run "$@"
    if [ "$RC" != 0 ]; then
        m=$ERR
        while :; do
            case $m in
                *[[:space:]]) m=${m%?} ;;
                *) break ;;
            esac
        done
        fail "$m"
    fi
}
contains() {
    case $1 in *"$2"*) return 0 ;; esac
    return 1
}

# get_best_parsable_locale
L=C
for l in C.utf8 C.UTF-8 en_US.utf8; do
    if locale -a 2>/dev/null | grep -qx -- "$l"; then L=$l; break; fi
done
export LANG="$L" LC_ALL="$L" LC_MESSAGES="$L" LC_CTYPE="$L" LANGUAGE="$L"

if [ -n "$EXE" ]; then
    G=$EXE
else
    G=$(command -v git) || fail "Failed to find required executable \"git\" in paths: $PATH"
fi

if [ -n "$ACCEPT_HOST" ]; then
    if [ -n "$SSHOPTS_SET" ]; then
        if ! contains "$SSHOPTS" "-o StrictHostKeyChecking=no" && ! contains "$SSHOPTS" "-o StrictHostKeyChecking=accept-new"; then
            SSHOPTS="$SSHOPTS -o StrictHostKeyChecking=no"
        fi
    else
        SSHOPTS="-o StrictHostKeyChecking=no"
        SSHOPTS_SET=1
    fi
fi
if [ -n "$ACCEPT_NEW" ]; then
    S=$(command -v ssh) || fail "Remote host is missing ssh command, so you cannot use acceptnewhostkey option."
    if ! "$S" -o StrictHostKeyChecking=accept-new -V >/dev/null 2>&1; then
        warn "Your ssh client does not support accept_newhostkey option, therefore it cannot be used."
    elif [ -n "$SSHOPTS_SET" ]; then
        if ! contains "$SSHOPTS" "-o StrictHostKeyChecking=no" && ! contains "$SSHOPTS" "-o StrictHostKeyChecking=accept-new"; then
            SSHOPTS="$SSHOPTS -o StrictHostKeyChecking=accept-new"
        fi
    else
        SSHOPTS="-o StrictHostKeyChecking=accept-new"
        SSHOPTS_SET=1
    fi
fi

if [ -n "$UMASK" ]; then umask "$UMASK" || fail "umask must be an octal integer"; fi

# Paths need a protocol for depth to work.
if [ -n "$TILDE" ]; then
    case $RX in /*) R="file://$RX" ;; esac
else
    case $R in /*) R="file://$R" ;; esac
fi

if [ -z "$D" ] && [ -n "$CLONE" ]; then
    fail "the destination directory must be specified unless clone=no"
fi
if [ -n "$D" ]; then
    case $D in /*) ;; *) D="$W/$D" ;; esac
fi

# get_repo_path
repo_path() {
    if [ -n "$1" ]; then RP=$D; else RP=$D/.git; fi
    if [ -f "$RP" ]; then
        data=$(cat -- "$RP")
        case $data in
            "gitdir: "*) gd=${data#gitdir: } ;;
            *) fail "Current repo does not have a valid reference to a separate Git dir or it refers to the invalid path" ;;
        esac
        case $gd in /*) RP=$gd ;; *) RP=$D/$gd ;; esac
        [ -d "$RP" ] || fail "Current repo does not have a valid reference to a separate Git dir or it refers to the invalid path"
    fi
}

# set_git_ssh_env
if [ -n "$SSHOPTS_SET" ]; then O="${GIT_SSH_OPTS-} $SSHOPTS"; else O=${GIT_SSH_OPTS-}; fi
if [ -n "$ACCEPT_HOST" ] && ! contains "$O" "StrictHostKeyChecking=no"; then O="$O -o StrictHostKeyChecking=no"; fi
contains "$O" "BatchMode=yes" || O="$O -o BatchMode=yes"
if [ -n "$KEY" ]; then
    contains "$O" "-i $KEY" || O="$O  -i $KEY"
    contains "$O" "IdentitiesOnly=yes" || O="$O -o IdentitiesOnly=yes"
fi
C=${GIT_SSH-${GIT_SSH_COMMAND-ssh}}
[ -n "$O" ] && C="$C $O"
export GIT_SSH_COMMAND="$C"

# is_remote_branch / is_remote_tag REMOTE: whether ls-remote names V.
is_remote_branch() { run_ok dest "$G" ls-remote "$1" -h "refs/heads/$V"; contains "$OUT" "$V"; }
is_remote_tag() { run_ok dest "$G" ls-remote "$1" -t "refs/tags/$V"; contains "$OUT" "$V"; }
branches() { run dest "$G" branch --no-color -a; [ "$RC" = 0 ] || fail "Could not determine branch data - received $OUT"; }
is_local_branch() {
    branches
    printf '%s\n' "$OUT" | while IFS= read -r b; do
        b=$(printf '%s' "$b" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
        if [ "$b" = "$1" ] || [ "$b" = "* $1" ]; then echo yes; fi
    done | grep -q yes
}
is_not_a_branch() {
    branches
    printf '%s\n' "$OUT" | sed 's/^[[:space:]]*//' | grep -e '^\* .*no branch' -e '^\* .*detached from' -e '^\* .*detached at' >/dev/null
}
# head_splitter: the branch a HEAD file names (Python's None when unreadable).
head_split() {
    HB=None
    [ -f "$1" ] || return 0
    IFS= read -r line <"$1" || [ -n "$line" ] || return 0
    p="refs/remotes/$REMOTE"
    case $line in *"$p"*) line="${line%%"$p"*}${line#*"$p"}" ;; esac
    n=${line##* }
    case $n in
        */*/*) n=${n#*/}; n=${n#*/} ;;
        */*) n=${n#*/} ;;
    esac
    HB=$n
}
# get_head_branch BARE
head_branch() {
    repo_path "$1"
    hf=$RP/HEAD
    if is_not_a_branch; then hf=$RP/refs/remotes/$REMOTE/HEAD; fi
    head_split "$hf"
}
# Python's rstrip('\n').
NL=$(printf '\nx')
NL=${NL%x}
chomp() {
    C1=$1
    while :; do
        case $C1 in
            *"$NL") C1=${C1%"$NL"} ;;
            *) break ;;
        esac
    done
}
get_version() { run dest "$G" rev-parse HEAD; chomp "$OUT"; SHA=$C1; }
# get_remote_head REMOTE CLONING
remote_head() {
    tag=
    if [ "$V" = HEAD ]; then
        if [ -n "$2" ]; then
            run_ok here "$G" ls-remote "$1" -h HEAD
        else
            head_branch "$BARE"
            run_ok dest "$G" ls-remote "$1" -h "refs/heads/$HB"
        fi
    elif is_remote_branch "$1"; then
        run_ok "$( [ -n "$2" ] && echo here || echo dest)" "$G" ls-remote "$1" -h "refs/heads/$V"
    elif is_remote_tag "$1"; then
        tag=1
        run_ok "$( [ -n "$2" ] && echo here || echo dest)" "$G" ls-remote "$1" -t "refs/tags/$V*"
    else
        RH=$V
        return 0
    fi
    [ -n "$OUT" ] || fail "Could not determine remote revision for $V"
    line=$OUT
    if [ -n "$tag" ]; then
        found=$(printf '%s\n' "$OUT" | awk -v v="$V" '
            { n = length($0) }
            substr($0, n - length(v "^{}") + 1) == v "^{}" { print; done = 1; exit }
            substr($0, n - length(v) + 1) == v { last = $0 }
            END { if (!done && last != "") print last }')
        [ -n "$found" ] && line=$found
    fi
    line=${line#"${line%%[![:space:]]*}"}
    RH=${line%%[[:space:]]*}
}
# get_remote_url: GOT=1 and URL when git answers.
remote_url() {
    run dest "$G" ls-remote --get-url "$REMOTE"
    if [ "$RC" = 0 ]; then GOT=1; chomp "$OUT"; URL=$C1; else GOT=; URL=; fi
}
unfrack() { realpath -m -- "$1" 2>/dev/null || printf '%s\n' "$1"; }
same_url() { [ "$URL" = "$R" ] || [ "$(unfrack "$URL")" = "$(unfrack "$R")" ]; }
# set_remote_url: RUC is true/false.
set_remote_url() {
    remote_url
    if [ -n "$GOT" ] && same_url; then RUC=false; return 0; fi
    run dest "$G" remote set-url "$REMOTE" "$R"
    [ "$RC" = 0 ] || fail "Failed to set a new url $R for $REMOTE: $OUT $ERR"
    if [ -n "$GOT" ]; then RUC=true; else RUC=false; fi
}
fetch() {
    # Again, as fetch() does; main's answer stands.
    r0=$RUC
    set_remote_url
    RUC=$r0
    set --
    refs=
    if [ -n "$DEPTH" ]; then
        head_branch ""
        if [ "$V" = HEAD ]; then
            set -- "$HB"
        elif is_remote_branch "$R"; then
            [ "$HB" != "$V" ] && set -- "+refs/heads/$V:refs/heads/$V"
            set -- "$@" "+refs/heads/$V:refs/remotes/$REMOTE/$V"
        elif is_remote_tag "$R"; then
            set -- "+refs/tags/$V:refs/tags/$V"
        fi
        [ $# -gt 0 ] && refs=1
    fi
    if [ -n "$refs" ]; then
        opts="--depth $DEPTH"
    elif [ -n "$BARE" ]; then
        set -- '+refs/heads/*:refs/heads/*' '+refs/tags/*:refs/tags/*'
        opts=
    else
        opts=--tags
    fi
    [ -n "$FORCE" ] && opts="$opts --force"
    # shellcheck disable=SC2086 # opts holds only the words above
    run dest "$G" fetch $opts "$REMOTE" "$@"
    [ "$RC" = 0 ] || fail "Failed to download remote objects and refs: $OUT $ERR"
}
clone() {
    mkdir -p -- "$(dirname -- "$D")" 2>/dev/null
    bt=
    if is_remote_branch "$R" || is_remote_tag "$R"; then bt=1; fi
    set --
    if [ -n "$BARE" ]; then set -- --bare; else set -- --origin "$REMOTE"; fi
    if [ -n "$DEPTH" ]; then
        if [ "$V" = HEAD ]; then
            set -- "$@" --depth "$DEPTH"
        elif [ -n "$bt" ]; then
            set -- "$@" --depth "$DEPTH" --branch "$V"
        else
            warn "Ignoring depth argument. Shallow clones are only available for HEAD, branches, tags or in combination with refspec."
        fi
    fi
    if [ -n "$SINGLE" ]; then
        set -- "$@" --single-branch
        [ -n "$bt" ] && set -- "$@" --branch "$V"
    fi
    D0=$D
    D=$(dirname -- "$D0")
    run_ok dest "$G" clone "$@" "$R" "$D0"
    D=$D0
    if [ -n "$BARE" ] && [ "$REMOTE" != origin ]; then
        run_ok dest "$G" remote add "$REMOTE" "$R"
    fi
}
switch_version() {
    if [ "$V" = HEAD ]; then
        head_branch ""
        run dest "$G" checkout --force "$HB"
        [ "$RC" = 0 ] || fail "Failed to checkout branch $HB"
        run dest "$G" reset --hard "$REMOTE/$HB" --
        [ "$RC" = 0 ] || fail "Failed to checkout branch $HB"
        return 0
    fi
    if is_remote_branch "$REMOTE"; then
        if [ -n "$DEPTH" ] && ! is_local_branch "$V"; then
            run dest "$G" fetch "--depth=$DEPTH" "$REMOTE" "+refs/heads/$V:refs/heads/$V" "+refs/heads/$V:refs/remotes/$REMOTE/$V"
            [ "$RC" = 0 ] || fail "Failed to fetch branch from remote: $V"
        fi
        if ! is_local_branch "$V"; then
            run dest "$G" checkout --track -b "$V" "$REMOTE/$V"
        else
            run dest "$G" checkout --force "$V"
            [ "$RC" = 0 ] || fail "Failed to checkout branch $V"
            run dest "$G" reset --hard "$REMOTE/$V"
        fi
    else
        run dest "$G" checkout --force "$V"
    fi
    [ "$RC" = 0 ] || fail "Failed to checkout $V"
}
# get_submodule_versions: only its failures matter (track_submodules,
# which compares them, is not supported).
submodule_versions() {
    run dest "$G" submodule foreach "$G" rev-parse HEAD
    [ "$RC" = 0 ] || fail "Unable to determine hashes of submodules"
    name=
    [ -n "$OUT" ] || return 0
    while IFS= read -r line; do
        case $line in
            "Entering '"*) name=${line#"Entering '"}; name=${name%?} ;;
            *)
                h=$(printf '%s' "$line" | tr -d '[:space:]')
                if [ ${#h} -eq 40 ]; then
                    [ -n "$name" ] || fail ""
                    name=
                else
                    fail "Unable to parse submodule hash line: $h"
                fi
                ;;
        esac
    done <<EOF_VERSIONS
${OUT%"$NL"}
EOF_VERSIONS
    [ -z "$name" ] || fail "Unable to find hash for submodule: $name"
}
# submodules_fetch: SUBS=1 when a submodule is new or not where the
# superproject wants it.
submodules_fetch() {
    SUBS=
    [ -e "$D/.gitmodules" ] || return 0
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line#"${line%%[![:space:]]*}"}
        case $line in
            path*)
                case $line in *=*) ;; *) continue ;; esac
                p=${line#*=}
                p=${p#"${p%%[![:space:]]*}"}
                p=${p%"${p##*[![:space:]]}"}
                [ -e "$D/$p/.git" ] || { SUBS=1; break; }
                ;;
        esac
    done <"$D/.gitmodules"
    [ -z "$SUBS" ] || return 0
    submodule_versions
    run_ok dest "$G" submodule foreach "$G" fetch
    run_ok dest "$G" submodule status
    [ -n "$OUT" ] || return 0
    while IFS= read -r line; do
        case $line in " "*) ;; *) SUBS=1; break ;; esac
    done <<EOF_STATUS
${OUT%"$NL"}
EOF_STATUS
}
submodule_update() {
    [ -e "$D/.gitmodules" ] || return 0
    run_ok dest "$G" submodule sync
    if [ -n "$FORCE" ]; then
        run dest "$G" submodule update --init --recursive --force
    else
        run dest "$G" submodule update --init --recursive
    fi
    [ "$RC" = 0 ] || fail "Failed to init/update submodules: $OUT$ERR"
}

# main()
if [ -n "$D" ]; then repo_path "$BARE"; fi
if { [ -n "$D" ] && [ ! -e "$RP/config" ]; } || { [ -z "$D" ] && [ -z "$CLONE" ]; }; then
    if [ -n "$CHECK" ] || [ -z "$CLONE" ]; then
        remote_head "$R" 1
        emit changed 1
        emit after "$RH"
        exit 0
    fi
    clone
elif [ -z "$UPDATE" ]; then
    get_version
    emit before "$SHA"
    emit after "$SHA"
    exit 0
else
    MODS=
    if [ -z "$BARE" ]; then
        run dest "$G" status --porcelain
        if printf '%s\n' "$OUT" | grep -v '^??' | grep -q .; then MODS=1; fi
    fi
    get_version
    BEFORE=$SHA
    emit before "$SHA"
    if [ -n "$MODS" ]; then
        [ -n "$FORCE" ] || fail_with_result "Local modifications exist in the destination: $D (force=no)."
        if [ -z "$CHECK" ]; then
            run_ok dest "$G" reset --hard HEAD
            emit msg "Local modifications exist in the destination: $D"
        fi
    fi
    if [ -n "$CHECK" ]; then
        # Python's `remote_url and remote_url != repo and ...`.
        remote_url
        if [ -z "$GOT" ]; then RUC=none
        elif [ -z "$URL" ]; then RUC=empty
        elif same_url; then RUC=false
        else RUC=true
        fi
        emit remote_url_changed "$RUC"
        remote_head "$REMOTE" ""
        if [ "$BEFORE" != "$RH" ] || [ "$RUC" = true ]; then emit changed 1; fi
        emit after "$RH"
        exit 0
    fi
    set_remote_url
    emit remote_url_changed "$RUC"
    fetch
fi
[ -n "$BARE" ] || switch_version
SUBS=
if [ -n "$RECURSIVE" ] && [ -z "$BARE" ]; then
    submodules_fetch
    if [ -n "$SUBS" ]; then
        emit submodules_changed 1
        submodule_update
    fi
fi
get_version
emit after "$SHA"
if [ "${BEFORE-}" != "$SHA" ] || [ -z "${BEFORE+x}" ] || [ -n "${MODS-}" ] || [ -n "$SUBS" ] || [ "${RUC-}" = true ]; then
    emit changed 1
fi
