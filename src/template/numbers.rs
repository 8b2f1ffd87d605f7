//! Jinja2's `round(precision=0, method='common')`, which minijinja's
//! `round` lacks the method of: Ansible templates write
//! `x | round(0, 'floor')`. `common` rounds as Python's `round` (half to
//! even on the exact binary value, which is what Rust's `{:.N}` does); an
//! integer stays an integer there, and `ceil`/`floor` give floats.

use minijinja::value::ValueKind;
use minijinja::{Environment, Error, Value};

use super::filters::{defined, invalid};

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("round", round);
}

fn round(value: &Value, precision: Option<i32>, method: Option<String>) -> Result<Value, Error> {
    defined(value)?;
    let precision = precision.unwrap_or(0);
    let method = method.as_deref().unwrap_or("common");
    if !matches!(method, "common" | "ceil" | "floor") {
        return Err(invalid(format!(
            "round: method must be common, ceil or floor, not {method:?}"
        )));
    }
    if value.kind() != ValueKind::Number {
        return Err(invalid(format!("round: {value} is not a number")));
    }
    let is_int = value.as_i64().is_some() && !value.to_string().contains('.');
    if is_int && method == "common" && precision >= 0 {
        return Ok(value.clone());
    }
    let x = f64::try_from(value.clone())
        .map_err(|_| invalid(format!("round: {value} is not a number")))?;
    let scale = 10f64.powi(precision);
    let rounded = match method {
        "ceil" => (x * scale).ceil() / scale,
        "floor" => (x * scale).floor() / scale,
        _ if precision >= 0 => format!("{x:.p$}", p = precision as usize)
            .parse()
            .unwrap_or(x),
        _ => (x * scale).round() / scale,
    };
    Ok(Value::from(rounded))
}
