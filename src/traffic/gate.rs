//! A traffic gate: what a step's new pool must have shown over the step's
//! hold, read from what the proxy saw ([`super::metrics`]), before the
//! next step may start:
//!
//! ```yaml
//! traffic:
//!   steps: [10%, 50%, 100%]
//!   hold: 10s
//!   gate:
//!     from: nginx          # nginx (its access log) or haproxy (its stats socket)
//!     max_5xx: 5%          # the new pool's share of 5xx answers
//!     p99: 300ms           # a latency percentile (p50, p90, p95, p99; nginx only)
//!     min_requests: 50     # fewer over the hold fails the gate
//! ```
//!
//! A proxy that cannot give a figure is refused at load (haproxy's stats
//! hold averages, not percentiles), as is a gate with nothing to judge (no
//! step before 100%, or no hold).

use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::metrics::Figures;
use crate::playbook::PlaybookError;
use crate::source::SourceSpan;
use crate::vars::Value;

/// Where the figures come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateSource {
    /// The access log convoy's nginx template writes in the format convoy
    /// owns (`traffic.gate_log`: a file per play beside its manifest).
    Nginx,
    /// haproxy's stats socket (`show stat`): 5xx and response counters of
    /// the new pool's servers. `socket` may be a template (rendered with
    /// each proxy host's variables).
    Haproxy { socket: String },
}

/// The Debian package's admin socket.
pub const DEFAULT_HAPROXY_SOCKET: &str = "/run/haproxy/admin.sock";

/// The percentiles a gate may bound.
pub const PERCENTILES: [u8; 4] = [50, 90, 95, 99];

#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub source: GateSource,
    /// The most 5xx answers the new pool may give, in percent of its answers.
    pub max_5xx: Option<f64>,
    /// (percentile, bound): that percentile of the new pool's response
    /// times must be at most the bound.
    pub latency: Vec<(u8, Duration)>,
    /// Fewer answers from the new pool over the hold fail the gate: too
    /// little traffic to judge is no pass.
    pub min_requests: u64,
    pub span: SourceSpan,
}

/// When the gate does not say: enough answers for a 5% share to mean
/// something.
pub const DEFAULT_MIN_REQUESTS: u64 = 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGate {
    from: Spanned<String>,
    max_5xx: Option<Spanned<Value>>,
    p50: Option<Spanned<Value>>,
    p90: Option<Spanned<Value>>,
    p95: Option<Spanned<Value>>,
    p99: Option<Spanned<Value>>,
    min_requests: Option<Spanned<Value>>,
    socket: Option<Spanned<String>>,
}

