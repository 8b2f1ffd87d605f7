//! Request pools through a real nginx on a fleet host: a slow route in a
//! class of its own (its own upstream, `max_conns` per server, its own
//! timeout) cannot take the app's workers from the other requests.
//!
//! The app (written here) serves its release's VERSION with a fixed
//! number of workers, like an app server, and `/slow` holds a worker for
//! SLOW. Measured on the same app, two ways:
//!
//! - with `request_pools: {heavy: {routes: ["^/slow"], max_conns: 2}}`:
//!   light requests' p50/p99 with no load, then while clients keep more
//!   slow requests going than the app has workers; the heavy class never
//!   has more than 2 at the app (its answers are counted against that),
//!   the rest refused by nginx at once (502);
//! - without it (the control): the same load takes every worker and light
//!   requests wait for one, which is what the bound is there to catch.
//!
//! And which class takes a request, through nginx and haproxy: `reads`
//! (GET on ^/api/) and `posts` (POST, any path) on one pool's host while
//! the other pool is live; each answer's version names its upstream; a
//! class on `hosts: live` follows the switch to the other pool.
//!
//! Every client only talks to the fleet's nginx. Figures go to stderr.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::nginx::{Nginx, http_get};
use support::run::{Run, run_in};
use support::{Fleet, workdir, write_file};

const SITE: &str = "hello.test";
const WORKERS: usize = 4;
const SLOW: Duration = Duration::from_millis(1500);
const HEAVY_CLIENTS: usize = 6;
const MAX_CONNS: usize = 2;
/// How long light requests are measured, idle and under load.
const WINDOW: Duration = Duration::from_secs(6);
/// Light requests' p99 under heavy load, with the request pool.
const LIGHT_P99_BOUND: Duration = Duration::from_millis(250);

/// The app: `serve PORT` answers GET /VERSION from the release it was
/// started in with WORKERS threads; /slow holds its worker for SLOW first.
fn app_script() -> String {
    format!(
        r#"#!/usr/bin/env python3
import os, queue, sys, threading, time
from http.server import BaseHTTPRequestHandler, HTTPServer
here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
version = open(os.path.join(here, "VERSION")).read()
if len(sys.argv) < 2 or sys.argv[1] != "serve":
    print(version, end="")
    sys.exit(0)
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/slow"):
            time.sleep({slow})
        body = version.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_PUT = do_DELETE = do_GET
    def log_message(self, *args):
        pass
class Workers(HTTPServer):
    request_queue_size = 128
    def __init__(self, *args):
        super().__init__(*args)
        self.jobs = queue.Queue()
        for _ in range({workers}):
            threading.Thread(target=self.work, daemon=True).start()
    def process_request(self, request, address):
        self.jobs.put((request, address))
    def work(self):
        while True:
            request, address = self.jobs.get()
            try:
                self.finish_request(request, address)
            except Exception:
                pass
            self.shutdown_request(request)
Workers(("0.0.0.0", int(sys.argv[2])), Handler).serve_forever()
"#,
        slow = SLOW.as_secs_f64(),
        workers = WORKERS
    )
}

const HEAVY_POOL: &str = "    request_pools:\n      heavy:\n        routes: [\"^/slow\"]\n        hosts: live\n        max_conns: 2\n        timeout: 10s\n";

struct Project {
    dir: tempfile::TempDir,
    playbook: String,
}

