//! The `rollout:`, `migrations:` and `proxy:` sections of a play: in what
//! order hosts switch, what gates each batch, what runs once per version
//! range, and which proxy configs follow the fleet.

use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::PlaybookError;
use crate::source::SourceSpan;
use crate::vars::Value;

/// A number of hosts: a count or a share of the rollout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    Count(usize),
    Percent(f64),
    /// Ansible's `serial: "30%"`: the share rounded down, at least one host.
    PercentDown(f64),
}

impl Size {
    /// How many of `total` hosts this is; a share never rounds to zero hosts.
    pub fn of(self, total: usize) -> usize {
        match self {
            Size::Count(n) => n.min(total),
            Size::Percent(p) => {
                (((p / 100.0) * total as f64).ceil() as usize).clamp(1, total.max(1))
            }
            Size::PercentDown(p) => {
                (((p / 100.0) * total as f64).floor() as usize).clamp(1, total.max(1))
            }
        }
    }

    /// The failure budget's size: a share may round to zero hosts.
    pub fn budget(self, total: usize) -> usize {
        match self {
            Size::Count(n) => n,
            Size::Percent(p) | Size::PercentDown(p) => {
                ((p / 100.0) * total as f64).floor() as usize
            }
        }
    }

    pub(super) fn parse(v: &Value) -> Option<Size> {
        match v {
            Value::Number(n) => n.as_u64().map(|n| Size::Count(n as usize)),
            Value::String(s) => match s.trim().strip_suffix('%') {
                Some(p) => p
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|p| *p > 0.0 && *p <= 100.0)
                    .map(Size::Percent),
                None => s.trim().parse().ok().map(Size::Count),
            },
            _ => None,
        }
    }
}

