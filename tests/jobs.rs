//! `convoy job` on a real fleet, and on a real PostgreSQL server inside a
//! fleet host: targets worked through with per-host concurrency, convoy
//! SIGKILLed mid-run and resumed, every target run exactly once (counted
//! on the hosts and in the database, not from convoy's output), failures
//! reported with their output, `--retry-failed` running only those, state
//! refused when corrupt or another job's, converters group by group.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::postgres::Postgres;
use support::run::{Run, run_in};
use support::spawned::{Spawned, wait_until};
use support::{Fleet, workdir, write_file};

/// An inventory of the fleet's hosts in group `db`.
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

/// `convoy job ARGS… -i INVENTORY` in `dir`.
fn job(dir: &Path, inventory: &Path, args: &[&str]) -> Run {
    let mut all: Vec<&str> = vec!["job"];
    all.extend(args);
    all.extend(["-i", inventory.to_str().unwrap()]);
    run_in(dir, &all)
}

/// The run id a `job run` printed (`NOTE job run RUN: path`).
fn run_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.split(" NOTE job run ").nth(1))
        .and_then(|rest| rest.split([':', ' ']).next())
        .unwrap_or_else(|| panic!("no `NOTE job run` line in:\n{stdout}"))
        .to_owned()
}

/// A target in `job status`: (state, exit code, output lines).
type Shown = (String, Option<i64>, Vec<String>);

/// A bad playbook, the files beside it, and the message it must get.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

