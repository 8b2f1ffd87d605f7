//! The host side of a job: the scripts convoy sends, and the small wrapper
//! that runs each target's command on the host.
//!
//! Exactly once rests on two host-side facts, both made true on the host
//! before the controller hears of them:
//!
//! 1. **claim**: `STATE/t/TARGET.claim` is created with `O_EXCL` (the
//!    shell's `set -C`), which is atomic; a target whose claim exists is
//!    never started again (only `--retry-failed` moves a *failed* record
//!    and its claim aside, on purpose);
//! 2. **record**: the wrapper, detached from the ssh session as `nohup …
//!    &` is (stdio on files, SIGHUP ignored, so neither a closed channel
//!    nor a hang-up reaches it), runs the command and writes
//!    `TARGET.rec` (outcome, exit code, attempts, last output lines) to a
//!    temporary name and renames it: a record is whole or absent.
//!
//! The controller only reads these. If it is SIGKILLed at any point, the
//! wrapper still finishes and records; a resume reads the records first
//! and waits for wrappers still running; a claim whose wrapper died
//! without a record (the host crashed) is reported `lost` and never re-run
//! unless the operator asks with `--retry-failed`. Losing the controller's
//! own files therefore loses nothing: the truth is on the hosts.
//!
//! A task list (`tasks:`) has the same claim and record, but no wrapper:
//! the controller runs the list and writes the record on the host after
//! the last task ([`CLAIM_TASKS`], [`RECORD_TASKS`], `super::task_target`).
//!
//! Every value (paths, names, the rendered command) enters the scripts as
//! a quoted variable or argument ([`ShellScript`]); the user's command is
//! run by `sh -c "$CMD"`, as a `shell:` task is.

use crate::transport::ShellScript;

use super::spec::Success;

/// `dir`, `identity …`, `rec …`/`= …`/`end`, `running …`, `lost …`,
/// `ver TARGET VERSION`: what a host holds for the job, in one round trip.
/// With `CREATE=1` a missing state directory and identity file are made.
const SURVEY: &str = r#"
S=$R/$JOB
if [ ! -e "$S/job" ] && [ "$CREATE" = 1 ]; then
  mkdir -p "$S/t" || exit 3
  printf 'convoy-job 1\nname %s\n' "$JOB" > "$S/job.tmp.$$" && mv "$S/job.tmp.$$" "$S/job" || exit 3
fi
printf 'dir %s\n' "$S"
if [ -e "$S/job" ]; then
  while IFS= read -r l || [ -n "$l" ]; do printf 'identity %s\n' "$l"; done < "$S/job"
fi
convoy_alive() { [ -n "$1" ] && [ -r "/proc/$1/cmdline" ] && grep -q convoy_wrapper "/proc/$1/cmdline" 2>/dev/null; }
convoy_rec() {
  printf 'rec %s\n' "$1"
  while IFS= read -r l || [ -n "$l" ]; do printf '= %s\n' "$l"; done < "$S/t/$1.rec"
  printf 'end\n'
}
for f in "$S"/t/*.claim; do
  [ -e "$f" ] || continue
  e=${f##*/}
  e=${e%.claim}
  if [ ! -e "$S/t/$e.rec" ]; then
    p=
    [ -r "$S/t/$e.pid" ] && read -r p < "$S/t/$e.pid"
    if convoy_alive "$p"; then printf 'running %s\n' "$e"; continue; fi
    # Not running: it may have recorded since the first look (a wrapper
    # writes its record, then ends), so look again before saying lost.
    if [ ! -e "$S/t/$e.rec" ]; then
      if [ -z "$p" ]; then printf 'starting %s\n' "$e"; else printf 'lost %s\n' "$e"; fi
      continue
    fi
  fi
  convoy_rec "$e"
done
# Records without a claim (copied in by hand, say) are records all the same.
for f in "$S"/t/*.rec; do
  [ -e "$f" ] || continue
  e=${f##*/}
  e=${e%.rec}
  [ -e "$S/t/$e.claim" ] || convoy_rec "$e"
