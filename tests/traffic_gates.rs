//! Traffic gates: a step judged from what the proxy saw of the new pool
//! over the step's hold, proved through a real nginx (its access log in
//! convoy's format) and a real haproxy (its stats socket) on a proxy host
//! of the fleet, with clients sending requests through the proxy while
//! convoy runs.
//!
//! - a new version answering 500 to every fifth request (a FAULTS file in
//!   its release: tests/../app/hello/bin/hello) fails its gate at the
//!   first step (10%): the run exits 2 with the measured 5xx share (near
//!   20%), the traffic is back on the old pool in one reload (two in the
//!   run: the step and the return), and after the return every request
//!   answers 200 from the old version;
//! - a good version then passes the gate at 10% and 50% and reaches 100%;
//! - `--check` and `convoy plan` show the gate; bad gates are refused at
//!   load with file:line:column (local hosts, no fleet).
//!
//! The figures go to stderr (--nocapture).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::client::{Client, Sample, Spawned, secs, timeline_lines};
use support::nginx::Nginx;
use support::run::{Run, run_in};
use support::{Fleet, workdir, write_file};

const STATE_DIR: &str = "/srv/convoy-proxy";
const APP_PORT: u16 = 8080;
const SITE: &str = "hello.test";
const HOLD: &str = "8s";

/// A project made of the repository's `playbook` (its `traffic` edited to
/// hold `HOLD` and carry `gate`), the pool templates and the hello app, on
/// a fleet: `proxies` run the proxy (`balancers`), `blue` (h2, h3) and
/// `green` (h4, h5) are the pools.
struct Project {
    dir: tempfile::TempDir,
    playbook: String,
}

