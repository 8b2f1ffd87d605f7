//! `wait_for`: wait until a TCP port accepts (or refuses) connections, a
//! file appears (optionally containing a pattern) or goes away, or simply
//! for `timeout` seconds, as Ansible's `wait_for` does. It never changes
//! anything, so it also runs in check mode.
//!
//! The check runs *on the managed host* (so `host: 127.0.0.1` is the host's
//! own loopback) and the whole wait is one POSIX `sh` loop, one round trip
//! however long it waits. Ports are probed with bash's `/dev/tcp` (bounded
//! by `timeout`), or `nc -z` where there is no bash. `search_regex` is
//! matched by `grep -P` (Perl syntax, the closest to Python's) or `grep -E`
//! where grep lacks `-P`, line by line.
//!
//! Not supported: `state: drained`, `exclude_hosts`,
//! `active_connection_states`.

use regex::Regex;
use serde::Deserialize;

use super::file::{last_line, lenient};
use super::{Action, ActionContext, BoxFuture, ModuleSpec, Outcome, boxed, parse_args};
use crate::transport::{Script, ShellScript, TransportError};
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "wait_for",
    args: &[
        "host",
        "port",
        "path",
        "state",
        "timeout",
        "delay",
        "sleep",
        "connect_timeout",
        "search_regex",
        "msg",
    ],
    free_form: false,
    any_name: false,
    build: |args| Ok(Box::new(WaitFor::new(parse_args(args)?)?)),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default = "localhost")]
    host: String,
    #[serde(default, deserialize_with = "lenient::opt_number")]
    port: Option<u64>,
    path: Option<String>,
    #[serde(default = "started")]
    state: String,
    #[serde(default = "three_hundred", deserialize_with = "lenient::number")]
    timeout: u64,
    #[serde(default, deserialize_with = "lenient::number")]
    delay: u64,
    #[serde(default = "one", deserialize_with = "lenient::number")]
    sleep: u64,
    #[serde(default = "five", deserialize_with = "lenient::number")]
    connect_timeout: u64,
    search_regex: Option<String>,
    msg: Option<String>,
}

fn localhost() -> String {
    "127.0.0.1".into()
}
fn started() -> String {
    "started".into()
}
fn three_hundred() -> u64 {
    300
}
fn one() -> u64 {
    1
}
fn five() -> u64 {
    5
}

/// What is waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Port {
        host: String,
        port: u16,
    },
    Path(String),
    /// Neither port nor path: just sleep `timeout` seconds.
    Nothing,
}

struct WaitFor {
    target: Target,
    /// Waiting for the target to appear (started/present) rather than go away.
    up: bool,
    state: String,
    timeout: u64,
    delay: u64,
    sleep: u64,
    connect_timeout: u64,
    search_regex: Option<String>,
    msg: Option<String>,
}

impl WaitFor {
    fn new(a: Args) -> Result<Self, String> {
        let up = match a.state.as_str() {
            "started" | "present" => true,
            "stopped" | "absent" => false,
            "drained" => return Err("state=drained is not supported by convoy".into()),
            other => {
                return Err(format!(
                    "value of state must be one of: absent, drained, present, started, stopped, got: {other}"
                ));
            }
        };
        let target = match (a.port, a.path) {
            (Some(_), Some(_)) => {
                return Err("port and path parameter can not both be passed to wait_for".into());
            }
            (Some(port), None) => {
                let port =
                    u16::try_from(port).map_err(|_| format!("port {port} is out of range"))?;
                Target::Port { host: a.host, port }
            }
            (None, Some(path)) => {
                if a.state == "stopped" {
                    return Err(
                        "state=stopped should only be used for checking a port in the wait_for module"
                            .into(),
                    );
                }
                Target::Path(path)
            }
            (None, None) => Target::Nothing,
        };
        if a.search_regex.is_some() && !up {
            return Err("search_regex is only used with state=started or state=present".into());
        }
        Ok(Self {
            target,
            up,
            state: a.state,
            timeout: a.timeout,
            delay: a.delay,
            sleep: a.sleep.max(1),
            connect_timeout: a.connect_timeout.max(1),
            search_regex: a.search_regex,
            msg: a.msg,
        })
    }