done
if [ -n "$DATA" ] && [ -d "$DATA" ]; then
  for f in "$DATA"/*; do
    [ -f "$f" ] || continue
    case ${f##*/} in *.tmp.*) continue ;; esac
    v=
    read -r v < "$f"
    printf 'ver %s %s\n' "${f##*/}" "$v"
  done
fi
"#;

/// `--retry-failed`: a failed record, or a claim whose wrapper died without
/// one (a killed task list's too), is moved aside (kept under `retried/`)
/// so the target can be claimed again; a done target is never retried.
const RETRY_ASIDE: &str = r#"
convoy_alive() { [ -n "$1" ] && [ -r "/proc/$1/cmdline" ] && grep -q convoy_wrapper "/proc/$1/cmdline" 2>/dev/null; }
convoy_retry_aside() {
if [ "$RETRY" = 1 ]; then
  mkdir -p "$S/retried"
  n=1
  while [ -e "$S/retried/$E.$n" ]; do n=$((n+1)); done
  if [ -e "$S/t/$E.rec" ]; then
    o=
    while read -r k v; do
      [ "$k" = -- ] && break
      [ "$k" = outcome ] && o=$v
    done < "$S/t/$E.rec"
    if [ "$o" = failed ]; then
      mkdir "$S/retried/$E.$n" && mv "$S/t/$E.rec" "$S/retried/$E.$n/" && mv "$C" "$S/retried/$E.$n/" 2>/dev/null
    fi
  elif [ -e "$C" ]; then
    p=
    [ -r "$S/t/$E.pid" ] && read -r p < "$S/t/$E.pid"
    convoy_alive "$p" || { mkdir "$S/retried/$E.$n" && mv "$C" "$S/retried/$E.$n/" && rm -f "$S/t/$E.pid"; }
  fi
fi
}
"#;

/// Claims a target, starts its wrapper detached, waits for its record and
/// prints it (`rec …` as in the survey). A target already claimed is not
/// started: `claimed` is printed, then its record once there is one.
const START: &str = r#"
S=$R/$JOB
C=$S/t/$E.claim
printf 'dir %s\n' "$S"
convoy_retry_aside
# The claim: created only if absent (noclobber is O_EXCL), by the shell
# itself (no fork; `true`, not `:`: a failed redirection of a special
# builtin would end the script).
set -C
if true 2>/dev/null > "$C"; then
  set +C
  # Detached as `nohup … &` detaches: stdio on files (a closed channel
  # cannot SIGPIPE it) and SIGHUP ignored (a session with a terminal
  # hangs up its process group), in a forked shell (no exec: cheap).
  ( trap '' HUP; convoy_wrapper "$@" ) </dev/null >/dev/null 2>&1 &
  p=$!
  # A few bytes in one write: a reader sees the pid or nothing (`starting`).
  echo "$p" > "$S/t/$E.pid"
  wait "$p"
else
  set +C
  echo claimed
fi
# A record, or the wrapper's end; a claim without a pid is given 10 s to get one.
i=0
while [ ! -e "$S/t/$E.rec" ]; do
  p=
  [ -r "$S/t/$E.pid" ] && read -r p < "$S/t/$E.pid"
  if convoy_alive "$p"; then :
  elif [ -z "$p" ] && [ $i -lt 50 ]; then i=$((i+1))
  else break
  fi
  sleep 0.2
done
if [ -e "$S/t/$E.rec" ]; then
  printf 'rec %s\n' "$E"
  while IFS= read -r l || [ -n "$l" ]; do printf '= %s\n' "$l"; done < "$S/t/$E.rec"
  printf 'end\n'
else
  printf 'lost %s\n' "$E"
fi
"#;

