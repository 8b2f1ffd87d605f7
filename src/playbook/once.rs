//! The `once:` key of a play: run it in one instance only across every
//! machine that may start it (two cron jobs on two machines), by a named
//! lock on a lock host. The name becomes a path component on that host, so
//! it is checked here, before any host is contacted.

use std::time::Duration;

use serde_saphyr::Spanned;

use super::PlaybookError;
use crate::source::SourceSpan;
use crate::vars::Value;

/// What a run does when another live run holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IfHeld {
    /// The play (with `--once`, the run) is skipped with a note; exit 0.
    Skip,
    /// The run stops there with exit 3.
    Fail,
}

/// A play's `once:` lock, as written.
#[derive(Debug, Clone)]
pub struct OnceSpec {
    pub name: String,
    /// The host pattern whose first host (by name) holds the lock; the
    /// play's own pattern when absent.
    pub on: Option<String>,
    pub if_held: IfHeld,
    /// How long the holder may go without renewing before it is taken over.
    pub stale_after: Duration,
    /// Where `once:` is written, for an `on:` pattern that matches no host.
    pub span: SourceSpan,
}

impl OnceSpec {
    /// Ten minutes: twenty missed renewals at the default 30 s, so a holder
    /// cut off for a few minutes keeps its lock.
    pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(600);

    /// A whole run's lock (`convoy run --once NAME`), on the first host of
    /// the first play's pattern. `Err` says why the name is refused.
    pub fn for_run(
        name: &str,
        if_held: IfHeld,
        stale_after: Duration,
        span: SourceSpan,
    ) -> Result<OnceSpec, String> {
        if !safe_name(name) || stale_after.is_zero() {
            return Err(format!(
                "--once: the lock name {name:?} must be a plain name (letters, digits, `.`, `-`, `_`; not starting with `.`), and --once-stale-after more than 0"
            ));
        }
        Ok(OnceSpec {
            name: name.to_owned(),
            on: None,
            if_held,
            stale_after,
            span,
        })
    }
}

const KEYS: &[&str] = &["name", "on", "if_held", "stale_after"];

/// `once: NAME`, or `once: { name, on, if_held, stale_after }`.
pub(super) fn convert(
    file: &std::path::Path,
    raw: Spanned<Value>,
) -> Result<OnceSpec, PlaybookError> {
    let span = SourceSpan::from_location(file, &raw.referenced)
        .unwrap_or_else(|| SourceSpan::new(file, 1, 1));
    let invalid = |message: String| PlaybookError::Invalid {
        message,
        span: span.clone(),
    };
    let mut spec = OnceSpec {
        name: String::new(),
        on: None,
        if_held: IfHeld::Skip,
        stale_after: OnceSpec::DEFAULT_STALE_AFTER,
        span: span.clone(),
    };
    match raw.value {
        Value::String(name) => spec.name = name,
        Value::Object(map) => {
            for (key, value) in map {
                let text = || value.as_str().map(str::to_owned);
                match key.as_str() {
                    "name" => {
                        spec.name =
                            text().ok_or_else(|| invalid("`once.name` must be a string".into()))?
                    }
                    "on" => {
                        spec.on = Some(text().ok_or_else(|| {
                            invalid("`once.on` must be a host pattern (a string)".into())
                        })?)
                    }
                    "if_held" => {
                        spec.if_held = match text().as_deref() {
                            Some("skip") => IfHeld::Skip,
                            Some("fail") => IfHeld::Fail,
                            _ => return Err(invalid("`once.if_held` is `skip` or `fail`".into())),
                        }
                    }
                    "stale_after" => {
                        spec.stale_after = super::rollout::duration(&value)
                            .filter(|d| !d.is_zero())
                            .ok_or_else(|| {
                                invalid(
                                "`once.stale_after` must be a duration (`10m`, `90s`, or seconds)"
                                    .into(),
                            )
                            })?
                    }
                    other => {
                        return Err(PlaybookError::UnknownKey {
                            key: other.to_owned(),
                            context: "`once`".into(),
                            suggestion: crate::source::nearest(other, KEYS.iter().copied())
                                .map(str::to_owned),
                            span,
                        });
                    }
                }
            }
        }
        _ => {
            return Err(invalid(
                "`once` is a lock name, or a mapping with `name`, `on`, `if_held`, `stale_after`"
                    .into(),
            ));
        }
    }
    if !safe_name(&spec.name) {
        return Err(invalid(format!(
            "`once`: the lock name {:?} must be a plain name (letters, digits, `.`, `-`, `_`; not starting with `.`): it becomes a directory on the lock host",
            spec.name
        )));
    }
    Ok(spec)
}

/// A name that is one path component and nothing else: no `/`, no `..`,
/// no hidden names, nothing a shell or a reader could misread.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_lock_names() {
        for good in ["nightly", "db-backup_2", "a.b"] {
            assert!(safe_name(good), "{good}");
        }
        for bad in ["", "../x", "a/b", ".hidden", "..", "a b", "x;rm", "é"] {
            assert!(!safe_name(bad), "{bad}");
        }
    }
}