impl Project {
    fn new(fleet: &Fleet, playbook: &str, gate: &str, proxies: &[usize]) -> Project {
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
        let path = dir.path().join(playbook);
        let text = std::fs::read_to_string(&path).unwrap();
        let edited = text.replace(
            "      hold: 15s\n",
            &format!("      hold: {HOLD}\n      gate: {gate}\n"),
        );
        assert_ne!(edited, text);
        std::fs::write(&path, edited).unwrap();
        let host = |i: usize| {
            format!(
                "            {}:\n              ansible_host: {}\n",
                fleet.name(i),
                fleet.addr(i)
            )
        };
        let mut yaml = format!(
            "all:\n  vars:\n    convoy_ssh_config: {}\n    convoy_proxy_state_dir: {STATE_DIR}\n    app_name: hello\n    app_port: {APP_PORT}\n    app_root: /srv\n    proxy_server_name: {SITE}\n    nginx_pidfile: /srv/nginx/nginx.pid\n{}  children:\n    balancers:\n      hosts:\n{}    app:\n      children:\n",
            fleet.ssh_config().display(),
            support::haproxy::inventory_vars(4),
            proxies
                .iter()
                .map(|&i| format!(
                    "        {}:\n          ansible_host: {}\n",
                    fleet.name(i),
                    fleet.addr(i)
                ))
                .collect::<String>()
        );
        for (group, hosts) in [("blue", [2, 3]), ("green", [4, 5])] {
            yaml.push_str(&format!("        {group}:\n          hosts:\n"));
            for i in hosts {
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

    /// What the next release serves, and how it misbehaves (the app's
    /// FAULTS file: `fail_every=5` answers 500 to every fifth request).
    fn set_version(&self, version: &str, faults: Option<&str>) {
        write_file(self.dir(), "app/hello/VERSION", &format!("{version}\n"));
        let file = self.dir().join("app/hello/FAULTS");
        match faults {
            Some(f) => {
                write_file(self.dir(), "app/hello/FAULTS", f);
            }
            None if file.exists() => std::fs::remove_file(file).unwrap(),
            None => {}
        }
    }

    fn args(&self, command: &str, version: &str, extra: &[&str]) -> Vec<String> {
        let mut args = vec![command.to_owned(), self.playbook.clone()];
        args.extend(["-i".to_owned(), "inventory.yml".to_owned()]);
        args.extend(["-e".to_owned(), format!("version={version}")]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    fn deploy(&self, version: &str, extra: &[&str]) -> Run {
        self.set_version(version, None);
        let args = self.args("run", version, extra);
        run_in(
            self.dir(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    }
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
#[derive(Debug, Default)]
struct Tally {
    total: usize,
    /// 200 with this version -> count.
    versions: std::collections::BTreeMap<String, usize>,
    /// 5xx answers (the proxy passed the app's 500 on).
    server_errors: usize,
    /// No answer, or any other status.
    failed: Vec<String>,
}

impl Tally {
    fn of<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Tally {
        let mut t = Tally::default();
        for s in samples {
            t.total += 1;
            match &s.answer {
                Ok((200, body)) => *t.versions.entry(body.trim().to_owned()).or_default() += 1,
                Ok((status, _)) if (500..600).contains(status) => t.server_errors += 1,
                _ => t.failed.push(s.short()),
            }
        }
        t
    }

    fn answered(&self, version: &str) -> usize {
        self.versions.get(version).copied().unwrap_or(0)
    }
}

/// When the first stdout line containing `text` arrived.
fn line_at(lines: &[(Duration, String)], text: &str, run: &Run) -> Duration {
    lines
        .iter()
        .find(|(_, l)| l.contains(text))
        .map(|(at, _)| *at)
        .unwrap_or_else(|| panic!("no line with {text:?}:\n{}", run.stdout))
}

/// `new` (to blue, while green serves) deployed with three clients sending
/// requests through each proxy at `addresses`: the run, its stamped lines,
/// the answers, and the proxies' reloads during the run.
fn deploy_under_traffic(
    project: &Project,
    addresses: &[String],
    reloads_now: &dyn Fn() -> usize,
    new: &str,
    faults: Option<&str>,
) -> (Run, Vec<(Duration, String)>, Vec<Sample>, usize) {
    let clock = Instant::now();
    let clients: Vec<Client> = addresses
        .iter()
        .flat_map(|a| [a; 3])
        .map(|address| {
            Client::start(
                address.to_owned(),
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
    project.set_version(new, faults);
    let (run, lines) = Spawned::start(project.dir(), project.args("run", new, &[]), clock)
        .finish(Duration::from_secs(120));
    let reloaded = reloads_now() - reloads;
    let mut samples: Vec<Sample> = clients
        .into_iter()
        .flat_map(|c| c.finish_after(100))
        .collect();
    samples.sort_by_key(|s| s.at);
    (run, lines, samples, reloaded)
}

/// The share in `… answered 5xx to 19.6% of 512 requests …`.
fn measured_share(text: &str) -> (f64, u64) {
    let rest = text
        .split("answered 5xx to ")
        .nth(1)
        .unwrap_or_else(|| panic!("no measured share in:\n{text}"));
    let (share, rest) = rest.split_once("% of ").unwrap();
    let requests = rest.split_whitespace().next().unwrap();
    (share.parse().unwrap(), requests.parse().unwrap())
}

/// 1.0.0 to green (no pool serves yet); a faulty 2.0.0 to blue fails its
/// gate at 10% and the traffic returns to green; a good 3.0.0 to blue
/// passes and reaches 100%.
fn gate_fails_then_passes(
    fleet: &Fleet,
    project: &Project,
    address: &str,
    reloads_now: &dyn Fn() -> usize,
    how: &str,
) {
    let first = project.deploy("1.0.0", &[]);
    assert_eq!(first.code, 0, "{}", first.dump());

    // --check says what the gate would judge and changes nothing.
    let checked = project.deploy("2.0.0", &["--check"]);
    assert_eq!(checked.code, 0, "{}", checked.dump());
    assert!(
        checked
            .stdout
            .contains("the gate would judge blue over the hold: at most 5% 5xx"),
        "{}",
        checked.stdout
    );

    // The faulty version: 500 to every fifth request.
    let (run, lines, samples, reloaded) = deploy_under_traffic(
        project,
        &[address.to_owned()],
        reloads_now,
        "2.0.0",
        Some("fail_every=5\n"),
    );
    assert_eq!(run.code, 2, "a failed gate fails the run\n{}", run.dump());
    assert_eq!(run.journal().outcome(), "rolled_back", "{}", run.dump());
    let failed_line = run
        .stdout
        .lines()
        .find(|l| l.contains("gate failed") && l.contains("traffic is back on green (1.0.0)"))
        .unwrap_or_else(|| panic!("no gate failure naming the return:\n{}", run.stdout))
        .to_owned();
    assert!(
        failed_line
            .contains("traffic: step 1/3: 10% to blue (2.0.0): gate failed: blue answered 5xx to "),
        "{failed_line}"
    );
    assert!(failed_line.contains("gate: at most 5%)"), "{failed_line}");
    let (share, requests) = measured_share(&failed_line);
    assert!(
        !run.stdout.contains("TASK [traffic: step 2/3"),
        "{}",
        run.stdout
    );
    let step_at = line_at(
        &lines,
        "NOTE traffic: step 1/3: 10% to blue (2.0.0): traffic",
        &run,
    );
    let back_at = line_at(&lines, "traffic is back on green", &run);
    let during = Tally::of(samples.iter().filter(|s| s.at > step_at && s.at < back_at));
    let after = Tally::of(samples.iter().filter(|s| s.at > back_at));
    let all = Tally::of(&samples);
    let client_share = 100.0 * during.server_errors as f64
        / (during.server_errors + during.answered("2.0.0")).max(1) as f64;
    eprintln!(
        "gate through {how}, faulty 2.0.0 to blue: the run measured {share}% 5xx of {requests} requests to blue at 10%; the clients sent {} requests in all, during the step {} (1.0.0 {}, 2.0.0 {}, 5xx {}: {client_share:.1}% of blue's), after the return {} (1.0.0 {}, 5xx {}), failed {}; proxy reloads {reloaded}; step {}..return {}",
        all.total,
        during.total,
        during.answered("1.0.0"),
        during.answered("2.0.0"),
        during.server_errors,
        after.total,
        after.answered("1.0.0"),
        after.server_errors,
        all.failed.len(),
        secs(step_at),
        secs(back_at),
    );
    eprintln!(
        "  the run (on the clients' clock):\n{}",
        timeline_lines(&lines).join("\n")
    );
    assert!(
        (share - 20.0).abs() <= 3.0,
        "measured {share}% 5xx, wanted about 20%"
    );
    assert!(requests >= 50, "only {requests} requests judged");
    assert!(all.failed.is_empty(), "failed requests: {:?}", all.failed);
    assert!(
        during.server_errors > 0,
        "the faulty version answered no 5xx during its step: {during:?}"
    );
    assert_eq!(
        reloaded, 2,
        "one reload for the step, one for the return\n{}",
        run.stdout
    );
    assert!(
        after.total >= 100 && after.answered("1.0.0") == after.total,
        "after the return every answer is green's 1.0.0: {after:?}"
    );
    let rec = record(fleet);
    assert!(
        rec.contains("live green") && rec.contains("pool green 100 1.0.0"),
        "{rec}"
    );

    // A good version passes the gate at 10% and 50% and takes everything.
    let (run, _, samples, reloaded) =
        deploy_under_traffic(project, &[address.to_owned()], reloads_now, "3.0.0", None);
    assert_eq!(run.code, 0, "{}", run.dump());
    let passed: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("gate passed"))
        .collect();
    let all = Tally::of(&samples);
    eprintln!(
        "gate through {how}, good 3.0.0 to blue: {}; the clients sent {} requests (1.0.0 {}, 3.0.0 {}, 5xx {}), failed {}; proxy reloads {reloaded}",
        passed.join(" | "),
        all.total,
        all.answered("1.0.0"),
        all.answered("3.0.0"),
        all.server_errors,
        all.failed.len()
    );
    assert_eq!(passed.len(), 2, "{}", run.stdout);
    assert_eq!(run.journal().outcome(), "completed");
    assert!(passed[0].contains("step 1/3: 10%") && passed[1].contains("step 2/3: 50%"));
    for p in &passed {
        let (share, requests) = measured_share(p);
        assert_eq!(share, 0.0, "{p}");
        assert!(requests >= 20, "{p}");
    }
    assert!(all.failed.is_empty() && all.server_errors == 0, "{all:?}");
    assert_eq!(reloaded, 3, "{}", run.stdout);
    let rec = record(fleet);
    assert!(
        rec.contains("live blue") && rec.contains("pool blue 100 3.0.0"),
        "{rec}"
    );
}

#[test]
fn a_version_answering_5xx_to_a_fifth_of_requests_fails_its_nginx_gate_and_traffic_returns_in_one_reload()
 {
    let fleet = Fleet::start(5);
    let nginx = Nginx::start(&fleet, 1);
    let project = Project::new(
        &fleet,
        "playbooks/canary.yml",
        "{from: nginx, max_5xx: 5%, p99: 2s, min_requests: 50}",
        &[1],
    );
    gate_fails_then_passes(
        &fleet,
        &project,
        &nginx.address(),
        &|| nginx.reloads(),
        "nginx's gate log",
    );
}

#[test]
fn a_version_answering_5xx_to_a_fifth_of_requests_fails_its_haproxy_gate_and_traffic_returns_in_one_reload()
 {
    let fleet = Fleet::start(5);
    let haproxy = support::haproxy::Haproxy::start(&fleet, 1);
    let project = Project::new(
        &fleet,
        "playbooks/canary-haproxy.yml",
        &format!(
            "{{from: haproxy, socket: {}, max_5xx: 5%, min_requests: 50}}",
            support::haproxy::ADMIN_SOCKET
        ),
        &[1],
    );
    gate_fails_then_passes(
        &fleet,
        &project,
        &haproxy.address(),
        &|| haproxy.reloads(),
        "haproxy's stats socket",
    );

    // A gate that cannot read its figures sends the traffic back too.
    let path = project.dir().join(&project.playbook);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replace(support::haproxy::ADMIN_SOCKET, "/srv/haproxy/none.sock");
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    let reloads = haproxy.reloads();
    let run = project.deploy("4.0.0", &[]);
    assert_eq!(run.code, 2, "{}", run.dump());
    let said = format!(
        "traffic: step 1/3: 10% to green (4.0.0): gate failed: the gate cannot read what the proxy saw: {}: no haproxy stats socket at /srv/haproxy/none.sock",
        fleet.name(1)
    );
    assert!(
        run.stdout.contains(&said),
        "wanted {said:?} in:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("traffic is back on blue (3.0.0)"),
        "{}",
        run.stdout
    );
    assert_eq!(haproxy.reloads() - reloads, 2, "{}", run.stdout);
    haproxy.assert_serves("/VERSION", "3.0.0", 100);
}

#[test]
fn a_slow_version_fails_its_p99_gate_summed_over_two_nginx_hosts_and_a_quiet_step_fails_for_too_few_requests()
 {
    let fleet = Fleet::start(6);
    let proxies = [Nginx::start(&fleet, 1), Nginx::start(&fleet, 6)];
    let project = Project::new(
        &fleet,
        "playbooks/canary.yml",
        "{from: nginx, p99: 300ms, min_requests: 50}",
        &[1, 6],
    );
    let reloads = || proxies.iter().map(Nginx::reloads).sum::<usize>();
    let first = project.deploy("1.0.0", &[]);
    assert_eq!(first.code, 0, "{}", first.dump());

    // No client: the step serves nothing, which is no pass.
    let quiet = project.deploy("2.0.0", &[]);
    assert_eq!(quiet.code, 2, "{}", quiet.dump());
    assert!(
        quiet.stdout.contains(
            "gate failed: blue answered only 0 request(s) over the hold (gate: at least 50; too few to judge); traffic is back on green (1.0.0)"
        ),
        "{}",
        quiet.stdout
    );

    // Every tenth answer of 3.0.0 takes 0.5 s: p99 is over 300ms.
    let addresses: Vec<String> = proxies.iter().map(Nginx::address).collect();
    let (run, lines, samples, reloaded) = deploy_under_traffic(
        &project,
        &addresses,
        &reloads,
        "3.0.0",
        Some("slow_every=10\nslow_seconds=0.5\n"),
    );
    assert_eq!(run.code, 2, "{}", run.dump());
    let failed_line = run
        .stdout
        .lines()
        .find(|l| l.contains("gate failed") && l.contains("traffic is back on green (1.0.0)"))
        .unwrap_or_else(|| panic!("no gate failure naming the return:\n{}", run.stdout))
        .to_owned();
    let p99: u64 = failed_line
        .split("blue's p99 response time was ")
        .nth(1)
        .and_then(|r| r.split("ms over ").next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no p99 in ms in {failed_line}"));
    let judged: u64 = failed_line
        .split("ms over ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in {failed_line}"));
    // Each proxy host's own count, as its task line reports it.
    let per_host: Vec<u64> = run
        .stdout
        .lines()
        .filter(|l| l.contains("failed: [") && l.contains("]: blue: "))
        .filter_map(|l| l.split("]: blue: ").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    let step_at = line_at(
        &lines,
        "NOTE traffic: step 1/3: 10% to blue (3.0.0): traffic",
        &run,
    );
    let back_at = line_at(&lines, "traffic is back on green", &run);
    let during = Tally::of(samples.iter().filter(|s| s.at > step_at && s.at < back_at));
    let after = Tally::of(samples.iter().filter(|s| s.at > back_at));
    let all = Tally::of(&samples);
    eprintln!(
        "p99 gate through two nginx hosts, slow 3.0.0 to blue: the run measured p99 {p99}ms over {judged} requests (per proxy host {per_host:?}); the clients sent {} requests, during the step {} (3.0.0 {}), after the return {} (1.0.0 {}), failed {}, 5xx {}; proxy reloads {reloaded}",
        all.total,
        during.total,
        during.answered("3.0.0"),
        after.total,
        after.answered("1.0.0"),
        all.failed.len(),
        all.server_errors
    );
    assert!(
        failed_line.contains("(gate: at most 300ms)"),
        "{failed_line}"
    );
    assert!((500..2000).contains(&p99), "p99 {p99}ms");
    assert_eq!(per_host.len(), 2, "{}", run.stdout);
    assert!(per_host.iter().all(|n| *n > 0), "{per_host:?}");
    assert_eq!(
        per_host.iter().sum::<u64>(),
        judged,
        "the hosts' counts are summed"
    );
    let seen = during.answered("3.0.0") as f64;
    assert!(
        (judged as f64 - seen).abs() <= 0.15 * seen + 5.0,
        "the proxies saw {judged} answers from blue, the clients {seen}"
    );
    assert!(all.failed.is_empty() && all.server_errors == 0, "{all:?}");
    assert_eq!(
        reloaded, 4,
        "each proxy: one reload for the step, one for the return"
    );
    assert!(
        after.total >= 100 && after.answered("1.0.0") == after.total,
        "{after:?}"
    );
}

// ------------------------------------------------------------ at load

const INVENTORY: &str = "all:\n  vars:\n    ansible_connection: local\n  children:\n    web:\n      hosts:\n        web1:\n        web2:\n    blue:\n      hosts:\n        web1:\n    green:\n      hosts:\n        web2:\n";

/// A task that would touch MARKER, then a proxy section with pools and
/// the traffic keys TRAFFIC.
const PLAY: &str = "- name: play\n  hosts: web\n  tasks:\n    - name: would touch\n      file: { path: MARKER, state: touch }\n  proxy:\n    hosts: web1\n    files:\n      - template: t.j2\n        dest: /tmp/never-written.conf\n    pools:\n      blue: {hosts: blue}\n      green: {hosts: green}\n    traffic:\nTRAFFIC";

/// `convoy run` on the play: stderr, once exit 3 and the untouched marker
/// are checked.
fn refused(traffic: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("touched");
    std::fs::write(dir.path().join("inv.yml"), INVENTORY).unwrap();
    std::fs::write(dir.path().join("t.j2"), "x\n").unwrap();
    let play = PLAY
        .replace("MARKER", &marker.display().to_string())
        .replace("TRAFFIC", traffic);
    std::fs::write(dir.path().join("play.yml"), play).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_convoy"))
        .current_dir(dir.path())
        .args(["run", "play.yml", "-i", "inv.yml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "exit code; stderr:\n{stderr}");
    assert!(!marker.exists(), "a host was touched: the first task ran");
    stderr
}

fn assert_says(stderr: &str, what: &str, at: &str) {
    assert!(stderr.contains(what), "wanted {what:?} in:\n{stderr}");
    assert!(stderr.contains(at), "wanted {at:?} in:\n{stderr}");
}

const STEPS: &str = "      steps: [10%, 100%]\n      hold: 5s\n";

#[test]
fn a_percentile_gate_on_haproxy_is_refused_as_a_metric_the_proxy_cannot_give() {
    let err = refused(&format!(
        "{STEPS}      gate: {{from: haproxy, max_5xx: 5%, p99: 300ms}}\n"
    ));
    assert_says(
        &err,
        "`p99`: a metric the proxy cannot give: haproxy's stats hold response-time averages",
        "play.yml:17:49",
    );
}

#[test]
fn a_gate_share_out_of_range_is_refused_at_its_key() {
    let err = refused(&format!(
        "{STEPS}      gate: {{from: nginx, max_5xx: 150%}}\n"
    ));
    assert_says(
        &err,
        "`max_5xx` is a share of answers from 0% to 100%",
        "play.yml:17:36",
    );
}

#[test]
fn an_unknown_gate_key_is_refused_at_its_key() {
    let err = refused(&format!(
        "{STEPS}      gate:\n        from: nginx\n        max_5xx: 5%\n        p42: 1s\n"
    ));
    assert_says(&err, "p42", "play.yml:20:9");
}

#[test]
fn a_gate_with_no_step_before_100_percent_is_refused() {
    let err =
        refused("      steps: [100%]\n      hold: 5s\n      gate: {from: nginx, max_5xx: 5%}\n");
    assert_says(
        &err,
        "a gate judges the steps before 100% over their hold, and these steps have none",
        "play.yml:17:13",
    );
    let err = refused("      steps: [10%, 100%]\n      gate: {from: nginx, max_5xx: 5%}\n");
    assert_says(&err, "`hold` is 0", "play.yml:16:13");
    let err = refused(&format!(
        "{STEPS}      gate: {{from: envoy, max_5xx: 5%}}\n"
    ));
    assert_says(
        &err,
        "`from: nginx` or `from: haproxy`, not `envoy`",
        "play.yml:17:20",
    );
}

#[test]
fn plan_shows_the_gate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let playbook = std::fs::read_to_string(root.join("playbooks/canary.yml"))
        .unwrap()
        .replace(
            "      hold: 15s\n",
            "      hold: 15s\n      gate: {from: nginx, max_5xx: 2%, p99: 300ms, min_requests: 100}\n",
        );
    std::fs::write(dir.path().join("canary.yml"), playbook).unwrap();
    write_file(dir.path(), "app/hello/VERSION", "1.0.0\n");
    write_file(
        dir.path(),
        "templates/nginx/pools.conf.j2",
        &std::fs::read_to_string(root.join("templates/nginx/pools.conf.j2")).unwrap(),
    );
    let inventory = "all:\n  vars:\n    app_name: hello\n    app_port: 8080\n    app_root: /nonexistent\n    ansible_connection: local\n  children:\n    balancers:\n      hosts:\n        lb:\n    app:\n      children:\n        blue:\n          hosts:\n            b1:\n        green:\n          hosts:\n            g1:\n";
    std::fs::write(dir.path().join("inv.yml"), inventory).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_convoy"))
        .current_dir(dir.path())
        .args(["plan", "canary.yml", "--offline", "-i", "inv.yml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "  traffic gate, judged at the end of each held step (failing sends the traffic back): at most 2% 5xx, p99 at most 300ms, at least 100 requests (from nginx's access log)"
        ),
        "{stdout}"
    );
}

#[test]
fn lint_of_a_gated_play_validates_every_step_and_writes_no_gate_log_here() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let playbook = std::fs::read_to_string(root.join("playbooks/canary.yml"))
        .unwrap()
        .replace(
            "      hold: 15s\n",
            "      hold: 15s\n      gate: {from: nginx, max_5xx: 2%}\n",
        );
    write_file(dir.path(), "playbooks/canary.yml", &playbook);
    write_file(dir.path(), "app/hello/VERSION", "1.0.0\n");
    write_file(
        dir.path(),
        "templates/nginx/pools.conf.j2",
        &std::fs::read_to_string(root.join("templates/nginx/pools.conf.j2")).unwrap(),
    );
    let inventory = format!(
        "all:\n  vars:\n    app_name: hello\n    app_port: 8080\n    app_root: /nonexistent\n    ansible_connection: local\n    convoy_proxy_state_dir: {}\n    proxy_listen: 18080\n  children:\n    balancers:\n      hosts:\n        lb:\n    app:\n      children:\n        blue:\n          hosts:\n            b1: {{ansible_host: 127.0.0.1}}\n        green:\n          hosts:\n            g1: {{ansible_host: 127.0.0.2}}\n",
        state.display()
    );
    std::fs::write(dir.path().join("inv.yml"), inventory).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_convoy"))
        .current_dir(dir.path())
        .args(["lint", "playbooks/canary.yml", "-i", "inv.yml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in ["step 1/3: 10%", "step 2/3: 50%", "step 3/3: 100%"] {
        assert!(
            stdout.contains(&format!("proxy files ({step}) validated with")),
            "{step} not validated:\n{stdout}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(&state).unwrap().collect();
    assert!(left.is_empty(), "lint wrote on this machine: {left:?}");
}
