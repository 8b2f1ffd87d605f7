//! Moving traffic between pools, proved through a real nginx (Debian's
//! package) on a proxy host of the fleet: app hosts in two pools (blue,
//! green) that each serve their release's VERSION over HTTP, and a client
//! sending requests through nginx while convoy runs.
//!
//! - blue-green (playbooks/blue-green.yml; behind haproxy too): a release goes to the idle
//!   pool while the live one serves, then nginx switches in one reload;
//!   `convoy rollback` switches back in one reload without touching an app
//!   host: no request fails across either, and after each every answer
//!   comes from the pool switched to.
//! - share canary (playbooks/canary.yml, nginx split_clients;
//!   playbooks/canary-haproxy.yml, haproxy server weights): 10%, 50%, 100%
//!   of the requests, each share measured over its step (>= 1,000
//!   requests, within 3 points at 10%, 5 at 50%), no request failed;
//! - a step nginx rejects leaves the step before serving, and the run
//!   names the step, the file and nginx's message;
//! - targeted steps: a client on another fleet address always reaches the
//!   new version, others never; then /api/ does and / does not; requests
//!   carrying `X-Canary: 1` do, then those with a `canary=yes` cookie, and
//!   no other request (nginx and haproxy);
//! - `convoy run --check` (and `--diff`) lists each traffic step and the
//!   proxy file diff it would install, each from the step before, and
//!   changes nothing on the proxy host (files, mtimes, reloads);
//! - `convoy traffic`: shows the pools, `--to 10%` and `--to green` by hand.
//!
//! Every client loop is bounded in requests and time, and only talks to
//! the fleet's own addresses. The figures go to stderr (--nocapture).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::client::{Client, Sample, Spawned, secs};
use support::nginx::Nginx;
use support::run::{Run, run_in};
use support::{Fleet, workdir, write_file};

const STATE_DIR: &str = "/srv/convoy-proxy";
const APP_PORT: u16 = 8080;
const SITE: &str = "hello.test";

/// A project made of the repository's `playbook`, its nginx template and
/// the hello app, on a fleet: h1 runs nginx (`balancers`), `blue` and
/// `green` are the pools (children of `app`).
struct Project {
    dir: tempfile::TempDir,
    playbook: String,
}