/// The wrapper: runs the target's command (or its due converters, given as
/// `KEY NAME CMD` argument triples), with timeout and retries, and writes the
/// record atomically. Defined as a function, run in a forked, detached
/// shell by [`START`].
const WRAPPER: &str = r#"
convoy_wrapper() {
L=$S/t/$E.log
cd "${HOME:-/}" 2>/dev/null || cd /
# Times from /proc/uptime, read by the shell (no fork): a duration is all
# the record needs; the record file's mtime says when.
convoy_now() {
  convoy_t=0.0
  [ -r /proc/uptime ] && read -r convoy_t _ < /proc/uptime
  convoy_t=${convoy_t%%.*}
}
convoy_now
started=$convoy_t
attempts=0
rc=0
outcome=failed
: > "$L"
convoy_run() {
  if [ -n "$TIMEOUT" ] && command -v timeout >/dev/null 2>&1; then
    CONVOY_TARGET=$T timeout -k 5 "$TIMEOUT" sh -c "$1" </dev/null >>"$L" 2>&1
    rc=$?
    [ "$rc" = 124 ] && echo "convoy: timed out after ${TIMEOUT}s" >>"$L"
  else
    CONVOY_TARGET=$T sh -c "$1" </dev/null >>"$L" 2>&1
    rc=$?
  fi
  case " $OK " in
  *" $rc "*) outcome=done ;;
  *) case " $SKIP " in *" $rc "*) outcome=skipped ;; *) outcome=failed ;; esac ;;
  esac
  if [ "$outcome" = done ] && [ -n "$CONTAINS" ] && ! grep -qF -- "$CONTAINS" "$L"; then
    outcome=failed
    echo "convoy: the output does not contain the success text" >>"$L"
  fi
}
convoy_attempts() {
  d=$DELAY
  n=0
  while :; do
    n=$((n+1))
    attempts=$((attempts+1))
    convoy_run "$1"
    if [ "$outcome" != failed ] || [ "$n" -gt "$RETRIES" ]; then break; fi
    echo "convoy: attempt $n failed (exit $rc); retrying in ${d}s" >>"$L"
    sleep "$d"
    d=$((d*2))
  done
}
steps=
if [ -z "$CONVERT" ]; then
  convoy_attempts "$CMD"
else
  outcome=done
  while [ $# -ge 3 ]; do
    k=$1
    c=$3
    echo "convoy: converter $2 ($k)" >>"$L"
    shift 3
    if [ -e "$S/t/$E.step.$k" ]; then steps="$steps $k"; continue; fi
    convoy_attempts "$c"
    [ "$outcome" = failed ] && break
    outcome=done
    : > "$S/t/$E.step.$k.tmp" && mv "$S/t/$E.step.$k.tmp" "$S/t/$E.step.$k"
    steps="$steps $k"
  done
  if [ "$outcome" = done ]; then
    mkdir -p "$DATA" && printf '%s\n' "$TO" > "$DATA/$E.tmp.$$" && mv "$DATA/$E.tmp.$$" "$DATA/$E" || outcome=failed
  fi
fi
convoy_now
ended=$convoy_t
{
  printf 'convoy-job-record 1\njob %s\nrun %s\ntarget %s\noutcome %s\nrc %s\nattempts %s\nstarted %s\nended %s\n' \
    "$JOB" "$RUN" "$T" "$outcome" "$rc" "$attempts" "$started" "$ended"
  for k in $steps; do printf 'step %s\n' "$k"; done
  [ -n "$CONVERT" ] && [ "$outcome" = done ] && printf 'version %s\n' "$TO"
  # The output's last lines come last, after `--`, as they are.
  echo --
  tail -n 5 "$L"
} > "$S/t/$E.rec.tmp" && mv -f "$S/t/$E.rec.tmp" "$S/t/$E.rec"
}
"#;

/// A task list's claim: the same `O_EXCL` claim as [`START`]'s, taken
/// before the list's first task. The list is run by the controller (there
/// is no host-side process to wait for), so the pid file holds `tasks`:
/// no wrapper answers to it, and a claim of a controller that is gone
/// without writing the record is `lost`, as a dead wrapper's is. Prints
/// `claim TARGET` when this call made the claim; else `claimed` and the
/// target's record, or `lost`.
const CLAIM_TASKS: &str = r#"
S=$R/$JOB
C=$S/t/$E.claim
printf 'dir %s\n' "$S"
convoy_retry_aside
set -C
if true 2>/dev/null > "$C"; then
  set +C
  echo tasks > "$S/t/$E.pid"
  printf 'claim %s\n' "$E"
else
  set +C
  echo claimed
  if [ -e "$S/t/$E.rec" ]; then
    printf 'rec %s\n' "$E"
    while IFS= read -r l || [ -n "$l" ]; do printf '= %s\n' "$l"; done < "$S/t/$E.rec"
    printf 'end\n'
  else
    printf 'lost %s\n' "$E"
  fi
