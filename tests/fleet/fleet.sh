#!/usr/bin/env bash
# fleet.sh: a fleet of fake SSH hosts on this machine, for convoy's integration tests.
#
# Each host is a network namespace (own address on a per-fleet bridge) plus a
# private mount namespace (own /srv, /etc/app, /root, /home, /tmp, /var/www,
# /etc/nginx, /etc/hosts, /etc/hostname) and UTS namespace (hostname h<i>),
# running its own sshd. /etc is an overlay over the machine's: a host reads the
# machine's files until it writes one (useradd, groupadd: /etc/passwd, group,
# shadow, gshadow), which then stays the host's. /usr, /var/lib/dpkg,
# /var/lib/apt, /var/cache and /var/log are overlays the same way, so that a
# package installed on a host stays there. Everything else (/var/lib, /run,
# ...) is the machine's own, so hosts are cheap: starting 20 takes a few seconds.
#
# Usage (as root):
#   fleet.sh up DIR N              create a fleet of N hosts, state under DIR
#   fleet.sh down DIR              tear it down (idempotent, works on half-built fleets)
#   fleet.sh stop-sshd DIR I       stop host I's sshd listener (sessions stay, like `systemctl stop ssh`)
#   fleet.sh start-sshd DIR I      start it again
#   fleet.sh kill-sessions DIR I   kill host I's established ssh sessions (the listener stays)
#   fleet.sh rekey DIR I           new host key for host I, sshd restarted, known_hosts NOT updated
#   fleet.sh link-down DIR I       take host I's link down (root-side veth)
#   fleet.sh link-up DIR I         bring it back
#   fleet.sh exec DIR I -- CMD...  run CMD as root inside host I (net+mount+uts namespaces, no ssh)
#   fleet.sh gc                    tear down fleets whose owner process (CONVOY_FLEET_OWNER) is gone
#
# Files under DIR after `up` (the interface for tests):
#   id             the fleet number K (1..250): bridge cvb<K>, netns cvf<K>h<i>, veth cv<K>h<i>
#   inventory.yml  Ansible YAML inventory, hosts h1..hN with ansible_host, all.vars.convoy_ssh_config
#   hosts.txt      "h<i> 10.213.K.(10+i)" per line
#   ssh_config     for `ssh -F`: user root, the fleet's key and known_hosts, strict host key checking
#   id_ed25519     the client key (authorized for root and for user `convoy` on every host)
#   known_hosts    each host's key, by address
#   h<i>/fs/...    the directories bind-mounted into host i (srv, etc-app, root, home, tmp, var-www, etc-nginx,
#                  var-spool-cron)
#                  and etc-upper, what host i wrote to its /etc (an overlay; etc-work is overlayfs' own);
#                  likewise usr-upper, var-lib-dpkg-upper, var-lib-apt-upper, var-cache-upper,
#                  var-log-upper: what its package installs wrote (PACKAGE_OVERLAYS)
#   h<i>/sshd.log  sshd's log (symlink into the run dir)
#
# Why a run dir (/run/convoy-fleets/K) besides DIR: DIR is usually under /tmp,
# which each host replaces with its own /tmp, so sshd (running inside the host)
# could not see its config, host key or authorized_keys there. /run is shared.
# /run/convoy-fleets/K is also the lock that reserves K: `mkdir` is atomic, so
# several fleets (parallel tests) never pick the same number.
#
# Environment: CONVOY_FLEET_OWNER=PID marks the fleet as belonging to process
# PID; `gc` (also run at the start of every `up`) removes fleets whose owner has
# died without calling `down` (a killed test process). Fleets without an owner
# are never collected.
#
# Safety: hosts have no default route, and `up` installs (once, kept) a
# blackhole route for 10.213.0.0/16 in the root namespace, so that traffic to a
# fleet address that is gone (e.g. a stray connection after `down`) is dropped
# here instead of going out through the machine's default route.

set -euo pipefail
umask 022
export LC_ALL=C
export PATH=$PATH:/usr/sbin:/sbin # ip, useradd, visudo live there; some root shells lack them

