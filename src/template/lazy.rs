//! Variables whose values are templates, rendered when they are looked up.
//!
//! Ansible's templar resolves variables lazily: with `vars: { app_version:
//! "{{ version | default('1.0.0') }}" }`, a template reading `app_version`
//! gets `1.0.0`, in a task argument, a condition, a template file or a
//! release template alike. Every render goes through
//! [`Templates::context`](super::Templates), which wraps the variables in a
//! [`LazyVars`]: a value that is a template string is rendered, in the same
//! variables, at the moment it is read; maps and lists are wrapped so that
//! their values resolve the same way (`nested.v`, `lst[0]`, loops).

use std::cell::Cell;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use minijinja::{Environment, Error, ErrorKind};

use super::native;

/// How deep variables may refer to variables that are templates: deeper is
/// a loop (`a: "{{ b }}"`, `b: "{{ a }}"`), refused as Ansible does.
const MAX_DEPTH: usize = 32;

thread_local! {
    /// Rendering is synchronous: the depth of the resolution under way on this thread.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// The variables of one render, resolving template values on lookup.
#[derive(Debug)]
pub struct LazyVars {
    env: Arc<Environment<'static>>,
    /// The variables as given (a map).
    vars: Value,
}

impl LazyVars {
    pub fn wrap(env: Arc<Environment<'static>>, vars: Value) -> Value {
        Value::from_object(LazyVars { env, vars })
    }
}

impl Object for LazyVars {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let raw = item(&self.vars, key)?;
        if key.as_str() == Some("hostvars") && raw.kind() == minijinja::value::ValueKind::Map {
            return Some(Value::from_object(HostVars {
                root: self.clone(),
                hosts: raw,
            }));
        }
        Some(resolve(self, raw, &key.to_string()))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.vars.try_iter() {
            Ok(keys) => Enumerator::Values(keys.collect()),
            Err(_) => Enumerator::Empty,
        }
    }
}

/// `hostvars`: another host's variables resolve in that host's own
/// variables, as Ansible's HostVars do (`hostvars['h2'].fqdn` with `fqdn:
/// "{{ inventory_hostname }}.corp"` is `h2.corp`, not the current host's).
#[derive(Debug)]
struct HostVars {
    root: Arc<LazyVars>,
    hosts: Value,
}

impl Object for HostVars {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let own = item(&self.hosts, key)?;
        let name = Value::from_iter([("inventory_hostname", key.clone())]);
        let own = minijinja::value::merge_maps([own, name]);
        // Its values render over what the render sees (the play's shared
        // `groups`, filters' context), but only its own keys are its.
        let scope = minijinja::value::merge_maps([self.root.vars.clone(), own.clone()]);
        Some(Value::from_object(HostView {
            scope: Arc::new(LazyVars {
                env: self.root.env.clone(),
                vars: scope,
            }),
            own,
        }))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.hosts.try_iter() {
            Ok(keys) => Enumerator::Values(keys.collect()),
            Err(_) => Enumerator::Empty,
        }
    }
}

/// One host of `hostvars`: the keys are that host's alone (a variable only
/// the current host has is undefined here, as in Ansible, not the current
/// host's value); template values resolve in `scope`, that host's
/// variables over the render's.
#[derive(Debug)]
struct HostView {
    scope: Arc<LazyVars>,
    own: Value,
}

impl Object for HostView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let raw = item(&self.own, key)?;
        Some(resolve(&self.scope, raw, &key.to_string()))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.own.try_iter() {
            Ok(keys) => Enumerator::Values(keys.collect()),
            Err(_) => Enumerator::Empty,
        }
    }
}

/// A map or list inside the variables, its values resolved like the root's.
#[derive(Debug)]
struct LazyNested {
    root: Arc<LazyVars>,
    inner: Value,
    repr: ObjectRepr,
}