fi
"#;

/// A task list's record, written on the host when its last task ended
/// (whole or absent: a temporary name, then a rename), then printed back.
/// Only the holder of the claim writes it, and never over a record.
const RECORD_TASKS: &str = r#"
S=$R/$JOB
printf 'dir %s\n' "$S"
if [ -e "$S/t/$E.claim" ] && [ ! -e "$S/t/$E.rec" ]; then
  {
    printf 'convoy-job-record 1\njob %s\nrun %s\ntarget %s\noutcome %s\nrc %s\nattempts %s\nstarted 0\nended %s\n' \
      "$JOB" "$RUN" "$T" "$OUTCOME" "$RC" "$ATTEMPTS" "$SECONDS_TAKEN"
    echo --
    if [ -n "$TAIL" ]; then printf '%s\n' "$TAIL"; fi
  } > "$S/t/$E.rec.tmp" && mv -f "$S/t/$E.rec.tmp" "$S/t/$E.rec" || exit 3
fi
if [ -e "$S/t/$E.rec" ]; then
  printf 'rec %s\n' "$E"
  while IFS= read -r l || [ -n "$l" ]; do printf '= %s\n' "$l"; done < "$S/t/$E.rec"
  printf 'end\n'
else
  printf 'lost %s\n' "$E"
fi
"#;

/// Where a job's state lives on a host: `root` (the spec's `state_dir`,
/// rendered) holds one directory per job name.
#[derive(Debug, Clone)]
pub struct HostPaths {
    pub root: String,
    pub job: String,
    /// Converters' data-version directory, when the job has converters.
    pub data: Option<String>,
}

impl HostPaths {
    fn base(&self) -> ShellScript {
        let data = self.data.clone().unwrap_or_default();
        ShellScript::new()
            .path_var("R", &self.root)
            .var("JOB", &self.job)
            .path_var("DATA", &data)
    }

    /// The survey; `create` makes the state directory (a run), a status does not.
    pub fn survey(&self, create: bool) -> ShellScript {
        self.base().flag("CREATE", create).code(SURVEY)
    }

    /// The start-and-wait script of one target.
    pub fn start(&self, t: &TargetRun<'_>) -> ShellScript {
        let codes = |c: &[i32]| c.iter().map(i32::to_string).collect::<Vec<_>>().join(" ");
        let mut args: Vec<String> = Vec::new();
        for (key, name, cmd) in &t.converters {
            args.extend([key.clone(), name.clone(), cmd.clone()]);
        }
        self.base()
            .var("E", super::targets::file_name(t.target))
            .var("T", t.target)
            .var("RUN", t.run_id)
            .var("CMD", t.command.unwrap_or_default())
            .var("CONVERT", if t.command.is_some() { "" } else { "1" })
            .var("TO", t.to_version.unwrap_or_default())
            .var(
                "TIMEOUT",
                t.timeout
                    .map(|d| d.as_secs_f64().ceil().max(1.0).to_string())
                    .unwrap_or_default(),
            )
            .var("RETRIES", t.retries.to_string())
            .var("DELAY", t.delay_secs.to_string())
            .var("OK", codes(&t.success.exit_codes))
            .var("SKIP", codes(&t.success.skip_codes))
            .var(
                "CONTAINS",
                t.success.output_contains.clone().unwrap_or_default(),
            )
            .flag("RETRY", t.retry_failed)
            .args(args)
            .code(WRAPPER)
            .code(RETRY_ASIDE)
            .code(START)
    }

    /// Claims a target for its task list (see [`CLAIM_TASKS`]).
    pub fn claim_tasks(&self, target: &str, retry_failed: bool) -> ShellScript {
        self.base()
            .var("E", super::targets::file_name(target))
            .flag("RETRY", retry_failed)
            .code(RETRY_ASIDE)
            .code(CLAIM_TASKS)
    }

