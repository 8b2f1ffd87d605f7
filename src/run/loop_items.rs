//! What a loop item adds to a task's variables, and how its line is
//! labelled: Ansible's `_run_loop` (`loop_control`'s `loop_var`,
//! `index_var`, `extended`, `label`).

use super::Runner;
use super::context::as_value;
use crate::playbook::LoopSpec;
use crate::vars::{Value, VarMap};

/// The variables one loop item adds, as Ansible's `_run_loop` sets them:
/// the item, `ansible_loop_var`, `loop_control.index_var` and, when
/// `extended`, `ansible_loop`. They are also merged into the item's result.
pub fn loop_vars(spec: &LoopSpec, items: &[Value], index: usize) -> VarMap {
    let mut vars = VarMap::new();
    vars.insert(spec.loop_var.clone(), items[index].clone());
    vars.insert("ansible_loop_var".into(), spec.loop_var.clone().into());
    if let Some(index_var) = &spec.index_var {
        vars.insert(index_var.clone(), index.into());
        vars.insert("ansible_index_var".into(), index_var.clone().into());
    }
    if spec.extended {
        let len = items.len();
        let mut ansible_loop = VarMap::new();
        ansible_loop.insert("index".into(), (index + 1).into());
        ansible_loop.insert("index0".into(), index.into());
        ansible_loop.insert("first".into(), (index == 0).into());
        ansible_loop.insert("last".into(), (index + 1 == len).into());
        ansible_loop.insert("length".into(), len.into());
        ansible_loop.insert("revindex".into(), (len - index).into());
        ansible_loop.insert("revindex0".into(), (len - index - 1).into());
        if spec.extended_allitems {
            ansible_loop.insert("allitems".into(), Value::Array(items.to_vec()));
        }
        if let Some(next) = items.get(index + 1) {
            ansible_loop.insert("nextitem".into(), next.clone());
        }
        if index > 0 {
            ansible_loop.insert("previtem".into(), items[index - 1].clone());
        }
        vars.insert("ansible_loop".into(), Value::Object(ansible_loop));
    }
    vars
}

/// The items of a loop for one host: its terms rendered (items stay
/// marked: as `item` they are variables again), then turned into items as
/// its lookup does.
pub fn render_items(
    runner: &Runner<'_>,
    spec: &LoopSpec,
    ctx: &Value,
    origin: &str,
) -> Result<Vec<Value>, String> {
    let terms = runner
        .templates
        .render_value_marked(&spec.items, ctx, origin)
        .map_err(|e| e.to_string())?;
    super::loop_lookups::expand(spec.lookup, terms, &runner.templates, origin)
}

/// `loop_control.label` rendered for the item, or the item itself.
pub fn item_label(
    runner: &Runner<'_>,
    spec: &LoopSpec,
    item: &Value,
    item_ctx: &VarMap,
    origin: &str,
) -> Result<String, String> {
    match &spec.label {
        Some(label) => runner
            .templates
            .render_str(label, &as_value(item_ctx.clone()), origin)
            .map_err(|e| e.to_string()),
        None => Ok(match item {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(extended: bool, allitems: bool) -> LoopSpec {
        LoopSpec {
            lookup: crate::playbook::LoopLookup::Loop,
            items: Value::Null,
            loop_var: "name".into(),
            label: None,
            index_var: Some("i".into()),
            extended,
            extended_allitems: allitems,
            pause: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn extended_loop_vars_are_ansibles() {
        let items = vec![json!("a"), json!("b"), json!("c")];
        let vars = Value::Object(loop_vars(&spec(true, true), &items, 1));
        assert_eq!(
            vars,
            json!({
                "name": "b", "ansible_loop_var": "name", "i": 1, "ansible_index_var": "i",
                "ansible_loop": {
                    "index": 2, "index0": 1, "first": false, "last": false, "length": 3,
                    "revindex": 2, "revindex0": 1, "allitems": ["a", "b", "c"],
                    "nextitem": "c", "previtem": "a"
                }
            })
        );
        let last = loop_vars(&spec(true, false), &items, 2);
        let ansible_loop = &last["ansible_loop"];
        assert_eq!(ansible_loop["last"], json!(true));
        assert!(ansible_loop.get("nextitem").is_none() && ansible_loop.get("allitems").is_none());
        assert!(
            loop_vars(&spec(false, true), &items, 0)
                .get("ansible_loop")
                .is_none()
        );
    }
}
