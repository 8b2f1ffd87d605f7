//! Ansible's `version` test (also `version_compare`): `v is version('2.4', '>=')`.
//!
//! ansible-core compares with distutils' `LooseVersion` unless told
//! otherwise: a version is split into runs of digits (compared as numbers)
//! and runs of letters (compared as text), dots dropped; `strict=true` or
//! `version_type='semver'` are not needed by the projects seen so far and
//! are refused rather than compared differently.

use std::cmp::Ordering;

use minijinja::value::Kwargs;
use minijinja::{Environment, Error, Value};

use super::filters::{invalid, text};

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_test("version", version);
    env.add_test("version_compare", version);
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Number(u128),
    Text(String),
}

/// LooseVersion's components: `1.10b2` -> 1, 10, "b", 2.
fn parts(version: &str) -> Vec<Part> {
    let mut out = Vec::new();
    let mut chars = version.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_ascii_digit() {
            let mut run = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                run.push(d);
                chars.next();
            }
            out.push(Part::Number(run.parse().unwrap_or(u128::MAX)));
        } else if c == '.' {
            chars.next();
        } else {
            let mut run = String::new();
            while let Some(&d) = chars.peek().filter(|d| !d.is_ascii_digit() && **d != '.') {
                run.push(d);
                chars.next();
            }
            out.push(Part::Text(run));
        }
    }
    out
}

fn compare(a: &[Part], b: &[Part]) -> Result<Ordering, Error> {
    for (x, y) in a.iter().zip(b) {
        let order = match (x, y) {
            (Part::Number(x), Part::Number(y)) => x.cmp(y),
            (Part::Text(x), Part::Text(y)) => x.cmp(y),
            // Python 3 cannot order an int and a str; Ansible fails the same way.
            _ => {
                return Err(invalid(
                    "version: cannot compare a number with letters at the same place",
                ));
            }
        };
        if order != Ordering::Equal {
            return Ok(order);
        }
    }
    Ok(a.len().cmp(&b.len()))
}

fn version(
    value: &Value,
    other: &Value,
    operator: Option<String>,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    let strict = kwargs.get::<Option<bool>>("strict")?.unwrap_or(false);
    let kind = kwargs.get::<Option<String>>("version_type")?;
    kwargs.assert_all_used()?;
    if strict || kind.as_deref().is_some_and(|k| k != "loose") {
        return Err(invalid(
            "version: only the default (loose) comparison is supported; strict and version_type are not",
        ));
    }
    let order = compare(&parts(&text(value)?), &parts(&text(other)?))?;
    let op = operator.unwrap_or_else(|| "eq".into());
    Ok(match op.as_str() {
        "==" | "=" | "eq" => order == Ordering::Equal,
        "!=" | "<>" | "ne" => order != Ordering::Equal,
        "<" | "lt" => order == Ordering::Less,
        "<=" | "le" => order != Ordering::Greater,
        ">" | "gt" => order == Ordering::Greater,
        ">=" | "ge" => order != Ordering::Less,
        other => return Err(invalid(format!("version: invalid operator {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_versions_compare_by_parts() {
        let cmp = |a: &str, b: &str| compare(&parts(a), &parts(b)).unwrap();
        assert_eq!(cmp("2.4.10", "2.4.9"), Ordering::Greater);
        assert_eq!(cmp("1.10", "1.9"), Ordering::Greater);
        assert_eq!(cmp("1.0", "1.0.0"), Ordering::Less);
        assert_eq!(cmp("1.2b3", "1.2b10"), Ordering::Less);
        assert!(compare(&parts("1.a"), &parts("1.1")).is_err());
    }
}
