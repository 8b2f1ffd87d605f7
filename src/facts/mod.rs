//! Facts: what a host is (names, OS, CPU, memory, network, user, time),
//! gathered as Ansible's `setup` module gathers them and under the same
//! names, both as `ansible_facts.X` and as the injected `ansible_X`.
//!
//! One round trip per host: [`script`] prints raw sections (`gather.sh`),
//! and the facts are derived here, on the controller, from that text. The
//! host needs no Python and no agent; a tool it lacks leaves its facts
//! empty, as Ansible's do. The whole script always runs (it costs one round
//! trip either way); `gather_subset` and `filter` choose what is kept.

mod derive;
mod distribution;
mod managers;
mod subset;

use std::collections::BTreeMap;

pub use subset::Subset;

use crate::transport::ShellScript;
use crate::vars::{Value, VarMap};

/// The gathering script (code only: it takes no values).
pub fn script() -> ShellScript {
    ShellScript::new().code(include_str!("gather.sh"))
}

/// The facts (un-prefixed names, as under `ansible_facts`) from the
/// script's output, those of `subset` kept, then those `filter` matches
/// (shell-style patterns, with or without the `ansible_` prefix; none
/// keeps all).
pub fn from_output(stdout: &str, subset: &Subset, filter: &[String]) -> VarMap {
    let raw = sections(stdout);
    let mut facts = VarMap::new();
    for collector in subset.collectors() {
        derive::collect(collector, &raw, &mut facts);
    }
    // Ansible's service_mgr and pkg_mgr read what distribution found.
    if subset.has("service_mgr") {
        facts.insert("service_mgr".into(), managers::service_mgr(&raw).into());
    }
    if subset.has("pkg_mgr") {
        let family = distribution::facts(&raw)
            .get("os_family")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        facts.insert("pkg_mgr".into(), managers::pkg_mgr(&raw, &family).into());
    }
    facts.insert("gather_subset".into(), subset.as_written().into());
    facts.insert("module_setup".into(), true.into());
    if !filter.is_empty() {
        let patterns: Vec<regex::Regex> = filter
            .iter()
            .filter_map(|f| regex::Regex::new(&crate::inventory::glob_regex(f)).ok())
            .collect();
        facts.retain(|name, _| {
            let prefixed = format!("ansible_{name}");
            patterns
                .iter()
                .any(|p| p.is_match(name) || p.is_match(&prefixed))
        });
    }
    facts
}

/// What a host's variables gain: `ansible_facts` (merged over what an
/// earlier gathering left) and every fact again as `ansible_X`, as
/// Ansible injects them (`inject_facts_as_vars`, its default).
pub fn injected(earlier: &VarMap, facts: &VarMap) -> VarMap {
    let mut all = match earlier.get("ansible_facts") {
        Some(Value::Object(m)) => m.clone(),
        _ => VarMap::new(),
    };
    crate::vars::merge(&mut all, facts);
    let mut vars = VarMap::new();
    for (name, value) in all
        .iter()
        .filter(|(n, _)| !UNPREFIXED.contains(&n.as_str()))
    {
        vars.insert(format!("ansible_{name}"), value.clone());
    }
    vars.insert("ansible_facts".into(), Value::Object(all));
    vars
}

/// The setup module's own keys, which it returns without the `ansible_` prefix.
const UNPREFIXED: &[&str] = &["gather_subset", "module_setup"];

/// The facts as the `setup` module returns them (what `register` holds
/// under `ansible_facts`): `ansible_`-prefixed, but for its own two keys.
pub fn as_returned(facts: &VarMap) -> VarMap {
    facts
        .iter()
        .map(|(name, value)| {
            let key = if UNPREFIXED.contains(&name.as_str()) {
                name.clone()
            } else {
                format!("ansible_{name}")
            };
            (key, value.clone())
        })
        .collect()
}

/// Every name gathering may define (for the checks made before the run,
/// which let a template read a fact that is not there yet).
pub fn names() -> impl Iterator<Item = String> {
    std::iter::once("ansible_facts".to_owned()).chain(
        derive::NAMES
            .iter()
            .chain(["service_mgr", "pkg_mgr"].iter())
            .map(|n| format!("ansible_{n}")),
    )
}

/// `@@name` sections of the script's output, by name.
fn sections(stdout: &str) -> BTreeMap<&str, &str> {
    let mut out = BTreeMap::new();
    let mut rest = stdout;
    while let Some(start) = rest.find("\n@@") {
        rest = &rest[start + 3..];
        let (name, body) = rest.split_once('\n').unwrap_or((rest, ""));
        let end = body.find("\n@@").unwrap_or(body.len());
        out.insert(name.trim(), &body[..end]);
        rest = &body[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_split_on_markers() {
        let s = sections("\n@@a\none\ntwo\n@@b\n\n@@c\nx");
        assert_eq!(s["a"], "one\ntwo");
        assert_eq!(s["b"], "");
        assert_eq!(s["c"], "x");
    }
}
