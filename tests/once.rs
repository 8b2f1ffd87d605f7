//! `once:` on a real fleet: two runs of the same play started at the same
//! instant (each with its own HOME and process, as two cron jobs would be)
//! never both run it; a lock whose holder was killed is taken over only
//! after its `stale_after`, and the take-over is in the lock's audit log.
//! Every test checks what happened on the lock host, not only what convoy
//! says.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::run::{Run, run_in};
use support::spawned::{Spawned, wait_until};
use support::{Fleet, workdir, write_file};

/// A play on both hosts whose task takes `SLEEP` seconds on h1 and appends
/// one line to /srv/ran there; `ONCE` is its `once:` value.
const PLAYBOOK: &str = r#"- name: Nightly
  hosts: app
  once: ONCE
  tasks:
    - name: slow job
      shell: |
        if [ "{{ inventory_hostname }}" = h1 ]; then touch /srv/started; sleep SLEEP; echo ran >> /srv/ran; fi
"#;

struct Setup {
    fleet: Fleet,
    work: tempfile::TempDir,
    playbook: PathBuf,
    inventory: PathBuf,
}

impl Setup {
    fn new(once: &str, sleep: u32) -> Setup {
        let fleet = Fleet::start(2);
        let work = workdir();
        let mut inventory = format!(
            "all:\n  vars:\n    convoy_ssh_config: {}\n    convoy_once_dir: /srv/once\n  children:\n    app:\n      hosts:\n",
            fleet.ssh_config().display()
        );
        for i in fleet.hosts() {
            inventory.push_str(&format!(
                "        {}:\n          ansible_host: {}\n",
                fleet.name(i),
                fleet.addr(i)
            ));
        }
        let inventory = write_file(work.path(), "inventory.yml", &inventory);
        // An empty `once` leaves the key out (for `--once` on the command line).
        let text = PLAYBOOK
            .replace("ONCE", once)
            .replace("  once: \n", "")
            .replace("SLEEP", &sleep.to_string());
        let playbook = write_file(work.path(), "once.yml", &text);
        Setup {
            fleet,
            work,
            playbook,
            inventory,
        }
    }

    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "run",
            self.playbook.to_str().unwrap(),
            "-i",
            self.inventory.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args
    }

    fn spawn(&self, extra: &[&str]) -> Spawned {
        Spawned::start(Some(self.work.path()), &self.args(extra))
    }

    fn run(&self, extra: &[&str]) -> Run {
        run_in(self.work.path(), &self.args(extra))
    }

    /// The lines of /srv/ran on h1: one per run of the job.
    fn ran(&self) -> usize {
        std::fs::read_to_string(self.fleet.host_path(1, "/srv/ran"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// The lock of `name` on h1 (the first host of `app` by name).
    fn lock(&self, name: &str) -> PathBuf {
        self.fleet
            .host_path(1, &format!("/srv/once/{name}/.convoy/lock"))
    }

    fn audit(&self, name: &str) -> String {
        std::fs::read_to_string(
            self.fleet
                .host_path(1, &format!("/srv/once/{name}/.convoy/audit.log")),
        )
        .unwrap_or_default()
    }
}

const TIMEOUT: Duration = Duration::from_secs(90);

/// Starts two runs at once and waits for both; answers (winner, loser) by
/// which one ran the job.
fn race(setup: &Setup, extra: &[&str]) -> (Run, Run) {
    let (a, b) = (setup.spawn(extra), setup.spawn(extra));
    let (a, b) = (a.finish(TIMEOUT), b.finish(TIMEOUT));
    let ran = |r: &Run| r.stdout.contains("changed: [h1]");
    assert!(
        ran(&a) != ran(&b),
        "exactly one run should have run the job:\n--- a ---\n{}\n{}\n--- b ---\n{}\n{}",
        a.stdout,
        a.stderr,
        b.stdout,
        b.stderr
    );
    if ran(&a) { (a, b) } else { (b, a) }
}

#[test]
fn of_two_runs_started_together_one_runs_and_the_other_is_skipped() {
    let setup = Setup::new("nightly", 3);
    let (winner, loser) = race(&setup, &[]);
    assert_eq!(winner.code, 0, "{}{}", winner.stdout, winner.stderr);
    assert_eq!(loser.code, 0, "{}{}", loser.stdout, loser.stderr);
    assert_eq!(setup.ran(), 1, "the job ran twice");
    let note = loser
        .notes()
        .into_iter()
        .find(|n| n.starts_with("once nightly: held by "))
        .unwrap_or_else(|| panic!("no `held by` note:\n{}", loser.stdout));
    assert!(note.ends_with("; skipped"), "{note}");
    assert!(note.contains(" since 20"), "{note}");
    // The skipped run touched no host with its tasks.
    assert!(!loser.stdout.contains("[h2]"), "{}", loser.stdout);
    // Released at the end of the play; a later run takes it and runs.
    assert!(!setup.lock("nightly").exists(), "the lock outlived its run");
    let again = setup.run(&[]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(setup.ran(), 2);
}

#[test]
fn with_if_held_fail_the_other_run_exits_3() {
    let setup = Setup::new("{ name: nightly, if_held: fail }", 3);
    let (winner, loser) = race(&setup, &[]);
    assert_eq!(winner.code, 0, "{}{}", winner.stdout, winner.stderr);
    assert_eq!(loser.code, 3, "{}{}", loser.stdout, loser.stderr);
    assert!(
        loser.stderr.contains("error: once nightly: held by ")
            && loser.stderr.contains("nothing from here on was run"),
        "{}",
        loser.stderr
    );
    assert_eq!(setup.ran(), 1, "the job ran twice");
}

/// `--once NAME` locks the whole run, on the first host of the first play.
#[test]
fn a_whole_run_is_once_with_the_flag() {
    let setup = Setup::new("", 3);
    assert!(
        !std::fs::read_to_string(&setup.playbook)
            .unwrap()
            .contains("once")
    );
    let (winner, loser) = race(&setup, &["--once", "nightly-run", "--once-if-held", "fail"]);
    assert_eq!(winner.code, 0, "{}{}", winner.stdout, winner.stderr);
    assert_eq!(loser.code, 3, "{}{}", loser.stdout, loser.stderr);
    assert!(
        loser.stderr.contains("error: once nightly-run: held by "),
        "{}",
        loser.stderr
    );
    assert!(!loser.stdout.contains("PLAY ["), "{}", loser.stdout);
    assert_eq!(setup.ran(), 1, "the job ran twice");
    assert!(
        !setup.lock("nightly-run").exists(),
        "the lock outlived its run"
    );
    assert!(
        setup
            .audit("nightly-run")
            .contains("once nightly-run: released"),
        "{}",
        setup.audit("nightly-run")
    );
    let bad = setup.run(&["--once", "../x"]);
    assert_eq!(bad.code, 3, "{}{}", bad.stdout, bad.stderr);
    assert!(
        bad.stderr.contains("must be a plain name"),
        "{}",
        bad.stderr
    );
    assert_eq!(setup.ran(), 1);
}

#[test]
fn a_killed_holder_is_taken_over_only_after_stale_after() {
    let setup = Setup::new("{ name: nightly, stale_after: 5s }", 8);
    let mut holder = setup.spawn(&[]);
    let started = setup.fleet.host_path(1, "/srv/started");
    wait_until("the job to start on h1", TIMEOUT, || started.exists());
    let line = std::fs::read_to_string(setup.lock("nightly").join("holder")).unwrap();
    holder.run_id();
    holder.kill_hard();
    let killed = Instant::now();

    // Right after the kill the lock was renewed moments ago: still held.
    let early = setup.run(&[]);
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "the machine is too slow for this test's timing"
    );
    assert_eq!(early.code, 0, "{}{}", early.stdout, early.stderr);
    assert!(
        early
            .notes()
            .iter()
            .any(|n| n.starts_with("once nightly: held by ") && n.ends_with("; skipped")),
        "{}",
        early.stdout
    );
    // (The killed run's own job goes on on h1: only convoy died.)
    assert!(!early.stdout.contains("changed: [h1]"), "{}", early.stdout);

    // --check looks and takes nothing.
    let check = setup.run(&["--check"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert!(
        check
            .notes()
            .iter()
            .any(|n| n.starts_with("once nightly: held by ") && n.contains("--check takes nothing")),
        "{}",
        check.stdout
    );
    assert_eq!(
        std::fs::read_to_string(setup.lock("nightly").join("holder")).unwrap(),
        line,
        "--check changed the lock"
    );
    assert!(!setup.audit("nightly").contains("taken over"));

    // Past stale_after without renewal: taken over, said and audited.
    std::thread::sleep(Duration::from_secs(6).saturating_sub(killed.elapsed()));
    let late = setup.run(&[]);
    assert_eq!(late.code, 0, "{}{}", late.stdout, late.stderr);
    assert!(
        late.notes()
            .iter()
            .any(|n| n.starts_with("once nightly: taken over from ") && n.contains("last renewed")),
        "{}",
        late.stdout
    );
    assert!(late.stdout.contains("changed: [h1]"), "{}", late.stdout);
    let audit = setup.audit("nightly");
    let run_id = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("run="))
        .unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("once nightly: taken over from ") && l.contains(run_id)),
        "{audit}"
    );
    assert!(!setup.lock("nightly").exists(), "the lock outlived its run");
}

#[test]
fn a_lock_name_that_is_not_a_plain_name_is_refused_at_load() {
    let setup = Setup::new("\"../x\"", 0);
    let run = setup.run(&[]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("the lock name \"../x\" must be a plain name")
            && run.stderr.contains("once.yml:3:"),
        "{}",
        run.stderr
    );
    assert!(
        !setup.fleet.host_path(1, "/srv/once").exists()
            && !setup.fleet.host_path(1, "/srv/x").exists(),
        "a host was touched"
    );
}

/// An operator: a local user on a machine of its own name (a UTS
/// namespace, as a second cron machine would be), with its own HOME,
/// project directory, copy of the fleet's key, ssh config, known_hosts and
/// inventory. The lock holder's identity is `user@machine`, so two of
/// these with different users and machine names are two identities.
struct Operator {
    user: &'static str,
    machine: &'static str,
    dir: tempfile::TempDir,
}

impl Operator {
    fn new(setup: &Setup, user: &'static str, machine: &'static str) -> Operator {
        let dir = workdir();
        let fleet_dir = setup.fleet.dir().display().to_string();
        let own = dir.path().display().to_string();
        std::fs::copy(
            setup.fleet.dir().join("id_ed25519"),
            dir.path().join("id_ed25519"),
        )
        .unwrap();
        std::fs::copy(setup.fleet.known_hosts(), dir.path().join("known_hosts")).unwrap();
        let config = std::fs::read_to_string(setup.fleet.ssh_config())
            .unwrap()
            .replace(&fleet_dir, &own);
        write_file(dir.path(), "ssh_config", &config);
        let inventory = std::fs::read_to_string(&setup.inventory).unwrap().replace(
            &setup.fleet.ssh_config().display().to_string(),
            &format!("{own}/ssh_config"),
        );
        write_file(dir.path(), "inventory.yml", &inventory);
        std::fs::copy(&setup.playbook, dir.path().join("once.yml")).unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        let chown = std::process::Command::new("chown")
            .args(["-R", &format!("{user}:"), &own])
            .status()
            .unwrap();
        assert!(chown.success());
        Operator { user, machine, dir }
    }

    /// `convoy run once.yml` as this operator, on its machine.
    fn spawn(&self) -> Spawned {
        let own = self.dir.path();
        let mut cmd = std::process::Command::new("unshare");
        cmd.args([
            "--uts",
            "--",
            "sh",
            "-c",
            r#"hostname "$1" && shift && exec "$@""#,
            "sh",
        ])
        .arg(self.machine)
        .args([
            "setpriv",
            &format!("--reuid={}", self.user),
            &format!("--regid={}", self.user),
            "--clear-groups",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_convoy"))
        .args(["run", "once.yml", "-i", "inventory.yml"])
        .env_clear()
        .env("PATH", support::CLEAN_PATH)
        .env("HOME", own.join("home"))
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .current_dir(own);
        Spawned::command(cmd)
    }

    fn identity(&self) -> String {
        format!("{}@{}", self.user, self.machine)
    }
}

#[test]
fn of_two_operators_started_together_one_runs_and_the_other_names_it() {
    let setup = Setup::new("nightly", 3);
    // Two identities: root on cron-a, and the fleet's non-root local user
    // `convoy` on cron-b; both log in to the lock host as root.
    let a = Operator::new(&setup, "root", "cron-a");
    let b = Operator::new(&setup, "convoy", "cron-b");
    let started = Instant::now();
    let (ra, rb) = (a.spawn(), b.spawn());
    let (ra, rb) = (ra.finish(TIMEOUT), rb.finish(TIMEOUT));
    let took = started.elapsed();
    let ran = |r: &Run| r.stdout.contains("changed: [h1]");
    assert!(
        ran(&ra) != ran(&rb),
        "exactly one operator should have run the job:\n--- a ---\n{}{}\n--- b ---\n{}{}",
        ra.stdout,
        ra.stderr,
        rb.stdout,
        rb.stderr
    );
    let ((winner, won_by), (loser, _)) = if ran(&ra) {
        ((ra, &a), (rb, &b))
    } else {
        ((rb, &b), (ra, &a))
    };
    assert_eq!(winner.code, 0, "{}{}", winner.stdout, winner.stderr);
    assert_eq!(loser.code, 0, "{}{}", loser.stdout, loser.stderr);
    assert_eq!(setup.ran(), 1, "the job ran twice");
    // The loser names the winner's identity and when it took the lock.
    let note = loser
        .notes()
        .into_iter()
        .find(|n| n.starts_with("once nightly: held by "))
        .unwrap_or_else(|| panic!("no `held by` note:\n{}{}", loser.stdout, loser.stderr));
    let holder = format!("once nightly: held by {} (pid ", won_by.identity());
    assert!(note.starts_with(&holder), "{note} does not name {holder}");
    assert!(
        note.contains(" since 20") && note.ends_with("; skipped"),
        "{note}"
    );
    assert!(!loser.stdout.contains("[h2]"), "{}", loser.stdout);
    // The run it names is the winner's: the lock host's audit log records
    // that run's release, and the winner's journal is that run's.
    let run_id = note
        .split("run ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .unwrap_or_else(|| panic!("no run id in {note}"));
    assert!(
        setup
            .audit("nightly")
            .contains(&format!("run={run_id} once nightly: released")),
        "{}",
        setup.audit("nightly")
    );
    assert!(
        won_by
            .dir
            .path()
            .join(format!(".convoy/runs/{run_id}.jsonl"))
            .exists(),
        "{run_id} is not {}'s run",
        won_by.identity()
    );
    assert!(!setup.lock("nightly").exists(), "the lock outlived its run");
    eprintln!(
        "figures: once: {} ran, the other was skipped; both done in {took:?}",
        won_by.identity()
    );
}
