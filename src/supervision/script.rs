//! The scripts sent to a host's supervisor. Values (the supervisord config
//! path, a program name, a line count) enter only as shell variables: a
//! program called `web; rm -rf /` is one word to supervisorctl.
//!
//! Each script detects the supervisor itself (supervisorctl with the
//! configured file, else systemd when it is the running init), so one
//! round trip both finds out and answers.

use crate::transport::ShellScript;

use super::Action;

/// Picks the supervisor: `$CONVOY_SUP` becomes `supervisord` or `systemd`,
/// or the script fails saying what it looked for.
const DETECT: &str = r#"if command -v supervisorctl >/dev/null 2>&1 && [ -e "$CONF" ]; then CONVOY_SUP=supervisord
elif command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then CONVOY_SUP=systemd
elif command -v supervisorctl >/dev/null 2>&1; then echo "supervisorctl is installed but its config $CONF does not exist (set convoy_supervisor_conf)" >&2; exit 1
else echo "no supervisor found: neither supervisorctl (with $CONF) nor a running systemd" >&2; exit 1
fi
"#;

/// Prints `supervisor KIND`, then one tab-separated `program` line per
/// program: name, state, pid, seconds since it started, its cwd.
/// supervisorctl's status exits 3 when some program is not running: that
/// is an answer, not a failure.
const STATUS: &str = r#"set -f
convoy_proc() {
  convoy_up=''; convoy_cwd=''
  if [ -n "$3" ] && [ "$3" != 0 ]; then
    convoy_up=$(ps -o etimes= -p "$3" 2>/dev/null | tr -d ' ')
    convoy_cwd=$(readlink "/proc/$3/cwd" 2>/dev/null)
  fi
  printf 'program\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$convoy_up" "$convoy_cwd"
}
echo "supervisor $CONVOY_SUP"
if [ "$CONVOY_SUP" = supervisord ]; then
  convoy_out=$(supervisorctl -c "$CONF" status 2>&1)
  convoy_rc=$?
  case $convoy_rc in
    0|3) ;;
    *) printf 'supervisorctl -c %s status failed (exit %s): %s\n' "$CONF" "$convoy_rc" "$convoy_out" >&2; exit 1 ;;
  esac
  printf '%s\n' "$convoy_out" | while IFS= read -r convoy_line; do
    set -- $convoy_line
    [ $# -ge 2 ] || continue
    convoy_pid=''
    if [ "$3" = pid ]; then convoy_pid=${4%,}; fi
    convoy_proc "$1" "$2" "$convoy_pid"
  done
else
  if [ -n "$P" ]; then convoy_units=$P
  else convoy_units=$(systemctl list-units --type=service --state=running --no-legend --plain 2>/dev/null | awk '{print $1}')
  fi
  for convoy_unit in $convoy_units; do
    convoy_state=$(systemctl show -p ActiveState --value -- "$convoy_unit")/$(systemctl show -p SubState --value -- "$convoy_unit")
    [ "$(systemctl show -p LoadState --value -- "$convoy_unit")" = loaded ] || continue
    convoy_proc "$convoy_unit" "$convoy_state" "$(systemctl show -p MainPID --value -- "$convoy_unit")"
  done
fi
"#;

/// Runs `$A` (restart, stop, start) on program `$P`. supervisorctl says
/// ERROR in its output for a program that fails to spawn, whatever its
/// exit status; stopping a stopped program or starting a started one is
/// not a failure.
const ACT: &str = r#"if [ "$CONVOY_SUP" = supervisord ]; then
  convoy_out=$(supervisorctl -c "$CONF" "$A" "$P" 2>&1)
  convoy_rc=$?
  printf '%s\n' "$convoy_out"
  case "$A:$convoy_out" in
    stop:*'not running'*|start:*'already started'*) exit 0 ;;
    *ERROR*) exit 1 ;;
  esac
  exit $convoy_rc
else
  systemctl "$A" -- "$P"
fi
"#;

