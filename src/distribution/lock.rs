//! The deploy lock: one run at a time per application, held on every
//! targeted host as `<root>/.convoy/lock/` (made by `mkdir`, which is
//! atomic) with a `holder` line naming who holds it.

use crate::transport::{Become, Connection, Script, ShellScript, TransportError, quote};

/// Who holds a lock: written into it, shown to whoever is refused.
#[derive(Debug, Clone)]
pub struct Holder {
    pub by: String,
    pub pid: u32,
    pub run_id: String,
    pub since: String,
}

impl Holder {
    pub fn line(&self) -> String {
        format!(
            "{} pid={} run={} since={}",
            self.by, self.pid, self.run_id, self.since
        )
    }

    /// Parses a holder line back (for stale-lock checks).
    pub fn parse(line: &str) -> Option<Holder> {
        let mut words = line.split_whitespace();
        let by = words.next()?.to_owned();
        let mut holder = Holder {
            by,
            pid: 0,
            run_id: String::new(),
            since: String::new(),
        };
        for w in words {
            match w.split_once('=') {
                Some(("pid", v)) => holder.pid = v.parse().ok()?,
                Some(("run", v)) => holder.run_id = v.to_owned(),
                Some(("since", v)) => holder.since = v.to_owned(),
                _ => {}
            }
        }
        Some(holder)
    }
}

/// The answer of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// Ours now; with what the script given to follow it printed.
    Taken { then: String },
    /// Held by someone else: their holder line and the lock's age in seconds.
    Held { holder: String, age_secs: u64 },
}

/// Takes the lock, or says who holds it. With `replace`, a lock whose
/// holder line is exactly `replace` is taken over (compare and swap, so a
/// lock renewed meanwhile is not stolen). `then` runs (in a subshell) once
/// the lock is ours, in the same round trip: what the run asks next.
pub async fn acquire(
    conn: &Connection,
    root: &str,
    holder: &Holder,
    replace: Option<&str>,
    then: Option<&str>,
    sudo: Option<&Become>,
) -> Result<Result<Acquired, String>, TransportError> {
    let take_over = replace
        .map(|old| {
            format!(
                "if [ \"$(cat \"$L/holder\" 2>/dev/null)\" = {} ]; then rm -rf \"$L\"; fi\n",
                quote(old)
            )
        })
        .unwrap_or_default();
    let script = format!(
        "R={root}; L=\"$R/.convoy/lock\"\n\
         mkdir -p \"$R/.convoy\" || {{ echo \"cannot create $R/.convoy\" >&2; exit 3; }}\n\
         {take_over}\
         if mkdir \"$L\" 2>/dev/null; then printf '%s\\n' {line} > \"$L/holder\" && echo taken=1 && ( {then}\n); exit 0; fi\n\
         echo \"holder=$(cat \"$L/holder\" 2>/dev/null)\"\n\
         echo \"age=$(( $(date +%s) - $(stat -c %Y \"$L\") ))\"",
        root = quote(root),
        line = quote(&holder.line()),
        then = then.unwrap_or("true"),
    );
    // TODO(locks): rewritten with ShellScript values by the locks branch; until then its text as it was.
    let script = ShellScript::new().user_code(&script);
    let out = conn.exec(Script::new(&script).sudo(sudo)).await?;
    if !out.success() {
        return Ok(Err(out.stderr_str().trim().to_owned()));
    }
    let text = out.stdout_str();
    if let Some((_, then)) = text.split_once("taken=1\n") {
        return Ok(Ok(Acquired::Taken {
            then: then.to_owned(),
        }));
    }
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_default()
            .to_owned()
    };
    Ok(Ok(Acquired::Held {
        holder: field("holder="),
        age_secs: field("age=").parse().unwrap_or(0),
    }))
}

/// Releases our lock (only if it is still ours) and appends the run's
/// audit line to `<root>/.convoy/audit.log`, in one round trip.
pub async fn release(
    conn: &Connection,
    root: &str,
    holder: &Holder,
    audit: &str,
    sudo: Option<&Become>,
) -> Result<(), TransportError> {
    let script = format!(
        "R={root}; L=\"$R/.convoy/lock\"\n\
         [ -d \"$R/.convoy\" ] && printf '%s\\n' {audit} >> \"$R/.convoy/audit.log\"\n\
         if [ \"$(cat \"$L/holder\" 2>/dev/null)\" = {line} ]; then rm -rf \"$L\"; fi\n\
         true",
        root = quote(root),
        audit = quote(audit),
        line = quote(&holder.line()),
    );
    // TODO(locks): rewritten with ShellScript values by the locks branch; until then its text as it was.
    let script = ShellScript::new().user_code(&script);
    conn.exec(Script::new(&script).sudo(sudo)).await.map(drop)
}

/// Removes the lock whoever holds it (`convoy unlock`); returns the holder line it removed, if any.
pub async fn clear(
    conn: &Connection,
    root: &str,
    sudo: Option<&Become>,
) -> Result<Option<String>, TransportError> {
    let script = format!(
        "L={}/.convoy/lock; if [ -d \"$L\" ]; then echo \"holder=$(cat \"$L/holder\" 2>/dev/null)\"; rm -rf \"$L\"; fi; true",
        quote(root)
    );
    // TODO(locks): rewritten with ShellScript values by the locks branch; until then its text as it was.
    let script = ShellScript::new().user_code(&script);
    let out = conn.exec(Script::new(&script).sudo(sudo)).await?;
    Ok(out
        .stdout_str()
        .lines()
        .find_map(|l| l.strip_prefix("holder="))
        .map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_lines_round_trip() {
        let h = Holder {
            by: "ops@laptop".into(),
            pid: 42,
            run_id: "20261122T100000Z-ab12".into(),
            since: "2026-11-22T10:00:00Z".into(),
        };
        let back = Holder::parse(&h.line()).unwrap();
        assert_eq!(back.pid, 42);
        assert_eq!(back.run_id, h.run_id);
        assert_eq!(back.by, "ops@laptop");
    }

    /// The lock script itself, run on this machine: what follows the lock
    /// runs only when the lock is taken, and its output comes back whole.
    #[tokio::test]
    async fn what_follows_the_lock_runs_only_for_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let conn = Connection::Local(crate::transport::LocalConnection::default());
        let holder = |run: &str| Holder {
            by: "ops@laptop".into(),
            pid: 42,
            run_id: run.into(),
            since: "2026-11-22T10:00:00Z".into(),
        };
        let then = "R=elsewhere; echo current=1.0.0\necho previous=$R";
        let first = acquire(&conn, &root, &holder("a"), None, Some(then), None).await;
        assert_eq!(
            first.unwrap().unwrap(),
            Acquired::Taken {
                then: "current=1.0.0\nprevious=elsewhere\n".into()
            }
        );
        let second = acquire(&conn, &root, &holder("b"), None, Some(then), None).await;
        match second.unwrap().unwrap() {
            Acquired::Held { holder: line, .. } => assert!(line.contains("run=a"), "{line}"),
            taken => panic!("a held lock was taken: {taken:?}"),
        }
        assert_eq!(
            clear(&conn, &root, None).await.unwrap().as_deref(),
            Some(holder("a").line().as_str())
        );
    }
}
