//! `rollout:` on a real fleet: batches (canary, percentages, ramps, order),
//! health gates, the failure budget over the whole rollout, fleet-wide
//! rollback or stop, pauses, `convoy plan`, the run journal and audit
//! records, `convoy resume`, the deploy lock, Ctrl-C, migrations and magic
//! rollback. Every test checks the hosts themselves (where `current` points,
//! the switch history, hook logs, locks), not only what convoy prints.
//!
//! The `plan --offline` snapshots need no fleet: their hosts have addresses
//! (10.213.250.x) that are never contacted.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use support::http_server::HttpServer;
use support::project::{Project, ROOT};
use support::run::{run, run_in};
use support::spawned::{Spawned, wait_until};
use support::tarball::release_tar_gz;
use support::{Fleet, workdir, write_file};

// Running convoy in the background: `support::spawned`.

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

// ---------------------------------------------------------------- the project

/// The switch hook appends `switch <release.version> <where current points>
/// <ns since the epoch>` to /srv/hooks.log; files the test drops into /srv
/// slow it down (`/srv/slow`: seconds to sleep, after touching
/// /srv/in-switch-<version>) or ask for the link to be cut (`/srv/cut`:
/// touch /srv/cut-me, sleep 2) or make the host unhealthy a second later
/// (`/srv/flap-after`: touch /srv/flap in the background after 1 s).
const HOOKS: &str = r#"  hooks:
    switch:
      - name: switch marker
        shell: |
          echo "switch {{ release.version }} $(readlink /srv/hello/current) $(date +%s%N)" >> /srv/hooks.log
          if [ -e /srv/cut ]; then touch /srv/cut-me; sleep 2; fi
          if [ -e /srv/slow ]; then touch "/srv/in-switch-{{ release.version }}"; sleep "$(cat /srv/slow)"; fi
          if [ -e /srv/flap-after ]; then (sleep 1; touch /srv/flap) >/dev/null 2>&1 </dev/null & fi
"#;

fn indent(text: &str, n: usize) -> String {
    text.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(n)))
        .collect()
}

/// The playbook: a distribution of `hello`, then `rollout:` (the given
/// lines) and `migrations:` (the given YAML list) when not empty.
fn playbook_text(rollout: &str, migrations: &str) -> String {
    let mut s = String::from(
        r#"- name: Deploy hello
  hosts: app
  vars: { version: "1.0.0" }
  distribution:
    name: hello
    version: "{{ version }}"
    source: "dist/hello-{{ version }}.tar.gz"
    strip_components: 0
    root: /srv/hello
    keep: 5
"#,
    );
    if !rollout.is_empty() {
        s.push_str("  rollout:\n");
        s.push_str(&indent(rollout, 4));
    }
    if !migrations.is_empty() {
        s.push_str("  migrations:\n");
        s.push_str(&indent(migrations, 4));
    }
    s.push_str(HOOKS);
    s
}

/// An inventory: hosts (name, address) in group `app`, in this order, plus
/// extra groups (name, members) at the top level.
fn inventory_text(
    ssh_config: Option<&Path>,
    hosts: &[(String, String)],
    groups: &[(&str, Vec<String>)],
) -> String {
    let mut y = String::from("all:\n  vars:\n    app_name: hello\n");
    if let Some(c) = ssh_config {
        y.push_str(&format!("    convoy_ssh_config: {}\n", c.display()));
    }
    y.push_str("  children:\n    app:\n      hosts:\n");
    for (name, addr) in hosts {
        y.push_str(&format!(
            "        {name}:\n          ansible_host: {addr}\n"
        ));
    }
    for (group, members) in groups {
        y.push_str(&format!("    {group}:\n      hosts:\n"));
        for m in members {
            y.push_str(&format!("        {m}:\n"));
        }
    }
    y
}

impl Project {
    /// A fleet of `n` hosts, an inventory of them in group `app`, and
    /// deploy.yml with the given rollout section.
    fn new(n: usize, rollout: &str) -> Project {
        Self::with(n, rollout, "")
    }

    fn with(n: usize, rollout: &str, migrations: &str) -> Project {
        let fleet = Fleet::start(n);
        let work = workdir();
        let hosts: Vec<(String, String)> = fleet
            .hosts()
            .map(|i| (fleet.name(i), fleet.addr(i)))
            .collect();
        let inventory = write_file(
            work.path(),
            "inventory.yml",
            &inventory_text(Some(&fleet.ssh_config()), &hosts, &[]),
        );
        let playbook = work.path().join("deploy.yml");
        let p = Project {
            fleet,
            work,
            playbook,
            inventory,
            in_dir: true,
        };
        p.write(rollout, migrations);
        p
    }

    fn write(&self, rollout: &str, migrations: &str) {
        std::fs::write(&self.playbook, playbook_text(rollout, migrations)).unwrap();
    }

    /// Writes dist/hello-VERSION.tar.gz.
    fn artifact(&self, version: &str) {
        write_file(self.dir(), "dist/.keep", "");
        std::fs::write(
            self.dir().join(format!("dist/hello-{version}.tar.gz")),
            release_tar_gz(version, 0),
        )
        .unwrap();
    }

    /// Like [`deploy`](Self::deploy), in the background.
    fn spawn_deploy(&self, version: &str, extra: &[&str]) -> Spawned {
        let v = format!("version={version}");
        let mut args = self.args("run", &["-e", v.as_str()]);
        args.extend_from_slice(extra);
        Spawned::start(Some(self.dir()), &args)
    }

    /// `current` names `releases/<version>` and that release is complete.
    fn assert_current(&self, i: usize, version: &str) {
        assert_eq!(
            self.current(i).as_deref(),
            Some(format!("releases/{version}").as_str()),
            "h{i}: where current points"
        );
        let v = std::fs::read_to_string(self.path(i, "current/VERSION"))
            .unwrap_or_else(|e| panic!("h{i}: current/VERSION: {e}"));
        assert_eq!(v, format!("{version}\n"), "h{i}: current/VERSION");
    }
}

/// Brings a host's link back up when dropped (also when the test panics).
struct LinkDown<'a> {
    fleet: &'a Fleet,
    host: usize,
    down: bool,
}

impl LinkDown<'_> {
    fn up(&mut self) {
        if self.down {
            self.fleet.link_up(self.host);
            self.down = false;
        }
    }
}

impl Drop for LinkDown<'_> {
    fn drop(&mut self) {
        if self.down {
            self.fleet.link_up(self.host);
        }
    }
}

// ---------------------------------------------------------------- `convoy plan --offline` (no fleet)

/// A project whose hosts (10.213.250.x) are never contacted.
struct OfflineProject {
    work: tempfile::TempDir,
}

impl OfflineProject {
    fn new(n: usize, rollout: &str, groups: &[(&str, Vec<String>)]) -> OfflineProject {
        let work = workdir();
        let hosts: Vec<(String, String)> = (1..=n)
            .map(|i| (format!("h{i}"), format!("10.213.250.{}", 10 + i)))
            .collect();
        write_file(
            work.path(),
            "inventory.yml",
            &inventory_text(None, &hosts, groups),
        );
        write_file(work.path(), "deploy.yml", &playbook_text(rollout, ""));
        std::fs::create_dir_all(work.path().join("dist")).unwrap();
        std::fs::write(
            work.path().join("dist/hello-2.0.0.tar.gz"),
            release_tar_gz("2.0.0", 0),
        )
        .unwrap();
        OfflineProject { work }
    }

    /// `convoy plan deploy.yml -i inventory.yml -e version=2.0.0 --offline`,
    /// which must succeed; its stdout.
    fn plan(&self) -> String {
        let started = Instant::now();
        let r = run_in(
            self.work.path(),
            &[
                "plan",
                "deploy.yml",
                "-i",
                "inventory.yml",
                "-e",
                "version=2.0.0",
                "--offline",
            ],
        );
        assert_eq!(r.code, 0, "{}", r.dump());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "plan --offline took {:?}: did it try to connect?",
            started.elapsed()
        );
        assert!(
            !self.work.path().join(".convoy/runs").exists()
                || std::fs::read_dir(self.work.path().join(".convoy/runs"))
                    .unwrap()
                    .next()
                    .is_none(),
            "plan wrote a run journal"
        );
        r.stdout
    }
}

/// A host line of a plan: (host, current, new).
type PlanRow = (String, String, String);

