//! Ansible's tests on registered task results: `is success` / `succeeded`, `is failed` /
//! `failure`, `is changed` / `change`, `is skipped` / `skip`.
//!
//! They read the result map's `failed`, `changed` and `skipped` flags the way Ansible's
//! `core` test plugin does. (The regex tests `match`/`search`/`regex` live in
//! [`super::patterns`].)

use minijinja::value::ValueKind;
use minijinja::{Environment, Error, Value};

use super::filters::{ansible_bool, defined, invalid};

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_test("success", succeeded);
    env.add_test("succeeded", succeeded);
    env.add_test("failed", failed);
    env.add_test("failure", failed);
    env.add_test("changed", changed);
    env.add_test("change", changed);
    env.add_test("skipped", skipped);
    env.add_test("skip", skipped);
}

/// The value of `flag` in a result map (false when absent).
fn flag(result: &Value, flag: &str, test: &str) -> Result<bool, Error> {
    defined(result)?;
    if result.kind() != ValueKind::Map {
        return Err(invalid(format!(
            "the `{test}` test expects a dictionary (a registered result), got {}",
            result.kind()
        )));
    }
    Ok(ansible_bool(&result.get_attr(flag)?))
}

fn failed(result: &Value) -> Result<bool, Error> {
    flag(result, "failed", "failed")
}

fn succeeded(result: &Value) -> Result<bool, Error> {
    Ok(!flag(result, "failed", "success")?)
}

fn skipped(result: &Value) -> Result<bool, Error> {
    flag(result, "skipped", "skipped")
}

/// `changed`, or for a looped task without a top-level flag, any item's `changed`.
fn changed(result: &Value) -> Result<bool, Error> {
    let own = flag(result, "changed", "changed")?;
    if own || !result.get_attr("changed")?.is_undefined() {
        return Ok(own);
    }
    let items = result.get_attr("results")?;
    if items.kind() != ValueKind::Seq {
        return Ok(false);
    }
    for item in items.try_iter()? {
        if item.kind() == ValueKind::Map && ansible_bool(&item.get_attr("changed")?) {
            return Ok(true);
        }
    }
    Ok(false)
}