/// `job status RUN --output json`: "HOST TARGET" -> its state, and the totals.
fn status(dir: &Path, inventory: &Path, run: &str) -> (BTreeMap<String, Shown>, Value) {
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
                t["exit_code"].as_i64(),
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

/// Lines of `path` on host i (empty when it does not exist).
fn host_lines(fleet: &Fleet, i: usize, path: &str) -> Vec<String> {
    std::fs::read_to_string(fleet.host_path(i, path))
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------- bad input

/// Loads `playbook` (written to a project dir) with an inventory whose only
/// host does not exist: bad input must fail (exit 3) before any connection
/// is tried (an attempt would be exit 4, unreachable).
fn refused(playbook: &str, files: &[(&str, &str)]) -> String {
    let work = workdir();
    for (name, text) in files {
        write_file(work.path(), name, text);
    }
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
fn bad_job_input_is_refused_at_load_with_file_line_and_column() {
    let cases: &[Case] = &[
        (
            "- hosts: db\n  job:\n    name: j\n    targets: []\n    run: echo\n",
            &[],
            "error: `job.targets` is empty: a job needs at least one target\n  --> job.yml:4:14\n",
        ),
        (
            "- hosts: db\n  job:\n    name: j\n    targets: [a, b, a]\n    run: echo\n",
            &[],
            "error: target \"a\" is listed twice (first at job.yml:4:15)\n  --> job.yml:4:21\n",
        ),
        (
            "- hosts: db\n  job:\n    name: j\n    targets_file: tenants.txt\n    run: echo\n",
            &[("tenants.txt", "# tenants\nt1\nt2\n  t1\n")],
            "error: target \"t1\" is listed twice (first at tenants.txt:2:1)\n  --> tenants.txt:4:3\n",
        ),
        (
            "- hosts: db\n  job:\n    name: j\n    targets_file: tenants.txt\n    run: echo\n",
            &[("tenants.txt", "# none yet\n\n")],
            "lists no target: a job needs at least one\n  --> job.yml:4:19\n",
        ),
        (
            "- hosts: db\n  job:\n    name: j\n    targets: [a]\n    run: echo\n    concurrency: 0\n",
            &[],
            "error: `job.concurrency` is a number of targets at once per host (at least 1), or `{ per_host: N, total: M }`\n  --> job.yml:6:18\n",
        ),
        (
            "- hosts: db\n  job:\n    name: j\n    targets: [a]\n    run: echo\n    concurrency: { per_host: 2, total: 0 }\n",
            &[],
            "  --> job.yml:6:18\n",
        ),
        (
            "- hosts: db\n  job:\n    name: j\n    targets: [a]\n    run: echo\n    concurrency: 11\n",
            &[],
            "error: `job.concurrency`: at most 10 targets at once per host: each running target is one ssh session on the host's one connection, and sshd allows 10 per connection (MaxSessions)\n  --> job.yml:6:18\n",
        ),
        (
            "- hosts: db\n  become: true\n  job:\n    name: j\n    targets: [a]\n    run: echo\n",
            &[],
            "error: a play with `job:` takes no `become`: a job runs as the ssh user and has no tags\n  --> job.yml:4:5\n",
        ),
        (
            "- hosts: db\n  tasks:\n    - name: stamp\n      shell: echo {{ target }}\n",
            &[],
            "error: `target` is used here, but it is defined only in a job's `run`, `tasks` and converters (`job:`); this play has no targets\n  --> job.yml:4:14\n",
        ),
        (
            "- hosts: db\n  job:\n    name: j\n    targets: [\"a;rm -rf /\"]\n    run: echo\n",
            &[],
            "error: target \"a;rm -rf /\" holds a character other than letters, digits and `._-:@/`\n  --> job.yml:4:15\n",
        ),
        (
            "- hosts: db\n  job:\n    name: j\n    targets: [a]\n    data: tenants\n    from: \"1.0\"\n    version: \"2.0\"\n    converters:\n      - versions: \">=1.5, <2.0\"\n        run: echo\n      - versions: \">=1.9, <2.1\"\n        run: echo\n",
            &[],
            "error: converter range \">=1.9, <2.1\" overlaps \">=1.5, <2.0\" (at job.yml:9:19): which runs first would be ambiguous; make the ranges adjacent (`>=1.5, <2.0` then `>=2.0, <2.1`)\n  --> job.yml:11:19\n",
        ),
        (
            "- hosts: db\n  job:\n    name: j\n    targets: [a]\n    data: tenants\n    from: \"1.0\"\n    version: \"2.0\"\n    converters:\n      - versions: \">=1.five\"\n        run: echo\n",
            &[],
            "is not a semver range (like \">=1.5.0, <2.0.0\")",
        ),
        (
            "- hosts: db\n  job:\n    name: j\n    targets: [a]\n    run: echo\n    concurency: 2\n",
            &[],
            "error: unknown key `concurency` (did you mean `concurrency`?)\n  --> job.yml:6:5\n",
        ),
    ];
    for (playbook, files, want) in cases {
        let stderr = refused(playbook, files);
        assert!(
            stderr.contains(want),
            "for\n{playbook}\nwanted {want:?} in:\n{stderr}"
        );
    }
}

// ---------------------------------------------------------------- exactly once on a fleet

/// A job on every host of the fleet: `n` targets, each appending one line
/// to /srv/ran/<target> then sleeping `sleep` seconds.
fn counting_job(name: &str, n: usize, sleep: &str, concurrency: &str) -> String {
    let targets: Vec<String> = (1..=n).map(|i| format!("t{i:03}")).collect();
    format!(
        "- name: count\n  hosts: db\n  job:\n    name: {name}\n    targets: [{}]\n    run: mkdir -p /srv/ran /srv/span && date +%s%N >> /srv/span/{{{{ target }}}} && echo {{{{ inventory_hostname }}}} >> /srv/ran/{{{{ target }}}} && sleep {sleep} && date +%s%N >> /srv/span/{{{{ target }}}}\n    concurrency: {concurrency}\n",
        targets.join(", ")
    )
}

#[test]
fn a_sigkilled_controller_never_runs_a_target_twice_and_resume_finishes_the_rest() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let inv = inventory(&fleet, work.path());
    // Staggered (1, 1.5 or 2 s), so that whenever convoy is killed some
    // targets are under way.
    write_file(
        work.path(),
        "job.yml",
        &counting_job(
            "count",
            30,
            "$(case $CONVOY_TARGET in *[147]) echo 1;; *[258]) echo 1.5;; *) echo 2;; esac)",
            "{ per_host: 4, total: 6 }",
        ),
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
    // Killed while targets run: some done, some under way, most pending.
    run.wait_for_line("a target done", Duration::from_secs(30), |l| {
        l.contains(" done h")
    });
    run.kill_hard();
    // And the ssh sessions with it (the master lingers after a SIGKILL):
    // the wrappers are detached from them.
    for i in fleet.hosts() {
        fleet.kill_sessions(i);
    }
    let (states, _) = status(work.path(), &inv, &id);
    let running = states.values().filter(|s| s.0 == "running").count();
    assert!(running > 0, "nothing was running at the kill: {states:?}");

    // Resumed at once: the wrappers of the killed run are still going; the
    // resume waits for them instead of starting their targets again.
    let r = job(work.path(), &inv, &["resume", &id]);
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in fleet.hosts() {
        for t in 1..=30 {
            let lines = host_lines(&fleet, i, &format!("/srv/ran/t{t:03}"));
            assert_eq!(
                lines,
                [fleet.name(i)],
                "h{i} t{t:03} ran {} times",
                lines.len()
            );
        }
    }
    let (states, totals) = status(work.path(), &inv, &id);
    assert_eq!(totals["done"], 60, "{states:?}");
    assert!(states.values().all(|s| s.0 == "done" && s.1 == Some(0)));

    // Never more than 4 at once on a host, 6 over both (the killed run
    // and the resume together): the peak of overlapping spans.
    let mut all = Vec::new();
    for i in fleet.hosts() {
        let spans: Vec<(u128, u128)> = (1..=30)
            .map(|t| {
                let l = host_lines(&fleet, i, &format!("/srv/span/t{t:03}"));
                (l[0].parse().unwrap(), l[1].parse().unwrap())
            })
            .collect();
        assert!(peak(&spans) <= 4, "h{i}: {} at once", peak(&spans));
        all.extend(spans);
    }
    assert!(peak(&all) <= 6, "{} at once over the fleet", peak(&all));
    assert!(
        peak(&all) >= 5,
        "the total bound was not reached: {}",
        peak(&all)
    );
}

/// Most spans open at one instant.
fn peak(spans: &[(u128, u128)]) -> usize {
    let mut edges: Vec<(u128, i32)> = spans
        .iter()
        .flat_map(|(s, e)| [(*s, 1), (*e, -1)])
        .collect();
    edges.sort();
    let (mut now, mut max) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        max = max.max(now);
    }
    max as usize
}

#[test]
fn losing_the_controllers_state_runs_nothing_again() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let inv = inventory(&fleet, work.path());
    write_file(work.path(), "job.yml", &counting_job("lose", 5, "0", "2"));
    let r = job(work.path(), &inv, &["run", "job.yml"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    // The controller's files are gone (another machine, a wiped checkout).
    std::fs::remove_dir_all(work.path().join(".convoy")).unwrap();
    let r = job(work.path(), &inv, &["run", "job.yml"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        r.stdout.contains("5 targets on 1 hosts, 0 to run"),
        "{}",
        r.dump()
    );
    for t in 1..=5 {
        assert_eq!(host_lines(&fleet, 1, &format!("/srv/ran/t{t:03}")).len(), 1);
    }
    // And `job status PLAYBOOK` reads the hosts without any run file.
    let r = job(work.path(), &inv, &["status", "job.yml"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        r.stdout
            .ends_with("5 targets: done=5 failed=0 skipped=0 lost=0 running=0 pending=0\n"),
        "{}",
        r.dump()
    );
}

#[test]
fn corrupt_or_another_jobs_state_is_refused_with_its_path_and_left_as_it_is() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let inv = inventory(&fleet, work.path());
    write_file(
        work.path(),
        "job.yml",
        &counting_job("guarded", 3, "0", "1"),
    );
    let r = job(work.path(), &inv, &["run", "job.yml"]);
    assert_eq!(r.code, 0, "{}", r.dump());

    // A record cut in half (a disk full, a hand edit).
    let record = fleet.host_path(1, "/root/.convoy/jobs/guarded/t/t002.rec");
    std::fs::write(&record, "convoy-job-record 1\njob guarded\noutc").unwrap();
    std::fs::remove_dir_all(fleet.host_path(1, "/srv/ran")).unwrap();
    let r = job(work.path(), &inv, &["run", "job.yml", "--retry-failed"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("error: h1: corrupt job state /root/.convoy/jobs/guarded/t/t002.rec: unreadable line \"outc\"\n  (nothing was started on h1; inspect or move the file aside, then resume)"),
        "{}",
        r.dump()
    );
    assert_eq!(
        std::fs::read_to_string(&record).unwrap(),
        "convoy-job-record 1\njob guarded\noutc"
    );
    assert!(!fleet.host_path(1, "/srv/ran").exists(), "a target ran");
    std::fs::remove_file(&record).unwrap();

    // Another job's directory given as this job's (a copied playbook, renamed job).
    let identity = fleet.host_path(1, "/root/.convoy/jobs/guarded/job");
    std::fs::write(&identity, "convoy-job 1\nname nightly\n").unwrap();
    let r = job(work.path(), &inv, &["run", "job.yml"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("error: h1: job state /root/.convoy/jobs/guarded/job belongs to job `nightly`, not `guarded`"),
        "{}",
        r.dump()
    );
    assert_eq!(
        std::fs::read_to_string(&identity).unwrap(),
        "convoy-job 1\nname nightly\n"
    );
    assert!(!fleet.host_path(1, "/srv/ran").exists(), "a target ran");

    // A run file that is not JSON: refused with its path, left alone.
    std::fs::write(&identity, "convoy-job 1\nname guarded\n").unwrap();
    let runs = work.path().join(".convoy/jobs");
    let file = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&file, "{ not json").unwrap();
    let id = file.file_stem().unwrap().to_str().unwrap().to_owned();
    let r = job(work.path(), &inv, &["resume", &id]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.starts_with(&format!(
            "error: job run state {}: corrupt (",
            file.display()
        )),
        "{}",
        r.dump()
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "{ not json");

    // A run of this job, resumed after the playbook was renamed to another job.
    let r = job(work.path(), &inv, &["run", "job.yml"]);
    let id = run_id(&r.stdout);
    write_file(
        work.path(),
        "job.yml",
        &counting_job("renamed", 3, "0", "1"),
    );
    let r = job(work.path(), &inv, &["resume", &id]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains(&format!(
            "it is a run of job `guarded`, but {} now names job `renamed`",
            work.path().join("job.yml").display()
        )),
        "{}",
        r.dump()
    );
    assert!(!fleet.host_path(1, "/root/.convoy/jobs/renamed").exists());
}

#[test]
fn retries_timeout_success_text_and_skip_codes_decide_each_targets_outcome() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let inv = inventory(&fleet, work.path());
    // flaky fails once then passes; slow outlives its timeout; quiet prints
    // no `OK`; nothing exits 3 (nothing to do).
    write_file(
        work.path(),
        "job.yml",
        r#"- hosts: db
  job:
    name: outcomes
    targets: [flaky, slow, quiet, nothing, fine]
    run: |
      case {{ target }} in
        flaky) if [ -e /srv/flaky ]; then echo OK; else touch /srv/flaky; echo not yet; exit 1; fi ;;
        slow) sleep 30; echo OK ;;
        quiet) echo hmm ;;
        nothing) exit 3 ;;
        *) echo OK ;;
      esac
    timeout: 2s
    retries: 1
    delay: 1s
    concurrency: 5
    success: { exit_codes: [0], skip_codes: [3], output_contains: OK }
"#,
    );
    let r = job(work.path(), &inv, &["run", "job.yml"]);
    assert_eq!(r.code, 2, "{}", r.dump());
    let id = run_id(&r.stdout);
    let (states, totals) = status(work.path(), &inv, &id);
    let state = |t: &str| states[&format!("h1 {t}")].clone();
    assert_eq!(state("flaky").0, "done");
    assert_eq!(state("fine").0, "done");
    assert_eq!(state("nothing").0, "skipped");
    assert_eq!(state("slow").0, "failed");
    assert_eq!(state("slow").1, Some(124));
    assert!(
        state("slow")
            .2
            .contains(&"convoy: timed out after 2s".to_owned()),
        "{states:?}"
    );
    assert_eq!(state("quiet").0, "failed");
    assert!(
        state("quiet")
            .2
            .contains(&"convoy: the output does not contain the success text".to_owned()),
        "{states:?}"
    );
    assert_eq!(
        (
            totals["done"].as_u64(),
            totals["failed"].as_u64(),
            totals["skipped"].as_u64()
        ),
        (Some(2), Some(2), Some(1))
    );
    // The text summary lists what did not end well, with the last output line.
    assert!(
        r.stdout
            .contains("h1    slow    failed  124  2         convoy: timed out after 2s\n"),
        "{}",
        r.dump()
    );
}

