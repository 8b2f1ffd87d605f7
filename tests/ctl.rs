//! `convoy ctl RUN pause|continue|stop|rollback` and `convoy runs` against a
//! rollout running in the background on a real fleet: three hosts, one per
//! batch, each switch hook slowed down so that there is time to act. Every
//! test checks where the hosts' `current` symlinks point, not only what
//! convoy says.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use support::project::Project;
use support::run::{Journal, Run, run_in};
use support::spawned::{Spawned, wait_until};
use support::tarball::release_tar_gz;
use support::{Fleet, workdir, write_file};

/// Seconds each switch hook sleeps (after touching /srv/in-switch-<version>):
/// time for `convoy ctl` to arrive while the batch is in flight, on a busy CI.
const SLOW: &str = "3";

/// The distribution of `hello`, one host per batch; the switch hook sleeps
/// `/srv/slow` seconds when that file exists.
const PLAYBOOK: &str = r#"- name: Deploy hello
  hosts: app
  vars: { version: "1.0.0" }
  distribution:
    name: hello
    version: "{{ version }}"
    source: "dist/hello-{{ version }}.tar.gz"
    strip_components: 0
    root: /srv/hello
  rollout:
    batch: 1
  hooks:
    switch:
      - name: slow switch
        shell: |
          if [ -e /srv/slow ]; then touch "/srv/in-switch-{{ release.version }}"; sleep "$(cat /srv/slow)"; fi
"#;

