//! `convoy ps`, `convoy restart` and `convoy logs` against supervisord
//! running inside real fleet hosts. Each host runs its own supervisord
//! (config, socket, pidfile and logs in the host's private /etc/app and
//! /srv) with two programs started from `/srv/app/current`: `web`, a
//! python HTTP server serving its release's VERSION file, and `sleeper`.
//! Every test checks the hosts themselves (pids, start counts, ports), not
//! only what convoy says.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use support::client::Client;
use support::nginx::Nginx;
use support::run::{Run, run_in};
use support::spawned::{Spawned, wait_until};
use support::{Fleet, workdir, write_file};

const CONF: &str = "/etc/app/supervisord.conf";

/// supervisord's config for host `addr`. `web` sleeps a second before it
/// serves (so a restart's downtime is long enough to be measured) and,
/// when /srv/broken exists, never serves at all (a restart that does not
/// come back). Each start of `web` appends a line to /srv/sup/web.starts.
fn supervisord_conf(addr: &str) -> String {
    format!(
        r#"[unix_http_server]
file=/srv/sup/supervisor.sock

[supervisord]
pidfile=/srv/sup/supervisord.pid
logfile=/srv/sup/supervisord.log
childlogdir=/srv/sup
user=root

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix:///srv/sup/supervisor.sock

[program:web]
command=/bin/sh -c 'echo start >> /srv/sup/web.starts; echo "web up in $(pwd)"; sleep 1; if [ -e /srv/broken ]; then exec sleep 100000; fi; exec /usr/bin/python3 -m http.server 8080 --bind {addr}'
directory=/srv/app/current
autorestart=false
startsecs=1
stopsignal=KILL
stdout_logfile=/srv/sup/web.out

[program:sleeper]
command=/bin/sleep 100000
directory=/srv/app/current
autorestart=false
startsecs=1
"#
    )
}

/// A fleet of `n` hosts; host i runs release `1.i.0` under supervisord.
struct Ops {
    fleet: Fleet,
    work: tempfile::TempDir,
    inventory: PathBuf,
}

impl Ops {
    fn start(n: usize) -> Ops {
        Ops::start_with(n, 0)
    }

    /// `n` app hosts (h1..hn) under supervisord, then `balancers` more in
    /// a group `balancers` (nothing started on them).
    fn start_with(n: usize, balancers: usize) -> Ops {
        let fleet = Fleet::start(n + balancers);
        let work = workdir();
        let mut inventory = format!(
            "all:\n  vars:\n    convoy_ssh_config: {}\n    convoy_supervisor_conf: {CONF}\n  children:\n",
            fleet.ssh_config().display()
        );
        if balancers > 0 {
            inventory.push_str("    balancers:\n      hosts:\n");
            for i in n + 1..=n + balancers {
                inventory.push_str(&format!(
                    "        {}:\n          ansible_host: {}\n          convoy_proxy_state_dir: /srv/convoy-proxy\n",
                    fleet.name(i),
                    fleet.addr(i)
                ));
            }
        }
        inventory.push_str("    app:\n      hosts:\n");
        for i in 1..=n {
            inventory.push_str(&format!(
                "        {}:\n          ansible_host: {}\n",
                fleet.name(i),
                fleet.addr(i)
            ));
            let version = release(i);
            write_file(
                fleet.host_path(i, "/srv"),
                &format!("app/releases/{version}/VERSION"),
                &version,
            );
            std::os::unix::fs::symlink(
                format!("releases/{version}"),
                fleet.host_path(i, "/srv/app/current"),
            )
            .unwrap();
            write_file(
                fleet.host_path(i, "/etc/app"),
                "supervisord.conf",
                &supervisord_conf(&fleet.addr(i)),
            );
            fleet.exec_ok(
                i,
                "mkdir -p /srv/sup && supervisord -c /etc/app/supervisord.conf </dev/null >/dev/null 2>&1",
            );
        }
        let inventory = write_file(work.path(), "inventory.yml", &inventory);
        let ops = Ops {
            fleet,
            work,
            inventory,
        };
        for i in 1..=n {
            wait_until(
                &format!("h{i}'s programs running"),
                Duration::from_secs(20),
                || ops.pid(i, "web").is_some() && ops.pid(i, "sleeper").is_some() && ops.serves(i),
            );
        }
        ops
    }

