//! haproxy (Debian's package) on a proxy host of the fleet, in master-worker
//! mode, with everything it owns under /srv/haproxy (the fleet shares /run,
//! /etc/haproxy and /var/lib/haproxy between hosts): its main config, the
//! config directory the proxy section fills, the master's pid file, the
//! master CLI and the admin socket. The sockets are pathname Unix sockets,
//! so the test talks to them from outside the host through the host's
//! directory (no socat needed).

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::nginx::http_get;
use super::{Fleet, write_file};

/// haproxy's own directory on the proxy host.
pub const DIR: &str = "/srv/haproxy";
/// The main config ([`MAIN_CFG`]), written by [`Haproxy::start`].
pub const CONFIG: &str = "/srv/haproxy/haproxy.cfg";
/// The directory the proxy section installs into (loaded after the main config).
pub const CONF_DIR: &str = "/srv/haproxy/conf.d";
/// The master's pid (`-p`).
pub const PIDFILE: &str = "/srv/haproxy/haproxy.pid";
/// The master CLI (`-S`): `show proc` counts reloads.
pub const MASTER_SOCKET: &str = "/srv/haproxy/master.sock";
/// The workers' admin socket: `show stat`, `show servers state`.
pub const ADMIN_SOCKET: &str = "/srv/haproxy/admin.sock";
/// The maintenance page (`maintenance_page`), outside the config directory.
pub const MAINTENANCE_PAGE: &str = "/srv/haproxy/hello-maintenance.html";
/// The port of the `ready` frontend of [`MAIN_CFG`].
pub const READY_PORT: u16 = 8404;

/// The proxy host's vars for playbooks/proxy-haproxy.yml, as YAML lines
/// (indented by `indent` spaces): haproxy's paths on this host.
pub fn inventory_vars(indent: usize) -> String {
    [
        ("haproxy_config", CONFIG),
        ("haproxy_conf_dir", CONF_DIR),
        ("haproxy_pidfile", PIDFILE),
        ("maintenance_page", MAINTENANCE_PAGE),
    ]
    .iter()
    .map(|(k, v)| format!("{:indent$}{k}: {v}\n", ""))
    .collect()
}

/// The main config: the admin socket, defaults, and a `ready` frontend
/// (haproxy does not start without a listener, and the config directory
/// starts empty). `retries 0`: a request sent to a server that refuses it
/// (an app restarting) fails at once instead of being retried, so only the
/// drain keeps requests away from a switching host.
pub const MAIN_CFG: &str = "\
global
    stats socket /srv/haproxy/admin.sock mode 600 level admin
    stats timeout 30s

defaults
    mode http
    retries 0
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend ready
    bind :8404
    http-request return status 200 content-type text/plain string \"haproxy ready\"
";

/// haproxy running on one host of the fleet, configured by [`MAIN_CFG`]
/// and the files in [`CONF_DIR`].
pub struct Haproxy<'a> {
    pub fleet: &'a Fleet,
    pub host: usize,
}

/// One server of a backend as haproxy's `show stat` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStat {
    pub name: String,
    /// `UP`, `DOWN`, `MAINT`, ...; `UP 1/3` is up with checks still to
    /// pass (a server a new worker has not checked yet).
    pub status: String,
}

impl ServerStat {
    /// Takes requests: `UP`, or `UP n/m`.
    pub fn is_up(&self) -> bool {
        self.status == "UP" || self.status.starts_with("UP ")
    }
}