impl Project {
    /// `playbook` (h1 the proxy, blue h2, green h3; without traffic steps:
    /// a blue-green switch) with the app above.
    fn new(fleet: &Fleet, playbook: &str) -> Project {
        let dir = workdir();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for rel in [
            playbook,
            "templates/nginx/pools.conf.j2",
            "templates/haproxy/pools.cfg.j2",
        ] {
            let text = std::fs::read_to_string(root.join(rel)).unwrap();
            let text = text.replace(
                "    traffic:\n      steps: [10%, 50%, 100%]\n      hold: 15s\n",
                "",
            );
            write_file(dir.path(), rel, &text);
        }
        let app = write_file(dir.path(), "app/hello/bin/hello", &app_script());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o755)).unwrap();
        write_file(dir.path(), "app/hello/VERSION", "1.0.0\n");
        let host = |i: usize| {
            format!(
                "            {}:\n              ansible_host: {}\n",
                fleet.name(i),
                fleet.addr(i)
            )
        };
        let yaml = format!(
            "all:\n  vars:\n    convoy_ssh_config: {}\n    convoy_proxy_state_dir: /srv/convoy-proxy\n    app_name: hello\n    app_port: 8080\n    app_root: /srv\n    proxy_server_name: {SITE}\n    nginx_pidfile: /srv/nginx/nginx.pid\n{}  children:\n    balancers:\n      hosts:\n        {}:\n          ansible_host: {}\n    app:\n      children:\n        blue:\n          hosts:\n{}        green:\n          hosts:\n{}",
            fleet.ssh_config().display(),
            support::haproxy::inventory_vars(4),
            fleet.name(1),
            fleet.addr(1),
            host(2),
            host(3)
        );
        write_file(dir.path(), "inventory.yml", &yaml);
        Project {
            dir,
            playbook: playbook.to_owned(),
        }
    }

    /// Puts `pools` (YAML lines) under the proxy section, before `pools:`.
    fn set_request_pools(&self, pools: &str) {
        let path = self.dir.path().join(&self.playbook);
        let text = std::fs::read_to_string(&path).unwrap();
        let edited = text.replacen("    pools:\n", &format!("{pools}    pools:\n"), 1);
        assert_ne!(edited, text);
        std::fs::write(&path, edited).unwrap();
    }

    /// Adds or removes the heavy class in the playbook.
    fn request_pools(&self, on: bool) {
        let path = self.dir.path().join(&self.playbook);
        let text = std::fs::read_to_string(&path).unwrap();
        let without = text.replace(HEAVY_POOL, "");
        let edited = if on {
            without.replace("    pools:\n", &format!("{HEAVY_POOL}    pools:\n"))
        } else {
            without
        };
        std::fs::write(&path, edited).unwrap();
    }

    fn deploy(&self, version: &str) -> Run {
        write_file(
            self.dir.path(),
            "app/hello/VERSION",
            &format!("{version}\n"),
        );
        run_in(
            self.dir.path(),
            &[
                "run",
                &self.playbook,
                "-i",
                "inventory.yml",
                "-e",
                &format!("version={version}"),
            ],
        )
    }
}

/// Heavy clients, each looping GET /slow until stopped; a refused request
/// (502: the class is at its limit) is retried after 50 ms.
struct HeavyLoad {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
    started: Instant,
}

impl HeavyLoad {
    fn start(address: &str) -> HeavyLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let threads = (0..HEAVY_CLIENTS)
            .map(|_| {
                let (stop, ok, refused) = (stop.clone(), ok.clone(), refused.clone());
                let address = address.to_owned();
                std::thread::spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        match http_get(&address, SITE, "/slow") {
                            Ok((200, _)) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {
                                refused.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                })
            })
            .collect();
        // Until the slow requests are in flight.
        std::thread::sleep(Duration::from_millis(500));
        HeavyLoad {
            stop,
            ok,
            refused,
            threads,
            started: Instant::now(),
        }
    }

    /// Stops the clients: (answered, refused, seconds the load ran).
    fn finish(self) -> (usize, usize, f64) {
        self.stop.store(true, Ordering::Relaxed);
        let ran = self.started.elapsed().as_secs_f64() + 0.5;
        for t in self.threads {
            t.join().unwrap();
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
            ran,
        )
    }
}

