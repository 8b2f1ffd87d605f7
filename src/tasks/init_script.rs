//! ansible-core's `service` module on Linux (LinuxService) for a service
//! run by an init script: `/etc/init.d/NAME` driven through the `service`
//! command, its boot state through `update-rc.d` and the `/etc/rc?.d`
//! links. The same decisions as the module, in its order:
//!
//! - the tools: systemctl on a systemd-booted host hands over to
//!   `systemd`; upstart (`initctl` with `/etc/init/NAME.conf`), OpenRC
//!   (`rc-service`), `insserv` and `chkconfig` are refused, naming them;
//!   no init script is *Could not find the requested service NAME: host*;
//! - `enabled`: an `S??NAME` link in any runlevel is enabled; enabling
//!   runs `update-rc.d NAME defaults` first when there is no `K??NAME`
//!   link either, then `update-rc.d NAME enable|disable`;
//! - the running state from `service NAME status` (its exit code, else
//!   the words of a one-line output, as the module reads them), or from
//!   `ps auxww` lines holding `pattern`;
//! - `start`/`stop`/`reload`, and `restarted` as a stop, `sleep`, then a
//!   start, their codes merged; each run detached from the task's
//!   session (`setsid`, `/` as the directory, only the C locale in the
//!   environment, as the module's daemonized `execute_command`), so the
//!   daemon it starts holds nothing of the connection.
//!
//! In check mode only the queries run; a state change then reports
//! `changed` and *service state changed* alone, as the module exits.
//! The pattern never reaches the host: `ps` output is matched here, so the
//! script matching it cannot match itself.

use super::service::State;
use super::{ActionContext, Outcome};
use crate::transport::{ShellScript, TransportError};

pub(super) struct InitScript {
    pub name: String,
    pub state: Option<State>,
    pub enabled: Option<bool>,
    pub sleep: Option<u64>,
    pub pattern: Option<String>,
    /// `arguments`, split into words as the module's command line splits them.
    pub arguments: Vec<String>,
}

/// Where the probe's `ps` or status output starts.
const MARK: &str = "--convoy-output--";

impl InitScript {
    pub(super) async fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, TransportError> {
        let probe = ShellScript::new()
            .var("N", &self.name)
            .flag("STATUS", self.state.is_some() && self.pattern.is_none())
            .flag("PS", self.state.is_some() && self.pattern.is_some())
            .args(&self.arguments)
            .code(DETACHED_FUNCTION)
            .code(PROBE_SCRIPT);
        let out = ctx.conn.exec(ctx.script(&probe)).await?;
        let field = |key: &str| out.field(key).unwrap_or_default();
        let name = &self.name;
        match field("tool").as_str() {
            "update-rc.d" => {}
            "systemd" => {
                return super::systemd::Systemd::for_service(
                    name.clone(),
                    self.state,
                    self.enabled,
                )
                .run(ctx)
                .await;
            }
            "missing" => {
                return Ok(Outcome::failed(format!(
                    "Could not find the requested service {name}: host"
                )));
            }
            "" => {
                return Ok(Outcome::failed(format!(
                    "cannot look the service up: {}",
                    out.stderr_str().trim()
                )));
            }
            other => {
                return Ok(Outcome::failed(format!(
                    "service {name} is managed by {other}, which convoy's service module does not drive (it drives init scripts through service and update-rc.d, and systemd)"
                )));
            }
        }
        if field("service").is_empty() {
            return Ok(Outcome::failed(format!(
                "service {name} has an init script but the host has no `service` command, which convoy runs it through"
            )));
        }

        let mut changed = false;
        if let Some(want) = self.enabled {
            let enabled = field("slinks") == "1";
            if want != enabled {
                changed = true;
                if !ctx.check {
                    let script = ShellScript::new()
                        .var("N", name)
                        .flag("ENABLE", want)
                        .flag("DEFAULTS", want && field("klinks") != "1")
                        .code(ENABLE_SCRIPT);
                    let ran = ctx.conn.exec(ctx.script(&script)).await?;
                    if !ran.success() {
                        return Ok(Outcome::failed(or_stdout(
                            ran.stderr_str(),
                            ran.stdout_str(),
                        )));
                    }
                }
            }
        }

        let mut result = Outcome::changed(changed).with("name", name.clone());
        if let Some(want) = self.enabled {
            result = result.with("enabled", want);
        }
        let Some(state) = self.state else {
            return Ok(result);
        };

        let stdout = out.stdout_str();
        let output = stdout
            .split_once(&format!("{MARK}\n"))
            .map(|(_, rest)| rest)
            .unwrap_or("");
        let running = match &self.pattern {
            Some(pattern) => (field("ps_rc") == "0").then(|| {
                output
                    .split('\n')
                    .any(|l| l.contains(pattern.as_str()) && !l.contains("pattern="))
            }),
            None => running_from_status(name, field("status_rc").parse().unwrap_or(1), output),
        };
        let Some(running) = running else {
            return Ok(Outcome::failed(
                "failed determining service state, possible typo of service name?",
            ));
        };
        let action = match (state, running) {
            (State::Started, false) => Some("start"),
            (State::Reloaded, false) => Some("start"),
            (State::Stopped, true) => Some("stop"),
            (State::Reloaded, true) => Some("reload"),
            (State::Restarted, _) => Some("restart"),
            _ => None,
        };
        if let Some(action) = action {
            if ctx.check {
                return Ok(Outcome::changed(true).with_msg("service state changed"));
            }
            let script = ShellScript::new()
                .var("N", name)
                .var("ACTION", action)
                .var("SLEEP", self.sleep.unwrap_or(0).to_string())
                .args(&self.arguments)
                .code(DETACHED_FUNCTION)
                .code(CONTROL_SCRIPT);
            let ran = ctx.conn.exec(ctx.script(&script)).await?;
            let stdout = ran.stdout_str();
            let (rc, out) = match stdout.split_once('\n') {
                Some((first, rest)) => (first.strip_prefix("rc=").map(str::to_owned), rest),
                None => (None, ""),
            };
            let err = ran.stderr_str();
            match rc.and_then(|rc| rc.parse::<i64>().ok()) {
                None => {
                    return Ok(Outcome::failed(format!(
                        "cannot run the service's {action}: {}",
                        err.trim()
                    )));
                }
                // upstart confusion the module lets pass.
                Some(rc) if rc != 0 && !err.contains("Job is already running") => {
                    return Ok(Outcome::failed(or_stdout(err, out.to_owned())));
                }
                Some(_) => {}
            }
            result.changed = true;
        }
        let shown = match state {
            State::Stopped => "stopped",
            _ => "started",
        };
        Ok(result.with("state", shown))
    }
}