impl<'a> Haproxy<'a> {
    /// Writes [`MAIN_CFG`], empties [`CONF_DIR`] and starts haproxy in
    /// master-worker mode as a daemon; returns once it answers.
    pub fn start(fleet: &'a Fleet, host: usize) -> Haproxy<'a> {
        write_file(fleet.host_path(host, DIR), "haproxy.cfg", MAIN_CFG);
        fleet.exec_ok(
            host,
            &format!(
                "rm -rf {CONF_DIR} && mkdir -p {CONF_DIR} && \
                 haproxy -W -D -p {PIDFILE} -S {MASTER_SOCKET} -f {CONFIG} -f {CONF_DIR}"
            ),
        );
        let haproxy = Haproxy { fleet, host };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answer = http_get(&haproxy.address_on(READY_PORT), "ready", "/");
            if matches!(&answer, Ok((200, b)) if b.contains("haproxy ready")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "haproxy on h{host} does not answer on {READY_PORT}: {answer:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(haproxy.reloads(), 0);
        haproxy
    }

    /// `ADDRESS:80` of the proxy host (the app's frontend).
    pub fn address(&self) -> String {
        self.address_on(80)
    }

    fn address_on(&self, port: u16) -> String {
        format!("{}:{port}", self.fleet.addr(self.host))
    }

    /// GET `path` through haproxy's port 80.
    pub fn get(&self, path: &str) -> Result<(u16, String), String> {
        http_get(&self.address(), "hello.test", path)
    }

    /// Waits until `path` answers `status` with a body containing `body`;
    /// panics with the last answer after 10 s.
    pub fn wait_for(&self, path: &str, status: u16, body: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answer = self.get(path);
            if matches!(&answer, Ok((s, b)) if *s == status && b.contains(body)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{path} via haproxy on h{}: wanted {status} with {body:?}, got {answer:?}",
                self.host
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `count` requests for `path`: every one must answer 200 with `body`
    /// (trimmed).
    pub fn assert_serves(&self, path: &str, body: &str, count: usize) {
        for n in 0..count {
            let answer = self.get(path);
            assert!(
                matches!(&answer, Ok((200, b)) if b.trim() == body),
                "request {n} for {path} through haproxy on h{}: wanted 200 {body:?}, got {answer:?}",
                self.host
            );
        }
    }

    /// One command on a CLI socket of the host (`path` inside it): its whole answer.
    fn cli(&self, path: &str, command: &str) -> Result<String, String> {
        let socket = self.fleet.host_path(self.host, path);
        let mut stream =
            UnixStream::connect(&socket).map_err(|e| format!("{}: {e}", socket.display()))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        stream
            .write_all(format!("{command}\n").as_bytes())
            .map_err(|e| format!("{command:?} to {path}: {e}"))?;
        // End of input: the CLI answers, then closes.
        stream
            .shutdown(std::net::Shutdown::Write)
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .map_err(|e| format!("{command:?} to {path}: {e}"))?;
        Ok(answer)
    }

    /// A command on the master CLI (retried for up to 10 s: while the master
    /// reloads, it does not listen).
    pub fn master(&self, command: &str) -> String {
        self.retry(MASTER_SOCKET, command)
    }

    /// A command on the worker's admin socket (retried as [`master`](Self::master)).
    pub fn admin(&self, command: &str) -> String {
        self.retry(ADMIN_SOCKET, command)
    }

    fn retry(&self, path: &str, command: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.cli(path, command) {
                Ok(answer) if !answer.trim().is_empty() => return answer,
                other => assert!(
                    Instant::now() < deadline,
                    "haproxy on h{}: {command:?} on {path}: {other:?}",
                    self.host
                ),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// How many times the master has reloaded since it started (`show proc`).
    pub fn reloads(&self) -> usize {
        let proc = self.master("show proc");
        let line = proc
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some("master"))
            .unwrap_or_else(|| panic!("no master in `show proc`:\n{proc}"));
        line.split_whitespace()
            .nth(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no reload count in {line:?}"))
    }

    /// The current workers' pids (`show proc`, without the old workers
    /// still finishing their requests).
    pub fn workers(&self) -> Vec<u32> {
        let proc = self.master("show proc");
        proc.lines()
            .skip_while(|l| !l.starts_with("# workers"))
            .skip(1)
            .take_while(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect()
    }

    /// The servers of `backend`, in config order, as the current worker
    /// sees them (`show stat`).
    pub fn servers(&self, backend: &str) -> Vec<ServerStat> {
        let stat = self.admin("show stat");
        let mut lines = stat.lines();
        let header: Vec<&str> = lines
            .next()
            .and_then(|h| h.strip_prefix("# "))
            .unwrap_or_else(|| panic!("no header in `show stat`:\n{stat}"))
            .split(',')
            .collect();
        let column = |name: &str| {
            header
                .iter()
                .position(|c| *c == name)
                .unwrap_or_else(|| panic!("no {name} column in `show stat`:\n{stat}"))
        };
        let (px, sv, status) = (column("pxname"), column("svname"), column("status"));
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > status && f[px] == backend)
            .filter(|f| !matches!(f[sv], "FRONTEND" | "BACKEND"))
            .map(|f| ServerStat {
                name: f[sv].to_owned(),
                status: f[status].to_owned(),
            })
            .collect()
    }

    /// The names of the servers of `backend` that are up ([`ServerStat::is_up`]).
    pub fn servers_up(&self, backend: &str) -> Vec<String> {
        self.servers(backend)
            .into_iter()
            .filter(ServerStat::is_up)
            .map(|s| s.name)
            .collect()
    }

    /// The names of the servers of `backend` in maintenance (`disabled`).
    pub fn servers_in_maintenance(&self, backend: &str) -> Vec<String> {
        self.servers(backend)
            .into_iter()
            .filter(|s| s.status == "MAINT")
            .map(|s| s.name)
            .collect()
    }

    /// Waits until every server of `backend` has passed its health checks
    /// (`UP`); panics with their states after 15 s.
    pub fn wait_all_checked_up(&self, backend: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let servers = self.servers(backend);
            if !servers.is_empty() && servers.iter().all(|s| s.status == "UP") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "haproxy on h{}: not every server of {backend} passed its checks: {servers:?}",
                self.host
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `haproxy -c` of the main config and the directory, on the host: panics
    /// with its output unless the config is valid.
    pub fn check_config(&self) {
        self.fleet
            .exec_ok(self.host, &format!("haproxy -c -f {CONFIG} -f {CONF_DIR}"));
    }
}