/// What `convoy plan` printed: the first line and the batches.
#[derive(Debug)]
struct PlanView {
    header: String,
    /// (canary, [(host, current, new)])
    batches: Vec<(bool, Vec<PlanRow>)>,
}

fn parse_plan(out: &str) -> PlanView {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .next()
        .unwrap_or_else(|| panic!("empty plan"))
        .to_owned();
    assert!(
        header.starts_with("PLAN "),
        "the plan's first line: {header:?}\n{out}"
    );
    let mut batches: Vec<(bool, Vec<PlanRow>)> = Vec::new();
    for line in lines {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("batch ") {
            assert!(
                line.starts_with("  batch "),
                "batch line indent: {line:?}\n{out}"
            );
            let (num, canary) = match rest.split_once(' ') {
                Some((num, "(canary)")) => (num, true),
                None => (rest, false),
                Some(_) => panic!("odd batch line {line:?}\n{out}"),
            };
            let (k, n) = num.split_once('/').unwrap_or_else(|| panic!("{line:?}"));
            assert_eq!(k.parse::<usize>().unwrap(), batches.len() + 1, "{out}");
            let _: usize = n.parse().unwrap();
            batches.push((canary, Vec::new()));
        } else {
            assert!(
                line.starts_with("    "),
                "host line indent: {line:?}\n{out}"
            );
            let w: Vec<&str> = t.split_whitespace().collect();
            assert!(w.len() == 4 && w[2] == "->", "host line {line:?}\n{out}");
            batches
                .last_mut()
                .unwrap_or_else(|| panic!("a host before any batch:\n{out}"))
                .1
                .push((w[0].to_owned(), w[1].to_owned(), w[3].to_owned()));
        }
    }
    // Every batch line says k/N with the same N.
    let n = batches.len();
    for line in out.lines().filter(|l| l.trim().starts_with("batch ")) {
        assert!(
            line.contains(&format!("/{n}")),
            "batch line {line:?} of {n} batches\n{out}"
        );
    }
    PlanView { header, batches }
}

impl PlanView {
    fn hosts(&self) -> Vec<Vec<String>> {
        self.batches
            .iter()
            .map(|(_, hs)| hs.iter().map(|h| h.0.clone()).collect())
            .collect()
    }

    fn all_hosts(&self) -> Vec<String> {
        self.hosts().concat()
    }

    /// Every host offline: `? -> 2.0.0`.
    fn assert_offline(&self) {
        for (_, hs) in &self.batches {
            for (h, cur, new) in hs {
                assert_eq!(
                    (cur.as_str(), new.as_str()),
                    ("?", "2.0.0"),
                    "{h}: {self:#?}"
                );
            }
        }
    }
}

fn names(range: impl IntoIterator<Item = usize>) -> Vec<String> {
    range.into_iter().map(|i| format!("h{i}")).collect()
}

#[test]
fn plan_offline_1_host_canary() {
    let p = OfflineProject::new(1, "canary: 1\nbatch: \"50%\"\n", &[]);
    let out = p.plan();
    let plan = parse_plan(&out);
    assert_eq!(
        plan.header,
        "PLAN Deploy hello: hello 2.0.0 on 1 host(s), 1 batch(es), failure budget 0, on failure rollback"
    );
    assert_eq!(plan.hosts(), vec![names([1])]);
    assert!(plan.batches[0].0, "the first batch is the canary:\n{out}");
    plan.assert_offline();
    insta::assert_snapshot!("plan_offline_1_host_canary", out);
}

#[test]
fn plan_offline_2_hosts_percentage() {
    let p = OfflineProject::new(2, "batch: \"50%\"\nmax_fail: 1\non_failure: stop\n", &[]);
    let out = p.plan();
    let plan = parse_plan(&out);
    assert_eq!(
        plan.header,
        "PLAN Deploy hello: hello 2.0.0 on 2 host(s), 2 batch(es), failure budget 1, on failure stop"
    );
    assert_eq!(plan.hosts(), vec![names([1]), names([2])]);
    assert!(plan.batches.iter().all(|b| !b.0), "no canary:\n{out}");
    plan.assert_offline();
    insta::assert_snapshot!("plan_offline_2_hosts_percentage", out);
}

#[test]
fn plan_offline_7_hosts_canary_then_halves() {
    let p = OfflineProject::new(7, "canary: 1\nbatch: \"50%\"\n", &[]);
    let out = p.plan();
    let plan = parse_plan(&out);
    assert_eq!(
        plan.header,
        "PLAN Deploy hello: hello 2.0.0 on 7 host(s), 3 batch(es), failure budget 0, on failure rollback"
    );
    assert_eq!(plan.batches.len(), 3, "{out}");
    assert!(
        plan.batches[0].0 && !plan.batches[1].0 && !plan.batches[2].0,
        "{out}"
    );
    assert_eq!(plan.hosts()[0], names([1]), "{out}");
    assert_eq!(plan.all_hosts(), names(1..=7), "inventory order:\n{out}");
    plan.assert_offline();
    insta::assert_snapshot!("plan_offline_7_hosts_canary_then_halves", out);
}

#[test]
fn plan_offline_20_hosts_ramp() {
    let p = OfflineProject::new(20, "batch: [1, \"10%\", \"50%\"]\nmax_fail: \"10%\"\n", &[]);
    let out = p.plan();
    let plan = parse_plan(&out);
    assert_eq!(
        plan.header,
        "PLAN Deploy hello: hello 2.0.0 on 20 host(s), 4 batch(es), failure budget 2, on failure rollback"
    );
    let hosts = plan.hosts();
    assert_eq!(hosts.len(), 4, "{out}");
    assert_eq!(hosts[0], names([1]), "{out}");
    assert_eq!(hosts[1], names([2, 3]), "{out}");
    // The last size (50%) repeats: the rest in two batches.
    assert!(hosts[2].len() >= hosts[3].len(), "{out}");
    assert_eq!(plan.all_hosts(), names(1..=20), "{out}");
    assert!(plan.batches.iter().all(|b| !b.0), "no canary:\n{out}");
    plan.assert_offline();
    insta::assert_snapshot!("plan_offline_20_hosts_ramp", out);
}

#[test]
fn plan_offline_20_hosts_group_order() {
    let dc1 = names((1..=20).filter(|i| i % 2 == 1));
    let dc2 = names((1..=20).filter(|i| i % 2 == 0));
    let p = OfflineProject::new(
        20,
        "batch: 5\norder: groups\ngroups: [dc2, dc1]\n",
        &[("dc1", dc1.clone()), ("dc2", dc2.clone())],
    );
    let out = p.plan();
    let plan = parse_plan(&out);
    assert_eq!(
        plan.header,
        "PLAN Deploy hello: hello 2.0.0 on 20 host(s), 4 batch(es), failure budget 0, on failure rollback"
    );
    // dc2 first, then dc1, each in its inventory order.
    assert_eq!(
        plan.hosts(),
        vec![
            dc2[..5].to_vec(),
            dc2[5..].to_vec(),
            dc1[..5].to_vec(),
            dc1[5..].to_vec()
        ],
        "{out}"
    );
    plan.assert_offline();
    insta::assert_snapshot!("plan_offline_20_hosts_group_order", out);
}

#[test]
fn plan_offline_shuffle_prints_its_seed_and_repeats() {
    let p = OfflineProject::new(7, "batch: 3\norder: shuffle\nseed: 42\n", &[]);
    let out = p.plan();
    let plan = parse_plan(&out);
    assert_eq!(
        plan.header,
        "PLAN Deploy hello: hello 2.0.0 on 7 host(s), 3 batch(es), failure budget 0, on failure rollback, shuffle seed 42"
    );
    let sizes: Vec<usize> = plan.hosts().iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 1], "{out}");
    let mut all = plan.all_hosts();
    assert_ne!(
        all,
        names(1..=7),
        "seed 42 left the inventory order:\n{out}"
    );
    all.sort_by_key(|h| h[1..].parse::<usize>().unwrap());
    assert_eq!(all, names(1..=7), "{out}");
    assert_eq!(p.plan(), out, "the same seed gives the same plan");
    plan.assert_offline();
    insta::assert_snapshot!("plan_offline_shuffle_seed_42", out);
}

// ---------------------------------------------------------------- plan online

