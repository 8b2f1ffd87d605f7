//! Ansible's `serial:` on a plain play, mapped onto convoy's rollout
//! batches (`run/serial.rs` runs them): a count, a percentage (rounded
//! down, at least one host, as Ansible's) or a list of them, the last
//! repeating. As in Ansible, a failed host does not stop the next batch;
//! only a batch whose hosts all failed does.
//!
//! `max_fail_percentage` is checked within each batch, after every task,
//! as in Ansible (`run/fail_percentage.rs`); convoy's own failure budget
//! (`rollout: {max_fail: N%}`) counts over the whole play, between batches.

use serde_saphyr::Spanned;

use super::PlaybookError;
use super::load::span;
use super::rollout::{OnFailure, RolloutSpec, Size};
use crate::vars::Value;

/// The rollout `serial:` stands for.
pub fn convert(
    file: &std::path::Path,
    serial: Spanned<Value>,
) -> Result<RolloutSpec, PlaybookError> {
    let at = span(file, &serial.referenced);
    let invalid = || PlaybookError::Invalid {
        message: "`serial` takes a count, a percentage like \"30%\" or a list of them".into(),
        span: at.clone(),
    };
    let one = |v: &Value| {
        let size = Size::parse(v)?;
        Some(match size {
            Size::Percent(p) => Size::PercentDown(p),
            // Ansible's `serial: 0`: every host at once.
            Size::Count(0) => Size::Percent(100.0),
            other => other,
        })
    };
    let batch = match &serial.value {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(one)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(invalid)?,
        v => vec![one(v).ok_or_else(invalid)?],
    };
    Ok(RolloutSpec {
        batch,
        // Failed hosts never stop the next batch by their number.
        max_fail: Size::Percent(100.0),
        on_failure: OnFailure::Stop,
        span: at,
        ..RolloutSpec::default()
    })
}
