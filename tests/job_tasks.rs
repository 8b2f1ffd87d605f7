//! `job: {tasks: …}` on a real fleet: a task list run once per target by
//! convoy's task engine, claimed and recorded on the hosts. Counted on the
//! hosts (a line appended per run of a target's list), not from convoy's
//! output: each list ran once; after a SIGKILL mid-run a plain resume runs
//! no list twice, the targets killed mid-list are `lost`, and
//! `--retry-failed` runs exactly those again; a failing task is reported
//! with its name and message while the other targets finish.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::run::{Run, run_in};
use support::spawned::Spawned;
use support::{Fleet, workdir, write_file};

fn inventory(fleet: &Fleet, dir: &Path) -> PathBuf {
    let mut yaml = format!(
        "all:\n  vars:\n    convoy_ssh_config: {}\n  children:\n    db:\n      hosts:\n",
        fleet.ssh_config().display()
    );
    for i in fleet.hosts() {
        yaml.push_str(&format!(
            "        {}:\n          ansible_host: {}\n",
            fleet.name(i),
            fleet.addr(i)
        ));
    }
    write_file(dir, "inventory.yml", &yaml)
}

fn job(dir: &Path, inventory: &Path, args: &[&str]) -> Run {
    let mut all: Vec<&str> = vec!["job"];
    all.extend(args);
    all.extend(["-i", inventory.to_str().unwrap()]);
    run_in(dir, &all)
}

fn run_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.split(" NOTE job run ").nth(1))
        .and_then(|rest| rest.split([':', ' ']).next())
        .unwrap_or_else(|| panic!("no `NOTE job run` line in:\n{stdout}"))
        .to_owned()
}

/// `job status RUN`: "HOST TARGET" -> (state, output lines), and the totals.
fn status(
    dir: &Path,
    inventory: &Path,
    run: &str,
) -> (BTreeMap<String, (String, Vec<String>)>, Value) {
    let r = job(dir, inventory, &["status", run, "--output", "json"]);
    let v: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("status is not JSON ({e}):\n{}", r.dump()));
    let mut states = BTreeMap::new();
    for t in v["targets"].as_array().unwrap() {
        states.insert(
            format!(
                "{} {}",
                t["host"].as_str().unwrap(),
                t["target"].as_str().unwrap()
            ),
            (
                t["state"].as_str().unwrap().to_owned(),
                t["output"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l.as_str().unwrap().to_owned())
                    .collect(),
            ),
        );
    }
    (states, v["totals"].clone())
}

fn host_lines(fleet: &Fleet, i: usize, path: &str) -> Vec<String> {
    std::fs::read_to_string(fleet.host_path(i, path))
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("t{i:03}")).collect()
}

/// A task list per target: a directory, a file written with the target's
/// name (`copy`), a line appended to the target's counting file, a pause
/// of `sleep` seconds (where a kill lands mid-list), then `fail_on` fails.
fn task_job(name: &str, n: usize, sleep: &str, concurrency: &str, fail_on: &str) -> String {
    format!(
        r#"- name: per target
  hosts: db
  job:
    name: {name}
    targets: [{targets}]
    concurrency: {concurrency}
    tasks:
      - name: state dir
        file: {{ path: /srv/jt, state: directory }}
      - name: write the target's file
        copy:
          content: "{{{{ target }}}} on {{{{ inventory_hostname }}}}\n"
          dest: "/srv/jt/{{{{ target }}}}.out"
      - name: count
        shell: echo {{{{ inventory_hostname }}}} >> /srv/jt/{{{{ target }}}}.count
      - name: pause
        shell: sleep {sleep}
      - name: refuse {fail_on}
        shell: "if [ {{{{ target }}}} = {fail_on} ]; then echo no way for {{{{ target }}}} >&2; exit 9; fi"
"#,
        targets = names(n).join(", ")
    )
}