/// The module's `fail_json(msg=err)` when there is stderr, else stdout.
fn or_stdout(err: String, out: String) -> String {
    if err.is_empty() { out } else { err }
}

/// Whether `service NAME status` says the service runs, as LinuxService's
/// get_service_status reads it: LSB's "not running" codes first, then the
/// words of an output of one line (the name taken out), then a zero code.
pub(super) fn running_from_status(name: &str, rc: i64, stdout: &str) -> Option<bool> {
    if [1, 2, 3, 4, 69].contains(&rc) {
        return Some(false);
    }
    if stdout.matches('\n').count() <= 1 {
        let clean = stdout.to_lowercase().replace(&name.to_lowercase(), "");
        let words = if clean.contains("stop") {
            Some(false)
        } else if clean.contains("run") {
            Some(!clean.contains("not "))
        } else if clean.contains("start") && !clean.contains("not ") {
            Some(true)
        } else if [
            "could not access pid file",
            "is dead and pid file exists",
            "dead but subsys locked",
            "dead but pid file exists",
        ]
        .iter()
        .any(|w| clean.contains(w))
        {
            Some(false)
        } else {
            None
        };
        if words.is_some() {
            return words;
        }
    }
    if rc == 0 {
        return Some(true);
    }
    (name == "iptables" && stdout.contains("ACCEPT")).then_some(true)
}

/// `convoy_detached CMD...`: CMD in a session of its own, from `/`, with
/// the C locale alone for environment and nothing of the task's stdio
/// (the module's daemonized execute_command); prints `rc=N` then CMD's
/// stdout, and passes its stderr on.
const DETACHED_FUNCTION: &str = r#"convoy_detached() {
  convoy_t=$(mktemp -d) || return 1
  (cd / && exec setsid -w env -i LANG=C LC_ALL=C LC_MESSAGES=C "$@") >"$convoy_t/o" 2>"$convoy_t/e" </dev/null
  convoy_rc=$?
  echo "rc=$convoy_rc"
  cat "$convoy_t/o"
  cat "$convoy_t/e" >&2
  rm -rf "$convoy_t"
  return 0
}
"#;

