# The apt module's script (see apt.rs): ansible-core's modules/apt.py
# main(), step for step, with dpkg-query and apt-cache where it asks
# python-apt. Takes its values as variables (set before this code) and
# the package specs, one per line, in SPECS. Prints `key=value` lines,
# then sections `@@convoy:stdout`, `@@convoy:stderr`, `@@convoy:msg`.
PATH=$PATH:/usr/sbin:/sbin
# Lists are split on newlines only, and never globbed: a name pattern
# (`convoy-*`) is matched by this script, not by the shell against files.
set -f
NL='
'
IFS=$NL
L=C
for p in C.utf8 C.UTF-8 en_US.utf8 en_US.UTF-8 C POSIX; do
  if locale -a 2>/dev/null | grep -qxF "$p"; then L=$p; break; fi
done
export DEBIAN_FRONTEND=noninteractive DEBIAN_PRIORITY=critical
export LANG=$L LC_ALL=$L LC_MESSAGES=$L LC_CTYPE=$L LANGUAGE=$L
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
: >"$T/out"; : >"$T/err"
APT_GET=$(command -v apt-get) || { echo "kind=fail"; printf '@@convoy:msg\n%s\n' "apt-get not found on the host (not a Debian system?)"; exit 0; }

convoy_end() {
  printf '@@convoy:stdout\n'; cat "$T/out"
  printf '\n@@convoy:stderr\n'; cat "$T/err"
  printf '\n@@convoy:msg\n%s\n' "$1"
  exit 0
}
convoy_fail() { echo "kind=fail"; convoy_end "$1"; }

# The command line as ansible-core shows it in its messages.
DPKG_SHOWN=
DPKG_ARGS=
IFS_SAVED=$IFS; IFS=,
for o in $DPKG_OPTIONS; do
  DPKG_SHOWN="${DPKG_SHOWN:+$DPKG_SHOWN }-o \"Dpkg::Options::=--$o\""
  DPKG_ARGS="$DPKG_ARGS${DPKG_ARGS:+$NL}--$o"
done
IFS=$IFS_SAVED

CHECK_ARG=; [ "$CHECK" = 1 ] && CHECK_ARG=--simulate
FORCE_YES=; [ "$FORCE" = 1 ] && FORCE_YES=--force-yes
LOCK_OPT="DPkg::Lock::Timeout=$LOCK_TIMEOUT"

# policy_rc_d: /usr/sbin/policy-rc.d exits with it while apt runs.
convoy_policy_on() {
  [ -n "$POLICY_RC_D" ] || return 0
  if [ -e /usr/sbin/policy-rc.d ]; then mv /usr/sbin/policy-rc.d "$T/policy-rc.d"; fi
  printf '#!/bin/sh\nexit %s\n' "$POLICY_RC_D" >/usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d
}
convoy_policy_off() {
  [ -n "$POLICY_RC_D" ] || return 0
  if [ -e "$T/policy-rc.d" ]; then mv "$T/policy-rc.d" /usr/sbin/policy-rc.d; else rm -f /usr/sbin/policy-rc.d; fi
}
# Runs "$@" (an apt-get or dpkg command line) with its output kept.
convoy_run() {
  convoy_policy_on
  "$@" >>"$T/out" 2>>"$T/err"
  rc=$?
  convoy_policy_off
  return $rc
}

# ---------------------------------------------------------------- cache

convoy_cache_mtime() {
  if [ -e /var/lib/apt/periodic/update-success-stamp ]; then stat -c %Y /var/lib/apt/periodic/update-success-stamp
  elif [ -e /var/lib/apt/lists ]; then stat -c %Y /var/lib/apt/lists
  else echo 0; fi
}

# The version table of `apt-cache policy NAME`: "VERSION" per line.
convoy_versions() {
  apt-cache $DEFREL_OPT policy "$1" 2>/dev/null | awk '/^  Version table:/ { t = 1; next } t && /^ (\*\*\*|   ) [^ ]+ -?[0-9]+$/ { print $(NF - 1) }'
}
convoy_candidate() {
  apt-cache $DEFREL_OPT policy "$1" 2>/dev/null | awk '/^  Candidate:/ { print $2; exit }'
}
DEFREL_OPT=
[ -n "$DEFAULT_RELEASE" ] && DEFREL_OPT="-oAPT::Default-Release=$DEFAULT_RELEASE"