    /// convoy with `args`, then `-i INVENTORY`.
    fn convoy(&self, args: &[&str]) -> Run {
        let inventory = self.inventory.display().to_string();
        let mut all = args.to_vec();
        all.extend(["-i", &inventory]);
        run_in(self.work.path(), &all)
    }

    /// The program's pid as supervisorctl on the host says (None: not running).
    fn pid(&self, i: usize, program: &str) -> Option<u32> {
        let out = self
            .fleet
            .exec(i, &format!("supervisorctl -c {CONF} pid {program}"));
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .ok()
            .filter(|p| *p > 0)
    }

    /// How many times `web` has started on host i.
    fn web_starts(&self, i: usize) -> usize {
        std::fs::read_to_string(self.fleet.host_path(i, "/srv/sup/web.starts"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// Whether host i's web port accepts a connection right now.
    fn serves(&self, i: usize) -> bool {
        serves(&self.fleet.addr(i))
    }
}

fn serves(addr: &str) -> bool {
    let sock: std::net::SocketAddr = format!("{addr}:8080").parse().unwrap();
    std::net::TcpStream::connect_timeout(&sock, Duration::from_millis(300)).is_ok()
}

fn release(i: usize) -> String {
    format!("1.{i}.0")
}

fn processes(run: &Run) -> Vec<Value> {
    let v: Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}{}", run.stdout, run.stderr));
    v["processes"].as_array().expect("processes").clone()
}

fn find<'a>(procs: &'a [Value], program: &str, host: &str) -> &'a Value {
    procs
        .iter()
        .find(|p| p["program"] == program && p["host"] == host)
        .unwrap_or_else(|| panic!("no {program} on {host} in {procs:?}"))
}