impl Object for LazyNested {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        self.repr
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let raw = item(&self.inner, key)?;
        Some(resolve(&self.root, raw, &key.to_string()))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.repr {
            ObjectRepr::Seq => Enumerator::Seq(self.inner.len().unwrap_or(0)),
            _ => match self.inner.try_iter() {
                Ok(keys) => Enumerator::Values(keys.collect()),
                Err(_) => Enumerator::Empty,
            },
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        self.inner.len()
    }
}

/// `raw` as a template reading it sees it: a template string rendered in
/// the root's variables (an error kept in the value, raised where it is
/// used), a container wrapped, anything else as is.
fn resolve(root: &Arc<LazyVars>, raw: Value, key: &str) -> Value {
    use minijinja::value::ValueKind;
    if let Some(text) = unsafe_text(&raw) {
        super::unsafe_text::note_read();
        return text;
    }
    match raw.kind() {
        ValueKind::String => match raw.as_str() {
            Some(s) if native::has_markers(s) => render(root, s, key).unwrap_or_else(Value::from),
            _ => raw,
        },
        ValueKind::Map | ValueKind::Seq if raw.as_object().is_none() || is_plain(&raw) => {
            let repr = if raw.kind() == ValueKind::Seq {
                ObjectRepr::Seq
            } else {
                ObjectRepr::Map
            };
            Value::from_object(LazyNested {
                root: root.clone(),
                inner: raw,
                repr,
            })
        }
        _ => raw,
    }
}

/// The text of a value marked `!unsafe` (see `super::unsafe_text`): a map
/// of that one key. (Checked on every lookup: a length first, cheaply.)
fn unsafe_text(raw: &Value) -> Option<Value> {
    if raw.kind() != minijinja::value::ValueKind::Map || raw.len() != Some(1) {
        return None;
    }
    let text = raw.get_attr(super::unsafe_text::KEY).ok()?;
    text.as_str().is_some().then_some(text)
}

/// Plain data (from the variables), not an object of the engine's that
/// has behaviour of its own (a loop, a namespace, a macro).
fn is_plain(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|o| matches!(o.repr(), ObjectRepr::Map | ObjectRepr::Seq))
}

/// Renders one template value (of the variable or key `key`) in the root's variables.
fn render(root: &Arc<LazyVars>, source: &str, key: &str) -> Result<Value, Error> {
    let depth = DEPTH.with(|d| d.get());
    if depth >= MAX_DEPTH {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("recursive loop detected in template string: {source}"),
        ));
    }
    DEPTH.with(|d| d.set(depth + 1));
    let ctx = Value::from_dyn_object(root.clone());
    // Errors name where the template came from: this variable's value.
    let name = format!("the value of `{key}`");
    // Backslashes in literals as Ansible keeps them (see `backslashes`).
    let escaped = super::backslashes::escape_in_expressions(source);
    // Python's `'...' % x`, which minijinja lacks (see `percent_format`).
    let formatted = super::percent_format::in_template(&escaped);
    let source = formatted.as_ref();
    let result = match native::single_expression(source) {
        // A whole-string expression keeps its type (a list stays a list).
        Some(expr) => match root.env.compile_expression(expr).and_then(|e| e.eval(&ctx)) {
            // Strict, as a template would be (an expression is not):
            // rendered as a template, the error names the undefined variable.
            Ok(v) if v.is_undefined() => {
                root.env
                    .render_named_str(&name, source, &ctx)
                    .and(Err(Error::new(
                        ErrorKind::UndefinedError,
                        "undefined value",
                    )))
            }
            // The newline Jinja dropped from the source, back on a string (see native).
            Ok(v) if source.ends_with('\n') && v.as_str().is_some_and(|t| !t.ends_with('\n')) => {
                Ok(Value::from(format!("{}\n", v.as_str().unwrap_or_default())))
            }
            other => other,
        },
        None => root
            .env
            .render_named_str(&name, source, &ctx)
            .map(|text| Value::from_serialize(native::concat_rendered(source, text))),
    };
    DEPTH.with(|d| d.set(depth));
    result
}

/// `container[key]`, none when missing (so that the lookup is undefined).
fn item(container: &Value, key: &Value) -> Option<Value> {
    container.get_item(key).ok().filter(|v| !v.is_undefined())
}