# package_status(): sets known, installed, inst_ver, version_ok, installable, has_files.
convoy_status() {
  name=$1 cmp=$2 want=$3 state=$4
  known=0 installed=0 inst_ver= version_ok=0 installable= has_files=0
  vers=$(convoy_versions "$name")
  if [ -z "$vers" ]; then
    if [ "$state" = install ]; then
      if apt-cache showpkg "$name" 2>/dev/null | awk '/^Reverse Provides:/ { r = 1; next } r && NF { found = 1 } END { exit !found }'; then
        installable=virtual
        return 0
      fi
      convoy_fail "No package matching '$name' is available"
    fi
    return 0
  fi
  known=1
  for f in "/var/lib/dpkg/info/$name.list" /var/lib/dpkg/info/"$name":*.list; do
    [ -e "$f" ] && has_files=1
  done
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$name" 2>/dev/null)" = installed ] && installed=1
  if [ "$cmp" = "=" ]; then
    # An exact version is pinned at 1001: the highest version matching it.
    best=
    for v in $vers; do
      case $v in $want) ;; *) continue ;; esac
      if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
    done
  else
    best=$(convoy_candidate "$name")
    [ "$best" = "(none)" ] && best=
  fi
  if [ "$installed" = 1 ]; then
    inst_ver=$(dpkg-query -W -f='${Version}' "$name")
    case $cmp in
      "=")
        case $inst_ver in $want) version_ok=1 ;; esac
        if [ -n "$best" ] && [ "$inst_ver" != "$best" ]; then installable=$best; fi ;;
      ">=")
        dpkg --compare-versions "$inst_ver" ge "$want" && version_ok=1
        if [ -n "$best" ] && [ "$inst_ver" != "$best" ] && dpkg --compare-versions "$best" ge "$want"; then installable=$best; fi ;;
      *)
        version_ok=1
        if [ -n "$best" ] && [ "$inst_ver" != "$best" ]; then installable=$best; fi ;;
    esac
  else
    installable=$best
  fi
}

# package_split(): sets name, cmp, want.
convoy_split() {
  case $1 in
    *=*)
      first=${1%%=*} want=${1#*=}
      case $first in
        *">") name=${first%>} cmp=">=" ;;
        *) name=$first cmp="=" ;;
      esac ;;
    *) name=$1 cmp= want= ;;
  esac
}

# expand_pkgspec_from_fnmatches(): SPECS with name patterns replaced by
# the packages they match (their versions dropped, as ansible-core does).
convoy_expand() {
  printf '%s\n' "$SPECS" | while IFS= read -r spec; do
    [ -n "$spec" ] || continue
    convoy_split "$spec"
    case $name in
      *[*?!]* | *"["* | *"]"*)
        matches=$(apt-cache pkgnames 2>/dev/null | sort | while IFS= read -r n; do
          case $name in *:*) ;; *) case $n in *:*) continue ;; esac ;; esac
          case $n in $name) printf '%s\n' "$n" ;; esac
        done)
        if [ -z "$matches" ]; then echo "@@nomatch $name"; else printf '%s\n' "$matches"; fi ;;
      *) printf '%s\n' "$spec" ;;
    esac
  done
}

convoy_update_cache() {
  before=$(convoy_cache_mtime)
  cache_time=$before
  cache_updated=0
  now=$(date +%s)
  # ansible-core compares the times to the microsecond: with no
  # cache_valid_time the cache is always older than now.
  [ "$VALID" != 0 ] && [ "$((before + VALID))" -ge "$now" ] && return 0
  if [ "$CHECK" = 0 ]; then
    n=0 err=
    while :; do
      if apt-get update -q >"$T/update.out" 2>"$T/update.err"; then break; fi
      err=$(cat "$T/update.err")
      n=$((n + 1))
      if [ "$n" -ge "$RETRIES" ]; then
        convoy_fail "Failed to update apt cache after $RETRIES retries: ${err:-unknown reason}"
      fi
      delay=$((1 << (n - 1)))
      [ "$delay" -gt "$MAX_DELAY" ] && delay=$MAX_DELAY
      sleep "$delay"
    done
  fi
  after=$(convoy_cache_mtime)
  if [ "$CHECK" = 1 ] || [ "$after" != "$before" ]; then cache_updated=1; fi
  cache_time=$after
}

# ---------------------------------------------------------------- main

