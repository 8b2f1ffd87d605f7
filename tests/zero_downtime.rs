//! Zero-downtime deploys proved through a real nginx (Debian's package) on a
//! proxy host of the fleet, balancing to app hosts that each serve their
//! release's VERSION over HTTP (python's http.server started in the release
//! by the switch hook, so a switch needs a restart).
//!
//! - a rolling deploy of 6 app hosts in 3 batches with drain, while a client
//!   sends requests through nginx the whole time: no request fails, and the
//!   versions move from old to new (the numbers go to stderr and to
//!   /tmp/zero-downtime-report.txt);
//! - a proxy template nginx rejects stops the deploy before any app host
//!   switches, and nginx keeps serving its old config;
//! - the maintenance page is served while a migration runs, the app after.
//!
//! Every client loop is bounded in requests and time, and only talks to the
//! fleet's own addresses.
//!
//! The helpers [`Nginx`] and `http_get` are shared with tests/proxy.rs
//! (tests/support/nginx.rs); the client through nginx while convoy runs
//! ([`Client`], [`Spawned`]) with tests/haproxy.rs (tests/support/client.rs).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::client::{Client, Sample, Spawned, secs, timeline_lines};
use support::nginx::{Nginx, http_get};
use support::run::{Run, run_in};
use support::{Fleet, workdir, write_file};

// ---------------------------------------------------------------- nginx

/// Where the proxy tier keeps its manifests in these tests: /var/lib is
/// shared between the fleet's hosts, /srv is each host's own.
const STATE_DIR: &str = "/srv/convoy-proxy";

/// The `Host` the app's nginx server answers to (`proxy_server_name`).
const SITE: &str = "hello.test";

/// The app's port on every app host.
const APP_PORT: u16 = 8080;

/// The body of the maintenance page (templates/nginx/maintenance.html.j2).
const MAINTENANCE_TEXT: &str = "hello is under maintenance";

/// [`Nginx`] (tests/support/nginx.rs) for this app.
impl Nginx<'_> {
    /// `count` requests for the app's VERSION through nginx: every one
    /// must answer 200 with `version`.
    fn assert_serves(&self, version: &str, count: usize) {
        for n in 0..count {
            let answer = self.get(SITE, "/VERSION");
            assert!(
                matches!(&answer, Ok((200, b)) if b.trim() == version),
                "request {n} through nginx on h{}: wanted 200 {version}, got {answer:?}",
                self.host
            );
        }
    }
}

/// [`Sample`] (tests/support/client.rs) for this app.
impl Sample {
    /// A 503 with the maintenance page.
    fn maintenance(&self) -> bool {
        matches!(&self.answer, Ok((503, body)) if body.contains(MAINTENANCE_TEXT))
    }
}

// ---------------------------------------------------------------- the project

/// The play: proxy-deploy.yml adapted to the test (its own app sources, a
/// robust restart, drain 1 s). BATCH, MIGRATIONS and MAINTENANCE are
/// replaced by [`Project::write_playbook`].
const PLAYBOOK: &str = r#"- name: Deploy hello behind nginx
  hosts: app
  vars:
    version: "1.0.0"
    proxy_server_name: hello.test
  distribution:
    name: hello
    version: "{{ version }}"
    source: "app/{{ version }}"
    root: /srv/hello
    keep: 3
  hooks:
    switch:
      # Stop the old server (and wait until it is gone), start one in the
      # new release, and end only once the port answers.
      - name: restart hello on the new release
        shell: |
          set -u
          if [ -f /srv/hello.pid ]; then
            pid=$(cat /srv/hello.pid)
            kill "$pid" 2>/dev/null || true
            n=0
            while kill -0 "$pid" 2>/dev/null; do
              n=$((n + 1)); [ $n -lt 200 ] || { echo "old server $pid did not stop" >&2; exit 1; }
              sleep 0.05
            done
          fi
          cd {{ release.path }}
          setsid nohup sh bin/hello serve {{ app_port }} >> /srv/hello.log 2>&1 < /dev/null &
          echo $! > /srv/hello.pid
          n=0
          until curl -fsS -o /dev/null http://127.0.0.1:{{ app_port }}/VERSION; do
            n=$((n + 1)); [ $n -lt 200 ] || { echo "hello did not start" >&2; exit 1; }
            sleep 0.05
          done
  rollout:
    batch: BATCH
    health:
      http: "http://{{ ansible_host }}:{{ app_port }}/VERSION"
      expect: 200
      body: "^{{ version }}"
      timeout: 30s
    on_failure: stop