/// The last `$N` lines the program wrote to stdout, then (with `$F` = 1)
/// the lines it goes on writing until stdin closes (see
/// `transport/follow.rs`). supervisord is asked for the log file's path
/// through supervisorctl's own Python library (so includes, `AUTO` names
/// and `%(program_name)s` resolve as supervisord resolves them); systemd
/// keeps the lines in the journal.
const LOGS: &str = r#"if [ "$CONVOY_SUP" = supervisord ]; then
  convoy_py=$(head -n 1 "$(command -v supervisorctl)")
  convoy_py=${convoy_py#\#!}
  convoy_log=$($convoy_py -c "$CONVOY_LOGFILE" "$CONF" "$P" 2>&1) || { printf '%s\n' "$convoy_log" | tail -n 1 >&2; exit 1; }
  [ -n "$convoy_log" ] && [ "$convoy_log" != NONE ] || { echo "program $P writes no stdout log (stdout_logfile)" >&2; exit 1; }
  [ -z "$S" ] || { echo "supervisord's stdout logs carry no timestamps: --since needs systemd's journal (use -n N here)" >&2; exit 1; }
  set -- tail -n "$N"
  [ "$F" = 1 ] && set -- "$@" -F
  set -- "$@" -- "$convoy_log"
else
  set -- journalctl --no-pager -o cat -n "$N" -u "$P"
  [ -n "$S" ] && set -- "$@" --since "$S"
  [ "$F" = 1 ] && set -- "$@" -f
fi
if [ "$F" = 1 ]; then
  "$@" &
  convoy_follower=$!
  cat >/dev/null
  kill "$convoy_follower" 2>/dev/null
  exit 0
fi
exec "$@"
"#;

/// Prints a supervisord program's stdout log file: the config's path and
/// the program's name are its arguments.
const LOGFILE_PY: &str = r#"CONVOY_LOGFILE='import sys
from supervisor.options import ClientOptions
o = ClientOptions()
o.realize(["-c", sys.argv[1]])
try:
    info = o.getServerProxy().supervisor.getProcessInfo(sys.argv[2])
except Exception as e:
    sys.exit("supervisord has no program " + sys.argv[2] + ": " + getattr(e, "faultString", str(e)))
print(info["stdout_logfile"])
'
"#;

/// Everything the host's supervisor runs (one round trip).
pub fn status_script(conf: &str, program: Option<&str>) -> ShellScript {
    ShellScript::new()
        .var("CONF", conf)
        .var("P", program.unwrap_or(""))
        .code(DETECT)
        .code(STATUS)
}

/// `action` on `program`.
pub fn action_script(conf: &str, action: Action, program: &str) -> ShellScript {
    ShellScript::new()
        .var("CONF", conf)
        .var("P", program)
        .var("A", action.verb())
        .code(DETECT)
        .code(ACT)
}

/// The last `lines` lines of `program`'s output (from `since`, a
/// `journalctl --since` value, when given); with `follow`, then the new
/// ones until the script's stdin closes.
pub fn logs_script(
    conf: &str,
    program: &str,
    lines: usize,
    follow: bool,
    since: Option<&str>,
) -> ShellScript {
    ShellScript::new()
        .var("CONF", conf)
        .var("P", program)
        .var("S", since.unwrap_or(""))
        .var("N", lines.to_string())
        .flag("F", follow)
        .code(LOGFILE_PY)
        .code(DETECT)
        .code(LOGS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_program_name_stays_one_word() {
        let script = action_script("/etc/a b.conf", Action::Restart, "web; touch /tmp/pwned");
        assert!(script.text().contains("P='web; touch /tmp/pwned'\n"));
        assert!(script.text().contains("CONF='/etc/a b.conf'\n"));
    }

    #[test]
    fn without_a_supervisor_the_script_says_what_it_looked_for() {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(status_script("/nonexistent/s.conf", None).text())
            .env("PATH", "/nonexistent")
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            "no supervisor found: neither supervisorctl (with /nonexistent/s.conf) nor a running systemd"
        );
    }
}
