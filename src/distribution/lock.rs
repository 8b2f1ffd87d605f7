//! The deploy lock: one run at a time per application, held on every
//! targeted host as `<root>/.convoy/lock/` (made by `mkdir`, which is
//! atomic) with a `holder` line naming who holds it. The directory's
//! mtime is the last renewal: a live run touches it every
//! [`crate::run`] renewal period, so its age says how long the holder has
//! been silent.
//!
//! Every change of the lock on a host (take, take over, renew, release,
//! clear) runs under `flock` on `<root>/.convoy/lock.guard` where the
//! host has `flock(1)` (util-linux, busybox): a take-over's compare and
//! swap is then atomic too, and the kernel drops the guard when a script
//! dies. Without `flock`, `mkdir` alone still lets only one run in.

use crate::transport::{Become, Connection, Script, ShellScript, TransportError};

/// Who holds a lock: written into it, shown to whoever is refused.
#[derive(Debug, Clone)]
pub struct Holder {
    pub by: String,
    pub pid: u32,
    pub run_id: String,
    pub since: String,
    /// Where `pid` means something: the boot and pid namespace of the
    /// holder's process ([`process_space`]). A machine name alone is not
    /// enough: a container may share it with its host, and a reboot
    /// reuses pids. `None` in lines written before it existed.
    pub process_space: Option<String>,
}

impl Holder {
    /// This process, running `run_id` for `by` (`user@machine`), from now.
    pub fn this_process(by: String, run_id: String) -> Holder {
        Holder {
            by,
            pid: std::process::id(),
            run_id,
            since: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            process_space: process_space(),
        }
    }

    pub fn line(&self) -> String {
        let mut line = format!("{} pid={} run={}", self.by, self.pid, self.run_id);
        if let Some(space) = &self.process_space {
            line.push_str(&format!(" procs={space}"));
        }
        line.push_str(&format!(" since={}", self.since));
        line
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
            process_space: None,
        };
        for w in words {
            match w.split_once('=') {
                Some(("pid", v)) => holder.pid = v.parse().ok()?,
                Some(("procs", v)) => holder.process_space = Some(v.to_owned()),
                Some(("run", v)) => holder.run_id = v.to_owned(),
                Some(("since", v)) => holder.since = v.to_owned(),
                _ => {}
            }
        }
        Some(holder)
    }

    /// The machine the holder ran on (`by` is `user@machine`).
    pub fn machine(&self) -> &str {
        self.by.rsplit('@').next().unwrap_or_default()
    }
}

/// This process's boot id and pid namespace (`<boot id>.<namespace inode>`):
/// two processes with the same value see the same pids. `None` off Linux.
pub fn process_space() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let ns: String = ns
        .to_string_lossy()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    Some(format!("{}.{ns}", boot.trim()))
}

/// The answer of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// Ours now; `partials_removed` partial uploads (`*.part`) left by
    /// earlier runs were deleted; `then` is what the script given to
    /// follow the lock printed.
    Taken { partials_removed: u32, then: String },
    /// Held by someone else: their holder line, the seconds since the
    /// holder last renewed it, and whether the holder has finished locking
    /// all its hosts (its first renewal marks each lock `complete`).
    Held {
        holder: String,
        age_secs: u64,
        complete: bool,
    },
}

/// Sets `L` and defines `guard`, which serialises changes of the lock on
/// this host (see the module documentation). Expects `R`.
const PRELUDE: &str = r#"L="$R/.convoy/lock"
guard() {
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>>"$R/.convoy/lock.guard" || { echo "cannot open $R/.convoy/lock.guard" >&2; exit 3; }
  flock -w 30 9 || { echo "cannot take $R/.convoy/lock.guard (flock)" >&2; exit 3; }
}
"#;

