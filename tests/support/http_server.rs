//! `python3 -m http.server` inside a host's namespaces, serving one of its
//! directories (e.g. artifacts for `url:` sources or health checks).

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Fleet;

/// `python3 -m http.server` inside a host's namespaces, serving a directory of
/// that host. It stops by itself after `lifetime_secs` (and with the fleet).
pub struct HttpServer {
    child: Child,
    pub url: String,
}

impl HttpServer {
    /// Starts the server on host i's address and `port`; returns once it answers.
    pub fn start(
        fleet: &Fleet,
        i: usize,
        dir_in_host: &str,
        port: u16,
        lifetime_secs: u32,
    ) -> HttpServer {
        let addr = fleet.addr(i);
        let cmd = format!(
            "cd {dir_in_host} && exec timeout {lifetime_secs} python3 -m http.server {port} --bind {addr}"
        );
        HttpServer::start_command(fleet, i, &cmd, port)
    }

    /// Runs `sh -c cmd` inside host i, a server that listens on host i's
    /// address and `port`; returns once it answers.
    pub fn start_command(fleet: &Fleet, i: usize, cmd: &str, port: u16) -> HttpServer {
        let addr = fleet.addr(i);
        let child = Command::new("bash")
            .arg(super::fleet::fleet_sh())
            .arg("exec")
            .arg(fleet.dir())
            .arg(i.to_string())
            .args(["--", "sh", "-c", cmd])
            .env("CONVOY_FLEET_OWNER", std::process::id().to_string())
            .env("FLEET_QUIET", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the http server");
        // The control side is on the fleet's bridge: wait until it answers.
        let sock: std::net::SocketAddr = format!("{addr}:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect_timeout(&sock, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "http server on h{i} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        HttpServer {
            child,
            url: format!("http://{addr}:{port}"),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        // Only the launcher is ours to kill here; the server itself ends by
        // `timeout` or when the fleet's namespace is torn down.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