/// Checks and converts a `gate`; `held_steps` is how many steps come
/// before 100% (each judged over `hold`).
pub fn convert(
    file: &std::path::Path,
    raw: Spanned<RawGate>,
    held_steps: usize,
    hold: Duration,
) -> Result<Gate, PlaybookError> {
    let at = |l: &serde_saphyr::Location| {
        SourceSpan::from_location(file, l).unwrap_or_else(|| SourceSpan::new(file, 1, 1))
    };
    let invalid = |message: String, span: SourceSpan| PlaybookError::Invalid { message, span };
    let span = at(&raw.referenced);
    let g = raw.value;
    let socket = g.socket.as_ref();
    let source = match g.from.value.trim() {
        "nginx" => {
            if let Some(s) = socket {
                return Err(invalid(
                    "`socket` is haproxy's stats socket; a gate `from: nginx` reads the access log convoy's template writes".into(),
                    at(&s.referenced),
                ));
            }
            GateSource::Nginx
        }
        "haproxy" => GateSource::Haproxy {
            socket: socket.map_or(DEFAULT_HAPROXY_SOCKET.to_owned(), |s| s.value.clone()),
        },
        other => {
            return Err(invalid(
                format!("a gate reads its figures `from: nginx` or `from: haproxy`, not `{other}`"),
                at(&g.from.referenced),
            ));
        }
    };
    let max_5xx = match &g.max_5xx {
        None => None,
        Some(v) => Some(percent(&v.value).ok_or_else(|| {
            invalid(
                format!(
                    "`max_5xx` is a share of answers from 0% to 100%, like 5% or 0.5%, not {}",
                    shown(&v.value)
                ),
                at(&v.referenced),
            )
        })?),
    };
    let mut latency = Vec::new();
    for (q, raw) in PERCENTILES.iter().zip([&g.p50, &g.p90, &g.p95, &g.p99]) {
        let Some(v) = raw else { continue };
        if let GateSource::Haproxy { .. } = source {
            return Err(invalid(
                format!(
                    "`p{q}`: a metric the proxy cannot give: haproxy's stats hold response-time averages over its last 1024 requests, not percentiles; use `max_5xx` with haproxy, or `from: nginx`"
                ),
                at(&v.referenced),
            ));
        }
        let bound = crate::playbook::duration(&v.value)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                invalid(
                    format!(
                        "`p{q}` is a response time like 300ms, not {}",
                        shown(&v.value)
                    ),
                    at(&v.referenced),
                )
            })?;
        latency.push((*q, bound));
    }
    let min_requests = match &g.min_requests {
        None => DEFAULT_MIN_REQUESTS,
        Some(v) => match &v.value {
            Value::Number(n) if n.as_u64().is_some_and(|n| n >= 1) => n.as_u64().unwrap_or(1),
            other => {
                return Err(invalid(
                    format!(
                        "`min_requests` is a count of answers, at least 1, not {}",
                        shown(other)
                    ),
                    at(&v.referenced),
                ));
            }
        },
    };
    if max_5xx.is_none() && latency.is_empty() {
        return Err(invalid(
            "a gate bounds something: `max_5xx`, or a latency percentile (`p99: 300ms`)".into(),
            span,
        ));
    }
    if held_steps == 0 {
        return Err(invalid(
            "a gate judges the steps before 100% over their hold, and these steps have none: add steps like [10%, 100%], or leave `gate` out".into(),
            span,
        ));
    }
    if hold.is_zero() {
        return Err(invalid(
            "a gate judges what a step served over its `hold`, and `hold` is 0: give one like 30s"
                .into(),
            span,
        ));
    }
    Ok(Gate {
        source,
        max_5xx,
        latency,
        min_requests,
        span,
    })
}

/// The gate log of the play whose manifest is `manifest` (nginx).
pub fn log_path(manifest: &str) -> String {
    let stem = manifest.strip_suffix(".manifest").unwrap_or(manifest);
    format!("{stem}.gate.log")
}

/// `traffic.gate_log` for the proxy templates: where nginx logs the
/// requests a gate reads ([`super::metrics`]); empty when the
/// play has no gate that reads nginx's log.
pub fn add_template_vars(
    spec: Option<&super::TrafficSpec>,
    manifest: &str,
    vars: &mut crate::vars::VarMap,
) {
    let Some(Value::Object(traffic)) = vars.get_mut("traffic") else {
        return;
    };
    let log = match spec.and_then(|s| s.gate.as_ref()) {
        Some(g) if g.source == GateSource::Nginx => log_path(manifest),
        _ => String::new(),
    };
    traffic.insert("gate_log".into(), Value::String(log));
}

fn shown(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// `5%`, `"0.5%"` or `5`: a percentage from 0 to 100.
fn percent(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s
            .trim()
            .strip_suffix('%')
            .unwrap_or(s.trim())
            .trim()
            .parse()
            .ok(),
        _ => None,
    }?;
    (n.is_finite() && (0.0..=100.0).contains(&n)).then_some(n)
}

/// `312ms`, `1.250s`.
pub fn millis(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// `at most 5% 5xx, p99 at most 300ms, at least 50 requests (from nginx's log)`.
impl std::fmt::Display for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(m) = self.max_5xx {
            parts.push(format!("at most {m}% 5xx"));
        }
        for (q, bound) in &self.latency {
            parts.push(format!("p{q} at most {}", millis(*bound)));
        }
        parts.push(format!("at least {} requests", self.min_requests));
        let from = match &self.source {
            GateSource::Nginx => "nginx's access log".to_owned(),
            GateSource::Haproxy { socket } => format!("haproxy's stats socket {socket}"),
        };
        write!(f, "{} (from {from})", parts.join(", "))
    }
}