// ---------------------------------------------------------------- PostgreSQL

/// 300 tenant schemas, t001..t100 in each of db1, db2, db3, each with an
/// empty `stamp` table.
fn tenants(pg: &Postgres) {
    for db in ["db1", "db2", "db3"] {
        pg.sql("postgres", &format!("create database {db}"));
        pg.sql(
            db,
            "do $$ begin for i in 1..100 loop execute format('create schema t%1$s; create table t%1$s.stamp (job text not null, at timestamptz not null default now())', lpad(i::text, 3, '0')); end loop; end $$",
        );
    }
}

fn stamp_playbook(pg: &Postgres) -> String {
    format!(
        r#"- name: Stamp every tenant
  hosts: h1
  vars:
    psql: {psql}
  job:
    name: stamp-tenants
    targets_command: for d in db1 db2 db3; do {{{{ psql }}}} -d $d -Atc "select '$d/' || nspname from pg_namespace where nspname like 't%' order by 1"; done
    run: |
      db=${{CONVOY_TARGET%%/*}} schema=${{CONVOY_TARGET#*/}}
      {{{{ psql }}}} -d "$db" -c "insert into $schema.stamp (job) values ('stamp-tenants'); select pg_sleep(0.1)"
    concurrency: 8
"#,
        psql = pg.psql()
    )
}