#[test]
fn ps_shows_each_program_on_each_host_and_a_killed_one_as_not_running() {
    let ops = Ops::start(3);
    let run = ops.convoy(&["ps", "app", "--output", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let procs = processes(&run);
    assert_eq!(procs.len(), 6, "{procs:?}");
    for i in ops.fleet.hosts() {
        for program in ["web", "sleeper"] {
            let p = find(&procs, program, &format!("h{i}"));
            assert_eq!(p["state"], "RUNNING");
            assert_eq!(p["supervisor"], "supervisord");
            assert_eq!(p["pid"].as_u64(), ops.pid(i, program).map(u64::from));
            // Started through `current`, it names the release it runs.
            assert_eq!(p["release"], release(i).as_str());
        }
    }
    // Text: one table, program by program.
    let text = ops.convoy(&["ps", "app", "web"]);
    assert_eq!(text.code, 0, "{}{}", text.stdout, text.stderr);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", text.stdout);
    assert!(lines[0].starts_with("PROGRAM"), "{}", text.stdout);
    let row: Vec<&str> = lines[2].split_whitespace().collect();
    let pid = ops.pid(2, "web").unwrap().to_string();
    assert_eq!(
        (row[0], row[1], row[2], row[3]),
        ("web", "h2", "RUNNING", pid.as_str())
    );
    assert_eq!(row[5], "1.2.0");

    // autorestart=false: a killed sleeper stays down, and ps says so.
    let sleeper = ops.pid(2, "sleeper").unwrap();
    ops.fleet.exec_ok(2, &format!("kill -KILL {sleeper}"));
    wait_until(
        "h2's sleeper to be seen dead",
        Duration::from_secs(10),
        || ops.pid(2, "sleeper").is_none(),
    );
    let run = ops.convoy(&["ps", "app", "sleeper", "--output", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let procs = processes(&run);
    assert_eq!(procs.len(), 3, "{procs:?}");
    let dead = find(&procs, "sleeper", "h2");
    assert_ne!(dead["state"], "RUNNING");
    assert_eq!(dead["running"], false);
    assert_eq!(dead["pid"], Value::Null);
    assert_eq!(find(&procs, "sleeper", "h1")["state"], "RUNNING");

    // Logs: each host's line, prefixed with the host.
    let logs = ops.convoy(&["logs", "app", "web", "-n", "5"]);
    assert_eq!(logs.code, 0, "{}{}", logs.stdout, logs.stderr);
    for i in ops.fleet.hosts() {
        let want = format!("h{i} | web up in /srv/app/releases/{}", release(i));
        assert!(
            logs.stdout.lines().any(|l| l == want),
            "no {want:?} in:\n{}",
            logs.stdout
        );
    }

    // Bad input: one message, exit 3, nothing changed.
    let pids: Vec<_> = ops.fleet.hosts().map(|i| ops.pid(i, "web")).collect();
    let sleepers: Vec<_> = ops.fleet.hosts().map(|i| ops.pid(i, "sleeper")).collect();
    let nosuch = ops.convoy(&["restart", "app", "wbe", "--health-cmd", "true"]);
    assert_eq!(nosuch.code, 3, "{}{}", nosuch.stdout, nosuch.stderr);
    assert_eq!(
        nosuch.stderr.trim(),
        "error: no host of \"app\" has a program \"wbe\" (asked: h1, h2, h3); nothing was changed"
    );
    let ps_nosuch = ops.convoy(&["ps", "app", "wbe"]);
    assert_eq!(ps_nosuch.code, 3, "{}", ps_nosuch.stderr);
    let logs_nosuch = ops.convoy(&["logs", "app", "wbe"]);
    assert_eq!(logs_nosuch.code, 3, "{}", logs_nosuch.stderr);
    assert!(
        logs_nosuch
            .stderr
            .ends_with("error: no host of \"app\" could show the logs of \"wbe\"\n"),
        "{}",
        logs_nosuch.stderr
    );
    // --since needs timestamps, which supervisord's stdout logs lack.
    let since = ops.convoy(&["logs", "app", "web", "--since", "10m"]);
    assert_eq!(since.code, 3, "{}{}", since.stdout, since.stderr);
    assert_eq!(since.stdout, "");
    assert!(
        since.stderr.contains(
            "h1: supervisord's stdout logs carry no timestamps: --since needs systemd's journal (use -n N here)"
        ) && since
            .stderr
            .ends_with("error: no host of \"app\" could show the logs of \"web\"\n"),
        "{}",
        since.stderr
    );
    // A restart without a health gate is refused before any connection,
    // unless asked for with --no-health.
    let ungated = ops.convoy(&["restart", "app", "web"]);
    assert_eq!(ungated.code, 3, "{}{}", ungated.stdout, ungated.stderr);
    assert_eq!(
        ungated.stderr.trim(),
        "error: restart web: no health gate: give --health-http URL or --health-cmd COMMAND (or --no-health to restart without one); nothing was restarted"
    );
    assert_eq!(ungated.stdout, "");
    // A gate that cannot be rendered for a host (an undefined variable).
    let undefined = ops.convoy(&[
        "restart",
        "app",
        "web",
        "--health-http",
        "http://{{ no_such_var }}:8080/",
    ]);
    assert_eq!(
        undefined.code, 3,
        "{}{}",
        undefined.stdout, undefined.stderr
    );
    assert!(
        undefined
            .stderr
            .starts_with("error: --health-http for host h1: ")
            && undefined.stderr.contains("no_such_var")
            && undefined.stderr.lines().count() <= 3,
        "{}",
        undefined.stderr
    );
    assert_eq!(undefined.stdout, "");
    let ps_nohost = ops.convoy(&["ps", "nosuchgroup"]);
    assert_eq!(ps_nohost.code, 3, "{}", ps_nohost.stderr);
    let nohost = ops.convoy(&["restart", "nosuchgroup", "web", "--no-health"]);
    assert_eq!(nohost.code, 3, "{}", nohost.stderr);
    assert!(
        nohost
            .stderr
            .contains("pattern \"nosuchgroup\" matches no host"),
        "{}",
        nohost.stderr
    );
    let check = ops.convoy(&[
        "restart",
        "app",
        "web",
        "--batch",
        "2",
        "--no-health",
        "--check",
    ]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert_eq!(
        check.stdout,
        "restart web on 3 hosts in 2 batches\nbatch 1/2: h1, h2\nbatch 2/2: h3\ncheck mode: nothing was restarted\n"
    );
    // Rollout order: a canary alone, then the batches.
    let canary = ops.convoy(&[
        "restart",
        "app",
        "web",
        "--canary",
        "1",
        "--batch",
        "2",
        "--no-health",
        "--check",
    ]);
    assert_eq!(canary.code, 0, "{}{}", canary.stdout, canary.stderr);
    assert_eq!(
        canary.stdout,
        "restart web on 3 hosts in 2 batches\nbatch 1/2: h1\nbatch 2/2: h2, h3\ncheck mode: nothing was restarted\n"
    );
    // --proxy-from a playbook without a proxy section.
    write_file(
        ops.work.path(),
        "noproxy.yml",
        "- name: plain\n  hosts: app\n  tasks: []\n",
    );
    let noproxy = ops.convoy(&[
        "restart",
        "app",
        "web",
        "--no-health",
        "--proxy-from",
        "noproxy.yml",
    ]);
    assert_eq!(noproxy.code, 3, "{}{}", noproxy.stdout, noproxy.stderr);
    assert_eq!(
        noproxy.stderr.trim(),
        "error: noproxy.yml has no play with a `proxy` section to drain from"
    );
    let after: Vec<_> = ops.fleet.hosts().map(|i| ops.pid(i, "web")).collect();
    assert_eq!(pids, after, "bad input restarted something");
    let sleepers_after: Vec<_> = ops.fleet.hosts().map(|i| ops.pid(i, "sleeper")).collect();
    assert_eq!(sleepers, sleepers_after, "bad input touched a sleeper");
    assert!(ops.fleet.hosts().all(|i| ops.web_starts(i) == 1));

    // stop and start: a program already stopped (h2's sleeper) or already
    // started is no failure.
    let stop = ops.convoy(&["stop", "app", "sleeper", "--batch", "50%"]);
    assert_eq!(stop.code, 0, "{}{}", stop.stdout, stop.stderr);
    assert!(
        stop.stdout.contains("stop sleeper on 3 hosts in 2 batches"),
        "{}",
        stop.stdout
    );
    assert!(ops.fleet.hosts().all(|i| ops.pid(i, "sleeper").is_none()));
    let start = ops.convoy(&["start", "h1:h2", "sleeper", "--no-health"]);
    assert_eq!(start.code, 0, "{}{}", start.stdout, start.stderr);
    assert!(
        start.stdout.contains("started sleeper on h1, h2"),
        "{}",
        start.stdout
    );
    assert!(ops.pid(1, "sleeper").is_some() && ops.pid(2, "sleeper").is_some());
    assert_eq!(ops.pid(3, "sleeper"), None);

    // RELEASE is what the process runs, not where `current` points: h1's
    // `current` moves on (renamed into place, as a switch does) and ps
    // still shows 1.1.0 until web is restarted.
    write_file(
        ops.fleet.host_path(1, "/srv"),
        "app/releases/2.0.0/VERSION",
        "2.0.0",
    );
    ops.fleet.exec_ok(
        1,
        "ln -s releases/2.0.0 /srv/app/current.new && mv -T /srv/app/current.new /srv/app/current",
    );
    let release_of_web_on_h1 = || {
        let run = ops.convoy(&["ps", "h1", "web", "--output", "json"]);
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        let procs = processes(&run);
        let web = find(&procs, "web", "h1");
        (web["release"].clone(), web["cwd"].clone())
    };
    assert_eq!(
        release_of_web_on_h1(),
        (Value::from("1.1.0"), Value::from("/srv/app/releases/1.1.0"))
    );
    let restart = ops.convoy(&["restart", "h1", "web", "--health-http", HEALTH]);
    assert_eq!(restart.code, 0, "{}{}", restart.stdout, restart.stderr);
    assert_eq!(
        release_of_web_on_h1(),
        (Value::from("2.0.0"), Value::from("/srv/app/releases/2.0.0"))
    );
}

/// Polls every host's web port until stopped; answers the most hosts seen
/// down at once and, per host, when it was first seen down.
fn measure_downtime(
    addrs: Vec<String>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(usize, Vec<Option<Instant>>)> {
    std::thread::spawn(move || {
        let mut most = 0;
        let mut first_down = vec![None; addrs.len()];
        while !stop.load(Ordering::SeqCst) {
            let down: Vec<bool> = std::thread::scope(|s| {
                let probes: Vec<_> = addrs.iter().map(|a| s.spawn(move || !serves(a))).collect();
                probes.into_iter().map(|p| p.join().unwrap()).collect()
            });
            let now = Instant::now();
            for (i, d) in down.iter().enumerate() {
                if *d && first_down[i].is_none() {
                    first_down[i] = Some(now);
                }
            }
            most = most.max(down.iter().filter(|d| **d).count());
            std::thread::sleep(Duration::from_millis(50));
        }
        (most, first_down)
    })
}

const HEALTH: &str = "http://{{ ansible_host }}:8080/VERSION";

#[test]
fn restart_in_batches_of_two_restarts_each_host_once_and_never_more_than_two_down() {
    let ops = Ops::start(6);
    let before: Vec<u32> = ops
        .fleet
        .hosts()
        .map(|i| ops.pid(i, "web").unwrap())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let addrs = ops.fleet.hosts().map(|i| ops.fleet.addr(i)).collect();
    let poller = measure_downtime(addrs, stop.clone());
    let started = Instant::now();
    let run = ops.convoy(&[
        "restart",
        "app",
        "web",
        "--batch",
        "2",
        "--health-http",
        HEALTH,
    ]);
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let (most_down, first_down) = poller.join().unwrap();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("batch 1/3: h1, h2\n"), "{}", run.stdout);
    assert!(run.stdout.contains("batch 2/3: h3, h4\n"), "{}", run.stdout);
    assert!(run.stdout.contains("batch 3/3: h5, h6\n"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("restarted web on h1, h2, h3, h4, h5, h6"),
        "{}",
        run.stdout
    );
    for i in ops.fleet.hosts() {
        assert_eq!(ops.web_starts(i), 2, "h{i} was not restarted exactly once");
        let pid = ops.pid(i, "web").unwrap();
        assert_ne!(pid, before[i - 1], "h{i}'s web has the same pid");
        assert!(ops.serves(i), "h{i} does not serve after the restart");
    }
    // The poller saw the restarts (each is down for a second or more) and
    // never more than a batch down at once, batch after batch.
    assert!(most_down >= 1, "the poller never saw a host down");
    assert!(most_down <= 2, "{most_down} hosts were down at once");
    let first = |i: usize| first_down[i - 1].unwrap_or_else(|| panic!("h{i} never seen down"));
    assert!(first(1).max(first(2)) < first(3).min(first(4)));
    assert!(first(3).max(first(4)) < first(5).min(first(6)));
    let restarts: Vec<usize> = ops.fleet.hosts().map(|i| ops.web_starts(i) - 1).collect();
    eprintln!(
        "figures: restart 6 hosts in batches of 2: restarts per host {restarts:?}, max down at once {most_down}, took {took:?}"
    );
}

#[test]
fn restart_stops_at_the_first_batch_whose_health_fails() {
    let ops = Ops::start(4);
    let before: Vec<u32> = ops
        .fleet
        .hosts()
        .map(|i| ops.pid(i, "web").unwrap())
        .collect();
    // h2's web starts again but never serves.
    write_file(ops.fleet.host_path(2, "/srv"), "broken", "");
    let run = ops.convoy(&[
        "restart",
        "app",
        "web",
        "--batch",
        "2",
        "--health-http",
        HEALTH,
        "--health-timeout",
        "3s",
    ]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("  h2: FAILED: restarted but unhealthy: not healthy after 3s"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("stopped after batch 1 (failed: h2); restarted: h1, h2; not touched: h3, h4"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("batch 2/2"), "{}", run.stdout);
    for i in [1, 2] {
        assert_eq!(ops.web_starts(i), 2, "h{i}");
        assert_ne!(ops.pid(i, "web"), Some(before[i - 1]));
    }
    assert!(!ops.serves(2));
    for i in [3, 4] {
        assert_eq!(ops.web_starts(i), 1, "h{i} was touched");
        assert_eq!(ops.pid(i, "web"), Some(before[i - 1]));
    }
}

/// The pids of processes in host i (its network namespace) whose command
/// line holds `pattern` (but for the shell asking, whose line holds it too).
fn host_pids(ops: &Ops, i: usize, pattern: &str) -> String {
    ops.fleet.exec_ok(
        i,
        &format!(
            "for p in $(pgrep -f -- '{pattern}'); do [ $p != $$ ] && [ \"$(readlink /proc/$p/ns/net)\" = \"$(readlink /proc/self/ns/net)\" ] && echo $p; done; true"
        ),
    )
}

/// Appends `line` to host i's web log, as the program would.
fn append_log(ops: &Ops, i: usize, line: &str) {
    use std::io::Write;
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(ops.fleet.host_path(i, "/srv/sup/web.out"))
        .unwrap();
    writeln!(log, "{line}").unwrap();
}

/// The local ssh processes (masters, mux clients) talking to this fleet:
/// every one of them is started with the fleet's ssh_config (`-F`).
fn local_ssh_processes(ops: &Ops) -> Vec<String> {
    let config = ops.fleet.ssh_config().display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if comm.trim() == "ssh" && cmdline.contains(&config) {
            found.push(cmdline);
        }
    }
    found
}

/// Starts `convoy logs app web -f -n 2` and waits for every host's last line.
fn follow_web(ops: &Ops) -> Spawned {
    let inventory = ops.inventory.display().to_string();
    let mut logs = Spawned::start(
        Some(ops.work.path()),
        &["logs", "app", "web", "-f", "-n", "2", "-i", &inventory],
    );
    for i in ops.fleet.hosts() {
        let want = format!("h{i} | web up in /srv/app/releases/{}", release(i));
        logs.wait_for_line(&format!("h{i}'s last line"), Duration::from_secs(20), |l| {
            l == want
        });
    }
    logs
}

#[test]
fn logs_follow_merges_new_lines_and_ends_cleanly_on_ctrl_c() {
    let ops = Ops::start(3);
    let mut logs = follow_web(&ops);
    // A line written now on each host arrives within a second, with its host.
    let mut slowest = Duration::ZERO;
    for i in ops.fleet.hosts() {
        let written = Instant::now();
        append_log(&ops, i, &format!("a new line on h{i}"));
        let want = format!("h{i} | a new line on h{i}");
        logs.wait_for_line("the new line", Duration::from_secs(20), |l| l == want);
        let took = written.elapsed();
        assert!(took < Duration::from_secs(1), "h{i}'s line took {took:?}");
        slowest = slowest.max(took);
    }
    eprintln!("figures: logs -f: slowest new line shown after {slowest:?}");
    assert!(
        !host_pids(&ops, 1, "-F -- /srv/sup/web.out")
            .trim()
            .is_empty()
    );
    assert!(!local_ssh_processes(&ops).is_empty());
    let interrupted = Instant::now();
    logs.interrupt();
    let run = logs.finish(Duration::from_secs(15));
    assert_eq!(run.code, 130, "{}{}", run.stdout, run.stderr);
    // It ends at once (the hosts' scripts end on the EOF convoy sends)...
    let took = interrupted.elapsed();
    assert!(took < Duration::from_secs(4), "took {took:?} to end");
    eprintln!("figures: logs -f: ended {took:?} after SIGINT");
    // ...no ssh process is left here...
    wait_until("no local ssh left", Duration::from_secs(3), || {
        local_ssh_processes(&ops).is_empty()
    });
    // ...and nothing is left following on the hosts.
    for i in ops.fleet.hosts() {
        wait_until(
            &format!("h{i}'s tail to end"),
            Duration::from_secs(3),
            || {
                host_pids(&ops, i, "-F -- /srv/sup/web.out")
                    .trim()
                    .is_empty()
            },
        );
    }
}

#[test]
fn logs_follow_says_when_a_host_goes_away_and_keeps_following_the_others() {
    let ops = Ops::start(3);
    let mut logs = follow_web(&ops);
    // h2 goes away: its sshd stops and its sessions are cut, as when the
    // machine dies (the connection is reset, not silently dropped).
    let gone = Instant::now();
    ops.fleet.stop_sshd(2);
    ops.fleet.kill_sessions(2);
    let said = logs.wait_for_stderr_line("that h2 went away", Duration::from_secs(20), |l| {
        l.contains("h2")
    });
    eprintln!(
        "figures: logs -f: h2's loss said after {:?}: {said}",
        gone.elapsed()
    );
    assert!(
        said.starts_with("convoy: h2: lost while following (")
            && said.ends_with("); still following 2 of 3 host(s)"),
        "{said}"
    );
    assert_eq!(
        logs.stderr().lines().filter(|l| l.contains("h2")).count(),
        1,
        "{}",
        logs.stderr()
    );
    // The others are still followed: their new lines keep arriving.
    for round in 0..3 {
        for i in [1, 3] {
            let text = format!("after h2 went, line {round} on h{i}");
            append_log(&ops, i, &text);
            let want = format!("h{i} | {text}");
            logs.wait_for_line(&want, Duration::from_secs(5), |l| l == want);
        }
    }
    assert!(logs.running(), "convoy logs -f ended with h2");
    logs.interrupt();
    let run = logs.finish(Duration::from_secs(15));
    assert_eq!(run.code, 130, "{}{}", run.stdout, run.stderr);
    wait_until("no local ssh left", Duration::from_secs(3), || {
        local_ssh_processes(&ops).is_empty()
    });
    for i in [1, 3] {
        wait_until(
            &format!("h{i}'s tail to end"),
            Duration::from_secs(3),
            || {
                host_pids(&ops, i, "-F -- /srv/sup/web.out")
                    .trim()
                    .is_empty()
            },
        );
    }
}

/// The play whose proxy section `restart --proxy-from` drains from: nginx
/// on the balancers in front of every app host's web (the repository's
/// upstream template).
const PROXY_PLAYBOOK: &str = r#"- name: web behind nginx
  hosts: app
  vars:
    app_name: web
    app_port: 8080
    proxy_server_name: web.test
  proxy:
    hosts: balancers
    files:
      - template: templates/nginx/upstream.conf.j2
        dest: /etc/nginx/conf.d/web.conf
    validate: nginx -t
    reload: nginx -s reload
    drain: true
    drain_timeout: 1s
  tasks: []
"#;

/// nginx's complaints that it sent a request to an upstream that was down.
fn upstream_errors(ops: &Ops, proxy: usize) -> Vec<String> {
    std::fs::read_to_string(ops.fleet.host_path(proxy, "/srv/nginx/error.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("while connecting to upstream"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn restart_behind_nginx_drains_each_batch_so_no_request_meets_a_restarting_host() {
    let ops = Ops::start_with(6, 1);
    let proxy = 7;
    let nginx = Nginx::start(&ops.fleet, proxy);
    write_file(ops.work.path(), "proxy.yml", PROXY_PLAYBOOK);
    write_file(
        ops.work.path(),
        "templates/nginx/upstream.conf.j2",
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("templates/nginx/upstream.conf.j2"),
        )
        .unwrap(),
    );
    let installed = ops.convoy(&["run", "proxy.yml"]);
    assert_eq!(
        installed.code, 0,
        "{}{}",
        installed.stdout, installed.stderr
    );
    nginx.wait_for_path("web.test", "/VERSION", 200, "1.");
    let clock = Instant::now();
    let restart_with = |extra: &[&str]| -> (Run, Vec<support::client::Sample>, usize) {
        let client = Client::start(
            nginx.address(),
            "web.test",
            "/VERSION",
            clock,
            100_000,
            Duration::from_secs(120),
        );
        client.wait_count(20);
        let stop = Arc::new(AtomicBool::new(false));
        let addrs = (1..=6).map(|i| ops.fleet.addr(i)).collect();
        let poller = measure_downtime(addrs, stop.clone());
        let mut args = vec![
            "restart",
            "app",
            "web",
            "--batch",
            "2",
            "--health-http",
            HEALTH,
        ];
        args.extend_from_slice(extra);
        let run = ops.convoy(&args);
        stop.store(true, Ordering::SeqCst);
        let (most_down, _) = poller.join().unwrap();
        (run, client.finish_after(20), most_down)
    };

    // With --proxy-from: each batch leaves the upstreams first.
    let reloads = nginx.reloads();
    let started = Instant::now();
    let (drained, samples, most_down) = restart_with(&["--proxy-from", "proxy.yml"]);
    let took = started.elapsed();
    assert_eq!(drained.code, 0, "{}{}", drained.stdout, drained.stderr);
    for (b, hosts) in [(1, "h1, h2"), (2, "h3, h4"), (3, "h5, h6")] {
        let want = format!("batch {b}/3: {hosts}\n  proxy: drained {hosts}\n");
        assert!(
            drained.stdout.contains(&want),
            "no {want:?} in\n{}",
            drained.stdout
        );
        let back = format!("  proxy: back in service: {hosts}\n");
        assert!(
            drained.stdout.contains(&back),
            "no {back:?} in\n{}",
            drained.stdout
        );
    }
    for i in 1..=6 {
        assert_eq!(ops.web_starts(i), 2, "h{i} was not restarted exactly once");
        assert!(ops.serves(i), "h{i} does not serve after the restart");
    }
    // No request reached a host while it was down, and every one answered.
    let errors = upstream_errors(&ops, proxy);
    assert!(
        errors.is_empty(),
        "nginx met a restarting host:\n{}",
        errors.join("\n")
    );
    let failed: Vec<String> = samples
        .iter()
        .filter(|s| !matches!(&s.answer, Ok((200, _))))
        .map(|s| s.short())
        .collect();
    assert!(
        failed.is_empty(),
        "requests failed through nginx: {failed:?}"
    );
    // Each batch drained and returned: two reloads per batch.
    nginx.wait_reloads(reloads + 6);
    assert!(most_down <= 2, "{most_down} hosts were down at once");
    // Back to the config it had: every app host in the upstream.
    let conf =
        std::fs::read_to_string(ops.fleet.host_path(proxy, "/etc/nginx/conf.d/web.conf")).unwrap();
    for i in 1..=6 {
        assert!(
            conf.contains(&format!("{}:8080;", ops.fleet.addr(i))),
            "h{i} missing:\n{conf}"
        );
    }
    // Then without the proxy (the control: the same check catches a
    // restart that does not drain): nginx meets the restarting hosts (it retries on
    // another upstream, so it is in its log that this shows).
    let (plain, _, _) = restart_with(&[]);
    assert_eq!(plain.code, 0, "{}{}", plain.stdout, plain.stderr);
    let met = upstream_errors(&ops, proxy);
    assert!(
        !met.is_empty(),
        "nginx never met a restarting host without the drain: this test could not fail"
    );

    eprintln!(
        "figures: restart behind nginx, 6 hosts in batches of 2: restarts per host 1, max down at once {most_down}, {} requests through nginx, 0 failed, 0 sent to a down host (without the drain: {} upstream errors), took {took:?}",
        samples.len(),
        met.len()
    );
}

#[test]
fn logs_follow_notices_a_host_whose_link_is_cut_silently() {
    let ops = Ops::start(3);
    let mut logs = follow_web(&ops);
    // No reset this time: packets to h3 are dropped, as when a machine
    // loses power or its network. Only ssh's keepalive can tell.
    let cut = Instant::now();
    ops.fleet.link_down(3);
    let said = logs.wait_for_stderr_line("that h3 went away", Duration::from_secs(90), |l| {
        l.contains("h3")
    });
    let took = cut.elapsed();
    eprintln!("figures: logs -f: a silently cut h3 said after {took:?}: {said}");
    assert!(
        said.starts_with("convoy: h3: lost while following (")
            && said.ends_with("); still following 2 of 3 host(s)"),
        "{said}"
    );
    // A keepalive every 15 s (ServerAliveInterval), given up after three
    // unanswered: about a minute (README).
    assert!(
        took >= Duration::from_secs(40) && took < Duration::from_secs(85),
        "took {took:?}"
    );
    for i in [1, 2] {
        let text = format!("after h3 was cut, a line on h{i}");
        append_log(&ops, i, &text);
        let want = format!("h{i} | {text}");
        logs.wait_for_line(&want, Duration::from_secs(5), |l| l == want);
    }
    logs.interrupt();
    let run = logs.finish(Duration::from_secs(20));
    assert_eq!(run.code, 130, "{}{}", run.stdout, run.stderr);
    wait_until("no local ssh left", Duration::from_secs(5), || {
        local_ssh_processes(&ops).is_empty()
    });
    ops.fleet.link_up(3);
}

#[test]
fn ctrl_c_during_restarts_pause_ends_it_and_starts_no_next_batch() {
    let ops = Ops::start(4);
    let inventory = ops.inventory.display().to_string();
    let mut run = Spawned::start(
        Some(ops.work.path()),
        &[
            "restart",
            "app",
            "web",
            "--batch",
            "2",
            "--pause",
            "60s",
            "--health-http",
            HEALTH,
            "-i",
            &inventory,
        ],
    );
    // Both hosts of batch 1 passed their gate: the run is in the pause.
    for host in ["h1", "h2"] {
        run.wait_for_line(&format!("{host}'s ok"), Duration::from_secs(30), |l| {
            l.starts_with(&format!("  {host}: ok"))
        });
    }
    std::thread::sleep(Duration::from_millis(500));
    let interrupted = Instant::now();
    run.interrupt();
    let run = run.finish(Duration::from_secs(90));
    let took = interrupted.elapsed();
    assert_eq!(run.code, 130, "{}{}", run.stdout, run.stderr);
    // The 60 s pause was cut short, not sat out.
    assert!(took < Duration::from_secs(10), "took {took:?} to end");
    assert!(
        run.stdout.contains(
            "stopped after batch 1 (interrupted); restarted: h1, h2; not touched: h3, h4"
        ),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("batch 2/2"), "{}", run.stdout);
    for i in [1, 2] {
        assert_eq!(ops.web_starts(i), 2, "h{i} was not restarted once");
    }
    for i in [3, 4] {
        assert_eq!(ops.web_starts(i), 1, "h{i} was restarted after Ctrl-C");
    }
    eprintln!("figures: restart --pause 60s: Ctrl-C in the pause ended it after {took:?}");
}
