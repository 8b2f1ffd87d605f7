//! Variables: the one value type every layer shares.
//!
//! Inventory, playbooks, extra vars and registered results are all JSON-shaped
//! data, so convoy keeps them as `serde_json` values (insertion-ordered) and
//! hands them to minijinja as-is.

pub use serde_json::Value;

/// An ordered map of variable names to values.
pub type VarMap = serde_json::Map<String, Value>;

/// Merges `overlay` onto `base`, key by key (later wins; no deep merge, as Ansible's default).
pub fn merge(base: &mut VarMap, overlay: &VarMap) {
    for (k, v) in overlay {
        base.insert(k.clone(), v.clone());
    }
}
