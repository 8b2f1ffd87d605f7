//! Health gates after a batch switches: an HTTP request or a TCP connect
//! from the control machine, or a command on the host; each host must
//! become healthy within `timeout`, then stay healthy for `soak`.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::transport::{Connection, Script, ShellScript};

/// One host's check, rendered for that host.
#[derive(Debug, Clone)]
pub enum HealthTarget {
    Http {
        url: String,
        expect: u16,
        body: Option<regex::Regex>,
    },
    Tcp {
        address: String,
    },
    Command {
        command: String,
    },
}

/// `HTTP 200 from URL`, `a TCP connection to ADDRESS`, `exit 0 from COMMAND`.
impl std::fmt::Display for HealthTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HealthTarget::Http { url, expect, body } => {
                write!(f, "HTTP {expect} from {url}")?;
                if let Some(body) = body {
                    write!(f, " with a body matching {}", body.as_str())?;
                }
                Ok(())
            }
            HealthTarget::Tcp { address } => write!(f, "a TCP connection to {address}"),
            HealthTarget::Command { command } => write!(f, "exit 0 from `{command}` on the host"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct HealthGate {
    pub timeout: Duration,
    pub interval: Duration,
    pub soak: Duration,
}

/// The longest one probe may take; a hung service must not hold the gate forever.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

impl HealthGate {
    /// Waits until `target` is healthy and has stayed so for the soak time.
    /// `Ok` carries how long it took; `Err` the last reason it was not healthy.
    pub async fn wait(&self, target: &HealthTarget, conn: &Connection) -> Result<Duration, String> {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let mut healthy_since: Option<Instant> = None;
        loop {
            let probe = tokio::time::timeout(PROBE_TIMEOUT, probe(target, conn))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {}s", PROBE_TIMEOUT.as_secs())));
            match probe {
                Ok(()) => {
                    let since = *healthy_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.soak {
                        return Ok(started.elapsed());
                    }
                }
                Err(reason) if healthy_since.is_some() => {
                    return Err(format!("became unhealthy while soaking: {reason}"));
                }
                Err(reason) if Instant::now() >= deadline => {
                    return Err(format!(
                        "not healthy after {}s: {reason}",
                        self.timeout.as_secs_f64()
                    ));
                }
                Err(_) => {}
            }
            tokio::time::sleep(self.interval).await;
        }
    }
}

async fn probe(target: &HealthTarget, conn: &Connection) -> Result<(), String> {
    match target {
        HealthTarget::Http { url, expect, body } => {
            let (status, text) = http_get(url).await?;
            if status != *expect {
                return Err(format!("{url} answered {status}, expected {expect}"));
            }
            match body {
                Some(re) if !re.is_match(&text) => Err(format!("{url} body does not match /{re}/")),
                _ => Ok(()),
            }
        }
        HealthTarget::Tcp { address } => TcpStream::connect(address)
            .await
            .map(drop)
            .map_err(|e| format!("cannot connect to {address}: {e}")),
        HealthTarget::Command { command } => {
            // A health `command:` is the user's own shell code.
            let script = ShellScript::new().user_code(command);
            let out = conn
                .exec(Script::new(&script))
                .await
                .map_err(|e| e.to_string())?;
            if out.success() {
                Ok(())
            } else {
                let err = out.stderr_str();
                let line = err
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim();
                Err(format!(
                    "`{command}` exited {}{}",
                    out.status,
                    if line.is_empty() {
                        String::new()
                    } else {
                        format!(": {line}")
                    }
                ))
            }
        }
    }
}

/// A plain HTTP/1.0 GET: enough for health endpoints, no TLS (check HTTPS
/// services with a `command:` on the host).
async fn http_get(url: &str) -> Result<(u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs are checked from the control machine"))?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let address = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let mut stream = TcpStream::connect(&address)
        .await
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: convoy-health\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let mut response = Vec::new();
    stream
        .take(1 << 20)
        .read_to_end(&mut response)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{url}: not an HTTP answer"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