/// What a gate made of a step's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Each bound, with what was measured: `5xx 19.6% (gate: at most 5%)`.
    pub measured: Vec<String>,
    /// The bounds that were not met, in the same words.
    pub failed: Vec<String>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.failed.is_empty()
    }
}

impl Gate {
    /// Judges `figures`, the new pool `pool`'s over a step's hold.
    pub fn judge(&self, pool: &str, figures: &Figures) -> Verdict {
        let mut measured = Vec::new();
        let mut failed = Vec::new();
        let n = figures.requests;
        if n < self.min_requests {
            let said = format!(
                "{pool} answered only {n} request(s) over the hold (gate: at least {}; too few to judge)",
                self.min_requests
            );
            measured.push(said.clone());
            failed.push(said);
        }
        if let Some(max) = self.max_5xx {
            let share = figures.share_5xx();
            let said = format!(
                "{pool} answered 5xx to {share:.1}% of {n} requests ({} of them; gate: at most {max}%)",
                figures.errors
            );
            if n > 0 && share > max {
                failed.push(said.clone());
            }
            measured.push(said);
        }
        for (q, bound) in &self.latency {
            match figures.percentile(*q) {
                Some(t) => {
                    let said = format!(
                        "{pool}'s p{q} response time was {} over {n} requests (gate: at most {})",
                        millis(t),
                        millis(*bound)
                    );
                    if t > *bound {
                        failed.push(said.clone());
                    }
                    measured.push(said);
                }
                None => measured.push(format!("{pool}'s p{q}: no answer to time")),
            }
        }
        Verdict { measured, failed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn percentages_are_from_0_to_100() {
        assert_eq!(percent(&json!("5%")), Some(5.0));
        assert_eq!(percent(&json!("0.5%")), Some(0.5));
        assert_eq!(percent(&json!(0)), Some(0.0));
        assert_eq!(percent(&json!("101%")), None);
        assert_eq!(percent(&json!("-1%")), None);
        assert_eq!(percent(&json!("many")), None);
    }

    fn gate() -> Gate {
        Gate {
            source: GateSource::Nginx,
            max_5xx: Some(5.0),
            latency: vec![(99, Duration::from_millis(300))],
            min_requests: 50,
            span: SourceSpan::new(std::path::Path::new("p.yml"), 1, 1),
        }
    }

    #[test]
    fn a_share_of_5xx_above_the_bound_fails_and_says_what_was_measured() {
        let mut f = Figures::default();
        for i in 0..500 {
            f.add_answer(
                if i % 5 == 0 { 500 } else { 200 },
                Duration::from_millis(10),
            );
        }
        let v = gate().judge("green", &f);
        assert!(!v.passed());
        assert_eq!(
            v.failed,
            vec!["green answered 5xx to 20.0% of 500 requests (100 of them; gate: at most 5%)"]
        );
    }

    #[test]
    fn too_few_requests_fail_the_gate() {
        let mut f = Figures::default();
        f.add_answer(200, Duration::from_millis(10));
        let v = gate().judge("green", &f);
        assert!(v.failed[0].contains("only 1 request(s)"), "{v:?}");
    }

    #[test]
    fn a_slow_percentile_fails_and_a_good_pool_passes() {
        let mut f = Figures::default();
        for i in 0..100 {
            let t = if i < 98 { 10 } else { 900 };
            f.add_answer(200, Duration::from_millis(t));
        }
        // p99 by nearest rank: the 99th of 100 sorted times, 900ms.
        let v = gate().judge("green", &f);
        assert_eq!(v.failed.len(), 1, "{v:?}");
        assert!(v.failed[0].contains("p99 response time was 900ms"), "{v:?}");
        let mut good = Figures::default();
        for _ in 0..100 {
            good.add_answer(200, Duration::from_millis(12));
        }
        assert!(gate().judge("green", &good).passed());
    }
}