    /// The whole wait as one script. It prints `ok=<elapsed>` (and `m=<line>`
    /// for a path matched by `search_regex`), `timeout=<elapsed>`, or
    /// `e=<reason>` when the host cannot run the check at all.
    fn script(&self) -> ShellScript {
        let mut s = ShellScript::new()
            .var("TO", self.timeout.to_string())
            .var("DELAY", self.delay.to_string())
            .var("SLEEP", self.sleep.to_string())
            .var("CT", self.connect_timeout.to_string());
        if let Some(re) = &self.search_regex {
            s = s
                .var("re", re)
                .code("if printf 'x\\n' | grep -qP 'x' 2>/dev/null; then g=-P; else g=-E; fi");
        }
        let cond = match &self.target {
            Target::Nothing => "",
            Target::Path(path) => {
                s = s.path_var("p", path);
                match (&self.search_regex, self.up) {
                    (Some(_), _) => "[ -e \"$p\" ] && grep -q $g -e \"$re\" -- \"$p\" 2>/dev/null",
                    (None, true) => "[ -e \"$p\" ]",
                    (None, false) => "[ ! -e \"$p\" ]",
                }
            }
            Target::Port { host, port } => {
                // bash's /dev/tcp needs no extra tool; `timeout` bounds a connect to a dropped port.
                s = s.var("host", host).var("port", port.to_string()).code(
                    r#"to=; if command -v timeout >/dev/null 2>&1; then to="timeout $CT"; fi
if command -v bash >/dev/null 2>&1; then
  probe() { $to bash -c 'exec 3<>"/dev/tcp/$1/$2"' convoy "$host" "$port" 2>/dev/null; }
  banner() { $to bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1
    while :; do
      IFS= read -r -t "$4" l <&3; rc=$?
      if printf "%s\n" "$l" | grep -q $5 -e "$3"; then exit 0; fi
      [ "$rc" -eq 0 ] || exit 1
    done' convoy "$host" "$port" "${re:-}" "$CT" "${g:-}" 2>/dev/null; }
elif command -v nc >/dev/null 2>&1; then
  probe() { $to nc -z -w "$CT" "$host" "$port" >/dev/null 2>&1; }
  banner() { $to nc -w "$CT" "$host" "$port" </dev/null 2>/dev/null | grep -q $g -e "$re"; }
else
  echo 'e=neither bash nor nc is available on the host to test ports'; exit 0
fi
"#,
                );
                match (&self.search_regex, self.up) {
                    (Some(_), _) => "banner",
                    (None, true) => "probe",
                    (None, false) => "! probe",
                }
            }
        };
        // As in Ansible, the timeout counts from before the delay.
        s = s.code("start=$(date +%s)\nend=$((start + TO))");
        if self.delay > 0 {
            s = s.code("sleep \"$DELAY\"");
        }
        if self.target == Target::Nothing {
            return s.code("sleep \"$TO\"\necho \"ok=$(( $(date +%s) - start ))\"");
        }
        let matched = match (&self.target, &self.search_regex) {
            (Target::Path(_), Some(_)) => {
                "printf 'm=%s\\n' \"$(grep -m1 $g -e \"$re\" -- \"$p\" 2>/dev/null | head -c 4096)\"; "
            }
            _ => "",
        };
        s.code("while [ \"$(date +%s)\" -lt \"$end\" ]; do")
            .fragment("  if ")
            .fragment(cond)
            .fragment("; then echo \"ok=$(( $(date +%s) - start ))\"; ")
            .fragment(matched)
            .code("exit 0; fi")
            .code(
                r#"  sleep "$SLEEP"
done
echo "timeout=$(( $(date +%s) - start ))""#,
            )
    }

    /// Ansible's message for a wait that ran out of time.
    fn timeout_message(&self) -> String {
        if let Some(msg) = &self.msg {
            return msg.clone();
        }
        match (&self.target, &self.search_regex, self.up) {
            (Target::Port { host, port }, Some(re), _) => {
                format!("Timeout when waiting for search string {re} in {host}:{port}")
            }
            (Target::Port { host, port }, None, true) => {
                format!("Timeout when waiting for {host}:{port}")
            }
            (Target::Port { host, port }, None, false) => {
                format!("Timeout when waiting for {host}:{port} to stop.")
            }
            (Target::Path(path), Some(re), _) => {
                format!("Timeout when waiting for search string {re} in {path}")
            }
            (Target::Path(path), None, true) => format!("Timeout when waiting for file {path}"),
            (Target::Path(path), None, false) => {
                format!("Timeout when waiting for {path} to be absent.")
            }
            (Target::Nothing, ..) => "Timeout".into(),
        }
    }

    /// Reads the script's report into the outcome.
    fn outcome(&self, text: &str) -> Outcome {
        let mut elapsed = None;
        let mut timed_out = false;
        let mut matched: Option<String> = None;
        for line in text.lines() {
            match line.split_once('=') {
                Some(("e", reason)) => {
                    return Outcome::failed(format!("{}: {reason}", self.describe()))
                        .with("elapsed", 0);
                }
                Some(("ok", n)) => elapsed = n.trim().parse::<u64>().ok(),
                Some(("timeout", n)) => {
                    elapsed = n.trim().parse::<u64>().ok();
                    timed_out = true;
                }
                Some(("m", line)) => matched = Some(line.to_owned()),
                _ => {}
            }
        }
        let Some(elapsed) = elapsed else {
            return Outcome::failed(format!(
                "{}: the wait script reported nothing",
                self.describe()
            ));
        };
        if timed_out {
            return Outcome::failed(self.timeout_message()).with("elapsed", elapsed);
        }
        let (groups, named) = match (&self.search_regex, matched) {
            (Some(re), Some(line)) => match_groups(re, &line),
            _ => (vec![], serde_json::Map::new()),
        };
        let (port, path) = match &self.target {
            Target::Port { port, .. } => (Value::from(*port), Value::Null),
            Target::Path(path) => (Value::Null, Value::from(path.clone())),
            Target::Nothing => (Value::Null, Value::Null),
        };
        Outcome::ok()
            .with("elapsed", elapsed)
            .with("state", self.state.clone())
            .with("port", port)
            .with("path", path)
            .with("search_regex", self.search_regex.clone())
            .with("match_groups", groups)
            .with("match_groupdict", Value::Object(named))
    }

    fn describe(&self) -> String {
        match &self.target {
            Target::Port { host, port } => format!("{host}:{port}"),
            Target::Path(path) => path.clone(),
            Target::Nothing => "wait_for".into(),
        }
    }
}

/// Ansible's `match_groups`/`match_groupdict` for the line that matched, as
/// far as the regex crate understands the pattern (empty when it does not).
fn match_groups(re: &str, line: &str) -> (Vec<Value>, serde_json::Map<String, Value>) {
    let mut groups = vec![];
    let mut named = serde_json::Map::new();
    if let Ok(re) = Regex::new(re)
        && let Some(caps) = re.captures(line)
    {
        for i in 1..caps.len() {
            groups.push(caps.get(i).map_or(Value::Null, |m| m.as_str().into()));
        }
        for name in re.capture_names().flatten() {
            named.insert(
                name.into(),
                caps.name(name).map_or(Value::Null, |m| m.as_str().into()),
            );
        }
    }
    (groups, named)
}

impl Action for WaitFor {
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> BoxFuture<'a, Result<Outcome, TransportError>> {
        boxed(async move {
            let script = self.script();
            let out = ctx.conn.exec(Script::new(&script).sudo(ctx.sudo)).await?;
            if !out.success() {
                let reason = last_line(&out.stderr_str());
                return Ok(Outcome::failed(format!("{}: {reason}", self.describe())));
            }
            Ok(self.outcome(&out.stdout_str()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(args: Value) -> Result<WaitFor, String> {
        WaitFor::new(parse_args(args)?)
    }

    fn run_locally(w: &WaitFor) -> Outcome {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(w.script().text())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        w.outcome(&String::from_utf8_lossy(&out.stdout))
    }

    #[test]
    fn arguments() {
        let w = wait(serde_json::json!({"port": "8080"})).unwrap();
        assert_eq!(
            w.target,
            Target::Port {
                host: "127.0.0.1".into(),
                port: 8080
            }
        );
        assert_eq!(w.timeout, 300);
        assert!(w.up);
        assert!(wait(serde_json::json!({"port": 1, "path": "/x"})).is_err());
        assert!(wait(serde_json::json!({"path": "/x", "state": "stopped"})).is_err());
        assert!(wait(serde_json::json!({"port": 1, "state": "drained"})).is_err());
        assert!(wait(serde_json::json!({"port": 70000})).is_err());
        assert!(wait(serde_json::json!({"port": 1, "exclude_hosts": []})).is_err());
    }

    #[test]
    fn messages_as_ansible() {
        let w = wait(serde_json::json!({"port": 8080})).unwrap();
        let o = w.outcome("timeout=300\n");
        assert!(o.failed);
        assert_eq!(
            o.msg.as_deref(),
            Some("Timeout when waiting for 127.0.0.1:8080")
        );
        assert_eq!(o.result["elapsed"], 300);
        let w = wait(serde_json::json!({"port": 22, "host": "db", "state": "stopped"})).unwrap();
        assert_eq!(
            w.timeout_message(),
            "Timeout when waiting for db:22 to stop."
        );
        let w = wait(serde_json::json!({"path": "/x", "state": "absent", "msg": "no"})).unwrap();
        assert_eq!(w.timeout_message(), "no");
        let o = wait(serde_json::json!({"path": "/x"}))
            .unwrap()
            .outcome("ok=3\n");
        assert!(!o.failed && !o.changed);
        assert_eq!(o.result["elapsed"], 3);
        assert_eq!(o.result["path"], "/x");
    }

    #[test]
    fn groups_of_the_matching_line() {
        let w =
            wait(serde_json::json!({"path": "/x", "search_regex": "port=(?P<port>\\d+)"})).unwrap();
        let o = w.outcome("ok=0\nm=listen port=8080\n");
        assert_eq!(o.result["match_groups"], serde_json::json!(["8080"]));
        assert_eq!(
            o.result["match_groupdict"],
            serde_json::json!({"port": "8080"})
        );
    }

    #[cfg(unix)]
    #[test]
    fn waits_for_files_with_the_real_shell() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ready");
        let path = file.display().to_string();
        std::fs::write(&file, "starting\nlisten port=8080\n").unwrap();
        let found = run_locally(
            &wait(serde_json::json!({"path": path, "search_regex": "port=(\\d+)", "timeout": 5}))
                .unwrap(),
        );
        assert!(!found.failed, "{:?}", found.msg);
        assert_eq!(found.result["match_groups"], serde_json::json!(["8080"]));
        let missing = run_locally(
            &wait(serde_json::json!({"path": format!("{path}.no"), "timeout": 1})).unwrap(),
        );
        assert!(missing.failed);
        assert_eq!(
            missing.msg,
            Some(format!("Timeout when waiting for file {path}.no"))
        );
        let gone = run_locally(
            &wait(serde_json::json!({"path": format!("{path}.no"), "state": "absent"})).unwrap(),
        );
        assert!(!gone.failed);
    }

    #[cfg(unix)]
    #[test]
    fn waits_for_ports_with_the_real_shell() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = run_locally(&wait(serde_json::json!({"port": port, "timeout": 5})).unwrap());
        assert!(!up.failed, "{:?}", up.msg);
        drop(listener);
        let down = run_locally(
            &wait(serde_json::json!({"port": port, "state": "stopped", "timeout": 5})).unwrap(),
        );
        assert!(!down.failed, "{:?}", down.msg);
    }
}
