//! The shipped haproxy example (playbooks/proxy-haproxy.yml with
//! templates/haproxy/) proved through a real haproxy (Debian's package, in
//! master-worker mode) on a proxy host of the fleet, balancing to app hosts
//! that each serve their release's VERSION over HTTP (python's http.server,
//! restarted by the switch hook, so a switch needs a restart):
//!
//! - a rolling deploy of 4 app hosts in 2 batches with drain, while a client
//!   sends requests through haproxy the whole time: no request fails, the
//!   versions move from old to new and never back, and haproxy ends up
//!   balancing over every host again, on the new version;
//! - a backend template haproxy rejects stops the deploy before any app host
//!   switches, shows haproxy's message naming the file, and haproxy keeps
//!   its old files and serves with them;
//! - while a batch is held in its switch, the backend file lists its servers
//!   `disabled` and haproxy itself has them in maintenance (`show stat`),
//!   and only the other batch answers;
//! - the example's reload command, run back to back with a config change
//!   before each, reloads haproxy every time (a master still reloading
//!   ignores SIGUSR2: the command waits until it is done) while clients
//!   through haproxy see no failure.
//!
//! The main config (tests/support/haproxy.rs) has `retries 0`, so a request
//! that reached a restarting app host would fail instead of being retried:
//! only the drain keeps requests away. Every client loop is bounded in
//! requests and time, and only talks to the fleet's own addresses.
//!
//! The client through haproxy while convoy runs ([`Client`], [`Spawned`])
//! is shared with tests/zero_downtime.rs (tests/support/client.rs).

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use support::client::{Client, Sample, Spawned, secs, timeline_lines};
use support::haproxy::{self, Haproxy};
use support::nginx::http_get;
use support::run::{Run, run_in};
use support::{Fleet, workdir, write_file};

// ---------------------------------------------------------------- constants

/// Where the proxy tier keeps its manifests in these tests: /var/lib is
/// shared between the fleet's hosts, /srv is each host's own.
const STATE_DIR: &str = "/srv/convoy-proxy";

/// The `Host` the tests send (haproxy's frontend hands every request to
/// the app, whatever its `Host`).
const SITE: &str = "hello.test";

/// The app's port on every app host.
const APP_PORT: u16 = 8080;

/// The example playbook, as shipped.
const PLAYBOOK: &str = "playbooks/proxy-haproxy.yml";

/// The files the example installs on the proxy host (with the test's vars).
const FRONTEND: &str = "/srv/haproxy/conf.d/hello-frontend.cfg";
const BACKEND: &str = "/srv/haproxy/conf.d/hello-backend.cfg";

// ---------------------------------------------------------------- the project