#[test]
fn each_targets_task_list_runs_once_and_a_failing_task_is_reported_by_name() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let inv = inventory(&fleet, work.path());
    write_file(
        work.path(),
        "job.yml",
        &task_job("listed", 30, "0", "{ per_host: 4, total: 6 }", "t007"),
    );
    let r = job(work.path(), &inv, &["run", "job.yml"]);
    assert_eq!(r.code, 2, "one target failed:\n{}", r.dump());
    for i in fleet.hosts() {
        for t in names(30) {
            assert_eq!(
                host_lines(&fleet, i, &format!("/srv/jt/{t}.count")),
                [fleet.name(i)],
                "h{i} {t}: its list must have run exactly once"
            );
            assert_eq!(
                host_lines(&fleet, i, &format!("/srv/jt/{t}.out")),
                [format!("{t} on {}", fleet.name(i))]
            );
        }
    }
    let id = run_id(&r.stdout);
    let (states, totals) = status(work.path(), &inv, &id);
    assert_eq!(
        (totals["done"].as_u64(), totals["failed"].as_u64()),
        (Some(58), Some(2)),
        "{states:?}"
    );
    for i in fleet.hosts() {
        let (state, output) = &states[&format!("{} t007", fleet.name(i))];
        assert_eq!(state, "failed");
        assert_eq!(output[0], "failed task: refuse t007", "{output:?}");
        assert!(
            output.iter().any(|l| l.contains("no way for t007")),
            "the task's message is in the record: {output:?}"
        );
    }
    // A plain resume runs nothing again; the failed ones stay failed.
    let again = job(work.path(), &inv, &["resume", &id]);
    assert_eq!(again.code, 2, "{}", again.dump());
    for i in fleet.hosts() {
        for t in names(30) {
            assert_eq!(
                host_lines(&fleet, i, &format!("/srv/jt/{t}.count")).len(),
                1
            );
        }
    }
}

#[test]
fn a_sigkilled_controller_mid_list_leaves_lost_targets_that_only_retry_failed_runs_again() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let inv = inventory(&fleet, work.path());
    write_file(
        work.path(),
        "job.yml",
        &task_job("killed", 30, "1.5", "{ per_host: 3, total: 6 }", "none"),
    );
    let mut run = Spawned::start(
        Some(work.path()),
        &["job", "run", "job.yml", "-i", inv.to_str().unwrap()],
    );
    let id = run_id(
        &run.wait_for_line("the run id", Duration::from_secs(30), |l| {
            l.contains(" NOTE job run ")
        }),
    );
    run.wait_for_line("a target done", Duration::from_secs(60), |l| {
        l.contains(" done h")
    });
    run.kill_hard();
    for i in fleet.hosts() {
        fleet.kill_sessions(i);
    }
    let count = |i: usize, t: &str| host_lines(&fleet, i, &format!("/srv/jt/{t}.count")).len();
    let before: BTreeMap<(usize, String), usize> = fleet
        .hosts()
        .flat_map(|i| names(30).into_iter().map(move |t| (i, t)))
        .map(|(i, t)| {
            let n = count(i, &t);
            ((i, t), n)
        })
        .collect();
    let (states, _) = status(work.path(), &inv, &id);
    let lost: Vec<String> = states
        .iter()
        .filter(|(_, s)| s.0 == "lost")
        .map(|(k, _)| k.clone())
        .collect();
    assert!(
        !lost.is_empty(),
        "nothing was mid-list at the kill: {states:?}"
    );
    assert!(
        states
            .values()
            .all(|s| ["done", "lost", "pending"].contains(&s.0.as_str())),
        "{states:?}"
    );

    // A plain resume: the pending ones run, the lost ones do not.
    let r = job(work.path(), &inv, &["resume", &id]);
    assert_eq!(r.code, 2, "the lost targets fail the resume:\n{}", r.dump());
    let (states, totals) = status(work.path(), &inv, &id);
    assert_eq!(
        totals["lost"].as_u64(),
        Some(lost.len() as u64),
        "{states:?}"
    );
    assert_eq!(totals["done"].as_u64(), Some(60 - lost.len() as u64));
    for i in fleet.hosts() {
        for t in names(30) {
            let key = format!("{} {t}", fleet.name(i));
            let was = before[&(i, t.clone())];
            if lost.contains(&key) {
                assert_eq!(
                    count(i, &t),
                    was,
                    "{key} was lost: not run by a plain resume"
                );
                assert!(was <= 1, "{key} ran {was} times before the kill");
            } else {
                assert_eq!(count(i, &t), 1, "{key} ran {} times", count(i, &t));
            }
        }
    }

    // --retry-failed runs the lost ones (their whole list) and nothing else.
    let r = job(work.path(), &inv, &["resume", &id, "--retry-failed"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let (states, totals) = status(work.path(), &inv, &id);
    assert_eq!(totals["done"].as_u64(), Some(60), "{states:?}");
    for i in fleet.hosts() {
        for t in names(30) {
            let key = format!("{} {t}", fleet.name(i));
            let want = if lost.contains(&key) {
                before[&(i, t.clone())] + 1
            } else {
                1
            };
            assert_eq!(count(i, &t), want, "{key}");
        }
    }
}

#[test]
fn retries_rerun_the_whole_list_and_timeout_bounds_each_attempt() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let inv = inventory(&fleet, work.path());
    // flaky: its second task fails on the first attempt only; slow: its
    // second task outlives the timeout on every attempt.
    write_file(
        work.path(),
        "job.yml",
        r#"- hosts: db
  job:
    name: attempts
    targets: [flaky, slow, fine]
    concurrency: 3
    timeout: 3s
    retries: 1
    delay: 1s
    tasks:
      - name: count
        shell: mkdir -p /srv/at && echo x >> /srv/at/{{ target }}
      - name: work
        shell: |
          case {{ target }} in
            flaky) if [ -e /srv/at/flaky.seen ]; then exit 0; fi; touch /srv/at/flaky.seen; echo first try >&2; exit 1 ;;
            slow) sleep 30 ;;
          esac