/// The module's get_service_tools, then the boot state (`slinks`,
/// `klinks`), then the status (or `ps auxww`) after the mark.
const PROBE_SCRIPT: &str = r#"P=$PATH:/sbin:/usr/sbin:/bin:/usr/bin
bin() { PATH=$P command -v "$1" 2>/dev/null; }
SVC=$(bin service)
echo "service=$SVC"
systemd=0
if [ -n "$(bin systemctl)" ]; then
  for c in /run/systemd/system/ /dev/.run/systemd/ /dev/.systemd/; do [ -e "$c" ] && systemd=1; done
  [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && systemd=1
fi
if [ "$systemd" = 1 ]; then echo "tool=systemd"; exit 0
elif [ -n "$(bin initctl)" ] && [ -e "/etc/init/$N.conf" ]; then echo "tool=upstart"; exit 0
elif [ -n "$(bin rc-service)" ]; then echo "tool=OpenRC"; exit 0
elif [ ! -f "/etc/init.d/$N" ]; then echo "tool=missing"; exit 0
elif [ -n "$(bin update-rc.d)" ]; then echo "tool=update-rc.d"
elif [ -n "$(bin insserv)" ]; then echo "tool=insserv"; exit 0
elif [ -n "$(bin chkconfig)" ]; then echo "tool=chkconfig"; exit 0
else echo "tool=missing"; exit 0
fi
links() { for l in /etc/rc?.d/$1??"$N"; do if [ -e "$l" ] || [ -L "$l" ]; then echo 1; return; fi; done; echo 0; }
echo "slinks=$(links S)"
echo "klinks=$(links K)"
if [ "$STATUS" = 1 ] && [ -n "$SVC" ]; then
  out=$(convoy_detached "$SVC" "$N" status "$@" 2>/dev/null)
  echo "status_rc=$(printf '%s\n' "$out" | sed -n '1s/^rc=//p')"
  echo "--convoy-output--"
  printf '%s\n' "$out" | sed 1d
elif [ "$PS" = 1 ]; then
  out=$(LANG=C LC_ALL=C ps auxww)
  echo "ps_rc=$?"
  echo "--convoy-output--"
  printf '%s\n' "$out"
fi
"#;

/// `update-rc.d NAME defaults` when asked, then `enable`/`disable`; the
/// first failure ends it with its output.
const ENABLE_SCRIPT: &str = r#"PATH=$PATH:/sbin:/usr/sbin:/bin:/usr/bin
export LANG=C LC_ALL=C LC_MESSAGES=C
if [ "$DEFAULTS" = 1 ]; then update-rc.d "$N" defaults || exit; fi
if [ "$ENABLE" = 1 ]; then update-rc.d "$N" enable; else update-rc.d "$N" disable; fi
"#;

/// `service NAME ACTION ARGS`, detached; `restart` is a stop, `SLEEP`
/// seconds, a start, merged as the module merges them (the start's alone
/// when only the stop failed, else both codes summed, both outputs).
const CONTROL_SCRIPT: &str = r#"P=$PATH:/sbin:/usr/sbin:/bin:/usr/bin
SVC=$(PATH=$P command -v service)
code() { sed -n '1s/^rc=//p' "$1"; }
if [ "$ACTION" != restart ]; then
  convoy_detached "$SVC" "$N" "$ACTION" "$@"
  exit 0
fi
T=$(mktemp -d) || exit 1
convoy_detached "$SVC" "$N" stop "$@" >"$T/o1" 2>"$T/e1"
[ "$SLEEP" -gt 0 ] && sleep "$SLEEP"
convoy_detached "$SVC" "$N" start "$@" >"$T/o2" 2>"$T/e2"
rc1=$(code "$T/o1"); rc2=$(code "$T/o2")
if [ "$rc1" != 0 ] && [ "$rc2" = 0 ]; then
  echo "rc=0"; sed 1d "$T/o2"; cat "$T/e2" >&2
else
  echo "rc=$((rc1 + rc2))"; sed 1d "$T/o1"; sed 1d "$T/o2"; cat "$T/e1" "$T/e2" >&2
fi
rm -rf "$T"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_read_as_the_module_reads_it() {
        let r = |rc, out: &str| running_from_status("cvd", rc, out);
        assert_eq!(r(3, "cvd is running\n"), Some(false), "LSB code first");
        assert_eq!(r(0, "cvd is running\n"), Some(true));
        assert_eq!(r(0, "cvd is not running\n"), Some(false));
        assert_eq!(r(0, "stopped\n"), Some(false));
        assert_eq!(r(0, "all good\n"), Some(true), "zero code");
        assert_eq!(r(5, "all good\n"), None);
        assert_eq!(r(5, "a\nb\nstopped\n"), None, "words of one line only");
        assert_eq!(r(5, "started\n"), Some(true));
        assert_eq!(r(5, "is dead and pid file exists\n"), Some(false));
        // The name is taken out first: a service called `runner` is not "run".
        assert_eq!(running_from_status("runner", 5, "runner ?\n"), None);
    }
}