#[test]
fn plan_shows_real_current_versions_and_changes_nothing() {
    let p = Project::new(3, "canary: 1\nbatch: 1\n");
    for v in ["1.0.0", "1.1.0", "2.0.0"] {
        p.artifact(v);
    }
    p.deploy_ok("1.0.0", &[]);
    p.deploy_ok("1.1.0", &["-l", "h3"]);

    let snapshot = |p: &Project| -> Vec<_> {
        p.fleet
            .hosts()
            .map(|i| {
                let ls = |rel: &str| -> BTreeSet<String> {
                    std::fs::read_dir(p.path(i, rel))
                        .map(|rd| {
                            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                                .collect()
                        })
                        .unwrap_or_default()
                };
                (
                    p.current(i),
                    p.history(i),
                    ls("releases"),
                    ls(".convoy"),
                    ls(".convoy/artifacts"),
                    std::fs::read_to_string(p.srv(i, "hooks.log")).unwrap_or_default(),
                    p.audit(i),
                )
            })
            .collect()
    };
    let before = snapshot(&p);
    let r = p.convoy("plan", &["-e", "version=2.0.0"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let plan = parse_plan(&r.stdout);
    assert_eq!(
        plan.header,
        "PLAN Deploy hello: hello 2.0.0 on 3 host(s), 3 batch(es), failure budget 0, on failure rollback",
        "{}",
        r.dump()
    );
    assert!(plan.batches[0].0, "{}", r.dump());
    let rows: Vec<(String, String, String)> =
        plan.batches.iter().flat_map(|b| b.1.clone()).collect();
    let expected: Vec<(String, String, String)> =
        [("h1", "1.0.0"), ("h2", "1.0.0"), ("h3", "1.1.0")]
            .iter()
            .map(|(h, c)| (h.to_string(), c.to_string(), "2.0.0".to_string()))
            .collect();
    assert_eq!(rows, expected, "{}", r.dump());
    assert_eq!(before, snapshot(&p), "plan changed something on a host");
    for i in p.fleet.hosts() {
        p.assert_unlocked(i, "after plan");
    }
}

// ---------------------------------------------------------------- batches, health, journal

#[test]
fn batches_switch_in_order_with_health_and_pause_json() {
    let rollout = "canary: 1\nbatch: 2\npause: 1s\nhealth:\n  command: \"test -e /srv/hello/current/VERSION\"\n  timeout: 5s\n  interval: 0.2s\n";
    let p = Project::new(5, rollout);
    p.artifact("1.0.0");
    p.artifact("2.0.0");
    p.deploy_ok("1.0.0", &[]);

    let r = p.deploy("2.0.0", &["--output", "json"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in p.fleet.hosts() {
        p.assert_current(i, "2.0.0");
        assert_eq!(p.switches_to(i, "2.0.0"), 1, "h{i}: {:?}", p.history(i));
        p.assert_unlocked(i, "after a completed run");
    }

    // The batch_start events.
    let events = r.events();
    let starts: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "batch_start")
        .collect();
    let expected = [
        (1, vec!["h1"], true),
        (2, vec!["h2", "h3"], false),
        (3, vec!["h4", "h5"], false),
    ];
    assert_eq!(starts.len(), 3, "{}", r.dump());
    for (e, (k, hosts, canary)) in starts.iter().zip(&expected) {
        assert_eq!(e["batch"], *k, "{e}");
        assert_eq!(e["batches"], 3, "{e}");
        assert_eq!(e["hosts"], serde_json::json!(hosts), "{e}");
        assert_eq!(e["canary"], *canary, "{e}");
    }
    // Each host healthy, once.
    for i in p.fleet.hosts() {
        let name = p.fleet.name(i);
        let health: Vec<&Value> = events
            .iter()
            .filter(|e| {
                e["event"] == "host_result" && e["host"] == name.as_str() && e["task"] == "health"
            })
            .collect();
        assert_eq!(health.len(), 1, "{name}: {}", r.dump());
        assert_eq!(health[0]["status"], "ok", "{name}: {}", r.dump());
    }

    // The hosts switched batch after batch, with the pause in between.
    let at = |i: usize| p.switched_at(i, "2.0.0");
    let batch_times = [vec![at(1)], vec![at(2), at(3)], vec![at(4), at(5)]];
    for w in batch_times.windows(2) {
        let (prev_last, next_first) = (*w[0].iter().max().unwrap(), *w[1].iter().min().unwrap());
        assert!(
            next_first > prev_last + 1_000_000_000,
            "a batch started less than the 1s pause after the previous one's switch: {batch_times:?}"
        );
    }

    // The journal and the audit records.
    let j = r.journal();
    j.assert_in_project(p.dir());
    assert_eq!(j.events[0]["event"], "run_start", "{}", j.dump());
    assert_eq!(j.of("batch_start").len(), 3, "{}", j.dump());
    assert_eq!(j.of("batch_end").len(), 3, "{}", j.dump());
    assert!(!j.of("host_result").is_empty(), "{}", j.dump());
    assert!(j.of("rollback").is_empty(), "{}", j.dump());
    assert_eq!(j.outcome(), "completed", "{}", j.dump());
    for i in p.fleet.hosts() {
        p.assert_one_audit_record(i, &j.run_id);
    }
    // run_start carries the plan.
    assert_eq!(
        j.planned_batches(),
        vec![names([1]), names([2, 3]), names([4, 5])],
        "{}",
        j.dump()
    );
}

#[test]
fn health_failing_in_batch_2_rolls_back_batches_1_and_2_only() {
    let rollout = "canary: 1\nbatch: 2\nhealth:\n  command: \"test ! -e /srv/unhealthy\"\n  timeout: 2s\n  interval: 0.2s\n";
    let p = Project::new(5, rollout);
    p.artifact("1.0.0");
    p.artifact("2.0.0");
    p.deploy_ok("1.0.0", &[]);
    p.touch(3, "unhealthy", "");

    let r = p.deploy("2.0.0", &[]);
    assert_eq!(r.code, 2, "{}", r.dump());

    // The hosts: batches 1 and 2 went to 2.0.0 and back, batch 3 never switched.
    for i in p.fleet.hosts() {
        p.assert_current(i, "1.0.0");
        p.assert_unlocked(i, "after a rolled back run");
    }
    for i in 1..=3 {
        assert_eq!(
            p.history(i),
            ["1.0.0", "2.0.0", "1.0.0"],
            "h{i}: switched to 2.0.0 and back"
        );
        let last = p.switch_hooks(i).last().cloned().unwrap();
        assert_eq!(
            last.1, "releases/1.0.0",
            "h{i}: the switch hooks ran for the rollback"
        );
    }
    for i in 4..=5 {
        assert_eq!(p.history(i), ["1.0.0"], "h{i}: a later batch was switched");
        assert!(
            p.switch_hooks(i)
                .iter()
                .all(|(_, cur, _)| cur == "releases/1.0.0"),
            "h{i}: {:?}",
            p.switch_hooks(i)
        );
    }
    // Reverse batch order: batch 2 (h2, h3) went back before batch 1 (h1).
    let back1 = p.switched_at(1, "1.0.0");
    for i in [2, 3] {
        assert!(
            p.switched_at(i, "1.0.0") < back1,
            "h{i} went back after h1: batches roll back last first"
        );
    }

    // What convoy said.
    let batches = r.batch_lines();
    assert_eq!(
        batches,
        ["BATCH 1/3 (canary) [h1]", "BATCH 2/3 [h2, h3]"],
        "{}",
        r.dump()
    );
    assert!(
        !r.result_lines("changed", "h1").is_empty()
            && r.stdout.contains("changed: [h1]: current 1.0.0 -> 2.0.0"),
        "{}",
        r.dump()
    );
    assert!(
        r.result_lines("ok", "h1")
            .iter()
            .any(|l| l.contains("healthy after")),
        "{}",
        r.dump()
    );
    assert!(
        r.result_lines("failed", "h3")
            .iter()
            .any(|l| l.contains("not healthy after 2s")),
        "{}",
        r.dump()
    );
    let notes = r.notes();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("failure budget exceeded")),
        "{}",
        r.dump()
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("rolling back 3 host(s)")),
        "{}",
        r.dump()
    );

    // The journal tells it; its path is printed first.
    assert!(
        r.stdout
            .lines()
            .next()
            .is_some_and(|l| l.contains("NOTE journal: ")),
        "the first line should be `NOTE journal: <path>`:\n{}",
        r.dump()
    );
    let j = r.journal();
    j.assert_in_project(p.dir());
    let started: Vec<Value> = j
        .of("batch_start")
        .iter()
        .map(|e| e["batch"].clone())
        .collect();
    assert_eq!(started, [1, 2], "{}", j.dump());
    assert!(
        j.of("host_result")
            .iter()
            .any(|e| e["host"] == "h3" && e["task"] == "health" && e["status"] == "failed"),
        "no failed health result for h3 in the journal:\n{}",
        j.dump()
    );
    let rollbacks = j.of("rollback");
    assert!(!rollbacks.is_empty(), "no rollback event:\n{}", j.dump());
    let said: String = rollbacks.iter().map(|e| e.to_string()).collect();
    for h in ["h1", "h2", "h3"] {
        assert!(
            said.contains(&format!("\"{h}\"")),
            "{h} not in the rollback events: {said}"
        );
    }
    for h in ["h4", "h5"] {
        assert!(
            !said.contains(&format!("\"{h}\"")),
            "{h} in the rollback events: {said}"
        );
    }
    assert_eq!(j.outcome(), "rolled_back", "{}", j.dump());
    for i in 1..=3 {
        p.assert_one_audit_record(i, &j.run_id);
    }
    // run_start carries the plan.
    assert_eq!(
        j.planned_batches(),
        vec![names([1]), names([2, 3]), names([4, 5])],
        "{}",
        j.dump()
    );
}