SSHD=/usr/sbin/sshd # absolute: sshd re-executes itself and insists on an absolute path
RUN_ROOT=/run/convoy-fleets
NET_PREFIX=10.213 # fleet K uses 10.213.K.0/24: .1 is the bridge, .(10+i) host i
MAX_FLEETS=250
MAX_HOSTS=200 # .(10+i) must stay below .255
# Directories each host gets privately: "name under DIR/h<i>/fs" -> "path inside the host".
MOUNTS=(srv:/srv etc-app:/etc/app root:/root home:/home var-www:/var/www etc-nginx:/etc/nginx)
# Users' crontabs (the `cron` module): each host has its own /var/spool/cron,
# else a crontab set on one host would be every host's and the machine's.
MOUNTS+=(var-spool-cron:/var/spool/cron)
# What dpkg and apt write, overlaid like /etc (see create_host): a host
# installs packages for real (the apt/package modules' tests) without
# touching the machine or the other hosts. "name under DIR/h<i>/fs" ->
# "path inside the host"; the upper dir is <name>-upper, the work dir
# <name>-work. /var/cache holds apt's and debconf's caches, /var/log apt's
# and dpkg's logs; /usr is where packages put their files.
PACKAGE_OVERLAYS=(usr:/usr var-lib-dpkg:/var/lib/dpkg var-lib-apt:/var/lib/apt var-cache:/var/cache var-log:/var/log)

die() {
    echo "fleet.sh: $*" >&2
    exit 1
}
log() { [[ -z "${FLEET_QUIET:-}" ]] && echo "fleet.sh: $*" >&2 || true; }