    /// Records how a claimed target's task list ended (see [`RECORD_TASKS`]).
    pub fn record_tasks(&self, r: &TasksRecord<'_>) -> ShellScript {
        // One line per tail line: a message's own line breaks stay lines.
        let tail: Vec<&str> = r.tail.iter().flat_map(|l| l.lines()).collect();
        self.base()
            .var("E", super::targets::file_name(r.target))
            .var("T", r.target)
            .var("RUN", r.run_id)
            .var("OUTCOME", if r.done { "done" } else { "failed" })
            .var("RC", if r.done { "0" } else { "1" })
            .var("ATTEMPTS", r.attempts.to_string())
            .var("SECONDS_TAKEN", r.seconds.to_string())
            .var("TAIL", tail.join("\n"))
            .code(RECORD_TASKS)
    }
}

/// How a target's task list ended, for its record.
pub struct TasksRecord<'a> {
    pub target: &'a str,
    pub run_id: &'a str,
    pub done: bool,
    pub attempts: u32,
    pub seconds: u64,
    /// The record's last lines: the failed task's name and message.
    pub tail: Vec<String>,
}

/// What one target's start script needs.
pub struct TargetRun<'a> {
    pub target: &'a str,
    pub run_id: &'a str,
    /// The rendered `run:` command; `None` for a converter job.
    pub command: Option<&'a str>,
    /// Due converters: (step key, name, rendered command), in order.
    pub converters: Vec<(String, String, String)>,
    pub to_version: Option<&'a str>,
    pub timeout: Option<std::time::Duration>,
    pub retries: u32,
    pub delay_secs: u64,
    pub success: &'a Success,
    pub retry_failed: bool,
}

#[cfg(test)]
mod tests {
    //! The host-side scripts, run by the local `sh` in a temporary
    //! directory standing for a host.

    use super::*;
    use crate::job::state::{TargetState, parse_survey};

    /// Runs `script` in the tests' own temporary directory (where a
    /// `$(touch pwned)` that became code would land).
    fn sh(script: &ShellScript) -> String {
        let out = std::process::Command::new("sh")
            .current_dir(WORK.get_or_init(|| tempfile::tempdir().unwrap()).path())
            .arg("-c")
            .arg(script.text())
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    fn paths(root: &std::path::Path) -> HostPaths {
        HostPaths {
            root: root.display().to_string(),
            job: "j".into(),
            data: None,
        }
    }

    static WORK: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();

    const SUCCESS: Success = Success {
        exit_codes: vec![],
        skip_codes: vec![],
        output_contains: None,
    };

    fn start(p: &HostPaths, target: &str, command: &str, retry_failed: bool) -> String {
        let success = Success {
            exit_codes: vec![0],
            ..SUCCESS
        };
        sh(&p.start(&TargetRun {
            target,
            run_id: "R1",
            command: Some(command),
            converters: vec![],
            to_version: None,
            timeout: None,
            retries: 0,
            delay_secs: 1,
            success: &success,
            retry_failed,
        }))
    }

    #[test]
    fn a_claimed_target_is_never_started_again() {
        let dir = tempfile::tempdir().unwrap();
        // A root with spaces and shell syntax: it stays a value.
        let root = dir.path().join("state $(touch pwned) x");
        let p = paths(&root);
        sh(&p.survey(true));
        let count = dir.path().join("count");
        let cmd = format!("echo ran >> '{}'; echo out-$CONVOY_TARGET", count.display());
        let first = start(&p, "db1/t1", &cmd, false);
        let s = parse_survey("h", "j", &first).unwrap();
        assert_eq!(s.records["db1/t1"].state, TargetState::Done);
        assert_eq!(s.records["db1/t1"].tail, ["out-db1/t1"]);
        let again = start(&p, "db1/t1", &cmd, false);
        assert!(again.contains("\nclaimed\nrec db1%2Ft1\n"), "{again}");
        // A retry of a done target does not run it either.
        start(&p, "db1/t1", &cmd, true);
        assert_eq!(std::fs::read_to_string(&count).unwrap(), "ran\n");
        assert!(!WORK.get().unwrap().path().join("pwned").exists());
        assert!(root.join("j/t/db1%2Ft1.rec").exists());
        let survey = parse_survey("h", "j", &sh(&p.survey(false))).unwrap();
        assert_eq!(survey.state("db1/t1"), TargetState::Done);
    }

    #[test]
    fn retry_failed_moves_only_a_failed_record_aside_and_runs_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        sh(&p.survey(true));
        let out = start(&p, "t1", "echo boom; exit 7", false);
        let r = &parse_survey("h", "j", &out).unwrap().records["t1"];
        assert_eq!((r.state, r.exit_code), (TargetState::Failed, 7));
        // Without --retry-failed a failed target stays failed.
        let out = start(&p, "t1", "true", false);
        assert_eq!(
            parse_survey("h", "j", &out).unwrap().records["t1"].exit_code,
            7
        );
        let out = start(&p, "t1", "echo fixed", true);
        assert_eq!(
            parse_survey("h", "j", &out).unwrap().records["t1"].state,
            TargetState::Done
        );
        let kept = std::fs::read_to_string(dir.path().join("j/retried/t1.1/t1.rec")).unwrap();
        assert!(kept.contains("\nrc 7\n"), "{kept}");
    }

