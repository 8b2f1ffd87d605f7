//! nginx (Debian's package) on a proxy host of the fleet, with its own pid
//! and logs under /srv (the fleet shares /run and /var/log/nginx between
//! hosts); a small HTTP app on app hosts that serves its release directory
//! and must be restarted to serve a new one; and a plain HTTP GET.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{Fleet, write_file};

/// nginx running on one host of the fleet, configured by [`NGINX_CONF`]: a default server answering 404 `no such site`, then
/// `/etc/nginx/conf.d/*.conf`; pid, logs and temp files under /srv/nginx.
pub struct Nginx<'a> {
    pub fleet: &'a Fleet,
    pub host: usize,
}

pub const NGINX_CONF: &str = "\
user www-data;
worker_processes 2;
pid /srv/nginx/nginx.pid;
# notice: each reload logs `signal 1 (SIGHUP) received`, which tests count.
error_log /srv/nginx/error.log notice;
events { worker_connections 512; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /srv/nginx/access.log;
    client_body_temp_path /srv/nginx/tmp/body;
    proxy_temp_path /srv/nginx/tmp/proxy;
    fastcgi_temp_path /srv/nginx/tmp/fastcgi;
    uwsgi_temp_path /srv/nginx/tmp/uwsgi;
    scgi_temp_path /srv/nginx/tmp/scgi;
    server {
        listen 80 default_server;
        server_name _;
        default_type text/plain;
        return 404 \"no such site\\n\";
    }
    include /etc/nginx/conf.d/*.conf;
}
";

impl<'a> Nginx<'a> {
    /// Writes the host's /etc/nginx/nginx.conf (its conf.d emptied) and
    /// starts nginx there; returns once it answers on port 80.
    pub fn start(fleet: &'a Fleet, host: usize) -> Nginx<'a> {
        write_file(
            fleet.host_path(host, "/etc/nginx"),
            "nginx.conf",
            NGINX_CONF,
        );
        fleet.exec_ok(
            host,
            "rm -rf /etc/nginx/conf.d/* && mkdir -p /srv/nginx/tmp && nginx",
        );
        let nginx = Nginx { fleet, host };
        nginx.wait_for("unknown.test", 404, "no such site");
        nginx
    }

    /// `ADDRESS:80` of the proxy host.
    pub fn address(&self) -> String {
        format!("{}:80", self.fleet.addr(self.host))
    }

    /// GET `path` through nginx with this `Host` header.
    pub fn get(&self, host: &str, path: &str) -> Result<(u16, String), String> {
        http_get(&self.address(), host, path)
    }

    /// Waits (reloads are asynchronous) until `host` answers `status` with
    /// a body containing `body`; panics with the last answer after 10 s.
    pub fn wait_for(&self, host: &str, status: u16, body: &str) {
        self.wait_answer(host, "/", host, status, body);
    }

    /// Like [`wait_for`](Self::wait_for), for `path`.
    pub fn wait_for_path(&self, host: &str, path: &str, status: u16, body: &str) {
        self.wait_answer(host, path, &format!("{host}{path}"), status, body);
    }

    fn wait_answer(&self, host: &str, path: &str, what: &str, status: u16, body: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answer = self.get(host, path);
            if matches!(&answer, Ok((s, b)) if *s == status && b.contains(body)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what} via nginx on h{}: wanted {status} with {body:?}, got {answer:?}",
                self.host
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// How many times nginx has reloaded since it started.
    pub fn reloads(&self) -> usize {
        std::fs::read_to_string(self.fleet.host_path(self.host, "/srv/nginx/error.log"))
            .unwrap_or_default()
            .matches("(SIGHUP) received")
            .count()
    }

    /// Waits until nginx has logged `count` reloads (a signal is handled
    /// asynchronously); panics after 10 s.
    pub fn wait_reloads(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.reloads() < count {
            assert!(
                Instant::now() < deadline,
                "nginx on h{} reloaded {} times, expected {count}",
                self.host,
                self.reloads()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(self.reloads(), count, "nginx reloaded more than expected");
    }
}

/// A small HTTP server on an app host, like an app that loads its release
/// once at start: it serves the directory `dir` resolved when it starts
/// (`/srv/hello/current` keeps serving the old release after a switch),
/// so a switch needs a restart, and during the restart the port refuses
/// connections. `/srv/app-server.sh` on the host (re)starts it: use it as
/// the switch hook (`shell: sh /srv/app-server.sh`).
pub struct AppServer;

impl AppServer {
    /// Installs /srv/app-server.sh on app host `host` and starts it; returns
    /// once the server answers.
    pub fn start(fleet: &Fleet, host: usize, dir: &str, port: u16) {
        let script = format!(
            "#!/bin/sh\n\
             # (Re)starts the test app: python's http.server in {dir} as resolved now, on port {port}.\n\
             set -u\n\
             if pid=$(cat /srv/app-server.pid 2>/dev/null); then\n\
               kill \"$pid\" 2>/dev/null; while kill -0 \"$pid\" 2>/dev/null; do sleep 0.02; done\n\
             fi\n\
             cd \"$(readlink -f {dir})\" || exit 1\n\
             setsid python3 -m http.server {port} --bind 0.0.0.0 >> /srv/app-server.log 2>&1 < /dev/null &\n\
             echo $! > /srv/app-server.pid\n\
             for i in $(seq 1 200); do\n\
               curl -s -o /dev/null http://127.0.0.1:{port}/ && exit 0\n\
               sleep 0.05\n\
             done\n\
             echo 'the app server did not start' >&2; exit 1\n"
        );
        write_file(fleet.host_path(host, "/srv"), "app-server.sh", &script);
        fleet.exec_ok(host, "sh /srv/app-server.sh");
    }
}

/// One HTTP/1.0 GET to `address` (`ip:port`) with `Host: host`: the status
/// and the body. `Err` when the connection fails (refused, reset, timeout).
pub fn http_get(address: &str, host: &str, path: &str) -> Result<(u16, String), String> {
    http_request("GET", address, host, path)
}

/// `METHOD path` with `Host: host` to `address`; a POST carries a small body.
pub fn http_request(
    method: &str,
    address: &str,
    host: &str,
    path: &str,
) -> Result<(u16, String), String> {
    http_request_with(method, address, host, path, &[])
}

/// Like [`http_request`], with more request headers (`("Cookie", "a=b")`).
pub fn http_request_with(
    method: &str,
    address: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String), String> {
    let address = address.parse().map_err(|e| format!("{address}: {e}"))?;
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))
        .map_err(|e| format!("connect {address}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    // One write: `write!` on the stream would send each piece of the format
    // in its own segment, and a proxy that delays its ACK until it answers
    // (haproxy's tcp-smart-accept) would hold the second piece for 40 ms.
    let body = if method == "POST" { "order=1" } else { "" };
    let length = if method == "POST" {
        format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        )
    } else {
        String::new()
    };
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n{extra}{length}\r\n{body}"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send to {address}: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("read from {address}: {e}"))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP answer: {response:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok((status, body.to_owned()))
}