#[test]
fn http_health_gate_with_on_failure_stop_says_who_runs_what() {
    let p = Project::new(3, "");
    p.artifact("1.0.0");
    p.artifact("2.0.0");
    p.deploy_ok("1.0.0", &[]);
    for (i, body) in [(1, "ok\n"), (2, "degraded\n"), (3, "ok\n")] {
        std::fs::create_dir_all(p.srv(i, "www")).unwrap();
        p.touch(i, "www/health", body);
    }
    let _servers: Vec<HttpServer> = p
        .fleet
        .hosts()
        .map(|i| HttpServer::start(&p.fleet, i, "/srv/www", 8080, 90))
        .collect();
    p.write(
        "batch: 1\non_failure: stop\nhealth:\n  http: \"http://{{ ansible_host }}:8080/health\"\n  expect: 200\n  body: \"^ok\"\n  timeout: 2s\n  interval: 0.2s\n",
        "",
    );

    let r = p.deploy("2.0.0", &[]);
    assert_eq!(r.code, 2, "{}", r.dump());
    p.assert_current(1, "2.0.0");
    p.assert_current(2, "2.0.0");
    p.assert_current(3, "1.0.0");
    assert_eq!(p.history(3), ["1.0.0"], "h3 was switched");
    for i in p.fleet.hosts() {
        p.assert_unlocked(i, "after a stopped run");
    }
    assert_eq!(
        r.batch_lines(),
        ["BATCH 1/3 [h1]", "BATCH 2/3 [h2]"],
        "{}",
        r.dump()
    );
    assert!(
        r.result_lines("failed", "h2")
            .iter()
            .any(|l| l.contains("not healthy after 2s")),
        "{}",
        r.dump()
    );
    let stopped = r
        .notes()
        .into_iter()
        .find(|n| n.starts_with("stopped; hosts stay where they are: "))
        .unwrap_or_else(|| {
            panic!(
                "no `NOTE stopped; hosts stay where they are`:\n{}",
                r.dump()
            )
        });
    for part in ["h1 on 2.0.0", "h2 on 2.0.0", "h3 on 1.0.0"] {
        assert!(stopped.contains(part), "{part:?} not in {stopped:?}");
    }
    assert_eq!(r.journal().outcome(), "stopped");
}

#[test]
fn tcp_health_failure_within_the_budget_lets_the_rollout_go_on() {
    let p = Project::new(3, "");
    p.artifact("1.0.0");
    p.artifact("2.0.0");
    p.deploy_ok("1.0.0", &[]);
    // No listener on h2.
    let _servers: Vec<HttpServer> = [1, 3]
        .into_iter()
        .map(|i| {
            std::fs::create_dir_all(p.srv(i, "www")).unwrap();
            HttpServer::start(&p.fleet, i, "/srv/www", 8080, 90)
        })
        .collect();
    p.write(
        "batch: 1\nmax_fail: 1\nhealth:\n  tcp: \"{{ ansible_host }}:8080\"\n  timeout: 2s\n  interval: 0.2s\n",
        "",
    );
    let r = p.deploy("2.0.0", &[]);
    assert_eq!(r.code, 2, "{}", r.dump());
    p.assert_current(1, "2.0.0");
    p.assert_current(3, "2.0.0");
    assert_eq!(
        r.batch_lines(),
        ["BATCH 1/3 [h1]", "BATCH 2/3 [h2]", "BATCH 3/3 [h3]"],
        "{}",
        r.dump()
    );
    assert!(!r.result_lines("failed", "h2").is_empty(), "{}", r.dump());
    assert!(
        !r.notes()
            .iter()
            .any(|n| n.starts_with("failure budget exceeded")),
        "{}",
        r.dump()
    );
    for i in p.fleet.hosts() {
        p.assert_unlocked(i, "after the run");
    }
}