if [ "$CLEAN" = 1 ]; then
  if ! apt-get clean >>"$T/out" 2>>"$T/err"; then
    echo "rc=1"; convoy_fail "apt-get clean failed"
  fi
  [ -s "$T/err" ] && { echo "rc=0"; convoy_fail "apt-get clean failed: $(cat "$T/err")"; }
  if [ -z "$SPECS" ] && [ -z "$UPGRADE" ] && [ -z "$DEB" ]; then
    echo "kind=clean"; convoy_end ""
  fi
fi

cache_updated=0
cache_time=$(convoy_cache_mtime)
if [ "$UPDATE" = 1 ] || [ "$VALID" != 0 ]; then
  convoy_update_cache
  echo "cache_updated=$cache_updated"
  echo "cache_update_time=$cache_time"
  if [ -z "$SPECS" ] && [ -z "$UPGRADE" ] && [ -z "$DEB" ]; then
    echo "kind=cache"; convoy_end ""
  fi
fi
echo "cache_updated=$cache_updated"
echo "cache_update_time=$cache_time"

# upgrade(): apt-get's upgrade or dist-upgrade (convoy does not drive aptitude).
convoy_upgrade() {
  mode=$1
  if [ "$mode" = dist ] || [ "$mode" = full ]; then op=dist-upgrade; shown="dist-upgrade"; else op=upgrade; shown="upgrade --with-new-pkgs"; fi
  [ "$AUTOREMOVE" = 1 ] && shown="$shown --auto-remove"
  set -- "$APT_GET" -y -o "$LOCK_OPT"
  for o in $DPKG_ARGS; do set -- "$@" -o "Dpkg::Options::=$o"; done
  [ -n "$FORCE_YES" ] && set -- "$@" --force-yes
  [ "$FAIL_ON_AUTOREMOVE" = 1 ] && set -- "$@" --no-remove
  [ "$ALLOW_UNAUTH" = 1 ] && set -- "$@" --allow-unauthenticated
  [ "$ALLOW_DOWNGRADE" = 1 ] && set -- "$@" --allow-downgrades
  [ "$CHECK" = 1 ] && set -- "$@" --simulate
  set -- "$@" "$op"
  [ "$op" = upgrade ] && set -- "$@" --with-new-pkgs
  [ "$AUTOREMOVE" = 1 ] && set -- "$@" --auto-remove
  [ -n "$DEFAULT_RELEASE" ] && set -- "$@" -t "$DEFAULT_RELEASE"
  if ! convoy_run "$@"; then
    echo "rc=$rc"; convoy_fail "'apt-get $shown' failed: $(cat "$T/err")"
  fi
  echo "kind=upgrade"
  if grep -q '^0 upgraded, 0 newly installed, 0 to remove' "$T/out"; then echo "changed=0"; else echo "changed=1"; fi
  convoy_end "$(cat "$T/out")"
}
if [ -n "$UPGRADE" ]; then convoy_upgrade "$UPGRADE"; fi