/// A temporary copy of the example project: playbooks/proxy-haproxy.yml and
/// templates/haproxy/ as shipped, the hello app (its VERSION written for
/// each deploy), and an inventory with `balancers` (haproxy's paths under
/// /srv) and `app`.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(fleet: &Fleet, proxies: &[usize], apps: &[usize]) -> Project {
        let project = Project { dir: workdir() };
        let dir = project.dir();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for rel in [
            PLAYBOOK,
            "templates/haproxy/frontend.cfg.j2",
            "templates/haproxy/backend.cfg.j2",
            "templates/haproxy/maintenance.html.j2",
            "app/hello/bin/hello",
        ] {
            write_file(dir, rel, &std::fs::read_to_string(root.join(rel)).unwrap());
        }
        set_mode(&dir.join("app/hello/bin/hello"), 0o755);
        let mut yaml = format!(
            "all:\n  vars:\n    convoy_ssh_config: {}\n    convoy_proxy_state_dir: {STATE_DIR}\n    app_name: hello\n    app_port: {APP_PORT}\n    app_root: /srv\n  children:\n",
            fleet.ssh_config().display()
        );
        for (group, hosts) in [("balancers", proxies), ("app", apps)] {
            yaml.push_str(&format!("    {group}:\n"));
            if group == "balancers" {
                yaml.push_str(&format!("      vars:\n{}", haproxy::inventory_vars(8)));
            }
            yaml.push_str("      hosts:\n");
            for &i in hosts {
                yaml.push_str(&format!(
                    "        {}:\n          ansible_host: {}\n",
                    fleet.name(i),
                    fleet.addr(i)
                ));
            }
        }
        write_file(dir, "inventory.yml", &yaml);
        project
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `convoy run PLAYBOOK -i inventory.yml -e version=VERSION`, with the
    /// app's VERSION file saying `version`.
    fn deploy_args(&self, playbook: &str, version: &str) -> Vec<String> {
        write_file(self.dir(), "app/hello/VERSION", &format!("{version}\n"));
        [
            "run",
            playbook,
            "-i",
            "inventory.yml",
            "-e",
            &format!("version={version}"),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn deploy(&self, version: &str) -> Run {
        let args = self.deploy_args(PLAYBOOK, version);
        run_in(
            self.dir(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    }

    fn spawn(&self, playbook: &str, version: &str, clock: Instant) -> Spawned {
        Spawned::start(self.dir(), self.deploy_args(playbook, version), clock)
    }
}

/// haproxy on h1 and the example project with `apps`, deployed at 1.0.0 (not
/// measured): the run passed and haproxy serves it.
fn set_up<'f>(fleet: &'f Fleet, apps: &[usize]) -> (Haproxy<'f>, Project) {
    let haproxy = Haproxy::start(fleet, 1);
    let project = Project::new(fleet, &[1], apps);
    let first = project.deploy("1.0.0");
    assert_eq!(first.code, 0, "{}", first.dump());
    haproxy.wait_for("/VERSION", 200, "1.0.0");
    (haproxy, project)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

// ---------------------------------------------------------------- the hosts

/// Where app host i's `current` points (`releases/<version>`).
fn current(fleet: &Fleet, i: usize) -> String {
    std::fs::read_link(fleet.host_path(i, "/srv/hello/current"))
        .map(|t| t.to_string_lossy().into_owned())
        .unwrap_or_else(|e| panic!("h{i}: /srv/hello/current: {e}"))
}

/// The pid of the app server on app host i (written by the switch hook).
fn app_pid(fleet: &Fleet, i: usize) -> String {
    std::fs::read_to_string(fleet.host_path(i, "/srv/hello/shared/hello.pid"))
        .unwrap_or_else(|e| panic!("h{i}: hello.pid: {e}"))
}

/// Every app host runs and serves `version` (asked directly).
fn assert_app_hosts_on(fleet: &Fleet, apps: &[usize], version: &str) {
    for &i in apps {
        assert_eq!(current(fleet, i), format!("releases/{version}"), "h{i}");
        let answer = http_get(&format!("{}:{APP_PORT}", fleet.addr(i)), SITE, "/VERSION");
        assert!(
            matches!(&answer, Ok((200, b)) if b.trim() == version),
            "h{i} serves {answer:?}, expected {version}"
        );
    }
}

/// A file on host i.
fn read(fleet: &Fleet, i: usize, path: &str) -> String {
    std::fs::read_to_string(fleet.host_path(i, path))
        .unwrap_or_else(|e| panic!("{path} on h{i}: {e}"))
}

/// The `server` line of app host `app` in the backend file `backend`.
fn server_line<'b>(backend: &'b str, fleet: &Fleet, app: usize) -> &'b str {
    let name = fleet.name(app);
    let lines: Vec<&str> = backend
        .lines()
        .filter(|l| l.split_whitespace().take(2).eq(["server", name.as_str()]))
        .collect();
    assert_eq!(lines.len(), 1, "one server line for {name} in:\n{backend}");
    let line = lines[0];
    assert!(
        line.contains(&format!(" {}:{APP_PORT} check", fleet.addr(app))),
        "{name}'s address and check: {line:?}"
    );
    line
}

fn disabled(line: &str) -> bool {
    line.split('#')
        .next()
        .unwrap()
        .split_whitespace()
        .any(|w| w == "disabled")
}

/// Every name in a directory of host i, hidden ones included, sorted.
fn listing(fleet: &Fleet, i: usize, dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fleet.host_path(i, dir))
        .unwrap_or_else(|e| panic!("{dir} on h{i}: {e}"))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A file's identity and last change: equal stamps mean it was not touched.
fn stamp(fleet: &Fleet, i: usize, path: &str) -> (u64, i64, i64) {
    let meta = std::fs::metadata(fleet.host_path(i, path))
        .unwrap_or_else(|e| panic!("{path} on h{i}: {e}"));
    (meta.ino(), meta.mtime(), meta.mtime_nsec())
}

/// The index of the first `run` consecutive samples answering `version`
/// (from the front, or from the back with `last`).
fn stretch(samples: &[Sample], version: &str, run: usize, last: bool) -> Option<usize> {
    let starts = 0..(samples.len() + 1).saturating_sub(run);
    let is = |i: &usize| {
        samples[*i..*i + run]
            .iter()
            .all(|s| s.version() == Some(version))
    };
    if last {
        starts.rev().find(is)
    } else {
        starts.clone().find(is)
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn rolling_deploy_through_haproxy_drops_no_request() {
    let fleet = Fleet::start(5);
    let apps: Vec<usize> = (2..=5).collect();

    // 1.0.0 everywhere first (not measured).
    let (haproxy, project) = set_up(&fleet, &apps);
    assert_app_hosts_on(&fleet, &apps, "1.0.0");
    haproxy.assert_serves("/VERSION", "1.0.0", 10);
    let reloads_before = haproxy.reloads();

    // A client through haproxy the whole time the 2.0.0 rollout runs.
    let clock = Instant::now();
    let client = Client::start(
        haproxy.address(),
        SITE,
        "/VERSION",
        clock,
        4000,
        Duration::from_secs(120),
    );
    client.wait_count(20);
    let deploy_start = clock.elapsed();
    let (run, lines) = project
        .spawn(PLAYBOOK, "2.0.0", clock)
        .finish(Duration::from_secs(100));
    let run_end = clock.elapsed();
    // A little more traffic once the run is over, then stop.
    let samples = client.finish_after(50);
    let reloads = haproxy.reloads() - reloads_before;

    // The numbers, for the log (--nocapture).
    let failures: Vec<&Sample> = samples.iter().filter(|s| s.version().is_none()).collect();
    let count = |v: &str| samples.iter().filter(|s| s.version() == Some(v)).count();
    // Old only up to the end of the last stretch of 10 old answers in a row,
    // new only from the first stretch of 10 new ones: in between, old and
    // new hosts share the traffic (round robin over 2 and 2 gives at most
    // 2 of a kind in a row).
    let last_old = stretch(&samples, "1.0.0", 10, true).map(|i| i + 10);
    let first_new = stretch(&samples, "2.0.0", 10, false);
    let during = samples
        .iter()
        .filter(|s| s.at > deploy_start && s.at <= run_end)
        .count();
    let after: Vec<&Sample> = samples.iter().filter(|s| s.at > run_end).collect();
    let mut report = format!(
        "haproxy rolling deploy: 4 app hosts (h2..h5), 2 batches of 2, drain 2s, haproxy on h1\n\
         requests: {} (1.0.0: {}, 2.0.0: {}), failed: {}\n\
         requests while the run ran: {during}, after it ended: {}\n\
         haproxy reloads during the run: {reloads}\n\
         timeline (since the client started):\n\
         \x20 {:>8}  run of 2.0.0 started\n\
         \x20 {:>8}  end of the last 10 old answers in a row\n\
         \x20 {:>8}  start of the first 10 new answers in a row\n\
         \x20 {:>8}  run ended (exit {})\n\
         run's steps (stamped when its line arrived):\n",
        samples.len(),
        count("1.0.0"),
        count("2.0.0"),
        failures.len(),
        after.len(),
        secs(deploy_start),
        last_old.map_or("never".into(), |i| secs(samples[i - 1].at)),
        first_new.map_or("never".into(), |i| secs(samples[i].at)),
        secs(run_end),
        run.code,
    );
    for l in timeline_lines(&lines) {
        report.push_str(&l);
        report.push('\n');
    }
    if let (Some(last_old), Some(first_new)) = (last_old, first_new) {
        report.push_str(&format!(
            "mixed answers between: {} (1.0.0: {}, 2.0.0: {})\n",
            first_new.saturating_sub(last_old),
            samples[last_old..first_new.max(last_old)]
                .iter()
                .filter(|s| s.version() == Some("1.0.0"))
                .count(),
            samples[last_old..first_new.max(last_old)]
                .iter()
                .filter(|s| s.version() == Some("2.0.0"))
                .count(),
        ));
    }
    if !failures.is_empty() {
        report.push_str("failed requests:\n");
        for s in failures.iter().take(20) {
            report.push_str(&format!("  {}\n", s.short()));
        }
    }
    eprintln!("{report}");

    assert_eq!(run.code, 0, "{}", run.dump());
    assert!(
        failures.is_empty(),
        "{} of {} requests failed:\n{report}",
        failures.len(),
        samples.len(),
    );
    assert!(samples.len() >= 300, "only {} requests", samples.len());
    assert!(during >= 200, "only {during} requests while the run ran");
    assert!(
        after.len() >= 20,
        "only {} requests after the run",
        after.len()
    );
    // Old before the run, new after it.
    let before: Vec<&Sample> = samples.iter().filter(|s| s.at <= deploy_start).collect();
    assert!(before.len() >= 20);
    assert!(
        before.iter().all(|s| s.version() == Some("1.0.0")),
        "before the run: {:?}",
        before.iter().map(|s| s.short()).collect::<Vec<_>>()
    );
    assert!(
        after.iter().all(|s| s.version() == Some("2.0.0")),
        "after the run: {:?}",
        after.iter().map(|s| s.short()).collect::<Vec<_>>()
    );
    // From old to new, never back: once new answers came alone, no old one
    // came again, and no new one came before the last old-only stretch.
    let (Some(last_old), Some(first_new)) = (last_old, first_new) else {
        panic!("no stretch of old or of new answers:\n{report}");
    };
    assert!(
        last_old <= first_new,
        "an old-only stretch after a new-only one:\n{report}"
    );
    assert!(
        samples[..last_old]
            .iter()
            .all(|s| s.version() == Some("1.0.0")),
        "2.0.0 answered before the last 1.0.0-only stretch:\n{report}"
    );
    let back: Vec<String> = samples[first_new..]
        .iter()
        .filter(|s| s.version() != Some("2.0.0"))
        .map(Sample::short)
        .collect();
    assert!(back.is_empty(), "1.0.0 again after 2.0.0 alone: {back:?}");
    assert!(samples[first_new].at > deploy_start && samples[first_new].at < run_end);

    // The rollout ran as the example says: 2 batches of 2, each drained first.
    let batch_lines = run.batch_lines();
    assert_eq!(batch_lines.len(), 2, "{}", run.stdout);
    for (n, hosts) in ["h2, h3", "h4, h5"].iter().enumerate() {
        assert!(
            batch_lines[n].ends_with(&format!("BATCH {}/2 [{hosts}]", n + 1)),
            "{}",
            batch_lines[n]
        );
        assert!(
            run.stdout
                .contains(&format!("TASK [proxy: drain batch {}/2]", n + 1)),
            "{}",
            run.stdout
        );
    }
    // Each batch left haproxy and came back: two reloads per batch.
    assert_eq!(reloads, 4, "haproxy reloads during the run:\n{report}");

    // The hosts themselves: every app host runs and serves 2.0.0; haproxy
    // balances over all of them again, none disabled, all up.
    assert_app_hosts_on(&fleet, &apps, "2.0.0");
    let backend = read(&fleet, 1, BACKEND);
    for &i in &apps {
        let line = server_line(&backend, &fleet, i);
        assert!(!disabled(line), "h{i} still disabled: {line:?}");
        assert!(line.ends_with("# 2.0.0"), "h{i}'s version: {line:?}");
    }
    let frontend = read(&fleet, 1, FRONTEND);
    assert!(frontend.contains("default_backend hello"), "{frontend}");
    let servers = haproxy.servers("hello");
    assert_eq!(
        servers.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["h2", "h3", "h4", "h5"]
    );
    assert!(
        servers.iter().all(|s| s.is_up()),
        "haproxy's servers: {servers:?}"
    );
    // haproxy's own health checks pass on every host of the new release.
    haproxy.wait_all_checked_up("hello");
    haproxy.assert_serves("/VERSION", "2.0.0", 20);
    haproxy.check_config();
}

#[test]
fn a_backend_haproxy_rejects_stops_the_deploy_and_haproxy_keeps_serving() {
    let fleet = Fleet::start(3);
    let apps = [2, 3];
    let (haproxy, project) = set_up(&fleet, &apps);
    let files = [FRONTEND, BACKEND, haproxy::MAINTENANCE_PAGE];
    let contents: Vec<String> = files.iter().map(|f| read(&fleet, 1, f)).collect();
    let stamps: Vec<_> = files.iter().map(|f| stamp(&fleet, 1, f)).collect();
    let conf_dir = listing(&fleet, 1, haproxy::CONF_DIR);
    assert_eq!(conf_dir, ["hello-backend.cfg", "hello-frontend.cfg"]);
    let pids: Vec<String> = apps.iter().map(|&i| app_pid(&fleet, i)).collect();
    let reloads = haproxy.reloads();
    let workers = haproxy.workers();

    // The next deploy brings a backend with a keyword haproxy does not know.
    let template = project.dir().join("templates/haproxy/backend.cfg.j2");
    let good = std::fs::read_to_string(&template).unwrap();
    let balance = "    balance roundrobin\n";
    assert!(good.contains(balance));
    std::fs::write(
        &template,
        good.replace(balance, &format!("{balance}    bogus_keyword on\n")),
    )
    .unwrap();
    let bad = project.deploy("2.0.0");
    assert_eq!(bad.code, 2, "{}", bad.dump());
    let all = bad.all();
    assert!(
        all.contains(&format!("parsing [{BACKEND}:"))
            && all.contains("unknown keyword 'bogus_keyword' in 'backend' section"),
        "haproxy's message naming the file is not shown:\n{}",
        bad.dump()
    );
    assert!(
        all.contains(&format!(
            "rendered {BACKEND} (from templates/haproxy/backend.cfg.j2)"
        )) && all.contains("bogus_keyword on"),
        "the rejected file is not shown:\n{}",
        bad.dump()
    );
    assert!(
        all.contains("no host was switched"),
        "the run does not say that nothing switched:\n{}",
        bad.dump()
    );
    assert!(
        !bad.stdout.contains("TASK [switch"),
        "a switch started:\n{}",
        bad.dump()
    );

    // No app host switched or restarted.
    assert_app_hosts_on(&fleet, &apps, "1.0.0");
    let pids_after: Vec<String> = apps.iter().map(|&i| app_pid(&fleet, i)).collect();
    assert_eq!(pids, pids_after, "an app server was restarted");
    // haproxy keeps its files (the same inodes, untouched), valid, was not
    // reloaded, and serves with them as before.
    for (n, file) in files.iter().enumerate() {
        assert_eq!(read(&fleet, 1, file), contents[n], "{file} changed");
        assert_eq!(stamp(&fleet, 1, file), stamps[n], "{file} was replaced");
    }
    assert_eq!(
        listing(&fleet, 1, haproxy::CONF_DIR),
        conf_dir,
        "leftovers in the config directory"
    );
    haproxy.check_config();
    assert_eq!(haproxy.reloads(), reloads, "haproxy reloaded");
    assert_eq!(haproxy.workers(), workers, "haproxy's worker changed");
    haproxy.assert_serves("/VERSION", "1.0.0", 20);
    let servers = haproxy.servers("hello");
    assert!(
        servers.len() == 2 && servers.iter().all(|s| s.is_up()),
        "haproxy's servers: {servers:?}"
    );
}

/// A switch hook put before the example's own: it holds each host of the
/// batch in its switch (drained, `current` already moved, the old server
/// still running) until the test creates /srv/go there; /srv/held says it
/// is waiting.
const HOLD_HOOK: &str = "      - name: hold for the test
        shell: |
          rm -f /srv/go
          touch /srv/held
          n=0
          until [ -e /srv/go ]; do
            n=$((n + 1)); [ $n -le 1200 ] || { echo 'the test did not release the batch' >&2; exit 1; }
            sleep 0.05
          done
          rm -f /srv/held /srv/go
";

#[test]
fn a_draining_batch_is_disabled_in_the_file_and_in_haproxy() {
    let fleet = Fleet::start(5);
    let apps: Vec<usize> = (2..=5).collect();
    let (haproxy, project) = set_up(&fleet, &apps);

    // The example with the hold hook (same play, so the same manifest).
    let example = std::fs::read_to_string(project.dir().join(PLAYBOOK)).unwrap();
    let hooks = "  hooks:\n    switch:\n";
    assert!(example.contains(hooks));
    let held = "playbooks/proxy-haproxy-held.yml";
    write_file(
        project.dir(),
        held,
        &example.replacen(hooks, &format!("{hooks}{HOLD_HOOK}"), 1),
    );
    let clock = Instant::now();
    let mut spawned = project.spawn(held, "2.0.0", clock);

    let batches: [&[usize]; 2] = [&[2, 3], &[4, 5]];
    for (n, batch) in batches.iter().enumerate() {
        let others: Vec<usize> = apps
            .iter()
            .copied()
            .filter(|i| !batch.contains(i))
            .collect();
        // The batch is held in its switch ...
        let deadline = Instant::now() + Duration::from_secs(60);
        while !batch
            .iter()
            .all(|&i| fleet.host_path(i, "/srv/held").exists())
        {
            spawned.assert_running(&format!("batch {} to be held", n + 1));
            assert!(
                Instant::now() < deadline,
                "batch {} was not held within 60 s:\n{}",
                n + 1,
                spawned.stdout()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        for &i in &others {
            assert!(!fleet.host_path(i, "/srv/held").exists(), "h{i} held too");
        }
        // ... and drained: `disabled` in the file, in maintenance in haproxy,
        // the other hosts in service.
        let backend = read(&fleet, 1, BACKEND);
        for &i in *batch {
            let line = server_line(&backend, &fleet, i);
            assert!(
                disabled(line),
                "batch {}: h{i} not disabled: {line:?}",
                n + 1
            );
        }
        for &i in &others {
            let line = server_line(&backend, &fleet, i);
            assert!(!disabled(line), "batch {}: h{i} disabled: {line:?}", n + 1);
        }
        let names = |hosts: &[usize]| hosts.iter().map(|&i| fleet.name(i)).collect::<Vec<_>>();
        assert_eq!(
            haproxy.servers_in_maintenance("hello"),
            names(batch),
            "batch {}: haproxy's servers {:?}",
            n + 1,
            haproxy.servers("hello")
        );
        assert_eq!(
            haproxy.servers_up("hello"),
            names(&others),
            "batch {}: haproxy's servers {:?}",
            n + 1,
            haproxy.servers("hello")
        );
        // Only the other hosts answer: on the old version while the first
        // batch switches, on the new one while the second does.
        let serving = if n == 0 { "1.0.0" } else { "2.0.0" };
        haproxy.assert_serves("/VERSION", serving, 20);
        // Release the batch.
        for &i in *batch {
            write_file(fleet.host_path(i, "/srv"), "go", "");
        }
    }
    let (run, _) = spawned.finish(Duration::from_secs(100));
    assert_eq!(run.code, 0, "{}", run.dump());
    assert_app_hosts_on(&fleet, &apps, "2.0.0");
    let backend = read(&fleet, 1, BACKEND);
    for &i in &apps {
        let line = server_line(&backend, &fleet, i);
        assert!(!disabled(line), "h{i} still disabled: {line:?}");
    }
    assert_eq!(haproxy.servers_up("hello"), ["h2", "h3", "h4", "h5"]);
    haproxy.assert_serves("/VERSION", "2.0.0", 20);
}

/// The example's `reload` command as the proxy host runs it here: the
/// playbook's block with the test's pid file.
fn example_reload_command() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let playbook = std::fs::read_to_string(root.join(PLAYBOOK)).unwrap();
    let mut lines = playbook.lines().skip_while(|l| *l != "    reload: |");
    assert!(lines.next().is_some(), "no `reload: |` block in {PLAYBOOK}");
    let mut command = String::new();
    for line in lines.take_while(|l| l.is_empty() || l.starts_with("      ")) {
        command.push_str(line.get(6..).unwrap_or(""));
        command.push('\n');
    }
    let pidfile = "{{ haproxy_pidfile | default('/run/haproxy.pid') }}";
    assert!(command.contains(pidfile), "{command}");
    command.replace(pidfile, haproxy::PIDFILE)
}

#[test]
fn back_to_back_reloads_are_each_loaded_and_drop_no_request() {
    let fleet = Fleet::start(3);
    let apps = [2, 3];
    let (haproxy, _project) = set_up(&fleet, &apps);
    write_file(
        fleet.host_path(1, "/srv"),
        "reload.sh",
        &example_reload_command(),
    );
    let reloads_before = haproxy.reloads();

    // Four clients through haproxy while 20 reloads run one right after the
    // other, each after a change: a frontend on 8405 that says which.
    const RELOADS: usize = 20;
    let clock = Instant::now();
    let clients: Vec<Client> = (0..4)
        .map(|_| {
            Client::start(
                haproxy.address(),
                SITE,
                "/VERSION",
                clock,
                3000,
                Duration::from_secs(60),
            )
        })
        .collect();
    for c in &clients {
        c.wait_count(10);
    }
    let started = Instant::now();
    let out = fleet.exec(
        1,
        &format!(
            "for n in $(seq 1 {RELOADS}); do\n\
             printf 'frontend generation\\n    bind :8405\\n    http-request return status 200 content-type text/plain string \"generation %s\"\\n' \"$n\" > {}/zz-generation.cfg\n\
             sh /srv/reload.sh || exit 1\n\
             done",
            haproxy::CONF_DIR
        ),
    );
    let took = started.elapsed();
    let generation = http_get(&format!("{}:8405", fleet.addr(1)), "generation.test", "/");
    let reloads = haproxy.reloads() - reloads_before;
    std::thread::sleep(Duration::from_millis(300));
    let samples: Vec<Sample> = clients.into_iter().flat_map(Client::finish).collect();
    let failures: Vec<String> = samples
        .iter()
        .filter(|s| s.version() != Some("1.0.0"))
        .map(Sample::short)
        .collect();
    eprintln!(
        "{RELOADS} back-to-back reloads in {}: haproxy counted {reloads}; 4 clients sent {} requests, {} failed",
        secs(took),
        samples.len(),
        failures.len()
    );
    support::ok_stdout("the reloads", out);
    // Each reload was done when the command returned: none was lost, and
    // the last change serves at once.
    assert_eq!(reloads, RELOADS, "haproxy's reload count");
    assert!(
        matches!(&generation, Ok((200, b)) if b.trim() == format!("generation {RELOADS}")),
        "right after the last reload, 8405 answers {generation:?}"
    );
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(samples.len() >= 100, "only {} requests", samples.len());
    haproxy.check_config();
}