/// A pause longer than a minute: the hosts of later batches (idle meanwhile)
/// must still be reachable when their batch comes.
#[test]
fn a_pause_over_a_minute_does_not_lose_the_later_hosts() {
    let p = Project::new(2, "batch: 1\npause: 65s\n");
    p.artifact("1.0.0");
    p.artifact("2.0.0");
    p.write("batch: 1\n", "");
    p.deploy_ok("1.0.0", &[]);
    p.write("batch: 1\npause: 65s\n", "");
    let r = p.deploy("2.0.0", &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in p.fleet.hosts() {
        p.assert_current(i, "2.0.0");
        p.assert_unlocked(i, "after the run");
    }
    let gap = p.switched_at(2, "2.0.0") - p.switched_at(1, "2.0.0");
    assert!(gap >= 65_000_000_000, "batch 2 came {gap} ns after batch 1");
}

/// `soak`: a host must stay healthy that long; one that turns unhealthy
/// while soaking fails.
#[test]
fn a_host_that_turns_unhealthy_while_soaking_fails() {
    let p = Project::new(2, "batch: 1\n");
    p.artifact("1.0.0");
    p.artifact("2.0.0");
    p.deploy_ok("1.0.0", &[]);
    p.touch(2, "flap-after", "");
    p.write(
        "batch: 1\nhealth:\n  command: \"test ! -e /srv/flap\"\n  timeout: 5s\n  interval: 0.2s\n  soak: 2s\n",
        "",
    );
    let r = p.deploy("2.0.0", &[]);
    assert_eq!(r.code, 2, "{}", r.dump());
    // h1 was healthy for the whole soak; h2 was healthy first, then not.
    let took: f64 = r
        .result_lines("ok", "h1")
        .iter()
        .find_map(|l| l.split("healthy after ").nth(1))
        .and_then(|t| t.split('s').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no `ok: [h1]: healthy after Ns`:\n{}", r.dump()));
    assert!(
        took >= 2.0,
        "h1 healthy after {took}s, before the 2s soak ended"
    );
    assert!(
        !r.result_lines("failed", "h2").is_empty(),
        "h2 turned unhealthy while soaking:\n{}",
        r.dump()
    );
    assert!(
        p.srv(2, "flap").exists(),
        "the test did not make h2 unhealthy"
    );
    // Budget 0, on_failure rollback (the default): both back on 1.0.0.
    for i in p.fleet.hosts() {
        p.assert_current(i, "1.0.0");
        p.assert_unlocked(i, "after the run");
    }
}

// ---------------------------------------------------------------- the failure budget

#[test]
fn budget_of_one_tolerates_one_dead_host() {
    let p = Project::new(4, "batch: 2\nmax_fail: 1\n");
    p.artifact("1.0.0");
    p.artifact("2.0.0");
    p.deploy_ok("1.0.0", &[]);
    p.fleet.stop_sshd(3);

    let r = p.deploy("2.0.0", &["--timeout", "3s"]);
    assert_ne!(r.code, 0, "{}", r.dump());
    for i in [1, 2, 4] {
        p.assert_current(i, "2.0.0");
        p.assert_unlocked(i, "after the run");
    }
    p.assert_current(3, "1.0.0");
    assert!(
        !r.notes()
            .iter()
            .any(|n| n.starts_with("failure budget exceeded")),
        "{}",
        r.dump()
    );
    assert_eq!(r.journal().outcome(), "completed", "{}", r.dump());
}

#[test]
fn budget_of_one_stops_with_two_dead_hosts_before_anyone_switches() {
    let p = Project::new(4, "batch: 2\nmax_fail: 1\n");
    p.artifact("1.0.0");
    p.artifact("2.0.0");
    p.deploy_ok("1.0.0", &[]);
    p.fleet.stop_sshd(2);
    p.fleet.stop_sshd(3);

    let r = p.deploy("2.0.0", &["--timeout", "3s"]);
    assert_ne!(r.code, 0, "{}", r.dump());
    for i in p.fleet.hosts() {
        p.assert_current(i, "1.0.0");
        assert_eq!(p.history(i), ["1.0.0"], "h{i} was switched");
    }
    for i in [1, 4] {
        p.assert_unlocked(i, "after the run");
    }
    assert!(r.batch_lines().is_empty(), "a batch started:\n{}", r.dump());
    assert!(
        r.notes()
            .iter()
            .any(|n| n.starts_with("failure budget exceeded")),
        "{}",
        r.dump()
    );
}

// ---------------------------------------------------------------- pause: confirm

#[test]
fn pause_confirm_needs_a_terminal_or_yes() {
    let p = Project::new(2, "batch: 1\n");
    p.artifact("1.0.0");
    p.artifact("2.0.0");
    p.deploy_ok("1.0.0", &[]);
    p.write("batch: 1\npause: confirm\n", "");

    let r = p.deploy("2.0.0", &[]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.all().contains("--yes"),
        "the refusal should name --yes:\n{}",
        r.dump()
    );
    for i in p.fleet.hosts() {
        p.assert_current(i, "1.0.0");
        assert!(
            !p.path(i, "releases/2.0.0").exists(),
            "h{i}: 2.0.0 was prepared before the refusal"
        );
        p.assert_unlocked(i, "after a refused run");
    }

    let r = p.deploy("2.0.0", &["--yes"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let r = p.deploy("1.0.0", &["-y"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in p.fleet.hosts() {
        p.assert_current(i, "1.0.0");
        assert_eq!(p.history(i), ["1.0.0", "2.0.0", "1.0.0"], "h{i}");
    }
}

// ---------------------------------------------------------------- shuffle

#[test]
fn a_shuffled_run_prints_its_seed_and_plan_repeats_it() {
    let p = Project::new(4, "batch: 1\norder: shuffle\n");
    p.artifact("1.0.0");
    p.artifact("2.0.0");
    let r = p.deploy_ok("1.0.0", &[]);
    let seed: u64 = r
        .stdout
        .split("seed ")
        .nth(1)
        .and_then(|s| {
            s.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|d| d.parse().ok())
        })
        .unwrap_or_else(|| panic!("no `seed N` in the output:\n{}", r.dump()));
    let order: Vec<String> = r
        .batch_lines()
        .iter()
        .map(|l| l[l.find('[').unwrap() + 1..l.len() - 1].to_owned())
        .collect();
    assert_eq!(order.len(), 4, "{}", r.dump());

    // The same seed in the playbook: `plan --offline` shows the same order.
    p.write(&format!("batch: 1\norder: shuffle\nseed: {seed}\n"), "");
    let plan = p.convoy("plan", &["-e", "version=2.0.0", "--offline"]);
    assert_eq!(plan.code, 0, "{}", plan.dump());
    let view = parse_plan(&plan.stdout);
    assert!(
        view.header.ends_with(&format!(", shuffle seed {seed}")),
        "{}",
        plan.stdout
    );
    assert_eq!(
        view.all_hosts(),
        order,
        "run:\n{}\nplan:\n{}",
        r.stdout,
        plan.stdout
    );
}

// ---------------------------------------------------------------- the deploy lock

#[test]
fn a_second_concurrent_run_fails_at_once_naming_the_holder() {
    let p = Project::new(2, "batch: 1\n");
    for v in ["1.0.0", "2.0.0", "3.0.0"] {
        p.artifact(v);
    }
    p.deploy_ok("1.0.0", &[]);
    for i in p.fleet.hosts() {
        p.touch(i, "slow", "3");
    }

    let mut first = p.spawn_deploy("2.0.0", &[]);
    let run_id = first.run_id();
    wait_until("the lock on every host", Duration::from_secs(30), || {
        p.fleet.hosts().all(|i| p.holder(i).is_some())
    });
    for i in p.fleet.hosts() {
        let holder = p.holder(i).unwrap();
        assert!(holder.contains("root@"), "h{i}: holder {holder:?}");
        assert!(
            holder.contains(&first.pid().to_string()),
            "h{i}: holder {holder:?} without pid"
        );
        assert!(
            holder.contains(&run_id),
            "h{i}: holder {holder:?} without run id {run_id}"
        );
    }

    let started = Instant::now();
    let second = p.deploy("3.0.0", &[]);
    let took = started.elapsed();
    assert_eq!(second.code, 3, "{}", second.dump());
    assert!(
        second.all().contains("locked by") && second.all().contains(&run_id),
        "the refusal should say `locked by` and name run {run_id}:\n{}",
        second.dump()
    );
    assert!(
        took < Duration::from_secs(10),
        "the second run took {took:?}: not at once"
    );
    assert!(first.running(), "the second run waited for the first");
    // --force-unlock does not take a live holder's lock.
    let forced = p.deploy("3.0.0", &["--force-unlock"]);
    assert_eq!(forced.code, 3, "{}", forced.dump());
    assert!(forced.all().contains("locked by"), "{}", forced.dump());
    for i in p.fleet.hosts() {
        assert!(
            p.holder(i).is_some_and(|h| h.contains(&run_id)),
            "h{i}: the refused runs touched the first run's lock: {:?}",
            p.holder(i)
        );
        assert!(
            !p.path(i, "releases/3.0.0").exists(),
            "h{i}: 3.0.0 was prepared"
        );
        assert_eq!(p.switches_to(i, "3.0.0"), 0, "h{i}");
    }

    let first = first.finish(Duration::from_secs(90));
    assert_eq!(first.code, 0, "{}", first.dump());
    for i in p.fleet.hosts() {
        p.assert_current(i, "2.0.0");
        p.assert_unlocked(i, "after the first run completed");
        assert!(
            p.switch_hooks(i).iter().all(|(v, _, _)| v != "3.0.0"),
            "h{i}: {:?}",
            p.switch_hooks(i)
        );
    }
}

/// A run killed hard leaves its locks; the next run from this machine
/// takes them over (the holder's process is gone), and `convoy unlock`
/// clears them. (A lock held from elsewhere is in tests/regression_locks.rs.)
#[test]
fn a_killed_runs_lock_is_taken_over_or_cleared_by_unlock() {
    let p = Project::new(2, "batch: 1\n");
    p.artifact("1.0.0");
    p.artifact("2.0.0");
    p.deploy_ok("1.0.0", &[]);

    // A run killed hard (SIGKILL) leaves its lock behind.
    let stale = |p: &Project| -> String {
        for i in p.fleet.hosts() {
            p.touch(i, "slow", "5");
            let _ = std::fs::remove_file(p.srv(i, "in-switch-2.0.0"));
        }
        let mut dead = p.spawn_deploy("2.0.0", &[]);
        let run_id = dead.run_id();
        wait_until("h1's switch hook", Duration::from_secs(30), || {
            p.srv(1, "in-switch-2.0.0").exists()
        });
        dead.kill_hard();
        for i in p.fleet.hosts() {
            assert!(
                p.holder(i).is_some(),
                "h{i}: no lock left by the killed run"
            );
            std::fs::remove_file(p.srv(i, "slow")).unwrap();
        }
        run_id
    };

    let dead_id = stale(&p);
    let r = p.deploy("2.0.0", &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        r.notes()
            .iter()
            .any(|n| n.contains("took over the deploy lock") && n.contains(&dead_id)),
        "{}",
        r.dump()
    );
    for i in p.fleet.hosts() {
        p.assert_current(i, "2.0.0");
        p.assert_unlocked(i, "after the run that took over");
    }

    // `convoy unlock` clears them.
    p.deploy_ok("1.0.0", &[]);
    stale(&p);
    let r = p.convoy("unlock", &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in p.fleet.hosts() {
        p.assert_unlocked(i, "after convoy unlock");
    }
    p.deploy_ok("2.0.0", &[]);
    for i in p.fleet.hosts() {
        p.assert_current(i, "2.0.0");
    }
}

// ---------------------------------------------------------------- Ctrl-C and resume

#[test]
fn sigint_in_batch_2_then_resume_finishes_the_rollout() {
    let migrations = "- name: convert-data\n  versions: \">=2.0.0, <3.0.0\"\n  run: 'echo \"migrated $(cat VERSION)\" >> /srv/migrations.log'\n  on: one\n";
    let p = Project::with(5, "canary: 1\nbatch: 2\n", migrations);
    p.artifact("1.0.0");
    p.artifact("2.0.0");
    p.deploy_ok("1.0.0", &[]);
    for i in p.fleet.hosts() {
        p.touch(i, "slow", "3");
    }

    let mut run = p.spawn_deploy("2.0.0", &[]);
    let run_id = run.run_id();
    wait_until(
        "batch 2's switch hook on h2",
        Duration::from_secs(60),
        || p.srv(2, "in-switch-2.0.0").exists(),
    );
    run.interrupt();
    let r = run.finish(Duration::from_secs(60));
    assert_eq!(r.code, 130, "{}", r.dump());

    // Batch 2 finished its switch, batch 3 never started; nobody in between.
    for i in 1..=3 {
        p.assert_current(i, "2.0.0");
    }
    for i in 4..=5 {
        p.assert_current(i, "1.0.0");
        assert_eq!(p.switches_to(i, "2.0.0"), 0, "h{i}: batch 3 switched");
    }
    for i in p.fleet.hosts() {
        p.assert_unlocked(i, "after SIGINT");
    }
    assert!(
        !r.batch_lines().iter().any(|l| l.starts_with("BATCH 3/3")),
        "{}",
        r.dump()
    );
    let j = r.journal();
    assert_eq!(j.run_id, run_id);
    assert_eq!(j.outcome(), "interrupted", "{}", j.dump());
    assert_eq!(
        p.migrations_log(1),
        ["migrated 2.0.0"],
        "the migration ran once, on the first host, before the first batch"
    );

    // Resume: the rest switch, the others stay, the migration does not run again.
    for i in p.fleet.hosts() {
        std::fs::remove_file(p.srv(i, "slow")).unwrap();
    }
    // `-i` is optional: the journal knows the run's inventory (see
    // `resume_takes_an_inventory_flag` for the flag itself). `-e` values
    // are not in the journal (they may be secrets): they are given again.
    let resumed = run_in(p.dir(), &["resume", &run_id, "-e", "version=2.0.0"]);
    assert_eq!(resumed.code, 0, "{}", resumed.dump());
    for i in p.fleet.hosts() {
        p.assert_current(i, "2.0.0");
        assert_eq!(p.switches_to(i, "2.0.0"), 1, "h{i}: {:?}", p.history(i));
        p.assert_unlocked(i, "after resume");
    }
    let batches = resumed.batch_lines();
    assert!(
        batches.iter().any(|l| l.ends_with("[h4, h5]")),
        "resume did not run batch 3:\n{}",
        resumed.dump()
    );
    for h in ["h1", "h2", "h3"] {
        assert!(
            !batches.iter().any(|l| l.contains(&format!("[{h}"))
                || l.contains(&format!(" {h},"))
                || l.contains(&format!(" {h}]"))),
            "resume started a batch with {h} again:\n{}",
            resumed.dump()
        );
    }
    assert_eq!(
        p.migrations_log(1),
        ["migrated 2.0.0"],
        "the migration ran again on resume"
    );
    for i in 2..=5 {
        assert!(
            p.migrations_log(i).is_empty(),
            "h{i}: {:?}",
            p.migrations_log(i)
        );
    }
}

#[test]
fn sigterm_stops_like_ctrl_c() {
    let p = Project::new(3, "batch: 1\n");
    p.artifact("1.0.0");
    p.artifact("2.0.0");
    p.deploy_ok("1.0.0", &[]);
    for i in p.fleet.hosts() {
        p.touch(i, "slow", "3");
    }
    let run = p.spawn_deploy("2.0.0", &[]);
    wait_until(
        "batch 2's switch hook on h2",
        Duration::from_secs(60),
        || p.srv(2, "in-switch-2.0.0").exists(),
    );
    let status = Command::new("kill")
        .args(["-TERM", &run.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let r = run.finish(Duration::from_secs(60));
    assert_eq!(r.code, 130, "{}", r.dump());
    p.assert_current(1, "2.0.0");
    p.assert_current(2, "2.0.0");
    p.assert_current(3, "1.0.0");
    assert_eq!(p.switches_to(3, "2.0.0"), 0, "h3: batch 3 switched");
    for i in p.fleet.hosts() {
        p.assert_unlocked(i, "after SIGTERM");
    }
    assert_eq!(r.journal().outcome(), "interrupted");
}

// ---------------------------------------------------------------- migrations

const MIGRATION_ONE: &str = "- name: convert-data\n  versions: \">=2.0.0, <3.0.0\"\n  run: 'echo \"migrated $(cat VERSION) cur=$(readlink /srv/hello/current)\" >> /srv/migrations.log'\n  on: one\n";

#[test]
fn a_migration_runs_once_when_the_deploy_crosses_into_its_range() {
    let p = Project::with(3, "batch: 1\n", MIGRATION_ONE);
    for v in ["1.0.0", "2.1.0", "2.2.0"] {
        p.artifact(v);
    }
    p.deploy_ok("1.0.0", &[]);
    for i in p.fleet.hosts() {
        assert!(p.migrations_log(i).is_empty(), "h{i}: ran for 1.0.0");
    }

    p.deploy_ok("2.1.0", &[]);
    assert_eq!(
        p.migrations_log(1),
        ["migrated 2.1.0 cur=releases/1.0.0"],
        "once, on the first host, in the new release's directory, before it switched"
    );
    for i in 2..=3 {
        assert!(
            p.migrations_log(i).is_empty(),
            "h{i}: {:?}",
            p.migrations_log(i)
        );
    }
    let recorded = std::fs::read_dir(p.path(1, ".convoy/migrations"))
        .map(|rd| rd.count())
        .unwrap_or(0);
    assert!(
        recorded > 0,
        "h1: the migration is not recorded in {ROOT}/.convoy/migrations/"
    );

    p.deploy_ok("2.2.0", &[]);
    p.deploy_ok("2.1.0", &[]);
    assert_eq!(
        p.migrations_log(1).len(),
        1,
        "ran again: {:?}",
        p.migrations_log(1)
    );
    // Back to 1.0.0 and up to 2.1.0 again: it crosses into the range once
    // more, but the record on the hosts says the migration already ran.
    let back = p.convoy("rollback", &["--to", "1.0.0"]);
    assert_eq!(back.code, 0, "{}", back.dump());
    p.deploy_ok("2.1.0", &[]);
    assert_eq!(
        p.migrations_log(1).len(),
        1,
        "ran again after 1.0.0 -> 2.1.0 a second time: {:?}",
        p.migrations_log(1)
    );
    for i in p.fleet.hosts() {
        p.assert_current(i, "2.1.0");
        if i > 1 {
            assert!(
                p.migrations_log(i).is_empty(),
                "h{i}: {:?}",
                p.migrations_log(i)
            );
        }
    }
}

#[test]
fn a_migration_on_every_host_runs_once_on_each() {
    let p = Project::with(
        3,
        "batch: 1\n",
        &format!(
            "{}{}",
            MIGRATION_ONE.replace("on: one", "on: every"),
            "- name: with-tasks\n  versions: \">=2.0.0, <3.0.0\"\n  on: every\n  tasks:\n    - name: note it\n      shell: echo tasks >> /srv/migrations-tasks.log\n"
        ),
    );
    for v in ["1.0.0", "2.1.0", "2.2.0"] {
        p.artifact(v);
    }
    p.deploy_ok("1.0.0", &[]);
    p.deploy_ok("2.1.0", &[]);
    for i in p.fleet.hosts() {
        assert_eq!(
            p.migrations_log(i),
            ["migrated 2.1.0 cur=releases/1.0.0"],
            "h{i}: once, before the first batch switched"
        );
    }
    let tasks_log =
        |i: usize| std::fs::read_to_string(p.srv(i, "migrations-tasks.log")).unwrap_or_default();
    for i in p.fleet.hosts() {
        assert_eq!(tasks_log(i), "tasks\n", "h{i}: the `tasks:` migration");
    }
    p.deploy_ok("2.2.0", &[]);
    for i in p.fleet.hosts() {
        assert_eq!(
            p.migrations_log(i).len(),
            1,
            "h{i}: {:?}",
            p.migrations_log(i)
        );
        assert_eq!(
            tasks_log(i),
            "tasks\n",
            "h{i}: the `tasks:` migration ran again"
        );
        p.assert_current(i, "2.2.0");
    }
}

// ---------------------------------------------------------------- magic rollback

#[test]
fn magic_rollback_returns_a_cut_off_host_by_itself() {
    let p = Project::new(3, "batch: 1\nmax_fail: 1\nmagic_rollback: 15s\n");
    p.artifact("1.0.0");
    p.artifact("2.0.0");
    p.deploy_ok("1.0.0", &["--timeout", "3s"]);
    for i in p.fleet.hosts() {
        p.assert_current(i, "1.0.0");
    }
    p.touch(2, "cut", "");

    let run = p.spawn_deploy("2.0.0", &["--timeout", "3s"]);
    let mut link = LinkDown {
        fleet: &p.fleet,
        host: 2,
        down: false,
    };
    wait_until("/srv/cut-me on h2", Duration::from_secs(60), || {
        p.srv(2, "cut-me").exists()
    });
    p.fleet.link_down(2);
    link.down = true;
    let cut_at = Instant::now();
    // The switch happened before the hook: h2 is on 2.0.0 when its link goes.
    assert_eq!(p.current(2).as_deref(), Some("releases/2.0.0"));
    // With no way in, only h2's own timer can switch it back.
    wait_until(
        "h2 back on 1.0.0 by itself",
        Duration::from_secs(30),
        || p.current(2).as_deref() == Some("releases/1.0.0"),
    );
    eprintln!("h2 went back {:?} after its link was cut", cut_at.elapsed());

    let r = run.finish(Duration::from_secs(150));
    link.up();
    assert_ne!(r.code, 0, "{}", r.dump());
    assert!(
        r.stdout.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            // A failed (or unreachable) result for h2 that says why:
            // not confirmed / not reachable over a fresh connection.
            l.contains("[h2]")
                && (l.contains("failed") || l.contains("unreachable"))
                && (l.contains("confirm") || l.contains("fresh connection"))
        }),
        "convoy should report h2 as not confirmed:\n{}",
        r.dump()
    );
    p.assert_current(2, "1.0.0");

    // h1 and h3 carried on to 2.0.0 (h2 was within the budget of 1).
    for i in [1, 3] {
        assert_eq!(
            p.current(i).as_deref(),
            Some("releases/2.0.0"),
            "h{i}: where current points\n{}",
            r.dump()
        );
    }
    // h1 and h3 were confirmed: their timers are disarmed (checked past the window).
    let h3_switched = p.switched_at(3, "2.0.0");
    let until = h3_switched + Duration::from_secs(17).as_nanos();
    while now_ns() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
    p.assert_current(1, "2.0.0");
    p.assert_current(3, "2.0.0");
    for i in [1, 3] {
        p.assert_unlocked(i, "after the run");
    }
}

#[test]
fn resume_takes_an_inventory_flag() {
    // `convoy resume RUN-ID [-i INV]`
    let r = run(&["resume", "--help"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        r.stdout.contains("--inventory") && r.stdout.contains("-i"),
        "resume has no -i/--inventory:\n{}",
        r.dump()
    );
}

/// Regression: the health gate (like the lock, rollback targets, migration
/// records and the proxy tier) reached every host of a batch at once,
/// whatever `--forks` said. A `command:` gate that records how many of its
/// copies run at the same moment, through a directory every host shares
/// (/run is not private to a fleet host): with `--forks 1` never more than
/// one, with `--forks 4` all four overlap.
#[test]
fn health_gates_respect_forks() {
    let shared = format!("/run/convoy-forks-test-{}", std::process::id());
    let gate = format!(
        "health:\n  command: \"mkdir -p {shared}/active && touch {shared}/active/$$ && ls {shared}/active | wc -l >> {shared}/seen && sleep 0.4 && rm {shared}/active/$$\"\n  timeout: 20s\n"
    );
    let project = Project::new(4, &format!("batch: 4\n{gate}"));
    project.artifact("1.0.0");
    let peak = |forks: &str| {
        let _ = std::fs::remove_dir_all(&shared);
        let r = project.deploy("1.0.0", &["-f", forks]);
        assert_eq!(r.code, 0, "{}", r.dump());
        let seen = std::fs::read_to_string(format!("{shared}/seen")).unwrap();
        let counts: Vec<u32> = seen.lines().map(|l| l.trim().parse().unwrap()).collect();
        assert_eq!(counts.len(), 4, "one gate per host: {seen}");
        counts.into_iter().max().unwrap()
    };
    assert_eq!(peak("1"), 1, "--forks 1: gates ran side by side");
    // Re-run: the gate runs again only if hosts switch; deploy a new version.
    project.artifact("1.0.1");
    let _ = std::fs::remove_dir_all(&shared);
    let r = project.deploy("1.0.1", &["-f", "4"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let seen = std::fs::read_to_string(format!("{shared}/seen")).unwrap();
    let max: u32 = seen
        .lines()
        .map(|l| l.trim().parse::<u32>().unwrap())
        .max()
        .unwrap();
    assert!(
        max > 1,
        "--forks 4: the gates never overlapped ({seen}), so the test cannot tell"
    );
    let _ = std::fs::remove_dir_all(&shared);
}

/// Regression: the magic-rollback timer only repointed `current`, so the
/// process the switch hook had restarted kept serving the new release on a
/// host that was "rolled back". Now the timer also runs the switch hooks,
/// rendered for the release it returns to: a real server that serves its
/// release's VERSION answers the old version again, with no convoy
/// reaching the host (its link is cut).
#[test]
fn magic_rollback_restarts_what_the_switch_restarted() {
    let p = Project::new(1, "");
    let playbook = r#"- name: Deploy hello
  hosts: app
  vars: { version: "1.0.0" }
  distribution:
    name: hello
    version: "{{ version }}"
    source: "dist/hello-{{ version }}.tar.gz"
    strip_components: 0
    root: /srv/hello
    keep: 5
  rollout:
    magic_rollback: 6s
  hooks:
    switch:
      - name: restart the server in the new release
        shell: |
          if [ -f /srv/server.pid ]; then
            pid=$(cat /srv/server.pid); kill "$pid" 2>/dev/null
            while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
          fi
          cd {{ release.path }}
          setsid nohup python3 -m http.server 8080 --bind 127.0.0.1 >/dev/null 2>&1 </dev/null &
          echo $! > /srv/server.pid
          until curl -fsS -o /dev/null http://127.0.0.1:8080/VERSION; do sleep 0.05; done
          echo "restarted {{ release.version }}" >> /srv/restarts.log
          if [ -e /srv/cut ]; then touch /srv/cut-me; sleep 3; fi
"#;
    std::fs::write(&p.playbook, playbook).unwrap();
    p.artifact("1.0.0");
    p.artifact("2.0.0");
    p.deploy_ok("1.0.0", &["--timeout", "3s"]);
    let served = |p: &Project| {
        p.fleet
            .exec_ok(1, "curl -fsS http://127.0.0.1:8080/VERSION || echo down")
    };
    assert_eq!(served(&p), "1.0.0\n");

    p.touch(1, "cut", "");
    let run = p.spawn_deploy("2.0.0", &["--timeout", "3s"]);
    let mut link = LinkDown {
        fleet: &p.fleet,
        host: 1,
        down: false,
    };
    wait_until("/srv/cut-me on h1", Duration::from_secs(60), || {
        p.srv(1, "cut-me").exists()
    });
    p.fleet.link_down(1);
    link.down = true;
    assert_eq!(
        served(&p),
        "2.0.0\n",
        "the switch restarted the server on 2.0.0"
    );
    wait_until(
        "h1 back on 1.0.0 by itself",
        Duration::from_secs(30),
        || p.current(1).as_deref() == Some("releases/1.0.0"),
    );
    wait_until(
        "h1's server serving 1.0.0 again",
        Duration::from_secs(20),
        || served(&p) == "1.0.0\n",
    );
    let r = run.finish(Duration::from_secs(150));
    link.up();
    assert_ne!(r.code, 0, "{}", r.dump());
    let restarts = std::fs::read_to_string(p.srv(1, "restarts.log")).unwrap();
    assert_eq!(
        restarts,
        "restarted 1.0.0\nrestarted 2.0.0\nrestarted 1.0.0\n"
    );
    let audit = std::fs::read_to_string(p.path(1, ".convoy/audit.log")).unwrap();
    assert!(
        audit.contains("magic rollback to 1.0.0") && audit.contains("switch hooks exited 0"),
        "{audit}"
    );
}

// ---------------------------------------------------------------- switch hooks in the switch

/// Switch hooks that are plain lines used to cost each host a remote
/// command apiece after the switch (a deploy was 6 round trips per host, a
/// rollback 5, where a script by hand needs 3 and 1). They now run inside
/// the switch's own script: after `current` moved and only if it did, in
/// order, stopping at the first that fails, from the login directory, and
/// are reported as the hook tasks. The hosts show the order and what each
/// hook saw; the JSON events show the output (a last line without a
/// newline included), the failure and the hooks a failed host never ran;
/// the recap shows the round trips.
#[test]
fn plain_switch_hooks_run_in_the_switchs_round_trip_and_report_as_tasks() {
    let p = Project::new(2, "");
    let playbook = r#"- name: Deploy hello
  hosts: app
  vars: { version: "1.0.0" }
  distribution:
    name: hello
    version: "{{ version }}"
    source: "dist/hello-{{ version }}.tar.gz"
    strip_components: 0
    root: /srv/hello
    keep: 5
  rollout:
    max_fail: 1
    on_failure: stop
  hooks:
    switch:
      - name: restart
        shell: echo "restart {{ release.version }}" >> /srv/hooks.log; printf 'restarted {{ release.version }} from {{ release.previous }}, current %s, in %s' "$(readlink /srv/hello/current)" "$PWD"
      - name: check
        shell: 'echo check >> /srv/hooks.log; if [ -e /srv/refuse-{{ release.version }} ]; then echo "refusing {{ release.version }}" >&2; exit 3; fi; echo "R=${R:-unset} V=${V:-unset}"'
      - name: after
        command: touch /srv/after-{{ release.version }}
"#;
    std::fs::write(&p.playbook, playbook).unwrap();
    p.artifact("1.0.0");
    p.artifact("2.0.0");
    let json = ["--output", "json"];
    let first = p.deploy_ok("1.0.0", &json);
    let recap = first.json_recap();
    for i in p.fleet.hosts() {
        let name = p.fleet.name(i);
        // Lock with the probe; prepare (marking the lock complete); the
        // switch with its three hooks; the prune with the unlock.
        assert_eq!(
            recap["hosts"][&name]["round_trips"],
            4,
            "{name}: {}",
            first.dump()
        );
        p.assert_current(i, "1.0.0");
        assert!(p.fleet.host_path(i, "/srv/after-1.0.0").exists(), "h{i}");
    }
    std::fs::write(p.fleet.host_path(2, "/srv/refuse-2.0.0"), "").unwrap();
    let up = p.deploy("2.0.0", &json);
    assert_eq!(up.code, 2, "{}", up.dump());
    let results = |host: &str| -> Vec<Value> {
        up.events()
            .into_iter()
            .filter(|e| e["event"] == "host_result" && e["host"] == host)
            .collect()
    };
    let (h1, h2) = (p.fleet.name(1), p.fleet.name(2));
    for (i, host) in [(1, &h1), (2, &h2)] {
        let r = results(host);
        let of = |task: &str| r.iter().find(|e| e["task"] == task).cloned();
        let restart =
            of("restart").unwrap_or_else(|| panic!("{host}: no restart result:\n{}", up.dump()));
        assert_eq!(restart["status"], "changed", "{host}: {restart}");
        // The hook's last line without its newline; run from the login
        // directory, not from the switch's.
        let out = restart["output"].as_str().unwrap_or_default();
        assert!(
            out.starts_with("restarted 2.0.0 from 1.0.0, current releases/2.0.0, in /")
                && !out.contains("/srv/hello"),
            "{host}: {restart}"
        );
        let check =
            of("check").unwrap_or_else(|| panic!("{host}: no check result:\n{}", up.dump()));
        let after = of("after");
        if i == 1 {
            assert_eq!(check["status"], "changed", "{host}: {check}");
            // The switch script's own variables are not the hook's.
            assert_eq!(check["output"], "R=unset V=unset", "{host}: {check}");
            assert_eq!(after.map(|a| a["status"].clone()), Some("changed".into()));
            assert!(p.fleet.host_path(i, "/srv/after-2.0.0").exists());
        } else {
            assert_eq!(check["status"], "failed", "{host}: {check}");
            assert_eq!(
                check["msg"], "non-zero return code 3: refusing 2.0.0",
                "{host}: {check}"
            );
            assert!(
                after.is_none(),
                "{host}: a hook after the failed one ran: {after:?}"
            );
            assert!(!p.fleet.host_path(i, "/srv/after-2.0.0").exists());
        }
        assert_eq!(
            hooks_log(&p, i),
            "restart 1.0.0\ncheck\nrestart 2.0.0\ncheck\n",
            "{host}: the hooks in order, each once per switch"
        );
    }
    // Both switched; only h2 failed (its check), and it stays where it is.
    p.assert_current(1, "2.0.0");
    p.assert_current(2, "2.0.0");
    let recap = up.json_recap();
    assert_eq!(recap["hosts"][&h2]["failed"], 1, "{}", up.dump());
    assert_eq!(recap["hosts"][&h1]["failed"], 0, "{}", up.dump());

    // A rollback: the lock with the releases' status, then the switch with
    // its hooks and the unlock in one script.
    std::fs::remove_file(p.fleet.host_path(2, "/srv/refuse-2.0.0")).unwrap();
    let back = p.convoy("rollback", &json);
    assert_eq!(back.code, 0, "{}", back.dump());
    let recap = back.json_recap();
    for i in p.fleet.hosts() {
        let name = p.fleet.name(i);
        assert_eq!(
            recap["hosts"][&name]["round_trips"],
            2,
            "{name}: {}",
            back.dump()
        );
        p.assert_current(i, "1.0.0");
        assert!(
            hooks_log(&p, i).ends_with("check\nrestart 1.0.0\ncheck\n"),
            "h{i}: {}",
            hooks_log(&p, i)
        );
        let restart = back
            .events()
            .into_iter()
            .find(|e| e["event"] == "host_result" && e["host"] == name && e["task"] == "restart")
            .unwrap_or_else(|| panic!("{name}: no restart result:\n{}", back.dump()));
        assert!(
            restart["output"]
                .as_str()
                .unwrap_or_default()
                .starts_with("restarted 1.0.0 from 2.0.0, current releases/1.0.0, in /"),
            "{name}: {restart}"
        );
        // Released by the switch's script: no lock left, one audit line.
        assert!(
            !p.path(i, ".convoy/lock").exists(),
            "{name}: the lock is still there"
        );
        let audit = std::fs::read_to_string(p.path(i, ".convoy/audit.log")).unwrap();
        let rollbacks: Vec<&str> = audit
            .lines()
            .filter(|l| l.contains("action=rollback"))
            .collect();
        assert_eq!(rollbacks.len(), 1, "{name}: {audit}");
        assert!(
            rollbacks[0].ends_with("outcome=completed"),
            "{name}: {audit}"
        );
    }

    // A hook that fails in a rollback: that host keeps its lock through the
    // switch, and the run's end releases it with the run's outcome; the
    // other host is released by its switch.
    p.deploy_ok("2.0.0", &json);
    std::fs::write(p.fleet.host_path(2, "/srv/refuse-1.0.0"), "").unwrap();
    let back = p.convoy("rollback", &json);
    assert_eq!(back.code, 2, "{}", back.dump());
    let recap = back.json_recap();
    // h2's line is the run's own, written at its end (its outcome is the run's).
    for (i, trips, outcome) in [(1, 2, "outcome=completed"), (2, 3, "outcome=")] {
        let name = p.fleet.name(i);
        assert_eq!(
            recap["hosts"][&name]["round_trips"],
            trips,
            "{name}: {}",
            back.dump()
        );
        p.assert_current(i, "1.0.0");
        assert!(
            !p.path(i, ".convoy/lock").exists(),
            "{name}: the lock is still there"
        );
        let audit = std::fs::read_to_string(p.path(i, ".convoy/audit.log")).unwrap();
        let last = audit.lines().last().unwrap_or_default();
        assert!(
            last.contains("action=rollback") && last.contains(outcome),
            "{name}: {audit}"
        );
        assert_eq!(
            audit
                .lines()
                .filter(|l| l.contains("action=rollback"))
                .count(),
            2,
            "{name}: one line per rollback: {audit}"
        );
    }
}

fn hooks_log(p: &Project, i: usize) -> String {
    std::fs::read_to_string(p.fleet.host_path(i, "/srv/hooks.log")).unwrap_or_default()
}
