//! A play's `once:` lock: one instance of the play across every machine
//! that may start it (cron on two machines). It is the deploy lock's
//! mechanism (atomic `mkdir`, holder line, `flock` guard, renewal) on one
//! lock host, under `<once dir>/<NAME>/.convoy/lock`, so its holder, its
//! take-over compare-and-swap and its renewal behave exactly like the
//! deploy lock's.
//!
//! The lock host is the first host, by name, of the `on:` pattern (or of
//! the play's own pattern, ignoring `--limit`): every run computes the same
//! one, whatever machine it starts on. A holder that stopped renewing for
//! longer than `stale_after` is taken over without asking (the point of a
//! cron-started job is that nobody is there to ask), and the take-over is
//! written to the lock's audit log.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use indexmap::IndexMap;

use super::lock_renewal::{FirstRenewal, LockRenewal, LockTiming, RenewalTarget};
use super::release_cycle::deployed_by;
use super::task_runner::ensure_connected;
use super::{HostState, Runner};
use crate::distribution::lock::{self, Acquired, Holder};
use crate::playbook::{IfHeld, OnceSpec};
use crate::report::Event;
use crate::transport::{Connection, Script, ShellScript};

/// Where the named locks live on a lock host, unless its inventory sets
/// `convoy_once_dir`.
pub const DEFAULT_ONCE_DIR: &str = "/var/lib/convoy/once";

/// What the play may do after looking at its lock.
pub enum OnceGate {
    /// Ours, renewed until released.
    Held(OnceLock),
    /// `--check`: looked at, nothing taken; the play runs (in check mode).
    Checked,
    /// Held by a live run, `if_held: skip`: the play does not run.
    Skip,
}

/// A taken `once:` lock.
pub struct OnceLock {
    name: String,
    conn: Arc<Connection>,
    root: String,
    holder: Holder,
    renewal: LockRenewal,
}

impl OnceLock {
    /// Stops renewing and releases the lock (if still ours), writing the
    /// release to the lock's audit log.
    pub async fn release(self, runner: &Runner<'_>) {
        self.renewal.stop().await;
        let audit = format!(
            "{} run={} once {}: released",
            now(),
            self.holder.run_id,
            self.name
        );
        if let Err(e) = lock::release(&self.conn, &self.root, &self.holder, &audit, None).await {
            runner.reporter.send(Event::Note {
                message: format!(
                    "once {}: could not release the lock ({e}); the next run takes it over once it has gone without renewal for its stale_after",
                    self.name
                ),
            });
        }
    }
}

/// Takes (or, in check mode, looks at) the play's `once:` lock. `Err` is a
/// refusal (exit 3): held with `if_held: fail`, or the lock host is
/// unreachable or refused.
/// `pattern` is the play's (or, for a run's lock, the first play's)
/// pattern; `on:` wins over it.
pub async fn take(
    runner: &Runner<'_>,
    pattern: &str,
    spec: &OnceSpec,
    hosts: &mut IndexMap<String, HostState>,
) -> Result<OnceGate, String> {
    let name = &spec.name;
    let pattern = spec.on.as_deref().unwrap_or(pattern);
    let mut names: Vec<String> = runner
        .inventory
        .select(pattern)
        .map(|hs| hs.into_iter().map(|h| h.name.clone()).collect())
        .unwrap_or_default();
    names.sort();
    let Some(lock_host) = names.into_iter().next() else {
        return Err(format!(
            "once {name}: the pattern `{pattern}` matches no host to hold the lock; nothing from here on was run"
        ));
    };
    let host = hosts.entry(lock_host.clone()).or_insert_with(|| {
        HostState::new(lock_host.clone(), runner.inventory.host_vars(&lock_host))
    });
    let vars = host.inventory_vars.clone();
    if !host.active()
        || !ensure_connected(runner, host, &vars, &format!("once {name}"), Instant::now()).await
    {
        return Err(format!(
            "once {name}: the lock host {lock_host} is unreachable; nothing from here on was run"
        ));
    }
    let conn = Arc::clone(host.conn.as_ref().expect("connected above"));
    let dir = match vars.get("convoy_once_dir") {
        Some(serde_json::Value::String(dir)) if !dir.is_empty() => dir.trim_end_matches('/'),
        _ => DEFAULT_ONCE_DIR,
    };
    let root = format!("{dir}/{name}");
    let on_host = |why: String| format!("once {name}: on {lock_host}: {why}");

    if runner.options.check {
        let state = inspect(&conn, &root).await.map_err(on_host)?;
        let message = match state {
            None => format!("once {name}: free on {lock_host} (--check takes nothing)"),
            Some((line, age)) => format!(
                "once {name}: {} on {lock_host} (--check takes nothing)",
                held_by(&line, age, spec.stale_after)
            ),
        };
        runner.reporter.send(Event::Note { message });
        return Ok(OnceGate::Checked);
    }

    let holder = Holder::this_process(deployed_by(), runner.options.run_id.clone());
    let mut answer = lock::acquire(&conn, &root, &holder, None, None, None).await;
    if let Ok(Ok(Acquired::Held {
        holder: line,
        age_secs,
        ..
    })) = &answer
    {
        let age = Duration::from_secs(*age_secs);
        if age > spec.stale_after {
            let last = humantime::format_rfc3339_seconds(SystemTime::now() - age);
            let what = format!(
                "once {name}: taken over from {}, last renewed {last}",
                who(line)
            );
            let audit = ShellScript::new()
                .var("A", format!("{} run={} {what}", now(), holder.run_id))
                .code(AUDIT);
            answer = lock::acquire(&conn, &root, &holder, Some(line), Some(&audit), None).await;
            if let Ok(Ok(Acquired::Taken { .. })) = &answer {
                runner.reporter.send(Event::Note { message: what });
            }
        }
    }
    match answer {
        Ok(Ok(Acquired::Taken { .. })) => {
            let renewal = LockRenewal::start(
                vec![RenewalTarget {
                    host: lock_host,
                    conn: Arc::clone(&conn),
                    root: root.clone(),
                    sudo: None,
                    releasing: Default::default(),
                }],
                holder.line(),
                renew_every(spec.stale_after),
                runner.reporter.clone(),
                format!("once {name} lock"),
                1,
                FirstRenewal::Now,
            );
            Ok(OnceGate::Held(OnceLock {
                name: name.clone(),
                conn,
                root,
                holder,
                renewal,
            }))
        }
        Ok(Ok(Acquired::Held {
            holder: line,
            age_secs,
            ..
        })) => {
            let held = format!(
                "once {name}: {}",
                held_by(&line, Duration::from_secs(age_secs), spec.stale_after)
            );
            match spec.if_held {
                IfHeld::Skip => {
                    runner.reporter.send(Event::Note {
                        message: format!("{held}; skipped"),
                    });
                    Ok(OnceGate::Skip)
                }
                IfHeld::Fail => Err(format!("{held}; nothing from here on was run")),
            }
        }
        Ok(Err(why)) => Err(on_host(format!("cannot take the lock: {why}"))),
        Err(e) => Err(on_host(format!("cannot take the lock: {e}"))),
    }
}

