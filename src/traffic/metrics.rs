//! What the proxy saw of one pool over a step's window, read on each proxy
//! host in one round trip at the window's start (a mark) and one at its
//! end, the figures computed there so that only a few lines come back:
//!
//! - nginx: the access log convoy's template writes (`traffic.gate_log`,
//!   [`LOG_FORMAT`]: pool, status, `$request_time`, one line a request).
//!   The mark is the file's size; at the end, awk reads the lines after it
//!   and prints the pool's answers, its 5xx, and how many took each
//!   response time (milliseconds: a histogram that sums across proxy
//!   hosts, so that a percentile is the fleet's, not a host's).
//! - haproxy: `show stat` on the stats socket: the responses (`hrsp_*`)
//!   and 5xx (`hrsp_5xx`) counters of the servers whose address is a host
//!   of the pool; the window is the end's counters minus the mark's (a
//!   reload starts the counters at 0: the mark is read after the step's
//!   reload).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::transport::ShellScript;

/// One pool's answers over a window (or, for haproxy, counters at a mark).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub requests: u64,
    /// Answers 500..=599.
    pub errors: u64,
    /// Response time in milliseconds -> answers that took it (nginx only).
    pub times: BTreeMap<u64, u64>,
}

impl Figures {
    #[cfg(test)]
    pub fn add_answer(&mut self, status: u16, time: Duration) {
        self.requests += 1;
        self.errors += u64::from((500..600).contains(&status));
        *self
            .times
            .entry(u64::try_from(time.as_millis()).unwrap_or(u64::MAX))
            .or_default() += 1;
    }

    /// Adds another proxy host's figures.
    pub fn merge(&mut self, other: &Figures) {
        self.requests += other.requests;
        self.errors += other.errors;
        for (t, n) in &other.times {
            *self.times.entry(*t).or_default() += n;
        }
    }

    /// Counters since `mark` (haproxy); the counters as they are when they
    /// went back (a reload in between restarted them at 0).
    pub fn since(&self, mark: &Figures) -> Figures {
        if self.requests < mark.requests || self.errors < mark.errors {
            return self.clone();
        }
        Figures {
            requests: self.requests - mark.requests,
            errors: self.errors - mark.errors,
            times: BTreeMap::new(),
        }
    }

    /// The 5xx answers in percent of all; 0 without answers.
    pub fn share_5xx(&self) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        100.0 * self.errors as f64 / self.requests as f64
    }

    /// The `q`th percentile of the response times by nearest rank (the
    /// smallest time at least `q`% of the answers took no longer than);
    /// `None` without timed answers.
    pub fn percentile(&self, q: u8) -> Option<Duration> {
        let n: u64 = self.times.values().sum();
        if n == 0 {
            return None;
        }
        let rank = (u64::from(q) * n).div_ceil(100).max(1);
        let mut seen = 0;
        for (t, count) in &self.times {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_millis(*t));
            }
        }
        self.times.keys().last().map(|t| Duration::from_millis(*t))
    }

    /// Parses what the scripts print: `answers N E`, then `time SECONDS
    /// COUNT` lines (nginx). `Err` names the line that is neither.
    pub fn parse(out: &str) -> Result<Figures, String> {
        let mut figures = Figures::default();
        let mut answered = false;
        for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let bad = || format!("unexpected line from the gate's reader: {line:?}");
            match fields.as_slice() {
                ["answers", n, e] => {
                    figures.requests = n.parse().map_err(|_| bad())?;
                    figures.errors = e.parse().map_err(|_| bad())?;
                    answered = true;
                }
                ["time", secs, count] => {
                    let secs: f64 = secs.parse().map_err(|_| bad())?;
                    let ms = (secs * 1000.0).round() as u64;
                    *figures.times.entry(ms).or_default() +=
                        count.parse::<u64>().map_err(|_| bad())?;
                }
                _ => return Err(bad()),
            }
        }
        if !answered {
            return Err("the gate's reader printed no `answers` line".into());
        }
        Ok(figures)
    }
}

/// The script that marks the start of a window in nginx's gate log at
/// `log`: prints the file's size (0 when nginx has not written it yet).
pub fn nginx_mark(log: &str) -> ShellScript {
    ShellScript::new().var("F", log).code(NGINX_MARK)
}

const NGINX_MARK: &str = r#"if [ -f "$F" ]; then s=$(wc -c < "$F") || exit 3; echo "$s" | tr -d ' '; else echo 0; fi
"#;