/// Light GETs of /VERSION one after the other, 10 ms apart, for `window`
/// (at least 5): each one's latency, sorted. Any failure panics.
fn light(address: &str, window: Duration) -> Vec<Duration> {
    let end = Instant::now() + window;
    let mut times = Vec::new();
    while Instant::now() < end || times.len() < 5 {
        let start = Instant::now();
        match http_get(address, SITE, "/VERSION") {
            Ok((200, b)) if b.trim() == "1.0.0" => times.push(start.elapsed()),
            other => panic!("light request {} failed: {other:?}", times.len()),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    times.sort();
    times
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[test]
fn a_slow_route_in_its_request_pool_does_not_hold_up_light_requests() {
    let fleet = Fleet::start(3);
    let nginx = Nginx::start(&fleet, 1);
    let address = nginx.address();
    let project = Project::new(&fleet, "playbooks/blue-green.yml");

    // With the heavy class: the first run releases to green (h3).
    project.request_pools(true);
    let run = project.deploy("1.0.0");
    assert_eq!(run.code, 0, "{}", run.dump());
    let conf = std::fs::read_to_string(fleet.host_path(1, "/etc/nginx/conf.d/hello.conf")).unwrap();
    assert!(conf.contains("max_conns=2;"), "{conf}");
    nginx.wait_for_path(SITE, "/VERSION", 200, "1.0.0");
    let idle = light(&address, WINDOW);
    let load = HeavyLoad::start(&address);
    let loaded = light(&address, WINDOW);
    let (heavy_ok, heavy_refused, ran) = load.finish();

    // Without it (the control): the next run releases to blue (h2) and
    // switches to it; the same app, the same load.
    project.request_pools(false);
    let run = project.deploy("1.0.0");
    assert_eq!(run.code, 0, "{}", run.dump());
    let conf = std::fs::read_to_string(fleet.host_path(1, "/etc/nginx/conf.d/hello.conf")).unwrap();
    assert!(!conf.contains("max_conns"), "{conf}");
    let control_idle = light(&address, WINDOW);
    let load = HeavyLoad::start(&address);
    let control = light(&address, WINDOW);
    let (control_ok, control_refused, control_ran) = load.finish();

    // At most MAX_CONNS slow requests at the app at once: answers within
    // what MAX_CONNS workers can give over the load's run.
    let most = (MAX_CONNS as f64 * ran / SLOW.as_secs_f64()).ceil() as usize + MAX_CONNS;
    eprintln!(
        "request pools through nginx, app with {WORKERS} workers, /slow holds one {:.1}s, {HEAVY_CLIENTS} heavy clients:\n  with heavy class (max_conns={MAX_CONNS}): light ({} requests each) p50 {} p99 {} idle; p50 {} p99 {} under load (bound {}); heavy answered {heavy_ok} (at most {most} in {ran:.1}s), refused at once {heavy_refused}\n  without (control): light p50 {} p99 {} idle; p50 {} p99 {} under load ({} requests); heavy answered {control_ok} in {control_ran:.1}s, refused {control_refused}",
        SLOW.as_secs_f64(),
        loaded.len(),
        ms(pct(&idle, 0.5)),
        ms(pct(&idle, 0.99)),
        ms(pct(&loaded, 0.5)),
        ms(pct(&loaded, 0.99)),
        ms(LIGHT_P99_BOUND),
        ms(pct(&control_idle, 0.5)),
        ms(pct(&control_idle, 0.99)),
        ms(pct(&control, 0.5)),
        ms(pct(&control, 0.99)),
        control.len(),
    );
    assert!(
        pct(&loaded, 0.99) <= LIGHT_P99_BOUND,
        "light p99 under heavy load with the request pool: {}",
        ms(pct(&loaded, 0.99))
    );
    assert!(heavy_ok >= 1, "no slow request was answered");
    assert!(
        heavy_ok <= most,
        "{heavy_ok} slow answers: more than {MAX_CONNS} at once"
    );
    assert!(heavy_refused >= 1, "the class was never at its limit");
    // The control shows what the bound guards against.
    assert!(
        pct(&control, 0.5) > LIGHT_P99_BOUND,
        "without the request pool the load should hold up light requests: p50 {}",
        ms(pct(&control, 0.5))
    );
    assert_eq!(control_refused, 0, "without the class nothing refuses");
}

#[test]
fn request_pools_through_nginx_send_each_class_by_route_and_method_to_its_hosts() {
    let fleet = Fleet::start(3);
    let nginx = Nginx::start(&fleet, 1);
    let project = Project::new(&fleet, "playbooks/blue-green.yml");
    classes(
        &fleet,
        &project,
        &nginx.address(),
        "nginx",
        "/etc/nginx/conf.d/hello.conf",
        "max_conns=3;",
    );
}

#[test]
fn request_pools_through_haproxy_send_each_class_by_route_and_method_to_its_hosts() {
    let fleet = Fleet::start(3);
    let haproxy = support::haproxy::Haproxy::start(&fleet, 1);
    let project = Project::new(&fleet, "playbooks/canary-haproxy.yml");
    let conf = format!("{}/hello-pools.cfg", support::haproxy::CONF_DIR);
    classes(
        &fleet,
        &project,
        &haproxy.address(),
        "haproxy",
        &conf,
        "maxconn 3",
    );
}

/// Two classes on green (h3, left on 1.0.0) while blue (h2) serves 2.0.0:
/// `reads` (GET on ^/api/) and `posts` (POST on any path). Each answer's
/// version says which upstream took it. A third, `slow` on `hosts: live`
/// (its servers the lines of `conf` with `marker`), follows the switch
/// from green to blue.
fn classes(fleet: &Fleet, project: &Project, address: &str, how: &str, conf: &str, marker: &str) {
    project.set_request_pools(
        "    request_pools:\n      reads:\n        routes: [\"^/api/\"]\n        methods: [GET]\n        hosts: green\n        max_conns: 8\n        timeout: 10s\n      posts:\n        methods: [POST]\n        hosts: green\n        max_conns: 8\n        timeout: 10s\n      slow:\n        routes: [\"^/slow\"]\n        methods: [GET]\n        hosts: live\n        max_conns: 3\n        timeout: 10s\n",
    );
    let live_class = |version: &str| -> Vec<String> {
        let run = project.deploy(version);
        assert_eq!(run.code, 0, "{}", run.dump());
        let text = std::fs::read_to_string(fleet.host_path(1, conf)).unwrap();
        text.lines()
            .filter(|l| l.contains(marker))
            .map(|l| l.trim().to_owned())
            .collect()
    };
    let on = |servers: &[String], i: usize| {
        servers.len() == 1 && servers[0].contains(&format!("{}:8080", fleet.addr(i)))
    };
    let first = live_class("1.0.0");
    assert!(
        on(&first, 3),
        "`slow` on green (h3) once green is live: {first:?}"
    );
    let second = live_class("2.0.0");
    assert!(
        on(&second, 2),
        "`slow` on blue (h2) once blue is live: {second:?}"
    );
    let mut figures = Vec::new();
    for (method, path, want, why) in [
        ("GET", "/VERSION", "2.0.0", "no class: the live pool"),
        ("GET", "/api/VERSION", "1.0.0", "reads"),
        ("POST", "/VERSION", "1.0.0", "posts"),
        (
            "POST",
            "/api/VERSION",
            "1.0.0",
            "posts (reads takes GET only)",
        ),
        (
            "PUT",
            "/api/VERSION",
            "2.0.0",
            "no class (neither takes PUT)",
        ),
        ("DELETE", "/VERSION", "2.0.0", "no class"),
    ] {
        let count = 50;
        let mut got = Vec::new();
        for _ in 0..count {
            match support::nginx::http_request(method, address, SITE, path) {
                Ok((200, b)) => got.push(b.trim().to_owned()),
                other => panic!("{method} {path} through {how}: {other:?}"),
            }
        }
        let right = got.iter().filter(|v| *v == want).count();
        figures.push(format!(
            "  {method} {path}: {count} requests, {right} answered {want} ({why})"
        ));
        assert_eq!(right, count, "{method} {path} through {how}: {got:?}");
    }
    eprintln!(
        "request pool classes through {how}, green 1.0.0 (classes), blue 2.0.0 (live):\n{}\n  `slow` (hosts: live): {first:?} with green live, {second:?} with blue live",
        figures.join("\n")
    );
}