/// Every schema's count of the job's rows, by target (`db/schema`).
fn stamps(pg: &Postgres) -> BTreeMap<String, i64> {
    let mut all = BTreeMap::new();
    for db in ["db1", "db2", "db3"] {
        for (schema, n) in pg.count_per_schema(db, "stamp", "job = ''stamp-tenants''") {
            all.insert(format!("{db}/{schema}"), n);
        }
    }
    all
}

#[test]
fn postgres_300_schemas_sigkill_mid_run_resume_exactly_one_row_each_and_retry_failed_runs_only_the_repaired_one()
 {
    let fleet = Fleet::start(1);
    let pg = Postgres::start(&fleet, 1);
    tenants(&pg);
    // One broken schema: its table is missing.
    pg.sql("db2", "drop table t050.stamp");
    let work = workdir();
    let inv = inventory(&fleet, work.path());
    write_file(work.path(), "stamp.yml", &stamp_playbook(&pg));

    let mut run = Spawned::start(
        Some(work.path()),
        &["job", "run", "stamp.yml", "-i", inv.to_str().unwrap()],
    );
    let id = run_id(
        &run.wait_for_line("the run id", Duration::from_secs(60), |l| {
            l.contains(" NOTE job run ")
        }),
    );
    wait_until("40 targets done", Duration::from_secs(120), || {
        run.stdout()
            .lines()
            .filter(|l| l.contains(" done h1 "))
            .count()
            >= 40
    });
    // What the controller reported done before it died (a bound from below).
    let reported = run
        .stdout()
        .lines()
        .filter(|l| l.contains(" done h1 "))
        .count();
    run.kill_hard();
    let (states, totals) = status(work.path(), &inv, &id);
    assert!(
        totals["pending"].as_u64().unwrap() > 100,
        "killed too late: {totals}"
    );
    let counted = stamps(&pg);
    let stamped = counted.values().filter(|n| **n == 1).count();
    // The wrappers under way at the kill finished and recorded without
    // the controller: the database and the records agree.
    assert_eq!(totals["done"].as_u64(), Some(stamped as u64), "{totals}");
    assert!(
        stamped >= reported,
        "{stamped} stamped, {reported} reported"
    );
    eprintln!(
        "killed after {reported} targets reported done: {} done per status, {stamped} schemas stamped in the database, {} running",
        totals["done"], totals["running"]
    );

    let r = job(work.path(), &inv, &["resume", &id]);
    assert_eq!(r.code, 2, "one target fails: {}", r.dump());
    let counted = stamps(&pg);
    assert_eq!(counted.len(), 299, "the broken schema has no table");
    assert!(
        counted.values().all(|n| *n == 1),
        "not exactly one row per schema: {counted:?}"
    );
    let (states2, totals) = status(work.path(), &inv, &id);
    assert_eq!(
        (
            totals["done"].as_u64(),
            totals["failed"].as_u64(),
            totals["total"].as_u64()
        ),
        (Some(299), Some(1), Some(300))
    );
    // The status agrees with the database, target by target.
    for (key, (state, _, _)) in &states2 {
        let target = key.strip_prefix("h1 ").unwrap();
        let rows = counted.get(target).copied().unwrap_or(0);
        assert_eq!(
            state == "done",
            rows == 1,
            "{target}: {state} but {rows} rows"
        );
    }
    let broken = &states2["h1 db2/t050"];
    assert_eq!(broken.0, "failed");
    assert_ne!(broken.1, Some(0));
    assert!(
        broken
            .2
            .iter()
            .any(|l| l.contains("relation \"t050.stamp\" does not exist")),
        "{broken:?}"
    );
    let _ = states;

    // Repaired, then only that one runs again.
    pg.sql(
        "db2",
        "create table t050.stamp (job text not null, at timestamptz not null default now())",
    );
    let r = job(work.path(), &inv, &["resume", &id, "--retry-failed"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        r.stdout.contains(": 300 targets on 1 hosts, 1 to run"),
        "{}",
        r.dump()
    );
    let counted = stamps(&pg);
    assert_eq!(counted.len(), 300);
    assert!(counted.values().all(|n| *n == 1), "{counted:?}");
    let (_, totals) = status(work.path(), &inv, &id);
    assert_eq!(totals["done"].as_u64(), Some(300));
}

#[test]
fn sigkill_right_after_a_targets_command_ended_never_runs_that_target_again() {
    // The fleet's hosts share this machine's process ids, so target `b`'s
    // own command can SIGKILL the controller as its last act: convoy dies
    // after the command ended and before it heard of it or wrote anything.
    let fleet = Fleet::start(1);
    let work = workdir();
    let inv = inventory(&fleet, work.path());
    write_file(
        work.path(),
        "job.yml",
        r#"- hosts: db
  job:
    name: killer
    targets: [a, b, c]
    run: |
      echo ran >> /srv/ran-{{ target }}
      if [ {{ target }} = a ]; then sleep 1; fi
      if [ {{ target }} = b ]; then kill -9 "$(cat /srv/controller.pid)"; fi
"#,
    );
    let run = Spawned::start(
        Some(work.path()),
        &["job", "run", "job.yml", "-i", inv.to_str().unwrap()],
    );
    std::fs::write(
        fleet.host_path(1, "/srv/controller.pid"),
        run.pid().to_string(),
    )
    .unwrap();
    let out = run.finish(Duration::from_secs(60));
    assert_eq!(out.code, -1, "convoy was not killed: {}", out.dump());
    assert!(!out.stdout.contains(" done h1 b"), "{}", out.dump());
    let id = run_id(&out.stdout);

    let r = job(work.path(), &inv, &["resume", &id]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        r.stdout.contains("done h1 b (recorded before) rc=0"),
        "{}",
        r.dump()
    );
    for t in ["a", "b", "c"] {
        assert_eq!(
            host_lines(&fleet, 1, &format!("/srv/ran-{t}")),
            ["ran"],
            "{t}"
        );
    }
}

#[test]
fn postgres_converters_run_group_by_group_once_per_tenant_crossing_their_range() {
    let fleet = Fleet::start(1);
    let pg = Postgres::start(&fleet, 1);
    pg.sql("postgres", "create database tenants");
    pg.sql(
        "tenants",
        "do $$ begin for i in 1..20 loop execute format('create schema t%1$s; create table t%1$s.conv (step text not null)', lpad(i::text, 2, '0')); end loop; end $$",
    );
    // Tenants are at 1.0 (no record), except t19 (at 1.6: inside the first
    // range already) and t20 (at 2.0: nothing to do).
    let data = fleet.host_path(1, "/root/.convoy/data/tenants");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("t19"), "1.6.0\n").unwrap();
    std::fs::write(data.join("t20"), "2.0.0\n").unwrap();
    let names = |r: std::ops::RangeInclusive<u32>| {
        r.map(|i| format!("t{i:02}")).collect::<Vec<_>>().join(", ")
    };
    let work = workdir();
    let inv = inventory(&fleet, work.path());
    write_file(
        work.path(),
        "convert.yml",
        &format!(
            r#"- name: Convert tenants to 2.0
  hosts: h1
  vars:
    psql: {psql}
  job:
    name: tenants-2.0
    targets: [{all}]
    data: tenants
    from: "1.0"
    version: "2.0"
    converters:
      - versions: ">=2.0, <2.1"
        run: |
          {{{{ psql }}}} -d tenants -c "insert into {{{{ target }}}}.conv values ('2.0')"
      - versions: ">=1.5, <2.0"
        run: |
          {{{{ psql }}}} -d tenants -c "insert into {{{{ target }}}}.conv values ('1.5')"
    groups: [[{g1}], [{g2}]]
    pause: confirm
    concurrency: 4
"#,
            psql = pg.psql(),
            all = names(1..=20),
            g1 = names(1..=10),
            g2 = names(11..=20),
        ),
    );
    let steps = |t: &str| -> Vec<String> {
        pg.sql(
            "tenants",
            &format!("select step from {t}.conv order by ctid"),
        )
        .lines()
        .map(str::to_owned)
        .collect()
    };
    // Group 1, then a stop: `pause: confirm` with no terminal and no --yes.
    let r = job(work.path(), &inv, &["run", "convert.yml"]);
    assert_eq!(r.code, 5, "{}", r.dump());
    assert!(
        r.stdout.contains("NOTE stopped before group 2/2"),
        "{}",
        r.dump()
    );
    let id = run_id(&r.stdout);
    for i in 1..=20 {
        let t = format!("t{i:02}");
        let want: &[&str] = if i <= 10 { &["1.5", "2.0"] } else { &[] };
        assert_eq!(steps(&t), want, "{t} after group 1");
    }
    let (states, _) = status(work.path(), &inv, &id);
    assert_eq!(states["h1 t10"].0, "done");
    assert_eq!(states["h1 t11"].0, "pending");

    // Days later: the resume converts group 2 (group 1 is settled: no pause).
    let r = job(work.path(), &inv, &["resume", &id]);
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in 1..=20 {
        let t = format!("t{i:02}");
        let want: &[&str] = match i {
            19 => &["2.0"],
            20 => &[],
            _ => &["1.5", "2.0"],
        };
        assert_eq!(steps(&t), want, "{t}");
        assert_eq!(
            std::fs::read_to_string(data.join(&t)).unwrap(),
            "2.0.0\n",
            "{t}'s recorded data version"
        );
    }
    let r = job(work.path(), &inv, &["status", &id, "--output", "json"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let t19 = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "t19")
        .unwrap();
    assert_eq!(t19["steps"], serde_json::json!(["2.0.0"]));
    assert_eq!(t19["version"], "2.0.0");
    // Run again: every tenant is recorded, nothing runs.
    let r = job(work.path(), &inv, &["run", "convert.yml"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        r.stdout.contains("20 targets on 1 hosts, 0 to run"),
        "{}",
        r.dump()
    );
}

#[test]
fn convoy_run_refuses_a_job_instead_of_passing_over_it() {
    let work = workdir();
    write_file(
        work.path(),
        "job.yml",
        "- hosts: db\n  job:\n    name: j\n    targets: [a]\n    run: echo\n",
    );
    let inv = write_file(
        work.path(),
        "inventory.yml",
        "all:\n  children:\n    db:\n      hosts:\n        nowhere:\n          ansible_host: 127.0.0.1\n          ansible_port: 1\n",
    );
    let r = run_in(
        work.path(),
        &["run", "job.yml", "-i", inv.to_str().unwrap()],
    );
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.starts_with("error: job `j` runs with `convoy job run PLAYBOOK`, not `convoy run`\n  --> job.yml:3:5\n"),
        "{}",
        r.dump()
    );
}

#[test]
fn lint_renders_a_jobs_commands_for_every_host() {
    let work = workdir();
    write_file(
        work.path(),
        "job.yml",
        "- hosts: db\n  job:\n    name: j\n    targets: [a]\n    run: echo {{ nope }} {{ target }}\n",
    );
    let inv = write_file(
        work.path(),
        "inventory.yml",
        "all:\n  children:\n    db:\n      hosts:\n        nowhere:\n          ansible_host: 127.0.0.1\n          ansible_port: 1\n",
    );
    let r = run_in(
        work.path(),
        &["lint", "job.yml", "-i", inv.to_str().unwrap()],
    );
    assert_eq!(r.code, 3, "{}", r.dump());
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains("error: undefined variable `nope` in job.yml:5:10\n  (job `j` for host nowhere)\n  --> job.yml:5:10\n"),
        "{}",
        r.dump()
    );
}