/// Expects `R`, `H` (our holder line), `OLD` (a holder line to take over,
/// or empty). Prints `held=` and `age=`, or `partials=` and `taken=1`.
const ACQUIRE: &str = r#"[ -d "$R/.convoy" ] || mkdir -p "$R/.convoy" || { echo "cannot create $R/.convoy" >&2; exit 3; }
guard
taken=0
tries=0
while :; do
  if [ -n "$OLD" ] && [ "$(cat "$L/holder" 2>/dev/null)" = "$OLD" ]; then rm -rf "$L"; fi
  if mkdir "$L" 2>/dev/null; then
    printf '%s\n' "$H" > "$L/holder" || { rm -rf "$L"; echo "cannot write $L/holder" >&2; exit 3; }
    taken=1
    break
  fi
  held=$(cat "$L/holder" 2>/dev/null)
  at=$(stat -c %Y "$L" 2>/dev/null)
  # Without flock, the lock can be released (or still be written) between
  # the mkdir and these reads: look again rather than report half a lock.
  if [ -n "$at" ] && { [ -n "$held" ] || [ "$tries" -ge 20 ]; }; then
    echo "holder=$held"
    echo "age=$(( $(date +%s) - at ))"
    # Written empty by a renewal, or holding the holder line by a mark
    # (see complete_mark): a mark of another holder does not count.
    if [ -f "$L/complete" ]; then
      c=; { IFS= read -r c < "$L/complete"; } 2>/dev/null
      { [ -z "$c" ] || [ "$c" = "$held" ]; } && echo complete=1
    fi
    exit 0
  fi
  tries=$((tries + 1))
  [ "$tries" -le 40 ] || { echo "the lock $L keeps appearing and vanishing" >&2; exit 3; }
  sleep 0.1 2>/dev/null || sleep 1