"#,
    );
    let r = job(work.path(), &inv, &["run", "job.yml"]);
    assert_eq!(r.code, 2, "{}", r.dump());
    let (states, _) = status(work.path(), &inv, &run_id(&r.stdout));
    let attempts = |t: &str| host_lines(&fleet, 1, &format!("/srv/at/{t}")).len();
    assert_eq!(states["h1 flaky"].0, "done", "{states:?}");
    assert_eq!(states["h1 fine"].0, "done");
    assert_eq!(states["h1 slow"].0, "failed");
    assert_eq!(
        states["h1 slow"].1,
        ["timed out after 3s (the task list's attempt was cut off)"]
    );
    // Each attempt ran the list from its first task.
    assert_eq!(
        (attempts("flaky"), attempts("slow"), attempts("fine")),
        (2, 2, 1)
    );
}

/// A bad playbook is refused at load (exit 3) with its place, and no host
/// is tried (the inventory's one host does not exist).
fn refused(playbook: &str) -> String {
    let work = workdir();
    write_file(work.path(), "job.yml", playbook);
    let inv = write_file(
        work.path(),
        "inventory.yml",
        "all:\n  children:\n    db:\n      hosts:\n        nowhere:\n          ansible_host: 127.0.0.1\n          ansible_port: 1\n",
    );
    let r = job(work.path(), &inv, &["run", "job.yml"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        !work.path().join(".convoy").exists(),
        "a run file was written"
    );
    r.stderr
}

#[test]
fn bad_task_lists_are_refused_at_load_with_file_line_and_column() {
    let head = "- hosts: db\n  job:\n    name: j\n    targets: [a]\n";
    let cases: &[(&str, &str)] = &[
        (
            "    run: echo\n    tasks:\n      - shell: echo {{ target }}\n",
            "error: a job has either `tasks` (a task list per target) or `run` (one command per target), not both\n  --> job.yml:7:7\n",
        ),
        (
            "    concurrency: 2\n",
            "error: a job needs `run` (a command per target, `{{ target }}` is the target), `tasks` (a task list per target) or `converters`\n  --> job.yml:3:5\n",
        ),
        (
            "    tasks:\n      - name: nope\n        no_such_module: { x: 1 }\n",
            "error: unknown key `no_such_module` in task: neither a task keyword nor a module\n  --> job.yml:7:9\n",
        ),
        (
            "    tasks: []\n",
            "error: `job.tasks` is empty: a task list needs at least one task\n  --> job.yml:5:12\n",
        ),
        (
            "    tasks:\n      - shell: echo {{ target }}\n    success: { output_contains: OK }\n",
            "error: `job.success` is for `run` (it judges a command's exit code and output); a task list succeeds when none of its tasks failed (use `failed_when` on a task)\n  --> job.yml:7:14\n",
        ),
    ];
    for (rest, want) in cases {
        let playbook = format!("{head}{rest}");
        let stderr = refused(&playbook);
        assert!(
            stderr.contains(want),
            "for\n{playbook}\nwanted {want:?} in:\n{stderr}"
        );
    }
}