impl Project {
    fn new(fleet: &Fleet, playbook: &str, blue: &[usize], green: &[usize]) -> Project {
        let dir = workdir();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for rel in [
            playbook,
            "templates/nginx/pools.conf.j2",
            "templates/haproxy/pools.cfg.j2",
            "app/hello/bin/hello",
        ] {
            let path = write_file(
                dir.path(),
                rel,
                &std::fs::read_to_string(root.join(rel)).unwrap(),
            );
            if rel.ends_with("bin/hello") {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        let host = |i: usize| {
            format!(
                "            {}:\n              ansible_host: {}\n",
                fleet.name(i),
                fleet.addr(i)
            )
        };
        let mut yaml = format!(
            "all:\n  vars:\n    convoy_ssh_config: {}\n    convoy_proxy_state_dir: {STATE_DIR}\n    app_name: hello\n    app_port: {APP_PORT}\n    app_root: /srv\n    proxy_server_name: {SITE}\n    nginx_pidfile: /srv/nginx/nginx.pid\n{}  children:\n    balancers:\n      hosts:\n        {}:\n          ansible_host: {}\n    app:\n      children:\n",
            fleet.ssh_config().display(),
            support::haproxy::inventory_vars(4),
            fleet.name(1),
            fleet.addr(1)
        );
        for (group, hosts) in [("blue", blue), ("green", green)] {
            yaml.push_str(&format!("        {group}:\n          hosts:\n"));
            for &i in hosts {
                yaml.push_str(&host(i));
            }
        }
        write_file(dir.path(), "inventory.yml", &yaml);
        Project {
            dir,
            playbook: playbook.to_owned(),
        }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The app's VERSION file: what the next release serves.
    fn set_version(&self, version: &str) {
        write_file(self.dir(), "app/hello/VERSION", &format!("{version}\n"));
    }

    fn args(&self, command: &str, version: Option<&str>) -> Vec<String> {
        let mut args = vec![command.to_owned(), self.playbook.clone()];
        args.extend(["-i".to_owned(), "inventory.yml".to_owned()]);
        if let Some(v) = version {
            args.extend(["-e".to_owned(), format!("version={v}")]);
        }
        args
    }

    fn deploy(&self, version: &str) -> Run {
        self.set_version(version);
        let args = self.args("run", Some(version));
        run_in(
            self.dir(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    }

    fn spawn(&self, command: &str, version: Option<&str>, clock: Instant) -> Spawned {
        if let Some(v) = version {
            self.set_version(v);
        }
        Spawned::start(self.dir(), self.args(command, version), clock)
    }
}

/// Where app host i's `current` points.
fn current(fleet: &Fleet, i: usize) -> String {
    std::fs::read_link(fleet.host_path(i, "/srv/hello/current"))
        .map(|t| t.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The pid of app host i's server.
fn app_pid(fleet: &Fleet, i: usize) -> String {
    std::fs::read_to_string(fleet.host_path(i, "/srv/hello/shared/hello.pid")).unwrap_or_default()
}

/// The traffic record on the proxy host (h1).
fn record(fleet: &Fleet) -> String {
    let dir = fleet.host_path(1, STATE_DIR);
    std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_some_and(|x| x == "traffic"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .unwrap_or_default()
}

/// What a stretch of the client's answers shows.
struct Tally {
    total: usize,
    failed: Vec<String>,
    old: usize,
    new: usize,
}

fn tally(samples: &[&Sample], old: &str, new: &str) -> Tally {
    Tally {
        total: samples.len(),
        failed: samples
            .iter()
            .filter(|s| s.version().is_none())
            .map(|s| s.short())
            .collect(),
        old: samples.iter().filter(|s| s.version() == Some(old)).count(),
        new: samples.iter().filter(|s| s.version() == Some(new)).count(),
    }
}

/// Runs `command` (deploy or rollback) in the background while a client
/// sends requests through nginx; returns the run, the samples, and when
/// the run started and ended on the client's clock.
fn under_traffic(
    project: &Project,
    address: &str,
    command: &str,
    version: Option<&str>,
) -> (Run, Vec<Sample>, Duration, Duration) {
    let clock = Instant::now();
    let client = Client::start(
        address.to_owned(),
        SITE,
        "/VERSION",
        clock,
        4000,
        Duration::from_secs(120),
    );
    client.wait_count(30);
    let start = clock.elapsed();
    let (run, _) = project
        .spawn(command, version, clock)
        .finish(Duration::from_secs(100));
    let end = clock.elapsed();
    let samples = client.finish_after(100);
    (run, samples, start, end)
}

/// How long a reload lets old and new workers both accept connections:
/// nginx's and haproxy's graceful reloads start the new workers before the
/// old ones stop accepting, so for a moment either may answer.
const RELOAD_OVERLAP: Duration = Duration::from_secs(1);

/// One switch, not a mix: once `new` answers, any other version answers
/// only within the reload's overlap after that first answer, never later.
fn assert_one_switch(samples: &[Sample], new: &str) {
    let first = samples
        .iter()
        .find(|s| s.version() == Some(new))
        .unwrap_or_else(|| panic!("{new} never answered"));
    let late: Vec<String> = samples
        .iter()
        .filter(|s| s.at > first.at + RELOAD_OVERLAP)
        .filter(|s| s.version().is_some_and(|v| v != new))
        .map(Sample::short)
        .collect();
    assert!(
        late.is_empty(),
        "after {new} first answered at {:.3}s, another version answered later than the reload overlap: {late:?}",
        first.at.as_secs_f64()
    );
}

#[test]
fn blue_green_switch_and_switch_back_drop_no_request() {
    let fleet = Fleet::start(5);
    let (blue, green) = ([2, 3], [4, 5]);
    let nginx = Nginx::start(&fleet, 1);
    let project = Project::new(&fleet, "playbooks/blue-green.yml", &blue, &green);
    blue_green(
        &fleet,
        &project,
        &nginx.address(),
        &|| nginx.reloads(),
        &blue,
        &green,
        "nginx",
    );
}

#[test]
fn blue_green_through_haproxy_switch_and_switch_back_drop_no_request() {
    let fleet = Fleet::start(5);
    let (blue, green) = ([2, 3], [4, 5]);
    let haproxy = support::haproxy::Haproxy::start(&fleet, 1);
    let project = Project::new(&fleet, "playbooks/canary-haproxy.yml", &blue, &green);
    // Without `traffic`, one step: a blue-green switch.
    let path = project.dir().join(&project.playbook);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replace(
        "    traffic:\n      steps: [10%, 50%, 100%]\n      hold: 15s\n",
        "",
    );
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    blue_green(
        &fleet,
        &project,
        &haproxy.address(),
        &|| haproxy.reloads(),
        &blue,
        &green,
        "haproxy",
    );
}

/// 1.0.0 to green (no pool serves yet), 2.0.0 to blue under traffic and
/// one switch, then `convoy rollback` under traffic: no request fails,
/// one reload each, every answer after each from the pool switched to.
fn blue_green(
    fleet: &Fleet,
    project: &Project,
    address: &str,
    reloads_now: &dyn Fn() -> usize,
    blue: &[usize],
    green: &[usize],
    how: &str,
) {
    // No record yet: blue is live as declared, so 1.0.0 goes to green,
    // which then takes the traffic.
    let first = project.deploy("1.0.0");
    assert_eq!(first.code, 0, "{}", first.dump());
    for &i in green {
        assert_eq!(current(fleet, i), "releases/1.0.0", "h{i}");
    }
    for &i in blue {
        assert_eq!(
            current(fleet, i),
            "",
            "h{i} was released to while blue was live"
        );
    }
    wait_version(address, "1.0.0");
    assert!(record(fleet).contains("live green"), "{}", record(fleet));

    // 2.0.0 goes to blue while green serves; then one switch.
    let green_pids: Vec<String> = green.iter().map(|&i| app_pid(fleet, i)).collect();
    let reloads = reloads_now();
    let (run, samples, start, end) = under_traffic(project, address, "run", Some("2.0.0"));
    assert_eq!(run.code, 0, "{}", run.dump());
    let before: Vec<&Sample> = samples.iter().filter(|s| s.at <= start).collect();
    let during: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at > start && s.at <= end)
        .collect();
    let after: Vec<&Sample> = samples.iter().filter(|s| s.at > end).collect();
    let all: Vec<&Sample> = samples.iter().collect();
    let (t, a) = (
        tally(&all, "1.0.0", "2.0.0"),
        tally(&after, "1.0.0", "2.0.0"),
    );
    let d = tally(&during, "1.0.0", "2.0.0");
    let reloaded = reloads_now() - reloads;
    eprintln!(
        "blue-green through {how}: switch green(1.0.0) -> blue(2.0.0): requests {} (during the run {}: 1.0.0 {}, 2.0.0 {}; after {}: 2.0.0 {}), failed {}, proxy reloads {reloaded}, run {}..{}",
        t.total,
        d.total,
        d.old,
        d.new,
        a.total,
        a.new,
        t.failed.len(),
        secs(start),
        secs(end)
    );
    assert!(t.failed.is_empty(), "failed requests: {:?}", t.failed);
    assert!(before.iter().all(|s| s.version() == Some("1.0.0")));
    assert!(d.total >= 50, "only {} requests during the run", d.total);
    assert!(
        d.old >= 20,
        "green served only {} during the release to blue",
        d.old
    );
    assert!(
        a.total >= 50 && a.new == a.total,
        "after the switch: {} of {} from 2.0.0",
        a.new,
        a.total
    );
    assert_eq!(reloaded, 1, "one reload for the switch\n{}", run.stdout);
    assert_one_switch(&samples, "2.0.0");
    for &i in blue {
        assert_eq!(current(fleet, i), "releases/2.0.0", "h{i}");
    }
    // Green stays warm: same release, same server process.
    for (n, &i) in green.iter().enumerate() {
        assert_eq!(current(fleet, i), "releases/1.0.0", "h{i}");
        assert_eq!(app_pid(fleet, i), green_pids[n], "h{i} was restarted");
    }
    let rec = record(fleet);
    assert!(
        rec.contains("live blue")
            && rec.contains("pool blue 100 2.0.0")
            && rec.contains("pool green 0 1.0.0"),
        "{rec}"
    );

    // Rollback: back to green in one reload, no app host touched.
    let pids: Vec<String> = blue
        .iter()
        .chain(green)
        .map(|&i| app_pid(fleet, i))
        .collect();
    let reloads = reloads_now();
    let (run, samples, _start, end) = under_traffic(project, address, "rollback", None);
    assert_eq!(run.code, 0, "{}", run.dump());
    let all: Vec<&Sample> = samples.iter().collect();
    let after: Vec<&Sample> = samples.iter().filter(|s| s.at > end).collect();
    let (t, a) = (
        tally(&all, "2.0.0", "1.0.0"),
        tally(&after, "2.0.0", "1.0.0"),
    );
    let reloaded = reloads_now() - reloads;
    eprintln!(
        "blue-green through {how}: switch back blue(2.0.0) -> green(1.0.0): requests {} (2.0.0 {}, 1.0.0 {}; after the run {}: 1.0.0 {}), failed {}, proxy reloads {reloaded}",
        t.total,
        t.old,
        t.new,
        a.total,
        a.new,
        t.failed.len()
    );
    assert!(t.failed.is_empty(), "failed requests: {:?}", t.failed);
    assert!(
        a.total >= 50 && a.new == a.total,
        "after the switch back: {} of {} from 1.0.0",
        a.new,
        a.total
    );
    assert_eq!(
        reloaded, 1,
        "one reload for the switch back\n{}",
        run.stdout
    );
    assert_one_switch(&samples, "1.0.0");
    let now: Vec<String> = blue
        .iter()
        .chain(green)
        .map(|&i| app_pid(fleet, i))
        .collect();
    assert_eq!(now, pids, "an app server was restarted by the rollback");
    for &i in blue {
        assert_eq!(
            current(fleet, i),
            "releases/2.0.0",
            "h{i} was switched by the rollback"
        );
    }
    assert!(record(fleet).contains("live green"), "{}", record(fleet));
}

/// When the first stdout line containing `text` arrived.
fn line_at(lines: &[(Duration, String)], text: &str, run: &Run) -> Duration {
    lines
        .iter()
        .find(|(_, l)| l.contains(text))
        .map(|(at, _)| *at)
        .unwrap_or_else(|| panic!("no line with {text:?}:\n{}", run.stdout))
}

#[test]
fn share_canary_through_nginx_gives_the_new_pool_10_then_50_then_100_percent() {
    let fleet = Fleet::start(5);
    let (blue, green) = ([2, 3], [4, 5]);
    let nginx = Nginx::start(&fleet, 1);
    let project = Project::new(&fleet, "playbooks/canary.yml", &blue, &green);

    // The first release (no pool serves yet) goes to green in one step.
    let first = project.deploy("1.0.0");
    assert_eq!(first.code, 0, "{}", first.dump());
    assert!(first.stdout.contains("in one step"), "{}", first.stdout);
    nginx.wait_for_path(SITE, "/VERSION", 200, "1.0.0");

    share_canary(
        &fleet,
        &project,
        nginx.address(),
        &|| nginx.reloads(),
        "nginx split_clients",
    );
}

/// 2.0.0 released to blue while green (1.0.0) serves through the proxy at
/// `address`, then 10%, 50%, 100% of the requests, each step held 15 s;
/// three clients at once for enough requests per step. Measures the share
/// of each step over its window and checks it.
fn share_canary(
    fleet: &Fleet,
    project: &Project,
    address: String,
    reloads_now: &dyn Fn() -> usize,
    how: &str,
) {
    // 2.0.0 to blue, then 10%, 50%, 100% of the requests, 15 s each,
    // three clients at once for enough requests per step.
    let clock = Instant::now();
    let clients: Vec<Client> = (0..3)
        .map(|_| {
            Client::start(
                address.clone(),
                SITE,
                "/VERSION",
                clock,
                8000,
                Duration::from_secs(150),
            )
        })
        .collect();
    clients[0].wait_count(20);
    let reloads = reloads_now();
    let (run, lines) = project
        .spawn("run", Some("2.0.0"), clock)
        .finish(Duration::from_secs(120));
    let end = clock.elapsed();
    let mut samples: Vec<Sample> = clients
        .into_iter()
        .flat_map(|c| c.finish_after(60))
        .collect();
    samples.sort_by_key(|s| s.at);
    assert_eq!(run.code, 0, "{}", run.dump());
    let reloaded = reloads_now() - reloads;

    // Each step's window: from its note (written once the reload is done)
    // to the start of the next step.
    let steps = [
        ("step 1/3: 10%", Some("TASK [traffic: step 2/3"), 10.0, 3.0),
        ("step 2/3: 50%", Some("TASK [traffic: step 3/3"), 50.0, 5.0),
        ("step 3/3: 100%", None, 100.0, 0.0),
    ];
    let failed: Vec<String> = samples
        .iter()
        .filter(|s| s.version().is_none())
        .map(|s| s.short())
        .collect();
    let mut report = Vec::new();
    let mut checks = Vec::new();
    for (start, next, want, tolerance) in steps {
        let from = line_at(&lines, &format!("NOTE traffic: {start}"), &run);
        let to = next.map_or(Duration::MAX, |n| line_at(&lines, n, &run));
        let window: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at > from && s.at < to)
            .collect();
        let t = tally(&window, "1.0.0", "2.0.0");
        let share = 100.0 * t.new as f64 / t.total.max(1) as f64;
        report.push(format!(
            "{start}: {} requests, 2.0.0 {} ({share:.2}%, wanted {want}% ± {tolerance}), 1.0.0 {}, failed {}",
            t.total,
            t.new,
            t.old,
            t.failed.len()
        ));
        checks.push((start, t.total, share, want, tolerance));
    }
    eprintln!(
        "share canary green(1.0.0) -> blue(2.0.0), {how}: {} requests in all, failed {}, proxy reloads {reloaded}, run ended {}\n  {}",
        samples.len(),
        failed.len(),
        secs(end),
        report.join("\n  ")
    );
    assert!(
        failed.is_empty(),
        "failed requests: {:?}",
        &failed[..failed.len().min(20)]
    );
    for (step, total, share, want, tolerance) in checks {
        let needed = if want < 100.0 { 1000 } else { 100 };
        assert!(total >= needed, "{step}: only {total} requests");
        assert!(
            (share - want).abs() <= tolerance,
            "{step}: 2.0.0 answered {share:.2}% of {total} requests, wanted {want}% ± {tolerance}"
        );
    }
    // One reload per step, none while the idle pool was released to.
    assert_eq!(reloaded, 3, "{}", run.stdout);
    let rec = record(fleet);
    assert!(
        rec.contains("live blue") && rec.contains("pool blue 100 2.0.0"),
        "{rec}"
    );
}

#[test]
fn a_step_nginx_rejects_leaves_the_step_before_serving_and_says_which() {
    let fleet = Fleet::start(5);
    let (blue, green) = ([2, 3], [4, 5]);
    let nginx = Nginx::start(&fleet, 1);
    let project = Project::new(&fleet, "playbooks/canary.yml", &blue, &green);
    // Short holds: this test is about the step that fails.
    let path = project.dir().join("playbooks/canary.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("hold: 15s", "hold: 1s")).unwrap();
    let first = project.deploy("1.0.0");
    assert_eq!(first.code, 0, "{}", first.dump());
    nginx.wait_for_path(SITE, "/VERSION", 200, "1.0.0");

    // The config of the 50% step has a directive nginx does not know.
    let template = project.dir().join("templates/nginx/pools.conf.j2");
    let text = std::fs::read_to_string(&template).unwrap();
    let broken = text.replacen(
        "server {\n",
        "{% if traffic.split and pools.blue.weight == 50 %}no_such_directive on;\n{% endif %}server {\n",
        1,
    );
    assert_ne!(broken, text);
    std::fs::write(&template, broken).unwrap();
    let run = project.deploy("2.0.0");
    assert_ne!(run.code, 0, "{}", run.dump());
    let all = run.all();
    for said in [
        "traffic: step 2/3: 50% to blue (2.0.0) failed",
        "/etc/nginx/conf.d/hello.conf",
        "unknown directive \"no_such_directive\"",
        "the proxy keeps serving the step before (blue 10%",
    ] {
        assert!(all.contains(said), "wanted {said:?} in:\n{all}");
    }
    assert!(!all.contains("TASK [traffic: step 3/3"), "{all}");

    // nginx serves the 10% step still.
    let (mut new, mut total) = (0, 0);
    for _ in 0..1000 {
        let answer = nginx.get(SITE, "/VERSION");
        match &answer {
            Ok((200, b)) if b.trim() == "2.0.0" => new += 1,
            Ok((200, b)) if b.trim() == "1.0.0" => {}
            other => panic!("request {total} failed: {other:?}"),
        }
        total += 1;
    }
    let share = 100.0 * f64::from(new) / f64::from(total);
    eprintln!(
        "rejected 50% step: after the run {total} requests, 2.0.0 {new} ({share:.2}%, wanted 10% ± 3), failed 0"
    );
    assert!((share - 10.0).abs() <= 3.0, "{share:.2}% from 2.0.0");
    let rec = record(&fleet);
    assert!(
        rec.contains("pool blue 10 2.0.0") && rec.contains("live green"),
        "{rec}"
    );

    // A release onto a pool that takes part of the traffic is refused;
    // rollback sends it all back to green.
    let refused = project.deploy("3.0.0");
    assert_eq!(refused.code, 3, "{}", refused.dump());
    assert!(
        refused
            .all()
            .contains("pool blue takes part of the traffic"),
        "{}",
        refused.all()
    );
    let args = project.args("rollback", None);
    let back = run_in(
        project.dir(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(back.code, 0, "{}", back.dump());
    for n in 0..200 {
        let answer = nginx.get(SITE, "/VERSION");
        assert!(
            matches!(&answer, Ok((200, b)) if b.trim() == "1.0.0"),
            "request {n} after the rollback: {answer:?}"
        );
    }
    assert!(
        record(&fleet).contains("pool green 100 1.0.0"),
        "{}",
        record(&fleet)
    );
}

/// `count` GETs of `path` through nginx from this machine: how many
/// answered each version (anything else panics).
fn versions_from_here(nginx: &Nginx, path: &str, count: usize) -> (usize, usize) {
    versions_via(&nginx.address(), path, count)
}

/// Like [`versions_from_here`], through the proxy at `address`.
fn versions_via(address: &str, path: &str, count: usize) -> (usize, usize) {
    let (mut old, mut new) = (0, 0);
    for n in 0..count {
        match support::nginx::http_get(address, SITE, path) {
            Ok((200, b)) if b.trim() == "1.0.0" => old += 1,
            Ok((200, b)) if b.trim() == "2.0.0" => new += 1,
            other => panic!("request {n} for {path} failed: {other:?}"),
        }
    }
    (old, new)
}

/// `count` GETs of /VERSION through nginx sent from fleet host `from`
/// (its own address): how many answered each version.
fn versions_from_host(fleet: &Fleet, from: usize, count: usize) -> (usize, usize) {
    let out = fleet.exec_ok(
        from,
        &format!(
            "for i in $(seq {count}); do curl -sS -H 'Host: {SITE}' http://{}:80/VERSION || echo failed; done",
            fleet.addr(1)
        ),
    );
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines.len(), count, "{out}");
    let old = lines.iter().filter(|l| **l == "1.0.0").count();
    let new = lines.iter().filter(|l| **l == "2.0.0").count();
    assert_eq!(old + new, count, "failed requests from h{from}:\n{out}");
    (old, new)
}

/// Waits (bounded) until the run in the background has printed `text`.
fn wait_line(spawned: &mut Spawned, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !spawned.stdout().contains(text) {
        spawned.assert_running(text);
        assert!(
            Instant::now() < deadline,
            "no {text:?} in:\n{}",
            spawned.stdout()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn targeted_steps_send_chosen_clients_then_chosen_routes_to_the_new_pool() {
    let fleet = Fleet::start(6);
    let (blue, green, chosen) = ([2, 3], [4, 5], 6);
    let nginx = Nginx::start(&fleet, 1);
    let project = Project::new(&fleet, "playbooks/canary.yml", &blue, &green);
    targeted(
        &fleet,
        &project,
        &nginx.address(),
        chosen,
        "nginx geo and map",
    );
}

#[test]
fn targeted_steps_through_haproxy_send_chosen_clients_then_chosen_routes_to_the_new_pool() {
    let fleet = Fleet::start(6);
    let (blue, green, chosen) = ([2, 3], [4, 5], 6);
    let haproxy = support::haproxy::Haproxy::start(&fleet, 1);
    let project = Project::new(&fleet, "playbooks/canary-haproxy.yml", &blue, &green);
    targeted(
        &fleet,
        &project,
        &haproxy.address(),
        chosen,
        "haproxy src and path_reg ACLs",
    );
}

/// Waits (bounded) until the proxy at `address` answers `version`.
fn wait_version(address: &str, version: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = support::nginx::http_get(address, SITE, "/VERSION");
        if matches!(&answer, Ok((200, b)) if b.trim() == version) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{address}: {answer:?}, wanted {version}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The targeted steps through the proxy at `address`: fleet host `chosen`'s
/// address, then the /api/ routes, then every request.
fn targeted(fleet: &Fleet, project: &Project, address: &str, chosen: usize, how: &str) {
    // The steps under test: h6's address, then the /api routes, then all.
    let path = project.dir().join(&project.playbook);
    let text = std::fs::read_to_string(&path).unwrap();
    let steps = format!(
        "steps: [{{clients: [{}/32]}}, {{routes: [\"^/api/\"]}}, 100%]",
        fleet.addr(chosen)
    );
    let edited = text
        .replace("steps: [10%, 50%, 100%]", &steps)
        .replace("hold: 15s", "hold: 8s");
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    // The app serves its version under /api too.
    let with_api = |v: &str| write_file(project.dir(), "app/hello/api/VERSION", &format!("{v}\n"));
    with_api("1.0.0");
    let first = project.deploy("1.0.0");
    assert_eq!(first.code, 0, "{}", first.dump());
    wait_version(address, "1.0.0");

    with_api("2.0.0");
    let mut run = project.spawn("run", Some("2.0.0"), Instant::now());
    wait_line(&mut run, "NOTE traffic: step 1/3");
    let from_chosen = versions_from_host(fleet, chosen, 200);
    let here = versions_via(address, "/VERSION", 300);
    let here_api = versions_via(address, "/api/VERSION", 100);
    wait_line(&mut run, "NOTE traffic: step 2/3");
    let api = versions_via(address, "/api/VERSION", 300);
    let root = versions_via(address, "/VERSION", 300);
    let chosen_root = versions_from_host(fleet, chosen, 100);
    let (run, _) = run.finish(Duration::from_secs(90));
    assert_eq!(run.code, 0, "{}", run.dump());
    let after = versions_via(address, "/VERSION", 200);
    eprintln!(
        "targeted steps through {how}, green(1.0.0) -> blue(2.0.0):\n  step 1 (clients {}/32): from h{chosen} {} requests, 2.0.0 {}; from elsewhere /VERSION {} requests, 2.0.0 {}, /api/VERSION {} requests, 2.0.0 {}; failed 0\n  step 2 (routes ^/api/): /api/VERSION {} requests, 2.0.0 {}; /VERSION {} requests, 2.0.0 {}; from h{chosen} /VERSION {} requests, 2.0.0 {}; failed 0\n  step 3 (100%): {} requests, 2.0.0 {}",
        fleet.addr(chosen),
        200,
        from_chosen.1,
        300,
        here.1,
        100,
        here_api.1,
        300,
        api.1,
        300,
        root.1,
        100,
        chosen_root.1,
        200,
        after.1
    );
    assert_eq!(
        from_chosen,
        (0, 200),
        "the chosen client always reaches 2.0.0"
    );
    assert_eq!(here, (300, 0), "other clients never do");
    assert_eq!(here_api, (100, 0), "other clients never do, on any route");
    assert_eq!(api, (0, 300), "/api reaches 2.0.0");
    assert_eq!(root, (300, 0), "/ does not");
    assert_eq!(chosen_root, (100, 0), "the clients step is over");
    assert_eq!(after, (0, 200));
}

#[test]
fn header_and_cookie_steps_through_nginx_send_only_marked_requests_to_the_new_pool() {
    let fleet = Fleet::start(5);
    let nginx = Nginx::start(&fleet, 1);
    let project = Project::new(&fleet, "playbooks/canary.yml", &[2, 3], &[4, 5]);
    by_request(
        &project,
        &nginx.address(),
        "nginx map $http_x_canary, $cookie_canary",
    );
}

#[test]
fn header_and_cookie_steps_through_haproxy_send_only_marked_requests_to_the_new_pool() {
    let fleet = Fleet::start(5);
    let haproxy = support::haproxy::Haproxy::start(&fleet, 1);
    let project = Project::new(&fleet, "playbooks/canary-haproxy.yml", &[2, 3], &[4, 5]);
    by_request(
        &project,
        &haproxy.address(),
        "haproxy req.hdr and req.cook ACLs",
    );
}

/// `count` GETs of /VERSION through the proxy at `address` with `headers`:
/// how many answered each version (anything else panics).
fn versions_with(address: &str, headers: &[(&str, &str)], count: usize) -> (usize, usize) {
    let (mut old, mut new) = (0, 0);
    for n in 0..count {
        match support::nginx::http_request_with("GET", address, SITE, "/VERSION", headers) {
            Ok((200, b)) if b.trim() == "1.0.0" => old += 1,
            Ok((200, b)) if b.trim() == "2.0.0" => new += 1,
            other => panic!("request {n} with {headers:?} failed: {other:?}"),
        }
    }
    (old, new)
}

/// The header step (`X-Canary: 1`), then the cookie step (`canary=yes` or
/// `beta`), then every request, through the proxy at `address`: marked
/// requests always reach the new version, every other one never does.
fn by_request(project: &Project, address: &str, how: &str) {
    let path = project.dir().join(&project.playbook);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text
        .replace(
            "steps: [10%, 50%, 100%]",
            "steps: [{header: {X-Canary: [1]}}, {cookie: {canary: [\"yes\", beta]}}, 100%]",
        )
        .replace("hold: 15s", "hold: 8s");
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    let first = project.deploy("1.0.0");
    assert_eq!(first.code, 0, "{}", first.dump());
    wait_version(address, "1.0.0");

    let mut run = project.spawn("run", Some("2.0.0"), Instant::now());
    wait_line(&mut run, "NOTE traffic: step 1/3");
    let mut figures = Vec::new();
    let mut measure = |step: &str, label: &str, headers: &[(&str, &str)], want_new: bool| {
        let count = 150;
        let (old, new) = versions_with(address, headers, count);
        figures.push(format!(
            "  {step}: {label}: {count} requests, 2.0.0 {new}, 1.0.0 {old}"
        ));
        let want = if want_new { (0, count) } else { (count, 0) };
        assert_eq!((old, new), want, "{step}: {label} through {how}");
    };
    let step1 = "step 1 (header X-Canary 1)";
    measure(step1, "X-Canary: 1", &[("X-Canary", "1")], true);
    measure(step1, "no header", &[], false);
    measure(step1, "X-Canary: 0", &[("X-Canary", "0")], false);
    measure(step1, "X-Canary: 10", &[("X-Canary", "10")], false);
    measure(
        step1,
        "Cookie: canary=yes",
        &[("Cookie", "canary=yes")],
        false,
    );
    wait_line(&mut run, "NOTE traffic: step 2/3");
    let step2 = "step 2 (cookie canary yes beta)";
    measure(
        step2,
        "Cookie: canary=yes",
        &[("Cookie", "canary=yes")],
        true,
    );
    measure(
        step2,
        "Cookie: a=1; canary=beta",
        &[("Cookie", "a=1; canary=beta")],
        true,
    );
    measure(
        step2,
        "Cookie: canary=no",
        &[("Cookie", "canary=no")],
        false,
    );
    measure(
        step2,
        "Cookie: xcanary=yes",
        &[("Cookie", "xcanary=yes")],
        false,
    );
    measure(step2, "no cookie", &[], false);
    measure(step2, "X-Canary: 1", &[("X-Canary", "1")], false);
    let (run, _) = run.finish(Duration::from_secs(90));
    assert_eq!(run.code, 0, "{}", run.dump());
    measure("step 3 (100%)", "no header", &[], true);
    eprintln!(
        "header and cookie steps through {how}, green(1.0.0) -> blue(2.0.0), failed 0:\n{}",
        figures.join("\n")
    );
}

/// Every file under `dir` on fleet host `i`: its path, mtime and content.
fn files_under(
    fleet: &Fleet,
    i: usize,
    dir: &str,
) -> Vec<(String, std::time::SystemTime, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![fleet.host_path(i, dir)];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().filter_map(Result::ok) {
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                todo.push(e.path());
            } else if meta.is_file() {
                let content = std::fs::read(e.path()).unwrap();
                out.push((
                    e.path().display().to_string(),
                    meta.modified().unwrap(),
                    content,
                ));
            }
        }
    }
    out.sort();
    out
}

/// The TASK block of `task` in a run's output, up to the next TASK.
fn task_block<'a>(stdout: &'a str, task: &str) -> &'a str {
    let start = stdout
        .find(&format!("TASK [{task}]"))
        .unwrap_or_else(|| panic!("no TASK [{task}] in:\n{stdout}"));
    let rest = &stdout[start + 5..];
    let end = rest
        .find("TASK [")
        .or_else(|| rest.find("PLAY RECAP"))
        .unwrap_or(rest.len());
    &stdout[start..start + 5 + end]
}

#[test]
fn check_and_diff_list_each_traffic_step_and_change_nothing_on_the_proxy_host() {
    let fleet = Fleet::start(5);
    let nginx = Nginx::start(&fleet, 1);
    let project = Project::new(&fleet, "playbooks/canary.yml", &[2, 3], &[4, 5]);
    let path = project.dir().join(&project.playbook);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replace(
        "steps: [10%, 50%, 100%]",
        "steps: [{header: {X-Canary: [1]}}, 50%, 100%]",
    );
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    let first = project.deploy("1.0.0");
    assert_eq!(first.code, 0, "{}", first.dump());
    wait_version(&nginx.address(), "1.0.0");

    let nginx_files = files_under(&fleet, 1, "/etc/nginx");
    let state_files = files_under(&fleet, 1, STATE_DIR);
    let reloads = nginx.reloads();
    let currents: Vec<String> = (2..=5).map(|i| current(&fleet, i)).collect();
    project.set_version("2.0.0");
    let steps = [
        "traffic: step 1/3: header X-Canary 1 to blue (2.0.0)",
        "traffic: step 2/3: 50% to blue (2.0.0)",
        "traffic: step 3/3: 100% to blue (2.0.0)",
    ];
    let check = |extra: &[&str]| {
        let mut args = project.args("run", Some("2.0.0"));
        args.extend(extra.iter().map(|s| s.to_string()));
        let run = run_in(
            project.dir(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert_eq!(run.code, 0, "{}", run.dump());
        run
    };

    // --check: each step, what it would write, and where traffic would go.
    let run = check(&["--check"]);
    for step in steps {
        let block = task_block(&run.stdout, step);
        assert!(
            block.contains(
                "changed: [h1]: would write /etc/nginx/conf.d/hello.conf, /srv/convoy-proxy/"
            ),
            "{block}"
        );
        assert!(block.contains("would validate and reload"), "{block}");
        assert!(
            !block.contains("--- before"),
            "a diff without --diff: {block}"
        );
    }
    assert!(
        run.stdout.contains("NOTE traffic: step 2/3: 50% to blue (2.0.0): would serve blue 50% (2.0.0), green 50% live (1.0.0)"),
        "{}",
        run.stdout
    );

    // --check --diff: each step's diff from the step before, as a run
    // would install them one after the other.
    let run = check(&["--check", "--diff"]);
    let one = task_block(&run.stdout, steps[0]);
    for line in [
        "-# traffic: blue 0% (no version), green 100% live (1.0.0)",
        "+# traffic: blue 0% (2.0.0), green 100% live (1.0.0); header X-Canary 1 to blue",
        "+map $http_x_canary $hello_pool {",
        "+    \"1\" hello_blue;",
        "-        proxy_pass http://hello_green;",
        "+        proxy_pass http://$hello_pool;",
        "+target blue header X-Canary 1",
    ] {
        assert!(one.contains(line), "step 1 diff lacks {line:?}:\n{one}");
    }
    let two = task_block(&run.stdout, steps[1]);
    for line in [
        "-# traffic: blue 0% (2.0.0), green 100% live (1.0.0); header X-Canary 1 to blue",
        "-map $http_x_canary $hello_pool {",
        "+split_clients \"${request_id}\" $hello_pool {",
        "+    50% hello_blue;",
        "-target blue header X-Canary 1",
        "+pool blue 50 2.0.0",
    ] {
        assert!(two.contains(line), "step 2 diff lacks {line:?}:\n{two}");
    }
    // Unchanged since step 1: not in step 2's diff.
    assert!(!two.contains("+upstream hello_blue {"), "{two}");
    assert!(
        !two.contains("+        proxy_pass http://$hello_pool;"),
        "{two}"
    );
    let three = task_block(&run.stdout, steps[2]);
    for line in [
        "-split_clients \"${request_id}\" $hello_pool {",
        "-        proxy_pass http://$hello_pool;",
        "+        proxy_pass http://hello_blue;",
        "-upstream hello_green {",
        "+live blue",
    ] {
        assert!(three.contains(line), "step 3 diff lacks {line:?}:\n{three}");
    }

    // Nothing changed on any host: the proxy's files (content and mtime),
    // the traffic record, nginx (no reload), the app hosts' releases.
    assert_eq!(
        files_under(&fleet, 1, "/etc/nginx"),
        nginx_files,
        "/etc/nginx changed"
    );
    assert_eq!(
        files_under(&fleet, 1, STATE_DIR),
        state_files,
        "{STATE_DIR} changed"
    );
    assert_eq!(nginx.reloads(), reloads, "nginx reloaded");
    let after: Vec<String> = (2..=5).map(|i| current(&fleet, i)).collect();
    assert_eq!(after, currents);
    assert_eq!(
        versions_with(&nginx.address(), &[("X-Canary", "1")], 50),
        (50, 0),
        "a check run's step reached nginx"
    );
    eprintln!(
        "--check --diff on a pooled play: 3 traffic steps listed, each diff from the step before; /etc/nginx ({} files) and {STATE_DIR} ({} files) unchanged in content and mtime, {reloads} nginx reloads before and after, 50 of 50 X-Canary requests still on 1.0.0",
        nginx_files.len(),
        state_files.len()
    );
}

#[test]
fn convoy_traffic_shows_the_pools_and_moves_traffic_by_hand() {
    let fleet = Fleet::start(5);
    let (blue, green) = ([2, 3], [4, 5]);
    let nginx = Nginx::start(&fleet, 1);
    let project = Project::new(&fleet, "playbooks/blue-green.yml", &blue, &green);
    for v in ["1.0.0", "2.0.0"] {
        let run = project.deploy(v);
        assert_eq!(run.code, 0, "{}", run.dump());
    }
    nginx.wait_for_path(SITE, "/VERSION", 200, "2.0.0");
    let traffic = |to: Option<&str>| {
        let mut args = project.args("traffic", None);
        if let Some(to) = to {
            args.extend(["--to".to_owned(), to.to_owned()]);
        }
        run_in(
            project.dir(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    let shown = traffic(None);
    assert_eq!(shown.code, 0, "{}", shown.dump());
    let line = |out: &str, pool: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(pool))
            .unwrap_or_else(|| panic!("no {pool} in:\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (b, g) = (fleet.name(2), fleet.name(4));
    assert!(
        line(&shown.stdout, "blue").starts_with(&format!("blue 100% live version 2.0.0 hosts {b}")),
        "{}",
        shown.stdout
    );
    assert!(
        line(&shown.stdout, "green").starts_with(&format!("green 0% version 1.0.0 hosts {g}")),
        "{}",
        shown.stdout
    );

    // 10% to the idle pool (green, 1.0.0) by hand, one reload.
    let reloads = nginx.reloads();
    let moved = traffic(Some("10%"));
    assert_eq!(moved.code, 0, "{}", moved.dump());
    assert_eq!(nginx.reloads() - reloads, 1);
    assert!(
        line(&moved.stdout, "green").starts_with("green 10% version 1.0.0"),
        "{}",
        moved.stdout
    );
    let (old, new) = versions_from_here(&nginx, "/VERSION", 1000);
    let share = 100.0 * old as f64 / 1000.0;
    eprintln!(
        "convoy traffic --to 10%: 1000 requests, 1.0.0 (green) {old} ({share:.2}%, wanted 10% ± 3), 2.0.0 {new}, failed 0"
    );
    assert!((share - 10.0).abs() <= 3.0, "{share:.2}% from green");

    // Every request to green; then an unknown pool is refused, touching nothing.
    let moved = traffic(Some("green"));
    assert_eq!(moved.code, 0, "{}", moved.dump());
    assert_eq!(versions_from_here(&nginx, "/VERSION", 200), (200, 0));
    let reloads = nginx.reloads();
    let refused = traffic(Some("red"));
    assert_eq!(refused.code, 3, "{}", refused.dump());
    assert!(
        refused
            .stderr
            .contains("--to red: no such pool (the play has blue, green)"),
        "{}",
        refused.dump()
    );
    let refused = traffic(Some("150%"));
    assert_eq!(refused.code, 3, "{}", refused.dump());
    // A pooled rollback switches pools, not releases: --to is refused.
    let mut args = project.args("rollback", None);
    args.extend(["--to".to_owned(), "1.0.0".to_owned()]);
    let refused = run_in(
        project.dir(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(refused.code, 3, "{}", refused.dump());
    assert!(
        refused
            .all()
            .contains("rollback --to 1.0.0: a play with pools rolls back by switching"),
        "{}",
        refused.all()
    );
    assert_eq!(nginx.reloads(), reloads);
    assert!(record(&fleet).contains("live green"), "{}", record(&fleet));
}

#[test]
fn share_canary_through_haproxy_gives_the_new_pool_10_then_50_then_100_percent() {
    let fleet = Fleet::start(5);
    let (blue, green) = ([2, 3], [4, 5]);
    let haproxy = support::haproxy::Haproxy::start(&fleet, 1);
    let project = Project::new(&fleet, "playbooks/canary-haproxy.yml", &blue, &green);
    let first = project.deploy("1.0.0");
    assert_eq!(first.code, 0, "{}", first.dump());
    haproxy.wait_for("/VERSION", 200, "1.0.0");
    share_canary(
        &fleet,
        &project,
        haproxy.address(),
        &|| haproxy.reloads(),
        "haproxy weights",
    );
}