done
# Under the lock no upload of ours is running on this host: any partial
# upload is a leftover of a run that was cut off or killed.
partials=0
for p in "$R"/.convoy/artifacts/*.part; do
  [ -e "$p" ] || continue
  rm -f "$p" && partials=$((partials + 1))
done
echo "partials=$partials"
echo taken=1
exec 9>&-
"#;

/// Takes the lock, or says who holds it. With `replace`, a lock whose
/// holder line is exactly `replace` is taken over (compare and swap, so a
/// lock taken over by someone else meanwhile is not stolen). Once the lock
/// is ours, partial uploads left in the artifact store are removed, then
/// `then` runs (in a subshell), all in the same round trip.
pub async fn acquire(
    conn: &Connection,
    root: &str,
    holder: &Holder,
    replace: Option<&str>,
    then: Option<&ShellScript>,
    sudo: Option<&Become>,
) -> Result<Result<Acquired, String>, TransportError> {
    let mut script = ShellScript::new()
        .var("R", root)
        .var("H", holder.line())
        .var("OLD", replace.unwrap_or_default())
        .code(PRELUDE)
        .code(ACQUIRE);
    if let Some(then) = then {
        script = script.code("(").then(then).code(")");
    }
    let out = conn.exec(Script::new(&script).sudo(sudo)).await?;
    if !out.success() {
        return Ok(Err(out.stderr_str().trim().to_owned()));
    }
    let text = out.stdout_str();
    let field = |text: &str, k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_default()
            .to_owned()
    };
    if let Some((before, then)) = text.split_once("taken=1\n") {
        return Ok(Ok(Acquired::Taken {
            partials_removed: field(before, "partials=").parse().unwrap_or(0),
            then: then.to_owned(),
        }));
    }
    Ok(Ok(Acquired::Held {
        holder: field(&text, "holder="),
        age_secs: field(&text, "age=").parse().unwrap_or(0),
        complete: text.lines().any(|l| l == "complete=1"),
    }))
}

/// What a renewal found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewed {
    /// Still ours, and marked fresh.
    Yes,
    /// No longer ours: the holder line found instead (empty: no lock).
    Lost { holder: String },
}

/// Expects `R`, `H`. Never creates the lock: one released meanwhile stays
/// released. Writing `complete` also renews (the directory's mtime).
const RENEW: &str = r#"[ -d "$L" ] || { echo lost=; exit 0; }
guard
held=$(cat "$L/holder" 2>/dev/null)
if [ "$held" != "$H" ]; then echo "lost=$held"; exit 0; fi
if [ -e "$L/complete" ]; then touch -c "$L"; else : > "$L/complete"; fi && echo renewed=1
"#;

/// Marks our lock `complete` (this run holds all its locks) from inside
/// another script of the run, so that the mark costs no round trip of its
/// own: builtins only, no guard. The mark holds the holder line, and
/// counts only for that holder, so a mark that lands after the lock
/// changed hands (it cannot while the run lives, but a script may be late)
/// says nothing about the new holder's lock.
pub fn complete_mark(root: &str, holder_line: &str) -> ShellScript {
    ShellScript::new()
        .var("LR", root)
        .var("LH", holder_line)
        .code(COMPLETE_MARK)
}

/// Expects `LR` (the root) and `LH` (our holder line); always succeeds.
const COMPLETE_MARK: &str = r#"L="$LR/.convoy/lock"; h=
if [ -d "$L" ] && [ ! -e "$L/complete" ] && { IFS= read -r h < "$L/holder"; } 2>/dev/null && [ "$h" = "$LH" ]; then
  printf '%s\n' "$LH" > "$L/complete" 2>/dev/null
fi
true
"#;

/// Marks our lock fresh (its mtime is the last renewal) and `complete`
/// (this run holds all its locks), if it is still ours.
pub async fn renew(
    conn: &Connection,
    root: &str,
    holder_line: &str,
    sudo: Option<&Become>,
) -> Result<Result<Renewed, String>, TransportError> {
    let script = ShellScript::new()
        .var("R", root)
        .var("H", holder_line)
        .code(PRELUDE)
        .code(RENEW);
    let out = conn.exec(Script::new(&script).sudo(sudo)).await?;
    if !out.success() {
        return Ok(Err(out.stderr_str().trim().to_owned()));
    }
    let text = out.stdout_str();
    if text.lines().any(|l| l == "renewed=1") {
        return Ok(Ok(Renewed::Yes));
    }
    Ok(Ok(Renewed::Lost {
        holder: text
            .lines()
            .find_map(|l| l.strip_prefix("lost="))
            .unwrap_or_default()
            .to_owned(),
    }))
}

/// Expects `R`, `H`, `A` (the audit line).
const RELEASE: &str = r#"[ -d "$R/.convoy" ] || exit 0
guard
printf '%s\n' "$A" >> "$R/.convoy/audit.log"
h=; { IFS= read -r h < "$L/holder"; } 2>/dev/null
if [ "$h" = "$H" ]; then rm -rf "$L"; fi
true
"#;

/// [`release`] as a script of its own, so that it can ride at the end of
/// a host's last step in the run (a rollback's switch) instead of costing
/// a round trip of its own.
pub fn release_script(root: &str, holder: &Holder, audit: &str) -> ShellScript {
    ShellScript::new()
        .var("R", root)
        .var("H", holder.line())
        .var("A", audit)
        .code(PRELUDE)
        .code(RELEASE)
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
    let script = release_script(root, holder, audit);
    conn.exec(Script::new(&script).sudo(sudo)).await.map(drop)
}

/// What the script run before a release printed, and how it ended.
pub struct Before {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// [`release`], with `before` run first (in a subshell) in the same round
/// trip: the last step of a run and the release of its lock cost one.
/// The lock is released whatever `before` did.
pub async fn release_after(
    conn: &Connection,
    root: &str,
    holder: &Holder,
    audit: &str,
    before: &ShellScript,
    sudo: Option<&Become>,
) -> Result<Before, TransportError> {
    let script = ShellScript::new()
        .code("(")
        .then(before)
        .code(")")
        .code(r#"echo "convoy_before=$?""#)
        .var("R", root)
        .var("H", holder.line())
        .var("A", audit)
        .code(PRELUDE)
        .code(RELEASE);
    let out = conn.exec(Script::new(&script).sudo(sudo)).await?;
    let text = out.stdout_str();
    let (stdout, status) = text
        .rsplit_once("convoy_before=")
        .map(|(before, status)| (before.to_owned(), status.trim().to_owned()))
        .unwrap_or((text.clone(), "-1".to_owned()));
    Ok(Before {
        success: status == "0",
        stdout,
        stderr: out.stderr_str(),
    })
}

/// Expects `R`.
const CLEAR: &str = r#"[ -d "$L" ] || exit 0
guard
if [ -d "$L" ]; then echo "holder=$(cat "$L/holder" 2>/dev/null)"; rm -rf "$L"; fi
true
"#;

/// Removes the lock whoever holds it (`convoy unlock`); returns the holder line it removed, if any.
pub async fn clear(
    conn: &Connection,
    root: &str,
    sudo: Option<&Become>,
) -> Result<Option<String>, TransportError> {
    let script = ShellScript::new().var("R", root).code(PRELUDE).code(CLEAR);
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

    fn holder(run: &str) -> Holder {
        Holder {
            by: "ops@laptop".into(),
            pid: 42,
            run_id: run.into(),
            since: "2026-11-22T10:00:00Z".into(),
            process_space: Some("b00t.4026531836".into()),
        }
    }

    fn local() -> Connection {
        Connection::Local(crate::transport::LocalConnection::default())
    }

    #[test]
    fn holder_lines_round_trip() {
        let h = holder("20261122T100000Z-ab12");
        let back = Holder::parse(&h.line()).unwrap();
        assert_eq!(back.pid, 42);
        assert_eq!(back.run_id, h.run_id);
        assert_eq!(back.by, "ops@laptop");
        assert_eq!(back.machine(), "laptop");
        assert_eq!(back.process_space, h.process_space);
        let old = Holder::parse("ops@laptop pid=42 run=r since=2026-11-22T10:00:00Z").unwrap();
        assert_eq!(old.process_space, None);
    }

    /// The lock script itself, run on this machine: what follows the lock
    /// runs only when the lock is taken, and its output comes back whole.
    #[tokio::test]
    async fn what_follows_the_lock_runs_only_for_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let conn = local();
        let then = ShellScript::new()
            .var("R", "elsewhere")
            .code("echo current=1.0.0\necho previous=$R");
        let first = acquire(&conn, &root, &holder("a"), None, Some(&then), None).await;
        assert_eq!(
            first.unwrap().unwrap(),
            Acquired::Taken {
                partials_removed: 0,
                then: "current=1.0.0\nprevious=elsewhere\n".into()
            }
        );
        let second = acquire(&conn, &root, &holder("b"), None, Some(&then), None).await;
        match second.unwrap().unwrap() {
            Acquired::Held {
                holder: line,
                complete,
                ..
            } => {
                assert!(line.contains("run=a"), "{line}");
                assert!(!complete, "never renewed, yet complete");
            }
            taken => panic!("a held lock was taken: {taken:?}"),
        }
        assert_eq!(
            clear(&conn, &root, None).await.unwrap().as_deref(),
            Some(holder("a").line().as_str())
        );
    }

    /// A take-over replaces only the holder it names; a renewal keeps only
    /// our own lock fresh and never recreates a released one.
    #[tokio::test]
    async fn take_over_and_renewal_touch_only_the_named_holder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let conn = local();
        let (a, b) = (holder("a"), holder("b"));
        acquire(&conn, &root, &a, None, None, None)
            .await
            .unwrap()
            .unwrap();
        let wrong = acquire(&conn, &root, &b, Some("someone else"), None, None).await;
        assert!(matches!(wrong.unwrap().unwrap(), Acquired::Held { .. }));
        let lost = renew(&conn, &root, &b.line(), None).await.unwrap().unwrap();
        assert_eq!(lost, Renewed::Lost { holder: a.line() });
        let taken = acquire(&conn, &root, &b, Some(&a.line()), None, None).await;
        assert!(matches!(taken.unwrap().unwrap(), Acquired::Taken { .. }));
        let renewed = renew(&conn, &root, &b.line(), None).await.unwrap().unwrap();
        assert_eq!(renewed, Renewed::Yes);
        // The first renewal marked it complete: others see that.
        match acquire(&conn, &root, &a, None, None, None)
            .await
            .unwrap()
            .unwrap()
        {
            Acquired::Held { complete, .. } => assert!(complete),
            taken => panic!("a held lock was taken: {taken:?}"),
        }
        release(&conn, &root, &b, "audit", None).await.unwrap();
        let gone = renew(&conn, &root, &b.line(), None).await.unwrap().unwrap();
        assert_eq!(gone, Renewed::Lost { holder: "".into() });
        assert!(
            !dir.path().join(".convoy/lock").exists(),
            "renewal recreated the lock"
        );
    }

    /// Partial uploads are leftovers once the lock is ours.
    #[tokio::test]
    async fn taking_the_lock_removes_partial_uploads() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join(".convoy/artifacts");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::write(store.join("abc.123.part"), "half").unwrap();
        std::fs::write(store.join("abc"), "whole").unwrap();
        let root = dir.path().display().to_string();
        let taken = acquire(&local(), &root, &holder("a"), None, None, None).await;
        assert_eq!(
            taken.unwrap().unwrap(),
            Acquired::Taken {
                partials_removed: 1,
                then: String::new()
            }
        );
        assert!(!store.join("abc.123.part").exists());
        assert!(store.join("abc").exists());
    }
}