/// A fleet of 3 on 1.0.0 with slow switch hooks, and 2.0.0 ready to ship.
fn project() -> Project {
    let fleet = Fleet::start(3);
    let work = workdir();
    let mut inventory = format!(
        "all:\n  vars:\n    convoy_ssh_config: {}\n  children:\n    app:\n      hosts:\n",
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
    let playbook = write_file(work.path(), "deploy.yml", PLAYBOOK);
    write_file(work.path(), "dist/.keep", "");
    for v in ["1.0.0", "2.0.0"] {
        std::fs::write(
            work.path().join(format!("dist/hello-{v}.tar.gz")),
            release_tar_gz(v, 0),
        )
        .unwrap();
    }
    let p = Project {
        fleet,
        work,
        playbook,
        inventory,
        in_dir: true,
    };
    p.deploy_ok("1.0.0", &[]);
    for i in p.fleet.hosts() {
        p.touch(i, "slow", SLOW);
    }
    p
}

/// Host i's `current` names `releases/<version>`, a complete release.
fn assert_current(p: &Project, i: usize, version: &str) {
    assert_eq!(
        p.current(i).as_deref(),
        Some(format!("releases/{version}").as_str()),
        "h{i}: where current points"
    );
    let v = std::fs::read_to_string(p.path(i, "current/VERSION"))
        .unwrap_or_else(|e| panic!("h{i}: current/VERSION: {e}"));
    assert_eq!(v, format!("{version}\n"), "h{i}: current/VERSION");
}

/// Starts the deploy of 2.0.0 in the background; its run id.
fn spawn_deploy(p: &Project) -> (Spawned, String) {
    let args = p.args("run", &["-e", "version=2.0.0"]);
    let mut run = Spawned::start(Some(p.dir()), &args);
    let id = run.run_id();
    (run, id)
}

/// Waits until host i's switch hook to 2.0.0 has started.
fn wait_in_switch(p: &Project, i: usize) {
    wait_until(
        &format!("h{i}'s switch hook"),
        Duration::from_secs(60),
        || p.srv(i, "in-switch-2.0.0").exists(),
    );
}

/// `convoy ctl ID COMMAND` from the project directory.
fn ctl(p: &Project, id: &str, command: &str) -> Run {
    run_in(p.dir(), &["ctl", id, command])
}

/// `convoy runs --output json` from the project directory: run id -> the run.
fn runs(p: &Project) -> Vec<Value> {
    let r = run_in(p.dir(), &["runs", "--output", "json"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let doc: Value =
        serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", r.dump()));
    doc["runs"].as_array().unwrap().clone()
}

fn run_entry(runs: &[Value], id: &str) -> Value {
    runs.iter()
        .find(|r| r["run_id"] == id)
        .unwrap_or_else(|| panic!("run {id} not listed: {runs:?}"))
        .clone()
}

/// The `control` events of a journal: (command, done, answer).
fn control_events(j: &Journal) -> Vec<(String, bool, String)> {
    j.of("control")
        .iter()
        .map(|e| {
            (
                e["command"].as_str().unwrap().to_owned(),
                e["done"].as_bool().unwrap(),
                e["answer"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn journal_path(p: &Project, id: &str) -> PathBuf {
    p.dir().join(format!(".convoy/runs/{id}.jsonl"))
}

#[test]
fn pause_lets_batch_1_settle_then_nothing_switches_until_continue() {
    let p = project();
    let (run, id) = spawn_deploy(&p);
    wait_in_switch(&p, 1);

    // Answers once batch 1 has settled: its hook (2 s) and its switch are done.
    let paused = ctl(&p, &id, "pause");
    assert_eq!(paused.code, 0, "{}", paused.dump());
    assert_eq!(
        paused.stdout.trim(),
        format!("convoy: run {id}: paused after batch 1/3")
    );
    assert_current(&p, 1, "2.0.0");

    let listed = run_entry(&runs(&p), &id);
    assert_eq!(listed["state"], "running", "{listed}");
    assert_eq!(listed["playbook"], p.playbook.to_str().unwrap(), "{listed}");
    assert_eq!(listed["exit_code"], Value::Null, "{listed}");

    // Paused: for longer than a batch takes, nothing else switches.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        for i in 2..=3 {
            assert_eq!(
                p.current(i).as_deref(),
                Some("releases/1.0.0"),
                "h{i} switched while paused"
            );
            assert!(
                !p.srv(i, "in-switch-2.0.0").exists(),
                "h{i}'s switch started while paused"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let again = ctl(&p, &id, "pause");
    assert_eq!(again.code, 3, "{}", again.dump());
    assert!(
        again.stderr.contains("already paused after batch 1/3"),
        "{}",
        again.dump()
    );

    let going = ctl(&p, &id, "continue");
    assert_eq!(going.code, 0, "{}", going.dump());
    assert_eq!(
        going.stdout.trim(),
        format!("convoy: run {id}: continuing with batch 2/3")
    );
    let r = run.finish(Duration::from_secs(90));
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in p.fleet.hosts() {
        assert_current(&p, i, "2.0.0");
        assert_eq!(p.switches_to(i, "2.0.0"), 1, "h{i}: {:?}", p.history(i));
        p.assert_unlocked(i, "after the run");
    }
    assert!(
        r.stdout
            .contains("NOTE convoy ctl pause: paused after batch 1/3"),
        "{}",
        r.dump()
    );
    let j = r.journal();
    assert_eq!(j.outcome(), "completed", "{}", j.dump());
    assert_eq!(
        control_events(&j),
        [
            ("pause".into(), true, "paused after batch 1/3".into()),
            (
                "pause".into(),
                false,
                "already paused after batch 1/3".into()
            ),
            ("continue".into(), true, "continuing with batch 2/3".into()),
        ]
    );
    assert!(
        !journal_path(&p, &id).with_extension("sock").exists(),
        "the control socket outlived the run"
    );

    // Finished: listed with its outcome; ctl says it is not running (exit 3).
    let listed = run_entry(&runs(&p), &id);
    assert_eq!(listed["state"], "completed", "{listed}");
    assert_eq!(listed["exit_code"], 0, "{listed}");
    let late = ctl(&p, &id, "stop");
    assert_eq!(late.code, 3, "{}", late.dump());
    assert_eq!(
        late.stderr.trim(),
        format!("error: run {id} is not running (it ended: completed); nothing to stop")
    );
    // ...and touched nothing: every host is still on the new release.
    for i in p.fleet.hosts() {
        assert_current(&p, i, "2.0.0");
        p.assert_unlocked(i, "after ctl on an ended run");
    }
}

#[test]
fn rollback_in_batch_2_returns_every_switched_host() {
    let p = project();
    let (run, id) = spawn_deploy(&p);
    wait_in_switch(&p, 2);
    let back = ctl(&p, &id, "rollback");
    assert_eq!(back.code, 0, "{}", back.dump());
    assert!(
        back.stdout
            .contains(&format!("run {id}: rolling back after batch 2/3")),
        "{}",
        back.dump()
    );
    let r = run.finish(Duration::from_secs(90));
    // No host failed, but the deploy did not happen: a CI step must not go
    // green on it. It exits as an interrupted run does.
    assert_eq!(r.code, 130, "{}", r.dump());
    for i in p.fleet.hosts() {
        assert_current(&p, i, "1.0.0");
        p.assert_unlocked(i, "after the rollback");
    }
    for i in 1..=2 {
        assert_eq!(p.switches_to(i, "2.0.0"), 1, "h{i}: {:?}", p.history(i));
    }
    assert_eq!(
        p.switches_to(3, "2.0.0"),
        0,
        "h3 switched: {:?}",
        p.history(3)
    );
    let j = r.journal();
    assert_eq!(j.outcome(), "rolled_back", "{}", j.dump());
    assert_eq!(j.of("rollback").len(), 1, "{}", j.dump());
    assert_eq!(control_events(&j).len(), 1, "{}", j.dump());
    let listed = run_entry(&runs(&p), &id);
    assert_eq!(listed["state"], "rolled_back", "{listed}");
    assert_eq!(listed["exit_code"], 130, "{listed}");
}

#[test]
fn stop_in_batch_1_ends_after_it_and_hosts_stay() {
    let p = project();
    let (run, id) = spawn_deploy(&p);
    wait_in_switch(&p, 1);
    let stop = ctl(&p, &id, "stop");
    assert_eq!(stop.code, 0, "{}", stop.dump());
    assert_eq!(
        stop.stdout.trim(),
        format!(
            "convoy: run {id}: stopped after batch 1/3; 2 batch(es) not started, hosts stay where they are"
        )
    );
    let r = run.finish(Duration::from_secs(90));
    // Half the fleet switched: stopped is not a success (no host failed).
    assert_eq!(r.code, 130, "{}", r.dump());
    assert_current(&p, 1, "2.0.0");
    for i in 2..=3 {
        assert_current(&p, i, "1.0.0");
        assert_eq!(p.switches_to(i, "2.0.0"), 0, "h{i}: {:?}", p.history(i));
    }
    for i in p.fleet.hosts() {
        p.assert_unlocked(i, "after the stop");
    }
    assert!(
        r.notes().iter().any(|n| n == "stopped by the operator"),
        "{}",
        r.dump()
    );
    assert_eq!(r.journal().outcome(), "stopped");
}

#[test]
fn ctl_of_an_unknown_run_or_a_killed_one_exits_3() {
    let dir = workdir();
    let r = run_in(dir.path(), &["ctl", "20261201T000000Z-0000", "pause"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert_eq!(
        r.stderr.trim(),
        "error: no run 20261201T000000Z-0000 in .convoy/runs: give the run id printed in `NOTE journal:` (from the project directory) or the journal's path"
    );
    let r = run_in(dir.path(), &["runs"]);
    assert_eq!(
        (r.code, r.stdout.trim()),
        (0, "no runs in .convoy/runs"),
        "{}",
        r.dump()
    );

    // A run killed with SIGKILL leaves its socket: nobody answers on it.
    let p = project();
    let (run, id) = spawn_deploy(&p);
    wait_in_switch(&p, 1);
    run.kill_hard();
    assert!(journal_path(&p, &id).with_extension("sock").exists());
    let r = ctl(&p, &id, "continue");
    assert_eq!(r.code, 3, "{}", r.dump());
    assert_eq!(
        r.stderr.trim(),
        format!(
            "error: run {id} is not running (it ended: without a record of its end); nothing to continue"
        )
    );
    let listed = run_entry(&runs(&p), &id);
    assert_eq!(listed["state"], "ended without a record", "{listed}");
    let text = run_in(p.dir(), &["runs"]);
    let line = text
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{}", text.dump()));
    assert!(line.ends_with("ended without a record  -"), "{line:?}");
    assert!(text.stdout.starts_with("RUN "), "{}", text.dump());
}

/// `convoy ctl` run as `nobody` (uid 65534) with its own HOME.
fn ctl_as_nobody(journal: &Path, command: &str) -> Run {
    let home = workdir();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_convoy"))
        .args(["ctl", journal.to_str().unwrap(), command])
        .env_clear()
        .env("PATH", support::CLEAN_PATH)
        .env("HOME", home.path())
        .current_dir("/")
        .output()
        .unwrap();
    Run::from_output(out)
}

#[test]
fn ctl_from_another_user_is_refused_and_changes_nothing() {
    let p = project();
    let (run, id) = spawn_deploy(&p);
    wait_in_switch(&p, 1);
    let journal = journal_path(&p, &id);
    let socket = journal.with_extension("sock");
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&socket), 0o600, "the control socket's mode");

    // The 0700 run directory keeps other users out.
    let r = ctl_as_nobody(&journal, "stop");
    assert_eq!(r.code, 3, "{}", r.dump());
    assert_eq!(
        r.stderr.trim(),
        format!(
            "error: cannot reach run {id}: permission denied on {}; only the user who started a run may control it",
            socket.display()
        )
    );

    // With every permission loosened, the run itself checks who asks.
    for dir in [
        p.dir().to_owned(),
        p.dir().join(".convoy"),
        p.dir().join(".convoy/runs"),
    ] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let r = ctl_as_nobody(&journal, "stop");
    assert_eq!(r.code, 3, "{}", r.dump());
    assert_eq!(
        r.stderr.trim(),
        format!(
            "error: run {id}: refused: this run belongs to uid 0, and `convoy ctl` came from uid 65534; only the user who started a run may control it"
        )
    );

    let r = run.finish(Duration::from_secs(90));
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in p.fleet.hosts() {
        assert_current(&p, i, "2.0.0");
    }
    let j = r.journal();
    assert_eq!(j.outcome(), "completed", "{}", j.dump());
    let events = j.of("control");
    assert_eq!(events.len(), 1, "{}", j.dump());
    assert_eq!(events[0]["uid"], 65534, "{}", j.dump());
    assert_eq!(events[0]["done"], false, "{}", j.dump());
}

/// A play without `distribution:`, one host per batch (Ansible's `serial`):
/// each task appends a line to /srv/tasks.log after sleeping `/srv/slow`.
const PLAIN_PLAYBOOK: &str = r#"- name: Configure
  hosts: app
  rollout:
    batch: 1
  tasks:
    - name: slow task
      shell: |
        touch /srv/in-task
        sleep "$(cat /srv/slow)"
        echo done >> /srv/tasks.log
"#;

#[test]
fn a_plain_play_pauses_and_stops_but_refuses_rollback() {
    let p = project();
    let plain = write_file(p.dir(), "configure.yml", PLAIN_PLAYBOOK);
    let args = [
        "run",
        plain.to_str().unwrap(),
        "-i",
        p.inventory.to_str().unwrap(),
    ];
    let mut run = Spawned::start(Some(p.dir()), &args);
    let id = run.run_id();
    wait_until("h1's task", Duration::from_secs(60), || {
        p.srv(1, "in-task").exists()
    });
    let paused = ctl(&p, &id, "pause");
    assert_eq!(paused.code, 0, "{}", paused.dump());
    assert!(
        paused.stdout.ends_with("paused after batch 1/3\n"),
        "{}",
        paused.dump()
    );
    let refused = ctl(&p, &id, "rollback");
    assert_eq!(refused.code, 3, "{}", refused.dump());
    assert_eq!(
        refused.stderr.trim(),
        format!(
            "error: run {id}: nothing to roll back: this play has no release (no `distribution:`); still paused"
        )
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(!p.srv(2, "in-task").exists(), "h2's task ran while paused");
    let stop = ctl(&p, &id, "stop");
    assert_eq!(stop.code, 0, "{}", stop.dump());
    let r = run.finish(Duration::from_secs(60));
    assert_eq!(r.code, 130, "{}", r.dump());
    assert_eq!(
        std::fs::read_to_string(p.srv(1, "tasks.log")).unwrap(),
        "done\n"
    );
    for i in 2..=3 {
        assert!(
            !p.srv(i, "tasks.log").exists(),
            "h{i} ran the task after the stop"
        );
    }
    assert_eq!(r.journal().outcome(), "stopped");
}

#[test]
fn ctrl_c_ends_a_paused_run_which_resume_finishes() {
    let p = project();
    let (run, id) = spawn_deploy(&p);
    wait_in_switch(&p, 1);
    let paused = ctl(&p, &id, "pause");
    assert_eq!(paused.code, 0, "{}", paused.dump());
    let asked = Instant::now();
    run.interrupt();
    let r = run.finish(Duration::from_secs(30));
    assert_eq!(r.code, 130, "{}", r.dump());
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "a paused run took {:?} to see Ctrl-C",
        asked.elapsed()
    );
    assert_current(&p, 1, "2.0.0");
    for i in 2..=3 {
        assert_current(&p, i, "1.0.0");
    }
    for i in p.fleet.hosts() {
        p.assert_unlocked(i, "after Ctrl-C");
    }
    assert_eq!(r.journal().outcome(), "interrupted");
    for i in p.fleet.hosts() {
        std::fs::remove_file(p.srv(i, "slow")).unwrap();
    }
    let resumed = run_in(p.dir(), &["resume", &id, "-e", "version=2.0.0"]);
    assert_eq!(resumed.code, 0, "{}", resumed.dump());
    for i in p.fleet.hosts() {
        assert_current(&p, i, "2.0.0");
        assert_eq!(p.switches_to(i, "2.0.0"), 1, "h{i}: {:?}", p.history(i));
    }
}