/// The deploy lock's renewal period, but at least three renewals per
/// `stale_after`: a short `stale_after` must not let a live holder look
/// stale between two renewals.
fn renew_every(stale_after: Duration) -> Duration {
    LockTiming::from_env().renew_every.min(stale_after / 3)
}

/// Appends `A` to the lock's audit log; runs right after a take-over, in
/// the same round trip and under the same guard. Expects `R`.
const AUDIT: &str = r#"printf '%s\n' "$A" >> "$R/.convoy/audit.log""#;

/// Expects `R`. Prints nothing for a free lock, else `holder=` and `age=`.
const INSPECT: &str = r#"L="$R/.convoy/lock"
[ -d "$L" ] || exit 0
echo "holder=$(cat "$L/holder" 2>/dev/null)"
at=$(stat -c %Y "$L" 2>/dev/null) && echo "age=$(( $(date +%s) - at ))"
true
"#;

/// The lock's holder line and age, without taking it (`--check`).
async fn inspect(conn: &Connection, root: &str) -> Result<Option<(String, Duration)>, String> {
    let script = ShellScript::new().var("R", root).code(INSPECT);
    let out = conn
        .exec(Script::new(&script))
        .await
        .map_err(|e| e.to_string())?;
    if !out.success() {
        return Err(out.stderr_str().trim().to_owned());
    }
    let text = out.stdout_str();
    let Some(line) = text.lines().find_map(|l| l.strip_prefix("holder=")) else {
        return Ok(None);
    };
    let age = text
        .lines()
        .find_map(|l| l.strip_prefix("age="))
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    Ok(Some((line.to_owned(), Duration::from_secs(age))))
}

/// "held by HOLDER since T (renewed N ago)", or that it is stale.
fn held_by(line: &str, age: Duration, stale_after: Duration) -> String {
    let since = Holder::parse(line)
        .map(|h| h.since)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "an unknown time".into());
    let renewed = humantime::format_duration(Duration::from_secs(age.as_secs()));
    let stale = if age > stale_after {
        ", stale: a run would take it over"
    } else {
        ""
    };
    format!(
        "held by {} since {since} (renewed {renewed} ago{stale})",
        who(line)
    )
}

/// The holder as a reader wants it: `user@machine (pid P, run R)`.
fn who(line: &str) -> String {
    match Holder::parse(line) {
        Some(h) => format!("{} (pid {}, run {})", h.by, h.pid, h.run_id),
        None if line.is_empty() => "an unreadable holder".into(),
        None => line.to_owned(),
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_named_with_its_start() {
        let line = "ops@cron1 pid=7 run=20261201T170000Z-ab12 since=2026-12-01T17:00:00Z";
        assert_eq!(
            held_by(line, Duration::from_secs(4), Duration::from_secs(600)),
            "held by ops@cron1 (pid 7, run 20261201T170000Z-ab12) since 2026-12-01T17:00:00Z (renewed 4s ago)"
        );
        assert!(
            held_by(line, Duration::from_secs(700), Duration::from_secs(600)).contains("stale")
        );
    }
}