usage() {
    sed -n '/^# Usage/,/^# *fleet.sh gc/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ---------------------------------------------------------------- preconditions

check_preconditions() {
    [[ $EUID -eq 0 ]] || die "must run as root (it creates network namespaces, bridges and mounts)"
    local missing=() c
    for c in ip ssh-keygen unshare nsenter sudo visudo useradd flock mountpoint timeout setsid; do
        command -v "$c" >/dev/null 2>&1 || missing+=("$c")
    done
    [[ -x $SSHD ]] || missing+=("$SSHD (package openssh-server)")
    ((${#missing[@]} == 0)) || die "missing required commands: ${missing[*]}
  on Debian: apt-get install -y openssh-server openssh-client sudo iproute2 util-linux passwd"
    # sshd with UsePAM no refuses accounts whose password is locked ('!...').
    if [[ $(getent shadow root | cut -d: -f2) == '!'* ]]; then
        die "root's password is locked ('!' in /etc/shadow), so sshd refuses root logins;
  'usermod -p \"*\" root' keeps password logins impossible without locking the account"
    fi
}

# ---------------------------------------------------------------- helpers

# Fleet state from DIR: sets DIR, K, R (run dir) and checks they belong together.
load_fleet() {
    DIR=$1
    [[ $DIR == /* ]] || die "DIR must be an absolute path: $DIR"
    [[ -f $DIR/id ]] || die "$DIR is not a fleet directory (no $DIR/id)"
    K=$(<"$DIR/id")
    [[ $K =~ ^[0-9]+$ ]] && ((K >= 1 && K <= MAX_FLEETS)) || die "bad fleet id in $DIR/id: $K"
    R=$RUN_ROOT/$K
    [[ -f $R/dir && $(<"$R/dir") == "$DIR" ]] || die "fleet $K in $R does not belong to $DIR (stale or torn down)"
    N=$(<"$R/n")
}

host_index() {
    local i=$1
    [[ $i =~ ^[0-9]+$ ]] && ((i >= 1 && i <= N)) || die "no host $i in this fleet (hosts are 1..$N)"
}

ns_name() { echo "cvf${K}h$1"; }
veth_name() { echo "cv${K}h$1"; }
host_addr() { echo "$NET_PREFIX.$K.$((10 + $1))"; }

holder_pid() {
    local f=$R/h$1/holder.pid
    [[ -s $f ]] || die "host h$1 has no namespace holder (fleet half-built?)"
    local pid
    pid=$(<"$f")
    pid_in_netns "$pid" "$(ns_name "$1")" || die "holder $pid of host h$1 is gone"
    echo "$pid"
}

# Is process PID inside network namespace NS? (guards every kill against pid reuse)
pid_in_netns() {
    local pid=$1 ns=$2 a b
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    a=$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null) || return 1
    b=$(stat -L -c %i "/run/netns/$ns" 2>/dev/null) || return 1
    [[ $a == "$b" ]]
}

# Run a command inside host I: its net, mount and UTS namespaces, from /.
in_host() {
    local i=$1
    shift
    nsenter -t "$(holder_pid "$i")" -m -n -u --wd=/ -- "$@"
}

# Is PID running? A zombie counts as gone: our daemons are reparented to pid 1,
# which may reap them late.
alive() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    s=${s##*) }
    [[ ${s:0:1} != [ZX] ]]
}

# Kill processes (TERM, then KILL after 2 s); waits until they are gone.
kill_pids() {
    (($# > 0)) || return 0
    kill -TERM "$@" 2>/dev/null || true
    local t p left=("$@")
    for t in $(seq 80); do
        ((t == 41)) && { kill -KILL "${left[@]}" 2>/dev/null || true; }
        local still=()
        for p in "${left[@]}"; do alive "$p" && still+=("$p"); done
        ((${#still[@]} == 0)) && return 0
        left=("${still[@]}")
        sleep 0.05
    done
    echo "fleet.sh: warning: processes still alive after KILL: ${left[*]}" >&2
}

# ---------------------------------------------------------------- machine-wide one-time setup

# Things shared by all fleets and kept afterwards: the user `convoy` with
# passwordless sudo, mount points that may not exist on the machine, sshd's
# privilege separation dir, the blackhole route. Serialized with a lock because
# parallel `up`s would race on useradd and on iproute2's first /run/netns mount.
machine_setup() {
    mkdir -p "$RUN_ROOT"
    exec {lock}>"$RUN_ROOT/.setup.lock"
    flock "$lock"

    if ! id convoy >/dev/null 2>&1; then
        useradd --no-create-home --shell /bin/sh convoy
    fi
    # With UsePAM no, sshd refuses public-key logins to accounts whose password
    # is locked ('!', useradd's default); '*' means "no password" without locking.
    if [[ $(getent shadow convoy | cut -d: -f2) == '!'* ]]; then
        usermod -p '*' convoy
    fi
    local want='convoy ALL=(ALL) NOPASSWD:ALL'
    if [[ ! -f /etc/sudoers.d/convoy-test || $(</etc/sudoers.d/convoy-test) != "$want" ]]; then
        local tmp
        tmp=$(mktemp /etc/sudoers.d/.convoy-test.XXXXXX)
        echo "$want" >"$tmp"
        chmod 0440 "$tmp"
        visudo -c -q -f "$tmp" || {
            rm -f "$tmp"
            die "visudo rejected the sudoers snippet"
        }
        mv "$tmp" /etc/sudoers.d/convoy-test
    fi

    mkdir -p /etc/app /var/www /srv /home /etc/nginx /run/sshd
    mkdir -p /var/spool/cron # the mount point of each host's own (cron may not be installed)
    chmod 0755 /run/sshd

    # Let iproute2 create its shared /run/netns mount once, not concurrently.
    if ! mountpoint -q /run/netns; then
        ip netns add "cvf-init-$$"
        ip netns del "cvf-init-$$"
    fi

    ip route replace blackhole "$NET_PREFIX.0.0/16"

    flock -u "$lock"
    exec {lock}>&-
}

# ---------------------------------------------------------------- up

cmd_up() {
    (($# == 2)) || usage
    DIR=$1
    N=$2
    [[ $DIR == /* ]] || die "DIR must be an absolute path: $DIR"
    [[ $N =~ ^[0-9]+$ ]] && ((N >= 1 && N <= MAX_HOSTS)) || die "N must be 1..$MAX_HOSTS, got $N"
    mkdir -p "$DIR"
    [[ -z $(ls -A "$DIR") ]] || die "$DIR is not empty (a fleet needs a fresh directory)"
    DIR=$(cd "$DIR" && pwd -P)

    machine_setup
    cmd_gc

    # Reserve a fleet number: the first K whose run dir we manage to create.
    K=
    local k
    for k in $(seq 1 $MAX_FLEETS); do
        # A leftover bridge means an earlier fleet K died half-torn-down: skip it.
        [[ -e /sys/class/net/cvb$k ]] && continue
        if mkdir "$RUN_ROOT/$k" 2>/dev/null; then
            K=$k
            break
        fi
    done
    [[ -n $K ]] || die "no free fleet number (all $MAX_FLEETS in use? see $RUN_ROOT)"
    R=$RUN_ROOT/$K
    # Other fleet.sh processes read these concurrently (gc): write each
    # file whole, via a temporary name and an atomic rename.
    atomic_write "$R/dir" "$DIR"
    atomic_write "$R/n" "$N"
    if [[ -n ${CONVOY_FLEET_OWNER:-} ]]; then
        local owner
        owner=$(owner_record "$CONVOY_FLEET_OWNER") || {
            rm -rf -- "$R"
            exit 1
        }
        atomic_write "$R/owner" "$owner"
    fi
    echo "$K" >"$DIR/id"
    ln -s "$R" "$DIR/run"
    # From here on, any failure tears down whatever was built.
    trap 'rc=$?; trap - EXIT; if ((rc != 0)); then echo "fleet.sh: up failed, tearing down fleet $K" >&2; FLEET_QUIET=1 cmd_down "$DIR" || true; fi; exit $rc' EXIT

    # Keys: one client key for everything, authorized for root and convoy.
    ssh-keygen -q -t ed25519 -N '' -C "convoy-fleet-$K" -f "$DIR/id_ed25519"
    cp "$DIR/id_ed25519.pub" "$R/authorized_keys"
    chmod 0644 "$R/authorized_keys"
    ln -s "$R/authorized_keys" "$DIR/authorized_keys"

    # Network: a bridge in the root namespace, the control side's address .1.
    local br=cvb$K
    ip link add "$br" type bridge
    ip addr add "$NET_PREFIX.$K.1/24" dev "$br"
    ip link set "$br" up

    local i
    HOSTS_LINES=
    for i in $(seq 1 "$N"); do
        HOSTS_LINES+="$NET_PREFIX.$K.$((10 + i)) h$i"$'\n'
    done

    # Hosts are independent: build them in parallel (mostly process start-up
    # costs, so this roughly halves the time on 2 cores). A failing job has
    # printed why; teardown waits until all jobs are done.
    local jobs=() failed=0 j
    for i in $(seq 1 "$N"); do
        # (not `a && b`: errexit would be off inside a)
        (
            create_host "$i"
            launch_sshd "$i"
        ) &
        jobs+=($!)
    done
    for j in "${jobs[@]}"; do
        wait "$j" || failed=1
    done
    ((failed == 0)) || die "creating hosts failed (see above)"
    # sshd daemonizes before it listens: wait for every one of them.
    for i in $(seq 1 "$N"); do
        wait_sshd "$i"
    done

    write_client_files
    trap - EXIT
    log "fleet $K up: $N hosts on $NET_PREFIX.$K.0/24, state in $DIR"
}

atomic_write() {
    printf '%s\n' "$2" >"$1.tmp.$$"
    mv -f "$1.tmp.$$" "$1"
}

# "PID STARTTIME": the start time guards against the pid being reused later.
owner_record() {
    local pid=$1
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/stat ]] || die "CONVOY_FLEET_OWNER=$pid is not a running process"
    echo "$pid $(proc_starttime "$pid")"
}
proc_starttime() {
    # Field 22 of /proc/PID/stat, counted after the ")" that ends the command name.
    local s
    s=$(<"/proc/$1/stat") || return 1
    s=${s##*) }
    set -- $s
    echo "${20}"
}

create_host() {
    local i=$1
    local ns veth addr h hr fs
    ns=$(ns_name "$i")
    veth=$(veth_name "$i")
    addr=$(host_addr "$i")
    h=$DIR/h$i
    hr=$R/h$i
    fs=$h/fs
    mkdir -p "$h" "$hr" "$hr/fs"

    # Network namespace with a veth to the bridge; no default route on purpose.
    ip netns add "$ns"
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip link set "$veth" master "cvb$K" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$addr/24" dev eth0
    ip -n "$ns" link set eth0 up

    # The host's private directories.
    local m dirs=()
    for m in "${MOUNTS[@]}"; do dirs+=("$fs/${m%%:*}"); done
    for m in "${PACKAGE_OVERLAYS[@]}"; do dirs+=("$fs/${m%%:*}-upper" "$fs/${m%%:*}-work"); done
    mkdir -p "${dirs[@]}" "$fs/tmp" "$fs/root/.ssh" "$fs/home/convoy" "$fs/etc-upper" "$fs/etc-work"
    chmod 1777 "$fs/tmp"
    chmod 0700 "$fs/root" "$fs/root/.ssh"
    chown convoy: "$fs/home/convoy"
    if [[ -d /etc/nginx ]]; then
        cp -a /etc/nginx/. "$fs/etc-nginx/"
    fi
    # crontab(1) is setgid crontab and writes into crontabs/ through that
    # group only: the directory must be root:crontab 1730, as Debian's cron makes it.
    mkdir -p "$fs/var-spool-cron/crontabs"
    chmod 1730 "$fs/var-spool-cron/crontabs"
    if getent group crontab >/dev/null; then chgrp crontab "$fs/var-spool-cron/crontabs"; fi
    echo "h$i" >"$fs/etc-hostname"
    # /etc/hosts: its own name (sudo complains if it can't resolve it) and the other hosts.
    printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n127.0.1.1 h%s\n%s\n' \
        "$i" "$(grep -v " h$i\$" <<<"$HOSTS_LINES" || true)" >"$fs/etc-hosts"

    # The holder: a process that only sleeps, owning the host's mount and UTS
    # namespaces (the net namespace is kept by `ip netns`). It keeps them alive
    # while sshd is stopped. setsid + /dev/null: it must not hold the caller's
    # terminal or output pipes (a test reading our output would wait forever).
    setsid ip netns exec "$ns" unshare --mount --uts --propagation private sleep infinity \
        </dev/null >/dev/null 2>&1 &
    # Its pid: the only process in the netns, once it has become `sleep`
    # (i.e. after unshare has run).
    local pid= t
    for t in $(seq 200); do
        pid=$(ip netns pids "$ns" 2>/dev/null || true)
        pid=${pid%%$'\n'*}
        if [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == sleep ]]; then
            break
        fi
        pid=
        sleep 0.01
    done
    [[ -n $pid ]] || die "h$i: namespace holder did not start"
    echo "$pid" >"$hr/holder.pid"
    echo "$pid" >"$h/holder.pid"

    # Inside: first expose the host's fs tree at a path no host mount hides
    # ($R is under /run), then bind each directory over its place; /etc/hosts
    # and /etc/hostname are files. The mounts are private to this namespace.
    #
    # /etc: useradd, usermod, groupadd and userdel (shadow's commonio) write
    # /etc/passwd+ beside /etc/passwd and rename it over; a rename onto a
    # bind-mounted file fails with EBUSY, and the temporary and lock files
    # (/etc/passwd+, /etc/.pwd.lock, /etc/passwd-) would be shared by every
    # host. An overlay gives each host all of /etc: reads fall through to the
    # machine's /etc (sshd's host config is in the run dir anyway), writes go
    # to h<i>/fs/etc-upper. It is mounted after the machine's useradd of
    # `convoy` (machine_setup), so that user exists inside. Mounts under the
    # machine's /etc (a container's /etc/resolv.conf) do not show through
    # it; /etc/hosts and /etc/hostname are bound over it below.
    local script="set -e
mount --bind '$fs' '$hr/fs'
mount -t overlay convoy-etc -o 'lowerdir=/etc,upperdir=$hr/fs/etc-upper,workdir=$hr/fs/etc-work' /etc
echo h$i >/proc/sys/kernel/hostname"
    for m in "${MOUNTS[@]}"; do
        script+="
mount --bind '$hr/fs/${m%%:*}' '${m#*:}'"
    done
    # Package state: mounted before sshd starts, so every process of the
    # host (sshd included) sees the host's /usr from the start; until a
    # package writes there it is the machine's.
    for m in "${PACKAGE_OVERLAYS[@]}"; do
        script+="
mount -t overlay convoy-pkg -o 'lowerdir=${m#*:},upperdir=$hr/fs/${m%%:*}-upper,workdir=$hr/fs/${m%%:*}-work' '${m#*:}'"
    done
    script+="
mount --bind '$hr/fs/etc-hosts' /etc/hosts
mount --bind '$hr/fs/etc-hostname' /etc/hostname
mount --bind '$hr/fs/tmp' /tmp"
    nsenter -t "$pid" -m -n -u --wd=/ -- sh -c "$script" || die "h$i: mounting the host's directories failed"

    # sshd's files live in the run dir (visible inside the host); DIR has links.
    ssh-keygen -q -t ed25519 -N '' -C "h$i" -f "$hr/ssh_host_ed25519_key"
    cat >"$hr/sshd_config" <<EOF
# sshd for fleet $K host h$i (generated by fleet.sh)
ListenAddress $addr
Port 22
HostKey $hr/ssh_host_ed25519_key
PidFile $hr/sshd.pid
# One absolute file for every user, so root and convoy share the fleet's key.
AuthorizedKeysFile $R/authorized_keys
StrictModes yes
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
MaxSessions 10
MaxStartups 100:30:200
LogLevel ERROR
PrintMotd no
PrintLastLog no
UseDNS no
AcceptEnv none
Subsystem sftp internal-sftp
EOF
    ln -s "$hr/sshd_config" "$hr/sshd.log" "$hr/sshd.pid" "$h/"
}

# Start host I's sshd (returns once it has daemonized; see wait_sshd).
launch_sshd() {
    local i=$1 hr=$R/h$1
    rm -f "$hr/sshd.pid"
    in_host "$i" "$SSHD" -f "$hr/sshd_config" -E "$hr/sshd.log" </dev/null >/dev/null 2>>"$hr/sshd.log" ||
        die "h$i: sshd failed to start:
$(cat "$hr/sshd.log" 2>/dev/null)"
}

# Wait (at most 5 s) until host I's port 22 accepts connections from the root namespace.
wait_sshd() {
    local i=$1 addr t
    addr=$(host_addr "$i")
    for t in $(seq 50); do
        # sshd writes its pid file right after it starts listening.
        if [[ -s $R/h$i/sshd.pid ]] &&
            timeout 1 bash -c "exec 3<>/dev/tcp/$addr/22" 2>/dev/null; then
            return 0
        fi
        # No sshd left in the host: it died (e.g. could not bind), don't wait on.
        ns_has_sshd "$i" || break
        sleep 0.1
    done
    die "h$i ($addr): sshd does not answer on port 22$(ns_has_sshd "$i" && echo " after 5 s" || echo ": it exited"); sshd.log:
$(cat "$R/h$i/sshd.log" 2>/dev/null)"
}

ns_has_sshd() {
    local p
    for p in $(ip netns pids "$(ns_name "$1")" 2>/dev/null); do
        [[ $(cat "/proc/$p/comm" 2>/dev/null) == sshd ]] && alive "$p" && return 0
    done
    return 1
}

write_client_files() {
    local i
    : >"$DIR/known_hosts"
    : >"$DIR/hosts.txt"
    for i in $(seq 1 "$N"); do
        echo "$(host_addr "$i") $(cut -d' ' -f1,2 "$R/h$i/ssh_host_ed25519_key.pub")" >>"$DIR/known_hosts"
        echo "h$i $(host_addr "$i")" >>"$DIR/hosts.txt"
    done
    cat >"$DIR/ssh_config" <<EOF
# ssh client config for fleet $K (generated by fleet.sh): use with ssh -F
Host *
    User root
    IdentityFile $DIR/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $DIR/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    UpdateHostKeys no
    BatchMode yes
    LogLevel ERROR
    ConnectTimeout 5
EOF
    {
        echo "all:"
        echo "  hosts:"
        for i in $(seq 1 "$N"); do
            echo "    h$i:"
            echo "      ansible_host: $(host_addr "$i")"
        done
        echo "  vars:"
        echo "    convoy_ssh_config: \"$DIR/ssh_config\""
    } >"$DIR/inventory.yml"
}

# ---------------------------------------------------------------- down / gc

cmd_down() {
    (($# == 1)) || usage
    local dir=$1
    [[ $dir == /* ]] || die "DIR must be an absolute path: $dir"
    if [[ ! -e $dir ]]; then
        log "$dir does not exist: nothing to tear down"
        return 0
    fi
    dir=$(cd "$dir" && pwd -P)
    if [[ ! -f $dir/id ]]; then
        die "$dir has no id file: not a fleet directory, left alone"
    fi
    local k
    k=$(<"$dir/id")
    [[ $k =~ ^[0-9]+$ ]] || die "bad fleet id in $dir/id"
    if [[ -f $RUN_ROOT/$k/dir && $(<"$RUN_ROOT/$k/dir") == "$dir" ]]; then
        teardown "$k"
    else
        log "fleet $k is not registered to $dir (already torn down?): only removing $dir"
    fi
    rm -rf -- "$dir"
}

# Tear down fleet K: everything is found by its name pattern or via the run dir,
# so this works whatever stage `up` reached.
teardown() {
    local k=$1 ns veth
    # 1. Kill every process in the fleet's network namespaces: holders, sshd
    #    listeners and sessions, and whatever tests started inside (nginx...).
    #    First, while the network still exists, so peers see connections close.
    local pids=()
    for ns in $(fleet_netns "$k"); do
        pids+=($(ip netns pids "$ns" 2>/dev/null || true))
    done
    kill_pids "${pids[@]}"
    # 2. Namespaces (their veths go with them), leftover root-side veths, bridge.
    for ns in $(fleet_netns "$k"); do
        ip netns del "$ns" 2>/dev/null || true
    done
    for veth in $(ls /sys/class/net | grep -E "^cv${k}h[0-9]+\$" || true); do
        ip link del "$veth" 2>/dev/null || true
    done
    if [[ -e /sys/class/net/cvb$k ]]; then
        ip link del "cvb$k" 2>/dev/null || true
    fi
    # The kernel destroys namespaces (and so their veths) asynchronously: wait
    # until the names are free before freeing K for the next fleet.
    local t
    for t in $(seq 60); do
        grep -qE "^(cv${k}h[0-9]+|cvb$k)\$" < <(ls /sys/class/net) || break
        sleep 0.05
    done
    # 3. Free K.
    rm -rf -- "${RUN_ROOT:?}/$k"
}

fleet_netns() {
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^cvf$1h[0-9]+\$" || true
}

# Tear down fleets whose owner process is gone.
cmd_gc() {
    [[ -d $RUN_ROOT ]] || return 0
    local r k owner pid start dir
    for r in "$RUN_ROOT"/*/; do
        r=${r%/}
        k=${r##*/}
        # No owner file: a fleet without owner, or one being created.
        [[ $k =~ ^[0-9]+$ && -f $r/owner ]] || continue
        owner=$(<"$r/owner") || continue
        pid=${owner%% *}
        start=${owner#* }
        [[ $pid =~ ^[0-9]+$ && $start =~ ^[0-9]+$ ]] || continue
        if [[ -r /proc/$pid/stat && $(proc_starttime "$pid" 2>/dev/null) == "$start" ]]; then
            continue # owner alive
        fi
        dir=$(cat "$r/dir" 2>/dev/null || true)
        log "collecting fleet $k (owner $pid is gone): $dir"
        teardown "$k"
        if [[ -n $dir && -f $dir/id && $(<"$dir/id") == "$k" ]]; then
            rm -rf -- "$dir"
        fi
    done
}

# ---------------------------------------------------------------- per-host commands

cmd_stop_sshd() {
    (($# == 2)) || usage
    load_fleet "$1"
    host_index "$2"
    stop_sshd "$2"
}

stop_sshd() {
    local i=$1 hr=$R/h$1 pid
    pid=$(cat "$hr/sshd.pid" 2>/dev/null || true)
    if [[ -n $pid ]] && pid_in_netns "$pid" "$(ns_name "$i")"; then
        kill_pids "$pid"
    fi
    rm -f "$hr/sshd.pid"
}

cmd_start_sshd() {
    (($# == 2)) || usage
    load_fleet "$1"
    host_index "$2"
    local pid
    pid=$(cat "$R/h$2/sshd.pid" 2>/dev/null || true)
    if [[ -n $pid ]] && pid_in_netns "$pid" "$(ns_name "$2")"; then
        die "h$2: sshd is already running (pid $pid)"
    fi
    launch_sshd "$2"
    wait_sshd "$2"
}

cmd_kill_sessions() {
    (($# == 2)) || usage
    load_fleet "$1"
    host_index "$2"
    local listener p pids=()
    listener=$(cat "$R/h$2/sshd.pid" 2>/dev/null || true)
    for p in $(ip netns pids "$(ns_name "$2")"); do
        [[ $p != "$listener" && $(cat "/proc/$p/comm" 2>/dev/null) == sshd ]] && pids+=("$p")
    done
    kill_pids "${pids[@]}"
}

cmd_rekey() {
    (($# == 2)) || usage
    load_fleet "$1"
    host_index "$2"
    local hr=$R/h$2
    stop_sshd "$2"
    rm -f "$hr/ssh_host_ed25519_key" "$hr/ssh_host_ed25519_key.pub"
    ssh-keygen -q -t ed25519 -N '' -C "h$2" -f "$hr/ssh_host_ed25519_key"
    launch_sshd "$2"
    wait_sshd "$2"
}

cmd_link() {
    local state=$1
    shift
    (($# == 2)) || usage
    load_fleet "$1"
    host_index "$2"
    ip link set "$(veth_name "$2")" "$state"
    [[ $state == up ]] && wait_reachable "$2"
    return 0
}

# After a link comes back, the bridge port and the root side's neighbour
# entry (FAILED once its probes went unanswered) take a moment: a connection made
# at once can get "No route to host". link-up returns when a TCP connection
# to the host's port 22 is answered: accepted, or refused when its sshd is
# down, which still proves the link carries packets.
wait_reachable() {
    local addr err n
    addr=$(host_addr "$1")
    ip neigh flush to "$addr" 2>/dev/null || true
    for ((n = 0; n < 100; n++)); do
        if err=$(timeout 1 bash -c "exec 3<>/dev/tcp/$addr/22" 2>&1) || [[ $err == *refused* ]]; then
            return 0
        fi
        sleep 0.1
    done
    die "host $1 ($addr) is not reachable 10 s after its link came up: $err"
}

cmd_exec() {
    (($# >= 4)) && [[ $3 == -- ]] || usage
    load_fleet "$1"
    host_index "$2"
    local i=$2
    shift 3
    exec nsenter -t "$(holder_pid "$i")" -m -n -u --wd=/ -- "$@"
}

# ---------------------------------------------------------------- main

(($# >= 1)) || usage
cmd=$1
shift
case $cmd in
    -h | --help | help) usage ;;
esac
check_preconditions
case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    gc) cmd_gc ;;
    stop-sshd) cmd_stop_sshd "$@" ;;
    start-sshd) cmd_start_sshd "$@" ;;
    kill-sessions) cmd_kill_sessions "$@" ;;
    rekey) cmd_rekey "$@" ;;
    link-down) cmd_link down "$@" ;;
    link-up) cmd_link up "$@" ;;
    exec) cmd_exec "$@" ;;
    *) die "unknown command: $cmd (see fleet.sh --help)" ;;
esac
