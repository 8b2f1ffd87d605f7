# convoy's fact gathering: one script, one round trip. It prints raw
# sections (`@@name` then the section's lines); src/facts/ derives the
# facts from them, so that the host needs only a POSIX shell and the usual
# tools, and a missing tool leaves its section empty rather than failing.
s() { printf '\n@@%s\n' "$1"; }
# The environment first, before PATH gains the sbin directories `ip` may be in.
s env; cat /proc/self/environ 2>/dev/null
PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin"
s nodename; uname -n
# Python's socket.getfqdn(), which Ansible reads: the name's address, and
# that address's host entry (canonical name, then aliases).
s fqdn
A=$(getent ahosts "$(uname -n)" 2>/dev/null | awk 'NR==1{print $1}')
[ -n "$A" ] && getent hosts "$A" 2>/dev/null | head -n 1
s system; uname -s
s kernel; uname -r
s kernel_version; uname -v
s machine; uname -m
s os_release; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
s debian_version; cat /etc/debian_version 2>/dev/null
s cpuinfo; grep -E '^(processor|physical id|cpu cores|siblings)[[:space:]]*:' /proc/cpuinfo 2>/dev/null
s meminfo; grep -E '^(MemTotal|MemFree|SwapTotal|SwapFree):' /proc/meminfo 2>/dev/null
s route; ip -4 route get 8.8.8.8 2>/dev/null
s addrs; ip -4 -o addr show 2>/dev/null
s links; ip -o link show 2>/dev/null
s pid1; cat /proc/1/comm 2>/dev/null
s init_link; readlink /sbin/init 2>/dev/null
s paths
for p in /run/systemd/system/ /dev/.run/systemd/ /dev/.systemd/ /etc/init/ /sbin/openrc /etc/init.d/ /etc/dinit.d/ \
    /usr/bin/rpm-ostree /usr/bin/yum /usr/bin/dnf /usr/bin/dnf5 /usr/bin/apt-get /usr/bin/zypper /usr/sbin/urpmi \
    /usr/bin/pacman /bin/opkg /sbin/apk /usr/bin/emerge /usr/bin/xbps-install /usr/bin/swupd; do
    [ -e "$p" ] && echo "$p"
done
s bins; command -v systemctl 2>/dev/null; command -v initctl 2>/dev/null
s user; id -un; id -u; id -g
s passwd; getent passwd "$(id -u)" 2>/dev/null
s date
N=$(date +%s.%N)
E=${N%.*}
echo "$N"
date -d "@$E" '+%Y|%m|%d|%H|%M|%S|%A|%w|%W|%Z|%z' 2>/dev/null
date -u -d "@$E" '+%Y-%m-%dT%H:%M:%S' 2>/dev/null
Y=$(date +%Y)
date -d "$Y-01-01 12:00" '+%Z|%z' 2>/dev/null
date -d "$Y-07-01 12:00" '+%Z|%z' 2>/dev/null
s end