    #[test]
    fn a_claim_without_a_wrapper_is_lost_not_pending() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        sh(&p.survey(true));
        // A claim whose wrapper died (pid of no live wrapper), no record.
        std::fs::write(dir.path().join("j/t/t1.claim"), "").unwrap();
        std::fs::write(dir.path().join("j/t/t1.pid"), "999999999\n").unwrap();
        let s = parse_survey("h", "j", &sh(&p.survey(false))).unwrap();
        assert_eq!(s.state("t1"), TargetState::Lost);
        let out = start(&p, "t1", "echo must not run", false);
        assert!(out.contains("claimed\nlost t1"), "{out}");
    }

    #[test]
    fn a_claim_whose_wrapper_ended_is_read_as_its_record() {
        // The survey's race: a wrapper records, then ends; a claim with a
        // dead pid and a record is that record, never `lost`.
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        sh(&p.survey(true));
        start(&p, "t1", "true", false);
        std::fs::write(dir.path().join("j/t/t1.pid"), "999999999\n").unwrap();
        let s = parse_survey("h", "j", &sh(&p.survey(false))).unwrap();
        assert_eq!(s.state("t1"), TargetState::Done);
        assert!(s.lost.is_empty() && s.running.is_empty());
    }

    #[test]
    fn a_task_lists_claim_without_a_record_is_lost_until_retry_failed() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        sh(&p.survey(true));
        let first = sh(&p.claim_tasks("db1/t1", false));
        assert!(first.contains("\nclaim db1%2Ft1\n"), "{first}");
        // The controller died before the record: lost, never claimed again.
        let again = sh(&p.claim_tasks("db1/t1", false));
        assert!(again.contains("\nclaimed\nlost db1%2Ft1\n"), "{again}");
        let s = parse_survey("h", "j", &sh(&p.survey(false))).unwrap();
        assert_eq!(s.state("db1/t1"), TargetState::Lost);
        // --retry-failed moves the claim aside and claims it anew.
        let retried = sh(&p.claim_tasks("db1/t1", true));
        assert!(retried.contains("\nclaim db1%2Ft1\n"), "{retried}");
        assert!(
            dir.path()
                .join("j/retried/db1%2Ft1.1/db1%2Ft1.claim")
                .exists()
        );
        let record = |done: bool, tail: &[&str]| {
            sh(&p.record_tasks(&TasksRecord {
                target: "db1/t1",
                run_id: "R1",
                done,
                attempts: 2,
                seconds: 3,
                tail: tail.iter().map(|l| (*l).to_owned()).collect(),
            }))
        };
        let out = record(false, &["failed task: load", "end", "rc 9\nno way"]);
        let r = &parse_survey("h", "j", &out).unwrap().records["db1/t1"];
        assert_eq!(
            (r.state, r.attempts, r.seconds),
            (TargetState::Failed, 2, 3)
        );
        assert_eq!(r.tail, ["failed task: load", "end", "rc 9", "no way"]);
        // A record is never written over.
        let out = record(true, &[]);
        let r = &parse_survey("h", "j", &out).unwrap().records["db1/t1"];
        assert_eq!(r.state, TargetState::Failed);
    }
}