/// The script that reads `pool`'s answers in nginx's gate log `log` after
/// byte `offset` (from the start when the file is now shorter: rotated).
pub fn nginx_window(log: &str, offset: u64, pool: &str) -> ShellScript {
    ShellScript::new()
        .var("F", log)
        .var("O", offset.to_string())
        .var("P", pool)
        .code(NGINX_WINDOW)
}

const NGINX_WINDOW: &str = r#"[ -f "$F" ] || { echo "no gate log $F: the proxy's template writes none (it must log to traffic.gate_log in convoy's format, as templates/nginx/pools.conf.j2 does)" >&2; exit 3; }
s=$(wc -c < "$F") || exit 3
[ "$s" -ge "$O" ] || O=0
tail -c +$((O + 1)) "$F" | awk -v p="$P" '
$1 == p && $2 ~ /^[0-9][0-9][0-9]$/ && $3 ~ /^[0-9.]+$/ {
    n++
    if ($2 >= 500 && $2 < 600) e++
    t[$3]++
}
END {
    printf "answers %d %d\n", n, e
    for (k in t) printf "time %s %d\n", k, t[k]
}'
"#;

/// The script that reads haproxy's counters for the servers at
/// `addresses` (their host part) on the stats socket `socket`.
pub fn haproxy_counters(socket: &str, addresses: &[String]) -> ShellScript {
    ShellScript::new()
        .var("S", socket)
        .var("A", addresses.join(" "))
        .code(HAPROXY_COUNTERS)
}

// socat when the host has it; python3 otherwise (Debian's haproxy hosts
// rarely lack both); the stats socket speaks one command, then closes.
const HAPROXY_COUNTERS: &str = r#"[ -S "$S" ] || { echo "no haproxy stats socket at $S (the gate's \`socket\`; haproxy's \`stats socket\` in its global section)" >&2; exit 3; }
if command -v socat >/dev/null 2>&1; then
    stat=$(printf 'show stat\n' | socat -t 5 - "UNIX-CONNECT:$S") || exit 3
elif command -v python3 >/dev/null 2>&1; then
    stat=$(python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
out = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    out += d
sys.stdout.write(out.decode("utf-8", "replace"))
' "$S") || exit 3
else
    echo "neither socat nor python3 on this host to read haproxy's stats socket $S" >&2
    exit 3
fi
printf '%s\n' "$stat" | awk -F, -v addrs="$A" '
NR == 1 {
    sub(/^# /, "")
    for (i = 1; i <= NF; i++) c[$i] = i
    if (!c["addr"] || !c["hrsp_5xx"] || !c["svname"]) { bad = 1; exit }
    k = split(addrs, a, " ")
    for (i = 1; i <= k; i++) want[a[i]] = 1
    next
}
$c["svname"] != "FRONTEND" && $c["svname"] != "BACKEND" {
    ad = $c["addr"]
    sub(/:[0-9]+$/, "", ad)
    if (ad in want) {
        n += $c["hrsp_1xx"] + $c["hrsp_2xx"] + $c["hrsp_3xx"] + $c["hrsp_4xx"] + $c["hrsp_5xx"] + $c["hrsp_other"]
        e += $c["hrsp_5xx"]
    }
}
END {
    if (bad) { print "haproxy'"'"'s show stat has no addr, svname or hrsp_5xx column" > "/dev/stderr"; exit 3 }
    printf "answers %d %d\n", n, e
}'
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readers_output_parses_and_sums_across_proxy_hosts() {
        let mut a = Figures::parse("answers 10 2\ntime 0.010 8\ntime 0.300 2\n").unwrap();
        let b = Figures::parse("answers 5 0\ntime 0.010 5\n").unwrap();
        a.merge(&b);
        assert_eq!((a.requests, a.errors), (15, 2));
        assert_eq!(a.percentile(50), Some(Duration::from_millis(10)));
        // 13 of 15 took 10ms: the 87th percentile is the last at 10ms.
        assert_eq!(a.percentile(86), Some(Duration::from_millis(10)));
        assert_eq!(a.percentile(99), Some(Duration::from_millis(300)));
        assert!(Figures::parse("time 0.1 1\n").is_err());
        assert!(Figures::parse("answers x 1\n").is_err());
    }

    #[test]
    fn counters_that_went_back_are_taken_as_they_are() {
        let mark = Figures {
            requests: 100,
            errors: 5,
            ..Figures::default()
        };
        let end = Figures {
            requests: 160,
            errors: 8,
            ..Figures::default()
        };
        assert_eq!(
            (end.since(&mark).requests, end.since(&mark).errors),
            (60, 3)
        );
        let restarted = Figures {
            requests: 7,
            errors: 1,
            ..Figures::default()
        };
        assert_eq!(restarted.since(&mark), restarted);
    }
}