MIGRATIONS  proxy:
    hosts: balancers
    files:
      - template: templates/nginx/upstream.conf.j2
        dest: "/etc/nginx/conf.d/{{ app_name }}.conf"
      - template: templates/nginx/maintenance.html.j2
        dest: "/var/www/maintenance/{{ app_name }}-maintenance.html"
        mode: "0644"
    validate: nginx -t
    reload: nginx -s reload
    drain: true
    drain_timeout: 1s
MAINTENANCE"#;

/// A migration into 2.x that takes ~3 s: `/srv/migration-started` when it
/// starts, `/srv/migration-done` when it ends (on the host it ran on).
const MIGRATION: &str = r#"  migrations:
    - name: convert-sessions
      versions: ">=2.0.0, <3.0.0"
      run: "echo {{ version }} > /srv/migration-started && sleep 3 && echo {{ version }} > /srv/migration-done"
      on: one
"#;

/// A temporary project: the app in two versions, the repository's nginx
/// templates, the playbook and an inventory with `balancers` and `app`.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(fleet: &Fleet, proxies: &[usize], apps: &[usize]) -> Project {
        let project = Project { dir: workdir() };
        let dir = project.dir();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let hello = std::fs::read_to_string(root.join("app/hello/bin/hello")).unwrap();
        for version in ["1.0.0", "2.0.0"] {
            write_file(
                dir,
                &format!("app/{version}/VERSION"),
                &format!("{version}\n"),
            );
            let bin = write_file(dir, &format!("app/{version}/bin/hello"), &hello);
            set_mode(&bin, 0o755);
        }
        for rel in [
            "templates/nginx/upstream.conf.j2",
            "templates/nginx/maintenance.html.j2",
        ] {
            write_file(dir, rel, &std::fs::read_to_string(root.join(rel)).unwrap());
        }
        project.write_playbook(2, false);
        let mut yaml = format!(
            "all:\n  vars:\n    convoy_ssh_config: {}\n    convoy_proxy_state_dir: {STATE_DIR}\n    app_name: hello\n    app_port: {APP_PORT}\n  children:\n",
            fleet.ssh_config().display()
        );
        for (group, hosts) in [("balancers", proxies), ("app", apps)] {
            yaml.push_str(&format!("    {group}:\n      hosts:\n"));
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

    /// The playbook: batches of `batch` hosts, with the migration and the
    /// maintenance page or without.
    fn write_playbook(&self, batch: usize, migration: bool) {
        let text = PLAYBOOK
            .replace("BATCH", &batch.to_string())
            .replace("MIGRATIONS", if migration { MIGRATION } else { "" })
            .replace(
                "MAINTENANCE",
                if migration {
                    "    maintenance_during_migrations: true\n"
                } else {
                    ""
                },
            );
        write_file(self.dir(), "deploy.yml", &text);
    }

    fn deploy_args(version: &str) -> Vec<String> {
        [
            "run",
            "deploy.yml",
            "-i",
            "inventory.yml",
            "-e",
            &format!("version={version}"),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn deploy(&self, version: &str) -> Run {
        let args = Project::deploy_args(version);
        run_in(
            self.dir(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    }

    fn spawn_deploy(&self, version: &str, clock: Instant) -> Spawned {
        Spawned::start(self.dir(), Project::deploy_args(version), clock)
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Where app host i's `current` points (`releases/<version>`).
fn current(fleet: &Fleet, i: usize) -> String {
    std::fs::read_link(fleet.host_path(i, "/srv/hello/current"))
        .map(|t| t.to_string_lossy().into_owned())
        .unwrap_or_else(|e| panic!("h{i}: /srv/hello/current: {e}"))
}

/// What app host i serves itself on the app port (asked directly).
fn served_by(fleet: &Fleet, i: usize) -> Result<(u16, String), String> {
    http_get(&format!("{}:{APP_PORT}", fleet.addr(i)), SITE, "/VERSION")
}

/// Every app host runs and serves `version`.
fn assert_app_hosts_on(fleet: &Fleet, apps: &[usize], version: &str) {
    for &i in apps {
        assert_eq!(current(fleet, i), format!("releases/{version}"), "h{i}");
        let answer = served_by(fleet, i);
        assert!(
            matches!(&answer, Ok((200, b)) if b.trim() == version),
            "h{i} serves {answer:?}, expected {version}"
        );
    }
}

/// What the client saw, as runs of the same kind of answer, merged with
/// the run's steps: for failure messages.
fn transitions(samples: &[Sample], lines: &[(Duration, String)]) -> Vec<String> {
    let kind = |s: &Sample| match s.version() {
        Some(v) => v.to_owned(),
        None if s.maintenance() => "maintenance page".to_owned(),
        None => s.short(),
    };
    let mut events: Vec<(Duration, String)> = Vec::new();
    let mut start = 0;
    for i in 1..=samples.len() {
        if i == samples.len() || kind(&samples[i]) != kind(&samples[start]) {
            events.push((
                samples[start].at,
                format!(
                    "client: {} x{} until {}",
                    kind(&samples[start]),
                    i - start,
                    secs(samples[i - 1].at)
                ),
            ));
            start = i;
        }
    }
    events.extend(timeline_lines(lines).into_iter().map(|l| {
        let at = l.trim_start().split('s').next().unwrap_or("0");
        (Duration::from_secs_f64(at.parse().unwrap_or(0.0)), l)
    }));
    events.sort_by_key(|(at, _)| *at);
    events
        .into_iter()
        .map(|(at, e)| format!("{} {e}", secs(at)))
        .collect()
}

// ---------------------------------------------------------------- tests

#[test]
fn rolling_deploy_through_nginx_drops_no_request() {
    let fleet = Fleet::start(7);
    let apps: Vec<usize> = (2..=7).collect();
    let nginx = Nginx::start(&fleet, 1);
    let project = Project::new(&fleet, &[1], &apps);

    // 1.0.0 everywhere first (not measured).
    let first = project.deploy("1.0.0");
    assert_eq!(first.code, 0, "{}", first.dump());
    assert_app_hosts_on(&fleet, &apps, "1.0.0");
    nginx.wait_for_path(SITE, "/VERSION", 200, "1.0.0");
    nginx.assert_serves("1.0.0", 10);

    // A client through nginx the whole time the 2.0.0 rollout runs.
    let clock = Instant::now();
    let client = Client::start(
        nginx.address(),
        SITE,
        "/VERSION",
        clock,
        3000,
        Duration::from_secs(120),
    );
    client.wait_count(20);
    let deploy_start = clock.elapsed();
    let (run, lines) = project
        .spawn_deploy("2.0.0", clock)
        .finish(Duration::from_secs(100));
    let run_end = clock.elapsed();
    // A little more traffic once the run is over, then stop.
    let samples = client.finish_after(50);

    // The numbers, for the log (--nocapture) and for the report.
    let failures: Vec<&Sample> = samples.iter().filter(|s| s.version().is_none()).collect();
    let old = samples.iter().filter(|s| s.version() == Some("1.0.0"));
    let new = samples.iter().filter(|s| s.version() == Some("2.0.0"));
    let first_new = new.clone().next().map(|s| s.at);
    let last_old = old.clone().next_back().map(|s| s.at);
    let during: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at > deploy_start && s.at <= run_end)
        .collect();
    let after: Vec<&Sample> = samples.iter().filter(|s| s.at > run_end).collect();
    let mut report = String::new();
    report.push_str(&format!(
        "zero-downtime rolling deploy: 6 app hosts (h2..h7), 3 batches of 2, drain 1s, nginx on h1\n\
         requests: {} (1.0.0: {}, 2.0.0: {}), failed: {}\n\
         requests while the run ran: {}, after it ended: {}\n\
         timeline (since the client started):\n\
         \x20 {:>8}  run of 2.0.0 started\n\
         \x20 {:>8}  first 2.0.0 through nginx\n\
         \x20 {:>8}  last 1.0.0 through nginx\n\
         \x20 {:>8}  run ended (exit {})\n\
         \x20 {:>8}  last request\n\
         run's steps (stamped when its line arrived):\n",
        samples.len(),
        old.count(),
        new.count(),
        failures.len(),
        during.len(),
        after.len(),
        secs(deploy_start),
        first_new.map_or("never".into(), secs),
        last_old.map_or("never".into(), secs),
        secs(run_end),
        run.code,
        samples.last().map_or("-".into(), |s| secs(s.at)),
    ));
    for l in timeline_lines(&lines) {
        report.push_str(&l);
        report.push('\n');
    }
    if !failures.is_empty() {
        report.push_str("failed requests:\n");
        for s in failures.iter().take(20) {
            report.push_str(&format!("  {}\n", s.short()));
        }
    }
    eprintln!("{report}");
    std::fs::write("/tmp/zero-downtime-report.txt", &report).expect("write the report");

    assert_eq!(run.code, 0, "{}", run.dump());
    assert!(
        failures.is_empty(),
        "{} of {} requests failed, first ones:\n{}",
        failures.len(),
        samples.len(),
        failures
            .iter()
            .take(20)
            .map(|s| s.short())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        samples.len() >= 300,
        "only {} requests were sent",
        samples.len()
    );
    assert!(
        during.len() >= 200,
        "only {} requests while the run ran",
        during.len()
    );
    // Old before the run, new after it, nothing else at any time.
    let before: Vec<&Sample> = samples.iter().filter(|s| s.at <= deploy_start).collect();
    assert!(before.len() >= 20);
    assert!(
        before.iter().all(|s| s.version() == Some("1.0.0")),
        "before the run: {:?}",
        before.iter().map(|s| s.short()).collect::<Vec<_>>()
    );
    assert!(
        after.len() >= 20,
        "only {} requests after the run",
        after.len()
    );
    assert!(
        after.iter().all(|s| s.version() == Some("2.0.0")),
        "after the run: {:?}",
        after.iter().map(|s| s.short()).collect::<Vec<_>>()
    );
    let (first_new, last_old) = (first_new.unwrap(), last_old.unwrap());
    assert!(first_new > deploy_start && last_old <= run_end);

    // The rollout ran as asked: 3 batches of 2, each drained first.
    let batch_lines: Vec<&str> = lines
        .iter()
        .map(|(_, l)| l.as_str())
        .filter(|l| l.contains("BATCH "))
        .collect();
    assert_eq!(batch_lines.len(), 3, "{}", run.stdout);
    for (n, hosts) in ["h2, h3", "h4, h5", "h6, h7"].iter().enumerate() {
        assert!(
            batch_lines[n].ends_with(&format!("BATCH {}/3 [{hosts}]", n + 1)),
            "{}",
            batch_lines[n]
        );
        assert!(
            run.stdout
                .contains(&format!("TASK [proxy: drain batch {}/3]", n + 1)),
            "{}",
            run.stdout
        );
    }
    // The hosts themselves: every app host runs and serves 2.0.0, nginx
    // balances over all of them again.
    assert_app_hosts_on(&fleet, &apps, "2.0.0");
    let conf = std::fs::read_to_string(fleet.host_path(1, "/etc/nginx/conf.d/hello.conf")).unwrap();
    for &i in &apps {
        assert!(
            conf.contains(&format!(
                "server {}:{APP_PORT};  # h{i} 2.0.0",
                fleet.addr(i)
            )),
            "{conf}"
        );
    }
    nginx.assert_serves("2.0.0", 20);
}

#[test]
fn invalid_proxy_template_leaves_nginx_serving() {
    let fleet = Fleet::start(3);
    let apps = [2, 3];
    let nginx = Nginx::start(&fleet, 1);
    let project = Project::new(&fleet, &[1], &apps);
    project.write_playbook(1, false);
    let first = project.deploy("1.0.0");
    assert_eq!(first.code, 0, "{}", first.dump());
    nginx.wait_for_path(SITE, "/VERSION", 200, "1.0.0");
    let conf_path = "/etc/nginx/conf.d/hello.conf";
    let conf_before = std::fs::read_to_string(fleet.host_path(1, conf_path)).unwrap();
    let pids_before: Vec<String> = apps
        .iter()
        .map(|&i| std::fs::read_to_string(fleet.host_path(i, "/srv/hello.pid")).unwrap())
        .collect();

    // The next deploy brings a template with a directive nginx does not know.
    let template = project.dir().join("templates/nginx/upstream.conf.j2");
    let good = std::fs::read_to_string(&template).unwrap();
    let listen = "    listen {{ proxy_listen | default(80) }};\n";
    assert!(good.contains(listen));
    std::fs::write(
        &template,
        good.replace(listen, &format!("    bogus_directive on;\n{listen}")),
    )
    .unwrap();
    let bad = project.deploy("2.0.0");
    assert_ne!(bad.code, 0, "{}", bad.dump());
    assert_eq!(bad.code, 2, "{}", bad.dump());
    let all = bad.all();
    assert!(
        all.contains("unknown directive \"bogus_directive\" in /etc/nginx/conf.d/hello.conf"),
        "nginx's message is not shown:\n{}",
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
    let pids_after: Vec<String> = apps
        .iter()
        .map(|&i| std::fs::read_to_string(fleet.host_path(i, "/srv/hello.pid")).unwrap())
        .collect();
    assert_eq!(pids_before, pids_after, "an app server was restarted");
    // nginx keeps its old config, valid, and serves with it as before.
    assert_eq!(
        std::fs::read_to_string(fleet.host_path(1, conf_path)).unwrap(),
        conf_before
    );
    let conf_dir = fleet.host_path(1, "/etc/nginx/conf.d");
    let mut names: Vec<String> = std::fs::read_dir(&conf_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["hello.conf"], "leftovers in conf.d");
    fleet.exec_ok(1, "nginx -t");
    std::thread::sleep(Duration::from_millis(300));
    nginx.assert_serves("1.0.0", 20);
}

#[test]
fn maintenance_page_during_a_migration() {
    let fleet = Fleet::start(3);
    let apps = [2, 3];
    let nginx = Nginx::start(&fleet, 1);
    let project = Project::new(&fleet, &[1], &apps);
    // One host at a time: a batch of the whole fleet would leave no host in
    // service while it drains, and the template then serves the maintenance
    // page too.
    project.write_playbook(1, true);
    let first = project.deploy("1.0.0");
    assert_eq!(first.code, 0, "{}", first.dump());
    nginx.wait_for_path(SITE, "/VERSION", 200, "1.0.0");
    for &i in &apps {
        assert!(
            !fleet.host_path(i, "/srv/migration-started").exists(),
            "h{i}: the migration ran for 1.0.0"
        );
    }

    let clock = Instant::now();
    // The same moment on the wall clock, to place the migration's marker files
    // (their mtimes) on the client's timeline.
    let clock_wall = std::time::SystemTime::now();
    let client = Client::start(
        nginx.address(),
        SITE,
        "/VERSION",
        clock,
        2000,
        Duration::from_secs(90),
    );
    client.wait_count(10);
    let deploy_start = clock.elapsed();
    let spawned = project.spawn_deploy("2.0.0", clock);

    // The migration starts (on the first app host) ...
    let started = |i: usize| fleet.host_path(i, "/srv/migration-started").exists();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !apps.iter().any(|&i| started(i)) {
        assert!(
            Instant::now() < deadline,
            "the migration did not start within 60 s:\n{}",
            spawned.stdout()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let host = apps.iter().copied().find(|&i| started(i)).unwrap();
    assert_eq!(host, 2, "the migration runs on the rollout's first host");
    // ... and while it runs, nginx answers with the maintenance page.
    let seen = Instant::now();
    let mut last = None;
    while seen.elapsed() < Duration::from_millis(2500) {
        let answer = nginx.get(SITE, "/VERSION");
        if matches!(&answer, Ok((503, b)) if b.contains(MAINTENANCE_TEXT)) {
            last = Some(answer);
            break;
        }
        last = Some(answer);
        std::thread::sleep(Duration::from_millis(20));
    }
    let page_seen_during_migration = !fleet.host_path(host, "/srv/migration-done").exists();
    assert!(
        matches!(&last, Some(Ok((503, b))) if b.contains(MAINTENANCE_TEXT)),
        "no maintenance page while the migration runs; last answer {last:?}"
    );
    assert!(
        page_seen_during_migration,
        "the maintenance page was first seen after the migration ended"
    );

    let (run, lines) = spawned.finish(Duration::from_secs(100));
    let run_end = clock.elapsed();
    let samples = client.finish_after(30);
    assert_eq!(run.code, 0, "{}", run.dump());
    assert!(
        run.stdout.contains("proxy: maintenance page on")
            && run.stdout.contains("proxy: maintenance page off"),
        "{}",
        run.stdout
    );
    assert_eq!(
        std::fs::read_to_string(fleet.host_path(host, "/srv/migration-done")).unwrap(),
        "2.0.0\n"
    );
    assert!(!fleet.host_path(3, "/srv/migration-started").exists());

    // After the run: the app again, on 2.0.0, everywhere.
    assert_app_hosts_on(&fleet, &apps, "2.0.0");
    nginx.assert_serves("2.0.0", 20);

    // What the client saw: 1.0.0, then only the maintenance page, then the
    // app (the rollout mixes versions), 2.0.0 once the run is over; nothing
    // else ever.
    let odd: Vec<String> = samples
        .iter()
        .filter(|s| s.version().is_none() && !s.maintenance())
        .map(Sample::short)
        .collect();
    assert!(odd.is_empty(), "unexpected answers: {odd:?}");
    let first_page = samples.iter().position(Sample::maintenance);
    let last_page = samples.iter().rposition(Sample::maintenance);
    let (Some(first_page), Some(last_page)) = (first_page, last_page) else {
        panic!("the client never saw the maintenance page");
    };
    // While the migration runs, every request gets the maintenance page. (At
    // the very edges of the maintenance, nginx's graceful reload lets old and
    // new workers answer side by side for a moment; convoy waits the drain
    // timeout after switching the page on before the migration starts.)
    let on_timeline = |file: &str| {
        let mtime = std::fs::metadata(fleet.host_path(host, file))
            .unwrap()
            .modified()
            .unwrap();
        mtime.duration_since(clock_wall).unwrap()
    };
    let (migration_start, migration_end) = (
        on_timeline("/srv/migration-started"),
        on_timeline("/srv/migration-done"),
    );
    let during: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at >= migration_start && s.at <= migration_end)
        .collect();
    assert!(
        during.len() >= 10,
        "only {} requests during the migration",
        during.len()
    );
    let app_during: Vec<String> = during
        .iter()
        .filter(|s| !s.maintenance())
        .map(|s| s.short())
        .collect();
    assert!(
        app_during.is_empty(),
        "the app answered while the migration ran ({} to {}): {app_during:?}\n{}",
        secs(migration_start),
        secs(migration_end),
        transitions(&samples, &lines).join("\n")
    );
    assert!(
        samples[..first_page]
            .iter()
            .all(|s| s.version() == Some("1.0.0"))
    );
    assert!(samples[first_page].at > deploy_start);
    let after: Vec<&Sample> = samples.iter().filter(|s| s.at > run_end).collect();
    assert!(
        after.len() >= 10,
        "only {} requests after the run",
        after.len()
    );
    assert!(
        after.iter().all(|s| s.version() == Some("2.0.0")),
        "after the run: {:?}",
        after.iter().map(|s| s.short()).collect::<Vec<_>>()
    );
    eprintln!(
        "maintenance page: {} answers from {} to {} (run {}..{})",
        last_page - first_page + 1,
        secs(samples[first_page].at),
        secs(samples[last_page].at),
        secs(deploy_start),
        secs(run_end)
    );
}

/// Every inode, mtime, size and link target under the paths a deploy
/// touches on host i (release root, hook files, proxy config and pages),
/// seen from inside the host. nginx's own logs and pid (/srv/nginx) are
/// left out: nginx writes them, not convoy.
fn snapshot(fleet: &Fleet, i: usize) -> String {
    fleet.exec_ok(
        i,
        "find /srv /etc/nginx /var/www -xdev -path /srv/nginx -prune -o -printf '%i %T@ %s %m %p -> %l\\n' 2>/dev/null | sort; true",
    )
}

/// Regression: `convoy run --check` on a play with a distribution shipped
/// the artifact, unpacked the release, ran the migration, switched
/// `current` and wrote proxy files for real. Now nothing under the
/// distribution root, the hooks' files or the proxy directories changes
/// (inode, mtime, size, mode, link target), and each step says what it
/// would do.
#[test]
fn check_mode_changes_nothing_on_app_or_proxy_hosts() {
    let fleet = Fleet::start(3);
    let apps = [2, 3];
    let nginx = Nginx::start(&fleet, 1);
    let project = Project::new(&fleet, &[1], &apps);
    project.write_playbook(1, true);
    let first = project.deploy("1.0.0");
    assert_eq!(first.code, 0, "{}", first.dump());
    nginx.wait_for_path(SITE, "/VERSION", 200, "1.0.0");

    let before: Vec<String> = fleet.hosts().map(|i| snapshot(&fleet, i)).collect();
    let mut args = Project::deploy_args("2.0.0");
    args.extend(["--check".to_owned(), "--diff".to_owned()]);
    let check = run_in(
        project.dir(),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(check.code, 0, "{}", check.dump());
    let after: Vec<String> = fleet.hosts().map(|i| snapshot(&fleet, i)).collect();
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert_eq!(b, a, "h{}: --check changed files:\n{}", i + 1, check.dump());
    }
    for &i in &apps {
        assert_eq!(current(&fleet, i), "releases/1.0.0", "h{i}");
        assert!(
            !fleet.host_path(i, "/srv/migration-started").exists(),
            "h{i}"
        );
        assert!(
            !fleet.host_path(i, "/srv/hello/.convoy/lock").exists(),
            "h{i}"
        );
    }
    nginx.assert_serves("1.0.0", 5);

    // What each kind of step would do, per host. The size it would send is
    // the one the real run below sends (not a constant: the app's files
    // change with the tests that use it).
    let out = &check.stdout;
    let would_send = |host: &str| -> String {
        let prefix = format!("changed: [{host}]: would send ");
        let line = out
            .lines()
            .find_map(|l| l.split_once(&prefix).map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{}", check.dump()));
        let (size, rest) = line.split_once("; ").unwrap();
        assert!(
            rest.starts_with("would unpack 2.0.0 into /srv/hello/releases/2.0.0"),
            "{line}"
        );
        size.to_owned()
    };
    for (h2, h3) in [("h2", "h3")] {
        for host in [h2, h3] {
            for want in [
                format!("changed: [{host}]: would switch current 1.0.0 -> 2.0.0"),
                format!("ok: [{host}]: lock is free; would lock"),
                format!("ok: [{host}]: would wait for HTTP 200 from http://"),
            ] {
                assert!(
                    out.contains(&want),
                    "missing {want:?} in:\n{}",
                    check.dump()
                );
            }
        }
    }
    assert!(
        out.contains("changed: [h2]: would switch current 1.0.0 -> 2.0.0 (batch 1/2)"),
        "{}",
        check.dump()
    );
    assert!(
        out.contains("changed: [h3]: would switch current 1.0.0 -> 2.0.0 (batch 2/2)"),
        "{}",
        check.dump()
    );
    assert!(
        out.contains("TASK [migration convert-sessions"),
        "{}",
        check.dump()
    );
    assert!(out.contains(": would run for 2.0.0"), "{}", check.dump());
    assert!(
        out.contains("]: would run: "),
        "switch hook: {}",
        check.dump()
    );
    assert!(
        out.contains(
            "changed: [h1]: would write /etc/nginx/conf.d/hello.conf; would validate and reload"
        ),
        "{}",
        check.dump()
    );
    // --diff shows the upstream's change (each host's version is a comment).
    assert!(
        out.contains("-    server ") && out.contains(" 1.0.0\n"),
        "{}",
        check.dump()
    );
    assert!(
        out.contains("+    server ") && out.contains(" 2.0.0"),
        "{}",
        check.dump()
    );

    // The real run after the check still does everything, and sends what
    // the check said it would.
    let real = project.deploy("2.0.0");
    assert_eq!(real.code, 0, "{}", real.dump());
    assert_app_hosts_on(&fleet, &apps, "2.0.0");
    for host in ["h2", "h3"] {
        let said = would_send(host);
        assert_ne!(said, "0B", "{host}: the check would send nothing");
        assert_eq!(
            real.recap_field(host, "artifact"),
            said,
            "{host}: sent against what --check said"
        );
    }
}

/// An app that answers GET and POST with its release's VERSION; on host
/// h4, release 2.0.0 answers "broken" (its health gate fails).
const POST_APP: &str = r#"#!/bin/sh
here=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in
serve) cd "$here" && exec python3 -c '
import http.server, socket, sys
class App(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def answer(self):
        body = open("VERSION", "rb").read()
        if socket.gethostname() == "h4" and body.strip() == b"2.0.0":
            body = b"broken\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = answer
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.answer()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), App).serve_forever()
' "${2:-8080}" ;;
*) cat "$here/VERSION" ;;
esac
"#;

/// Regression: when a batch failed its health gate, the rollback switched
/// the hosts back while nginx still sent them requests (it did not drain
/// them) and returned every rolled-back host to service whatever its
/// health; only nginx's retries of idempotent requests hid it. With POSTs
/// (never retried) and `proxy_next_upstream off`, no request fails, and
/// the gate, written with `release.version`, checks the version each host
/// goes back to.
#[test]
fn rollback_after_a_failed_batch_drains_and_fails_no_post() {
    let fleet = Fleet::start(5);
    let apps: Vec<usize> = (2..=5).collect();
    let nginx = Nginx::start(&fleet, 1);
    let project = Project::new(&fleet, &[1], &apps);
    let dir = project.dir();
    for version in ["1.0.0", "2.0.0"] {
        let bin = write_file(dir, &format!("app/{version}/bin/hello"), POST_APP);
        set_mode(&bin, 0o755);
    }
    let upstream = std::fs::read_to_string(dir.join("templates/nginx/upstream.conf.j2")).unwrap();
    let no_retry = upstream.replace(
        "proxy_next_upstream error timeout http_502 http_503;",
        "proxy_next_upstream off;",
    );
    assert_ne!(
        upstream, no_retry,
        "the template's proxy_next_upstream line moved"
    );
    write_file(dir, "templates/nginx/upstream.conf.j2", &no_retry);
    let playbook = PLAYBOOK
        .replace("BATCH", "2")
        .replace("MIGRATIONS", "")
        .replace("MAINTENANCE", "")
        .replace("on_failure: stop", "on_failure: rollback")
        .replace(
            "body: \"^{{ version }}\"",
            "body: \"^{{ release.version }}\"",
        )
        .replace("timeout: 30s", "timeout: 3s");
    assert!(playbook.contains("on_failure: rollback") && playbook.contains("release.version"));
    write_file(dir, "deploy.yml", &playbook);

    let first = project.deploy("1.0.0");
    assert_eq!(first.code, 0, "{}", first.dump());
    nginx.wait_for_path(SITE, "/VERSION", 200, "1.0.0");

    let clock = Instant::now();
    let client = Client::start_posts(
        nginx.address(),
        SITE,
        "/VERSION",
        clock,
        3000,
        Duration::from_secs(120),
    );
    client.wait_count(20);
    let (run, lines) = project
        .spawn_deploy("2.0.0", clock)
        .finish(Duration::from_secs(100));
    let samples = client.finish_after(20);

    assert_eq!(run.code, 2, "h4 fails its gate: {}", run.dump());
    assert!(run.stdout.contains("rolling back"), "{}", run.dump());
    assert!(
        run.stdout.contains("proxy: drain rolled-back hosts"),
        "{}",
        run.dump()
    );
    let failed: Vec<String> = samples
        .iter()
        .filter(|s| s.version().is_none())
        .map(Sample::short)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} POSTs failed through nginx:\n{}\n{}",
        failed.len(),
        samples.len(),
        failed.join("\n"),
        transitions(&samples, &lines).join("\n")
    );
    // Every host is back on 1.0.0, serving it, and in nginx's upstream.
    assert_app_hosts_on(&fleet, &apps, "1.0.0");
    let upstream_conf =
        std::fs::read_to_string(fleet.host_path(1, "/etc/nginx/conf.d/hello.conf")).unwrap();
    for &i in &apps {
        assert!(
            upstream_conf.contains(&format!("{}:{APP_PORT};  # h{i} 1.0.0", fleet.addr(i))),
            "h{i} not back in the upstream:\n{upstream_conf}"
        );
    }
}

/// Regression: the shipped playbooks/proxy-deploy.yml killed the old app
/// and started the new one at once, so the two could race for the port
/// (the new one then dies and the host serves nothing once the old one is
/// gone). The example as shipped, deployed twice through a real nginx: each
/// app host ends up serving from a process that runs in the new release,
/// and a client through nginx sees no failure.
#[test]
fn the_shipped_proxy_deploy_example_restarts_into_the_new_release() {
    let fleet = Fleet::start(4);
    let apps: Vec<usize> = (2..=4).collect();
    let nginx = Nginx::start(&fleet, 1);
    let project = Project::new(&fleet, &[1], &apps);
    let dir = project.dir();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for rel in [
        "playbooks/proxy-deploy.yml",
        "app/hello/VERSION",
        "app/hello/bin/hello",
    ] {
        let file = write_file(dir, rel, &std::fs::read_to_string(root.join(rel)).unwrap());
        if rel.ends_with("bin/hello") {
            set_mode(&file, 0o755);
        }
    }
    let inventory = std::fs::read_to_string(dir.join("inventory.yml")).unwrap();
    write_file(
        dir,
        "inventory.yml",
        &inventory.replace(
            "    app_name: hello\n",
            "    app_name: hello\n    app_root: /srv\n    proxy_server_name: hello.test\n",
        ),
    );
    let deploy = |version: &str| {
        let v = format!("version={version}");
        run_in(
            dir,
            &[
                "run",
                "playbooks/proxy-deploy.yml",
                "-i",
                "inventory.yml",
                "-e",
                &v,
            ],
        )
    };
    let first = deploy("1.0.0");
    assert_eq!(first.code, 0, "{}", first.dump());
    nginx.wait_for_path(SITE, "/VERSION", 200, "1.0.0");

    let clock = Instant::now();
    let client = Client::start(
        nginx.address(),
        SITE,
        "/VERSION",
        clock,
        3000,
        Duration::from_secs(120),
    );
    client.wait_count(20);
    let second = deploy("1.0.1");
    let samples = client.finish_after(20);
    assert_eq!(second.code, 0, "{}", second.dump());
    let failed: Vec<String> = samples
        .iter()
        .filter(|s| s.version().is_none())
        .map(Sample::short)
        .collect();
    assert!(
        failed.is_empty(),
        "{} requests failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    for &i in &apps {
        let cwd = fleet.exec_ok(
            i,
            "readlink /proc/$(cat /srv/hello/shared/hello.pid)/cwd; curl -fsS http://127.0.0.1:8080/VERSION",
        );
        assert_eq!(cwd, "/srv/hello/releases/1.0.1\n1.0.0\n", "h{i}");
    }
}