# install_deb(): each .deb not installed at its version, its missing
# dependencies through apt first, then `dpkg -i`.
if [ -n "$DEB" ]; then
  debs=
  deps=
  IFS=,
  for f in $DEB; do
    IFS=$IFS_SAVED
    pkg=$(dpkg --field "$f" Package 2>>"$T/err") || convoy_fail "dpkg --field $f Package failed"
    ver=$(dpkg --field "$f" Version 2>>"$T/err") || convoy_fail "dpkg --field $f Version failed"
    cur=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$pkg" 2>/dev/null)
    if [ "${cur%% *}" = installed ] && dpkg --compare-versions "$ver" eq "${cur#* }"; then continue; fi
    if [ "${cur%% *}" = installed ] && dpkg --compare-versions "$ver" lt "${cur#* }" && [ "$FORCE" = 0 ] && [ "$ALLOW_DOWNGRADE" = 0 ]; then
      convoy_fail "A later version is already installed"
    fi
    # Depends and Pre-Depends: a group none of whose alternatives is
    # installed needs its first alternative that apt can install.
    for group in $(dpkg --field "$f" Pre-Depends Depends | sed -n 's/^[A-Za-z-]*: //p' | tr ',' '\n' | sed 's/([^)]*)//g; s/[[:space:]]//g'); do
      ok=0 first=
      IFS='|'
      for alt in $group; do
        alt=${alt%%:*}
        [ -n "$first" ] || first=$alt
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$alt" 2>/dev/null)" = installed ] && ok=1
      done
      IFS=$IFS_SAVED
      if [ "$ok" = 0 ]; then
        [ -n "$(convoy_versions "$first")" ] || convoy_fail "Dependency is not satisfiable: $first"
        deps="$deps${deps:+$NL}$first"
      fi
    done
    if [ "$INSTALL_RECOMMENDS" = yes ]; then
      for r in $(dpkg --field "$f" Recommends | tr ',' '\n' | sed 's/([^)]*)//g; s/[[:space:]]//g; s/|.*//'); do deps="$deps${deps:+$NL}$r"; done
    fi
    debs="$debs${debs:+$NL}$f"
    IFS=,
  done
  IFS=$IFS_SAVED
  changed=0
  if [ -n "$deps" ]; then
    set -- "$APT_GET" -y -o "$LOCK_OPT"
    for o in $DPKG_ARGS; do set -- "$@" -o "Dpkg::Options::=$o"; done
    [ "$FAIL_ON_AUTOREMOVE" = 1 ] && set -- "$@" --no-remove
    [ "$CHECK" = 1 ] && set -- "$@" --simulate
    set -- "$@" install $deps
    case $INSTALL_RECOMMENDS in no) set -- "$@" -o APT::Install-Recommends=no ;; yes) set -- "$@" -o APT::Install-Recommends=yes ;; esac
    [ "$ALLOW_UNAUTH" = 1 ] && set -- "$@" --allow-unauthenticated
    [ "$ALLOW_DOWNGRADE" = 1 ] && set -- "$@" --allow-downgrades
    [ "$ALLOW_HELD" = 1 ] && set -- "$@" --allow-change-held-packages
    convoy_run "$@" || { echo "rc=$rc"; convoy_fail "'apt-get install' failed: $(cat "$T/err")"; }
    changed=1
    if [ "$CHECK" = 0 ]; then apt-mark manual $deps >/dev/null 2>>"$T/err"; fi
  fi
  if [ -n "$debs" ]; then
    set -- dpkg
    for o in $DPKG_ARGS; do set -- "$@" "$o"; done
    [ "$CHECK" = 1 ] && set -- "$@" --simulate
    [ "$FORCE" = 1 ] && set -- "$@" --force-all
    set -- "$@" -i $debs
    convoy_run "$@" || convoy_fail "dpkg -i failed"
    changed=1
  fi
  echo "kind=deb"; echo "changed=$changed"; convoy_end ""
fi

SPECS=$(convoy_expand)
nomatch=$(printf '%s\n' "$SPECS" | sed -n 's/^@@nomatch //p' | head -n 1)
[ -n "$nomatch" ] && convoy_fail "No package(s) matching '$nomatch' available"

if [ -z "$SPECS" ]; then
  for op in autoclean autoremove; do
    if [ "$op" = autoclean ] && [ "$AUTOCLEAN" = 0 ]; then continue; fi
    if [ "$op" = autoremove ] && [ "$AUTOREMOVE" = 0 ]; then continue; fi
    set -- "$APT_GET" -y -o "$LOCK_OPT"
    for o in $DPKG_ARGS; do set -- "$@" -o "Dpkg::Options::=$o"; done
    [ "$PURGE" = 1 ] && set -- "$@" --purge
    [ -n "$FORCE_YES" ] && set -- "$@" --force-yes
    set -- "$@" "$op"
    [ "$CHECK" = 1 ] && set -- "$@" --simulate
    convoy_run "$@" || { echo "rc=$rc"; convoy_fail "'apt-get $op' failed: $(cat "$T/err")"; }
    if [ "$op" = autoclean ]; then mark='Del '; else mark='The following packages will be REMOVED'; fi
    echo "kind=cleanup"
    if grep -qF "$mark" "$T/out"; then echo "changed=1"; else echo "changed=0"; fi
    convoy_end ""
  done
fi