/// `3` or `25%`, as on the command line (`convoy restart --batch`).
impl std::str::FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Size, String> {
        Size::parse(&Value::String(s.to_owned()))
            .ok_or_else(|| format!("{s:?} is neither a count (3) nor a share (25%)"))
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Size::Count(n) => write!(f, "{n}"),
            Size::Percent(p) | Size::PercentDown(p) => write!(f, "{p}%"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Order {
    /// As the inventory lists them.
    Inventory,
    /// By host name.
    Sorted,
    /// Shuffled with a seed (printed, so a run can be repeated).
    Shuffle { seed: Option<u64> },
    /// Group by group in the given order (one datacenter after another).
    Groups(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Pause {
    None,
    For(Duration),
    /// Ask before each next batch (needs a terminal, or --yes).
    Confirm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Every host switched in this run returns to its previous release.
    Rollback,
    /// Hosts stay where they are; the report says which runs what.
    Stop,
}

/// What makes a batch healthy. Strings are templates, rendered per host.
#[derive(Debug, Clone)]
pub struct HealthSpec {
    /// A URL fetched from the control machine.
    pub http: Option<String>,
    pub expect: u16,
    /// A regex the body must match.
    pub body: Option<String>,
    /// `host:port` connected to from the control machine.
    pub tcp: Option<String>,
    /// A command run on the host; exit 0 is healthy.
    pub command: Option<String>,
    /// How long a host may take to become healthy.
    pub timeout: Duration,
    pub interval: Duration,
    /// How long it must then stay healthy, checked every `interval`.
    pub soak: Duration,
}

#[derive(Debug, Clone)]
pub struct RolloutSpec {
    pub canary: Option<Size>,
    /// Batch sizes after the canary; the last one repeats.
    pub batch: Vec<Size>,
    pub order: Order,
    pub max_fail: Size,
    pub health: Option<HealthSpec>,
    pub pause: Pause,
    pub on_failure: OnFailure,
    /// Arm a timer on each host that switches it back unless convoy
    /// confirms over a fresh connection within this time.
    pub magic_rollback: Option<Duration>,
    pub span: SourceSpan,
    /// Where `on_failure: rollback` or `magic_rollback` is written, if it is: a play
    /// without a release has nothing to roll back, and refuses them there.
    pub rollback_key: Option<(&'static str, SourceSpan)>,
}

impl Default for RolloutSpec {
    /// No `rollout:` section: every host in one batch, no gate.
    fn default() -> Self {
        RolloutSpec {
            canary: None,
            batch: vec![Size::Percent(100.0)],
            order: Order::Inventory,
            max_fail: Size::Count(0),
            health: None,
            pause: Pause::None,
            on_failure: OnFailure::Stop,
            magic_rollback: None,
            span: SourceSpan::new("", 0, 0),
            rollback_key: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRollout {
    canary: Option<Spanned<Value>>,
    batch: Option<Spanned<Value>>,
    order: Option<Spanned<String>>,
    seed: Option<u64>,
    groups: Option<Vec<String>>,
    max_fail: Option<Spanned<Value>>,
    health: Option<Spanned<RawHealth>>,
    pause: Option<Spanned<Value>>,
    on_failure: Option<Spanned<String>>,
    magic_rollback: Option<Spanned<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    http: Option<String>,
    expect: Option<u16>,
    body: Option<String>,
    tcp: Option<String>,
    command: Option<String>,
    timeout: Option<Value>,
    interval: Option<Value>,
    soak: Option<Value>,
}

fn at(file: &std::path::Path, l: &serde_saphyr::Location) -> SourceSpan {
    SourceSpan::from_location(file, l).unwrap_or_else(|| SourceSpan::new(file, 1, 1))
}

/// Seconds as a number, or a humantime duration ("30s", "2m").
pub fn duration(v: &Value) -> Option<Duration> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .filter(|s| *s >= 0.0)
            .map(Duration::from_secs_f64),
        Value::String(s) => humantime::parse_duration(s.trim()).ok(),
        _ => None,
    }
}

pub(super) fn convert(
    file: &std::path::Path,
    raw: Spanned<RawRollout>,
) -> Result<RolloutSpec, PlaybookError> {
    let span = at(file, &raw.referenced);
    let r = raw.value;
    let invalid = |message: String, l: &serde_saphyr::Location| PlaybookError::Invalid {
        message,
        span: at(file, l),
    };
    let size = |v: &Spanned<Value>, what: &str| {
        Size::parse(&v.value).ok_or_else(|| {
            invalid(
                format!("`{what}` must be a count or a percentage like \"25%\""),
                &v.referenced,
            )
        })
    };
    let canary = r.canary.as_ref().map(|c| size(c, "canary")).transpose()?;
    let batch = match &r.batch {
        None => vec![Size::Percent(100.0)],
        Some(b) => match &b.value {
            Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(Size::parse)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    invalid(
                        "every step of a `batch` ramp must be a count or a percentage".into(),
                        &b.referenced,
                    )
                })?,
            _ => vec![size(b, "batch")?],
        },
    };
    if batch.contains(&Size::Count(0)) || canary == Some(Size::Count(0)) {
        return Err(PlaybookError::Invalid {
            message: "a batch of 0 hosts never ends a rollout".into(),
            span: span.clone(),
        });
    }
    let order = match r.order.as_ref().map(|o| o.value.as_str()) {
        None | Some("inventory") => Order::Inventory,
        Some("sorted") => Order::Sorted,
        Some("shuffle") => Order::Shuffle { seed: r.seed },
        Some("groups") => {
            Order::Groups(r.groups.clone().filter(|g| !g.is_empty()).ok_or_else(|| {
                invalid(
                    "`order: groups` needs `groups: [first, second, ...]`".into(),
                    &r.order.as_ref().expect("some").referenced,
                )
            })?)
        }
        Some(other) => {
            return Err(invalid(
                format!("`order` must be inventory, sorted, shuffle or groups, not `{other}`"),
                &r.order.as_ref().expect("some").referenced,
            ));
        }
    };
    let max_fail = r
        .max_fail
        .as_ref()
        .map(|m| size(m, "max_fail"))
        .transpose()?
        .unwrap_or(Size::Count(0));
    let pause = match &r.pause {
        None => Pause::None,
        Some(p) if p.value.as_str() == Some("confirm") => Pause::Confirm,
        Some(p) => Pause::For(duration(&p.value).ok_or_else(|| {
            invalid(
                "`pause` must be a duration like 10s, or `confirm`".into(),
                &p.referenced,
            )
        })?),
    };
    let on_failure = match r.on_failure.as_ref().map(|o| o.value.as_str()) {
        None | Some("rollback") => OnFailure::Rollback,
        Some("stop") => OnFailure::Stop,
        Some(other) => {
            return Err(invalid(
                format!("`on_failure` must be rollback or stop, not `{other}`"),
                &r.on_failure.as_ref().expect("some").referenced,
            ));
        }
    };
    let magic_rollback = r
        .magic_rollback
        .as_ref()
        .map(|m| {
            duration(&m.value).ok_or_else(|| {
                invalid(
                    "`magic_rollback` must be a duration like 30s".into(),
                    &m.referenced,
                )
            })
        })
        .transpose()?;
    let health = r
        .health
        .map(|h| {
            let hspan = h.referenced;
            let h = h.value;
            if h.http.is_none() && h.tcp.is_none() && h.command.is_none() {
                return Err(invalid(
                    "`health` needs one of `http`, `tcp` or `command`".into(),
                    &hspan,
                ));
            }
            let d = |v: &Option<Value>, default: u64, what: &str| match v {
                None => Ok(Duration::from_secs(default)),
                Some(v) => duration(v)
                    .ok_or_else(|| invalid(format!("`{what}` must be a duration like 5s"), &hspan)),
            };
            Ok(HealthSpec {
                http: h.http,
                expect: h.expect.unwrap_or(200),
                body: h.body,
                tcp: h.tcp,
                command: h.command,
                timeout: d(&h.timeout, 30, "timeout")?,
                interval: d(&h.interval, 1, "interval")?.max(Duration::from_millis(100)),
                soak: d(&h.soak, 0, "soak")?,
            })
        })
        .transpose()?;
    let rollback_key = r
        .on_failure
        .as_ref()
        .filter(|o| o.value == "rollback")
        .map(|o| ("on_failure: rollback", &o.referenced))
        .or(r
            .magic_rollback
            .as_ref()
            .map(|m| ("magic_rollback", &m.referenced)))
        .map(|(key, l)| (key, at(file, l)));
    Ok(RolloutSpec {
        canary,
        batch,
        order,
        max_fail,
        health,
        pause,
        on_failure,
        magic_rollback,
        span,
        rollback_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(Size::parse(&Value::from(3)), Some(Size::Count(3)));
        assert_eq!(Size::parse(&Value::from("50%")), Some(Size::Percent(50.0)));
        assert_eq!(Size::parse(&Value::from("0%")), None);
        assert_eq!(Size::Percent(50.0).of(7), 4);
        assert_eq!(Size::Percent(10.0).of(3), 1);
        assert_eq!(Size::Count(5).of(3), 3);
        assert_eq!(Size::Percent(10.0).budget(20), 2);
        assert_eq!(Size::Percent(10.0).budget(5), 0);
    }
}