#[test]
fn the_example_job_playbooks_load() {
    // Loaded and rendered for a host that does not exist: they fail only
    // at connecting (4), never as bad input (3).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = workdir();
    let inv = write_file(
        work.path(),
        "inventory.yml",
        "all:\n  children:\n    db:\n      hosts:\n        nowhere:\n          ansible_host: 127.0.0.1\n          ansible_port: 1\n",
    );
    for playbook in [
        "playbooks/job-stamp-tenants.yml",
        "playbooks/job-convert-tenants.yml",
        "playbooks/job-tenant-dirs.yml",
    ] {
        let r = run_in(
            root,
            &[
                "job",
                "status",
                playbook,
                "-i",
                inv.to_str().unwrap(),
                "--timeout",
                "1s",
            ],
        );
        assert_eq!(r.code, 4, "{playbook}: {}", r.dump());
        assert!(r.stderr.starts_with("error: nowhere: "), "{}", r.dump());
    }
}

#[test]
fn check_limit_targets_and_json_events_per_target() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let inv = inventory(&fleet, work.path());
    write_file(
        work.path(),
        "job.yml",
        "- hosts: db\n  job:\n    name: subset\n    targets: [a1, a2, b1, b2, c1, c2]\n    run: mkdir -p /srv/ran && echo x >> /srv/ran/{{ target }} && echo did {{ target }}\n    concurrency: 3\n",
    );
    // --check: reads the hosts, starts and creates nothing.
    let r = job(work.path(), &inv, &["run", "job.yml", "--check"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        r.stdout
            .contains("NOTE check: 6 targets would run; nothing was started"),
        "{}",
        r.dump()
    );
    assert!(!fleet.host_path(1, "/srv/ran").exists());
    assert!(!fleet.host_path(1, "/root/.convoy/jobs/subset").exists());

    // A subset, with one JSON event per line.
    let r = job(
        work.path(),
        &inv,
        &[
            "run",
            "job.yml",
            "--limit-targets",
            "a*,!a2",
            "--output",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    let events: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["note", "job_start", "target_start", "target_end", "job_end"],
        "{}",
        r.dump()
    );
    assert_eq!(events[1]["to_run"], 1);
    assert_eq!(
        events[3],
        serde_json::json!({"event": "target_end", "host": "h1", "target": "a1", "state": "done",
            "exit_code": 0, "attempts": 1, "seconds": 0, "already": false, "output": ["did a1"]})
    );
    assert_eq!(events[4]["exit_code"], 0);
    assert_eq!(events[4]["totals"]["done"], 1);
    let ran = |t: &str| host_lines(&fleet, 1, &format!("/srv/ran/{t}")).len();
    assert_eq!([ran("a1"), ran("a2"), ran("b1")], [1, 0, 0]);

    // The run's subset is kept by a resume; another one can be given.
    let id = events[0]["message"]
        .as_str()
        .unwrap()
        .split(' ')
        .nth(2)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    let r = job(work.path(), &inv, &["resume", &id]);
    assert!(
        r.stdout.contains("1 targets on 1 hosts, 0 to run"),
        "{}",
        r.dump()
    );
    let r = job(work.path(), &inv, &["resume", &id, "--limit-targets", "*"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        r.stdout.contains("6 targets on 1 hosts, 5 to run"),
        "{}",
        r.dump()
    );
    for t in ["a1", "a2", "b1", "b2", "c1", "c2"] {
        assert_eq!(ran(t), 1, "{t}");
    }
}

#[test]
fn ctrl_c_starts_no_new_target_lets_the_running_one_finish_and_resume_does_the_rest() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let inv = inventory(&fleet, work.path());
    write_file(
        work.path(),
        "job.yml",
        &counting_job("interrupted", 4, "2", "1"),
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
    wait_until("t001 under way", Duration::from_secs(30), || {
        fleet.host_path(1, "/srv/ran/t001").exists()
    });
    run.interrupt();
    let out = run.finish(Duration::from_secs(30));
    assert_eq!(out.code, 130, "{}", out.dump());
    assert!(out.stdout.contains(" done h1 t001 rc=0"), "{}", out.dump());
    assert!(
        out.stdout.contains(
            "JOB END 4 targets: done=1 failed=0 skipped=0 lost=0 running=0 pending=3 (exit 130)"
        ),
        "{}",
        out.dump()
    );
    assert!(!fleet.host_path(1, "/srv/ran/t002").exists());
    let r = job(work.path(), &inv, &["resume", &id]);
    assert_eq!(r.code, 0, "{}", r.dump());
    for t in 1..=4 {
        assert_eq!(host_lines(&fleet, 1, &format!("/srv/ran/t{t:03}")).len(), 1);
    }
}

#[test]
fn two_controllers_at_once_run_each_target_once() {
    // Two operators (two machines, two HOMEs) start the same job at the
    // same moment: the host-side claims let each target start once.
    let fleet = Fleet::start(1);
    let work = workdir();
    let inv = inventory(&fleet, work.path());
    write_file(
        work.path(),
        "job.yml",
        &counting_job("twice", 20, "0.2", "4"),
    );
    let args = ["job", "run", "job.yml", "-i", inv.to_str().unwrap()];
    let first = Spawned::start(Some(work.path()), &args);
    let second = Spawned::start(Some(work.path()), &args);
    let (a, b) = (
        first.finish(Duration::from_secs(60)),
        second.finish(Duration::from_secs(60)),
    );
    assert_eq!((a.code, b.code), (0, 0), "{}\n{}", a.dump(), b.dump());
    for t in 1..=20 {
        assert_eq!(
            host_lines(&fleet, 1, &format!("/srv/ran/t{t:03}")).len(),
            1,
            "t{t:03}"
        );
    }
    // Both report every target done: what one ran, the other waited for.
    for r in [&a, &b] {
        assert!(
            r.stdout.contains("JOB END 20 targets: done=20 failed=0"),
            "{}",
            r.dump()
        );
    }
}

/// On a terminal a job shows a bar that is redrawn while targets run, not
/// only when one ends: 300 targets through a pseudo-terminal (util-linux
/// `script`), one at a time, three of them 1.5 s long, every chunk of
/// output timestamped as it arrives. Between the
/// bar's first and last draw, no second passes without a redraw, the
/// position it shows never goes back and ends at 300/300, and every target
/// ran (counted on the host).
#[test]
fn a_job_over_300_targets_redraws_its_bar_on_a_terminal_at_least_once_per_second() {
    use std::io::Read;
    use std::time::Instant;
    let fleet = Fleet::start(1);
    let work = workdir();
    let inv = inventory(&fleet, work.path());
    write_file(
        work.path(),
        "job.yml",
        // One at a time, three targets taking 1.5 s: no target ends for
        // longer than the second the bar must not stay still.
        &counting_job(
            "bar",
            300,
            "$(case $CONVOY_TARGET in t100|t200|t300) echo 1.5;; *) echo 0.01;; esac)",
            "1",
        ),
    );
    let command = format!(
        "{} job run job.yml -i {}",
        env!("CARGO_BIN_EXE_convoy"),
        inv.display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .current_dir(work.path())
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux script");
    let mut out = child.stdout.take().unwrap();
    let start = Instant::now();
    // (seconds since start, the text of one read)
    let mut chunks: Vec<(f64, String)> = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        chunks.push((
            start.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&buf[..n]).into_owned(),
        ));
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "job still running"
        );
    }
    let status = child.wait().unwrap();
    let all: String = chunks.iter().map(|(_, t)| t.as_str()).collect();
    assert!(status.success(), "exit {status:?}:\n{all}");

    // Each draw of the bar carries "N/300"; the positions drawn, in order.
    let draws: Vec<(f64, u32)> = chunks
        .iter()
        .flat_map(|(at, text)| {
            text.split("/300")
                .filter_map(|before| {
                    let digits: String = before
                        .chars()
                        .rev()
                        .take_while(char::is_ascii_digit)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    digits.parse::<u32>().ok()
                })
                .map(move |pos| (*at, pos))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(draws.len() >= 2, "no bar drawn on the terminal:\n{all}");
    let (first, last) = (draws[0].0, draws[draws.len() - 1].0);
    let mut widest = 0.0f64;
    for pair in draws.windows(2) {
        widest = widest.max(pair[1].0 - pair[0].0);
        assert!(
            pair[1].1 >= pair[0].1,
            "the bar went back from {} to {}",
            pair[0].1,
            pair[1].1
        );
    }
    eprintln!(
        "{} draws over {:.2} s, the widest gap {:.3} s",
        draws.len(),
        last - first,
        widest
    );
    assert!(
        widest < 1.0,
        "{widest:.2} s passed without a redraw of the bar"
    );
    assert_eq!(draws[draws.len() - 1].1, 300, "the last draw:\n{all}");
    assert!(
        last - first > 1.0,
        "the job was too short to judge: {:.2} s",
        last - first
    );
    let ran = fleet.exec_ok(1, "ls /srv/ran | wc -l");
    assert_eq!(ran.trim(), "300", "targets that ran on the host");
}