if [ "$STATE" = absent ]; then
  list=
  shown=
  for spec in $SPECS; do
    convoy_split "$spec"
    convoy_status "$name" "$cmp" "$want" remove
    if [ "$version_ok" = 1 ] || { [ "$has_files" = 1 ] && [ "$PURGE" = 1 ]; }; then
      list="$list${list:+$NL}$spec"
      shown="${shown:+$shown }'$spec'"
    fi
  done
  echo "kind=remove"
  [ -n "$list" ] || { echo "changed=0"; convoy_end ""; }
  set -- "$APT_GET" -q -y -o "$LOCK_OPT"
  for o in $DPKG_ARGS; do set -- "$@" -o "Dpkg::Options::=$o"; done
  [ "$PURGE" = 1 ] && set -- "$@" --purge
  [ -n "$FORCE_YES" ] && set -- "$@" --force-yes
  [ "$AUTOREMOVE" = 1 ] && set -- "$@" --auto-remove
  [ "$CHECK" = 1 ] && set -- "$@" --simulate
  [ "$ALLOW_HELD" = 1 ] && set -- "$@" --allow-change-held-packages
  set -- "$@" remove $list
  convoy_run "$@" || { echo "rc=$rc"; convoy_fail "'apt-get remove $shown' failed: $(cat "$T/err")"; }
  echo "changed=1"
  convoy_end ""
fi

# install(): what is missing (or, for latest, older than the candidate).
list=
shown=
names=
for spec in $SPECS; do
  convoy_split "$spec"
  names="$names${names:+$NL}$name"
  convoy_status "$name" "$cmp" "$want" install
  [ "$installed" = 0 ] && [ "$ONLY_UPGRADE" = 1 ] && continue
  if [ "$version_ok" = 0 ] && [ -z "$installable" ]; then
    convoy_fail "no available installation candidate for $spec"
  fi
  add=
  if [ -n "$installable" ] && { [ "$installed" = 0 ] || [ "$STATE" = latest ] || [ "$version_ok" = 0 ]; }; then
    if [ "$installable" != virtual ]; then add="$name=$installable"
    elif [ -n "$want" ]; then add="$name=$want"
    else add=$name; fi
  elif [ "$version_ok" = 1 ] && [ -n "$installable" ] && [ "$cmp" = "=" ]; then
    add="$name=$want"
  fi
  if [ -n "$add" ]; then
    list="$list${list:+$NL}$add"
    shown="${shown:+$shown }'$add'"
  fi
done
echo "kind=install"
status=0
if [ -n "$list" ]; then
  set -- "$APT_GET" -y -o "$LOCK_OPT"
  for o in $DPKG_ARGS; do set -- "$@" -o "Dpkg::Options::=$o"; done
  [ "$ONLY_UPGRADE" = 1 ] && set -- "$@" --only-upgrade
  [ -n "$FORCE_YES" ] && set -- "$@" --force-yes
  [ "$AUTOREMOVE" = 1 ] && set -- "$@" --auto-remove
  [ "$FAIL_ON_AUTOREMOVE" = 1 ] && set -- "$@" --no-remove
  [ "$CHECK" = 1 ] && set -- "$@" --simulate
  set -- "$@" install $list
  [ -n "$DEFAULT_RELEASE" ] && set -- "$@" -t "$DEFAULT_RELEASE"
  case $INSTALL_RECOMMENDS in no) set -- "$@" -o APT::Install-Recommends=no ;; yes) set -- "$@" -o APT::Install-Recommends=yes ;; esac
  [ "$ALLOW_UNAUTH" = 1 ] && set -- "$@" --allow-unauthenticated
  [ "$ALLOW_DOWNGRADE" = 1 ] && set -- "$@" --allow-downgrades
  [ "$ALLOW_HELD" = 1 ] && set -- "$@" --allow-change-held-packages
  convoy_run "$@" || status=$rc
  echo "changed=1"
else
  echo "changed=0"
fi
if [ "$CHECK" = 0 ] && [ -n "$names" ]; then
  # mark_installed_manually(): as asked, even when already installed.
  if ! apt-mark manual $names >"$T/mark.out" 2>"$T/mark.err"; then
    echo "rc=1"; convoy_fail "'$(command -v apt-mark) manual $(printf '%s\n' "$names" | paste -sd ' ' -)' failed: $(cat "$T/mark.err")"
  fi
fi
if [ "$status" != 0 ]; then
  echo "rc=$status"
  options=
  [ "$ONLY_UPGRADE" = 1 ] && options="$options --only-upgrade"
  convoy_fail "'$APT_GET -y $DPKG_SHOWN install $shown' failed: $(cat "$T/err")"
fi
convoy_end ""
