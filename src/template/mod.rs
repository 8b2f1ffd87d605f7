//! Jinja templating with Ansible's semantics, on minijinja.
//!
//! One [`Templates`] is built per run and shared by every task (it is `Send + Sync`). It is
//! set up the way Ansible sets up Jinja2: strict undefined variables (with the variable
//! named in the error), `trim_blocks` on, `lstrip_blocks` off, trailing newlines kept, no
//! auto-escaping, and the filters, tests, `lookup` function and Python methods playbooks
//! expect ([`filters`], [`patterns`], [`digest`], [`predicates`], [`lookup`], [`methods`]).
//!
//! Template files are found relative to the playbook directory, then under its
//! `templates/` folder, as Ansible's template search does.

mod backslashes;
mod comment;
mod digest;
mod error;
mod filters;
mod lazy;
mod lookup;
mod methods;
mod native;
mod numbers;
mod patterns;
mod percent_format;
mod predicates;
mod pyyaml;
mod sequences;
mod undefined;
pub mod unsafe_text;
mod version;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};

use crate::vars::Value;

pub use error::TemplateError;
use error::{Failure, SourceKind};

/// What `{{ omit }}` renders to: a placeholder no real value equals, which
/// `render_value` drops from the maps and lists it renders (Ansible's
/// remove_omit), so `mode: "{{ omit }}"` leaves the argument out.
pub const OMIT: &str = "__omit_place_holder__convoy__";

/// The template engine for one run, shared by every task.
pub struct Templates {
    /// Shared with the [`lazy::LazyVars`] of each render, which renders
    /// variables that are templates with it.
    env: Arc<Environment<'static>>,
    base_dir: PathBuf,
    shared: RwLock<Shared>,
}

/// Variables every template of the current play sees, converted for the
/// engine once per play ([`Templates::share`]).
#[derive(Default)]
struct Shared {
    json: Option<Arc<Value>>,
    jinja: Option<minijinja::Value>,
}

impl Templates {
    /// base_dir: the playbook's directory. Template files are looked up relative to it
    /// (as given, e.g. "templates/app.conf.j2"), and also under base_dir/templates/ when the
    /// plain path does not exist (Ansible's template search). lookup('file', P) reads
    /// relative to base_dir.
    pub fn new(base_dir: &Path) -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(false);
        // Debug info gives errors the span of the failing expression, which is how the
        // undefined variable gets named; it costs nothing until an error happens.
        env.set_debug(true);
        // minijinja would HTML- or JSON-escape by file extension (.html, .yml, .json...);
        // Ansible never escapes, and a `.yml.j2` config must render verbatim.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_formatter(|out, state, value| {
            // Text as ansible-core writes it: its templar's finalize prints
            // none as nothing; Python prints True, 1.0 and ['a', 1] where
            // minijinja would print true, 1 and ["a", 1].
            use minijinja::value::ValueKind;
            let text = match value.kind() {
                ValueKind::None => String::new(),
                ValueKind::Bool => if value.is_true() { "True" } else { "False" }.to_owned(),
                ValueKind::Number | ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => {
                    match filters::to_serde(value) {
                        Ok(data) => crate::python_text::repr(&data),
                        Err(_) => return minijinja::escape_formatter(out, state, value),
                    }
                }
                _ => return minijinja::escape_formatter(out, state, value),
            };
            out.write_str(&text).map_err(minijinja::Error::from)
        });
        let dir = base_dir.to_path_buf();
        env.set_loader(move |name| load(&dir, name));
        env.add_global("omit", OMIT);
        filters::register(&mut env);
        patterns::register(&mut env);
        digest::register(&mut env);
        comment::register(&mut env);
        sequences::register(&mut env);
        numbers::register(&mut env);
        version::register(&mut env);
        predicates::register(&mut env);
        lookup::register(&mut env, base_dir.to_path_buf());
        env.set_unknown_method_callback(methods::call);
        Templates {
            env: Arc::new(env),
            base_dir: base_dir.to_path_buf(),
            shared: RwLock::default(),
        }
    }

    /// Sets the variables every template sees from now on, under each
    /// render's own (`hostvars`, `groups`, `ansible_play_hosts` of the play
    /// under way). They are converted for the engine here, once: carried in
    /// every host's variables, they were converted again at every render,
    /// which made a play quadratic in the number of hosts.
    pub fn share(&self, vars: Value) {
        let jinja = minijinja::Value::from_serialize(&vars);
        *self.shared.write().expect("not poisoned") = Shared {
            json: Some(Arc::new(vars)),
            jinja: Some(jinja),
        };
    }

    /// `vars` for the engine, over the shared variables. Every render
    /// goes through here, so that every one resolves variables whose
    /// values are templates the same way, when they are read ([`lazy`]).
    fn context(&self, vars: &Value) -> minijinja::Value {
        let own = minijinja::Value::from_serialize(vars);
        let merged = match &self.shared.read().expect("not poisoned").jinja {
            // The last map wins a lookup.
            Some(shared) => minijinja::value::merge_maps([shared.clone(), own]),
            None => own,
        };
        lazy::LazyVars::wrap(self.env.clone(), merged)
    }

    /// The shared variables as data, for naming an undefined variable.
    fn shared_json(&self) -> Option<Arc<Value>> {
        self.shared.read().expect("not poisoned").json.clone()
    }

    /// Renders a template string. `origin` names where it came from for errors
    /// (e.g. "playbooks/site.yml:12:9" or a task name).
    pub fn render_str(
        &self,
        source: &str,
        vars: &Value,
        origin: &str,
    ) -> Result<String, TemplateError> {
        if !native::has_markers(source) {
            return Ok(source.to_string());
        }
        self.render_inline(source, &self.context(vars), vars, origin)
    }

    /// Renders like [`render_value`](Self::render_value), again and again
    /// while the result is still a template: Ansible templates recursively,
    /// so a variable whose value is `"{{ base }}/x"` ends up fully rendered.
    pub fn render_deep(
        &self,
        value: &Value,
        vars: &Value,
        origin: &str,
    ) -> Result<Value, TemplateError> {
        self.render_deep_marked(value, vars, origin).map(plain)
    }

    /// [`render_deep`](Self::render_deep), text read from `!unsafe` values
    /// left marked ([`unsafe_text`]): for values that become variables
    /// again (loop items, `set_fact`), which must not be templated later.
    pub fn render_deep_marked(
        &self,
        value: &Value,
        vars: &Value,
        origin: &str,
    ) -> Result<Value, TemplateError> {
        let mut current = self.render_value_marked(value, vars, origin)?;
        for _ in 0..8 {
            if !contains_template(&current) {
                break;
            }
            let next = self.render_value_marked(&current, vars, origin)?;
            if next == current {
                break;
            }
            current = next;
        }
        Ok(current)
    }

    /// A string rendered with [`render_deep`](Self::render_deep).
    pub fn render_str_deep(
        &self,
        source: &str,
        vars: &Value,
        origin: &str,
    ) -> Result<String, TemplateError> {
        Ok(
            match self.render_deep(&Value::String(source.to_owned()), vars, origin)? {
                Value::String(s) => s,
                other => other.to_string(),
            },
        )
    }

    /// Recursively renders every string inside a value (maps, lists). A string that is exactly
    /// one expression "{{ expr }}" (surrounding whitespace allowed) yields the expression's
    /// native value (list, map, bool, number), like Ansible's native types; other strings
    /// render to strings. Strings without "{{" / "{%" / "{#" are returned untouched without
    /// going through the engine (fast path). Map keys are not rendered, as in Ansible.
    pub fn render_value(
        &self,
        value: &Value,
        vars: &Value,
        origin: &str,
    ) -> Result<Value, TemplateError> {
        self.render_value_marked(value, vars, origin).map(plain)
    }

    /// [`render_value`](Self::render_value), `!unsafe` text left marked
    /// (see [`render_deep_marked`](Self::render_deep_marked)).
    pub fn render_value_marked(
        &self,
        value: &Value,
        vars: &Value,
        origin: &str,
    ) -> Result<Value, TemplateError> {
        // The variables are converted for the engine once, and only if some string needs it.
        let mut ctx = None;
        self.render_value_with(value, vars, &mut ctx, origin)
    }

    fn render_value_with(
        &self,
        value: &Value,
        vars: &Value,
        ctx: &mut Option<minijinja::Value>,
        origin: &str,
    ) -> Result<Value, TemplateError> {
        match value {
            Value::String(s) if native::has_markers(s) => {
                let ctx = &*ctx.get_or_insert_with(|| self.context(vars));
                let (rendered, read_unsafe) =
                    unsafe_text::tracking(|| match native::single_expression(s) {
                        Some(expr) => {
                            let expr = backslashes::escape_literals(expr);
                            let result = self.eval_in(&expr, ctx, vars, origin)?;
                            let mut value = to_vars_value(&result, origin)?;
                            native::trailing_newline(s, &mut value);
                            Ok(value)
                        }
                        None => self
                            .render_inline(s, ctx, vars, origin)
                            .map(|text| native::concat_rendered(s, text)),
                    });
                // What was made of unsafe text is unsafe too, as in
                // ansible-core: it is never templated again.
                if read_unsafe {
                    rendered.map(unsafe_text::mark_strings)
                } else {
                    rendered
                }
            }
            // Never templated; kept marked for whoever reads it next.
            Value::Object(_) if unsafe_text::text(value).is_some() => Ok(value.clone()),
            // An argument or item that renders to `omit` is left out, as
            // Ansible's remove_omit does.
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let rendered = self.render_value_with(item, vars, ctx, origin)?;
                    if rendered != OMIT {
                        out.push(rendered);
                    }
                }
                Ok(Value::Array(out))
            }
            Value::Object(map) => {
                let mut out = crate::vars::VarMap::with_capacity(map.len());
                for (key, item) in map {
                    let rendered = self.render_value_with(item, vars, ctx, origin)?;
                    if rendered != OMIT {
                        out.insert(key.clone(), rendered);
                    }
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    /// Renders a template file (path as written in the playbook, resolved as above).
    /// Missing file => TemplateError::NotFound naming the path.
    pub fn render_file(&self, path: &str, vars: &Value) -> Result<String, TemplateError> {
        if self.resolve(path).is_none() {
            return Err(TemplateError::NotFound {
                path: path.to_string(),
            });
        }
        let shared = self.shared_json();
        let failure = |source: &str, err: &minijinja::Error| {
            Failure {
                source,
                name: path,
                kind: SourceKind::File,
                env: &self.env,
                vars,
                shared: shared.as_deref(),
            }
            .translate(err)
        };
        let template = self
            .env
            .get_template(path)
            .map_err(|err| match err.kind() {
                // Deleted between the check above and the load.
                ErrorKind::TemplateNotFound if err.name().is_none() => TemplateError::NotFound {
                    path: path.to_string(),
                },
                _ => failure("", &err),
            })?;
        template
            .render(self.context(vars))
            .map_err(|err| failure(template.source(), &err))
    }

    /// Whether the template file `path` may read `variable` (a dotted path
    /// like `traffic.tenants`): it names the variable or something under
    /// it, or it includes, imports or extends another template (which is
    /// not followed). `None` when the file does not load.
    pub fn may_read(&self, path: &str, variable: &str) -> Option<bool> {
        let template = self.env.get_template(path).ok()?;
        let pulls_in_another = template.source().split("{%").skip(1).any(|tag| {
            let word = tag.trim_start_matches(['-', '+']).trim_start();
            ["include", "import", "from", "extends"]
                .iter()
                .any(|w| word.starts_with(w))
        });
        if pulls_in_another {
            return Some(true);
        }
        let under = format!("{variable}.");
        Some(
            template
                .undeclared_variables(true)
                .iter()
                .any(|name| name == variable || name.starts_with(&under)),
        )
    }

    /// Resolves a template path as described (for existence checks at load time).
    pub fn resolve(&self, path: &str) -> Option<PathBuf> {
        resolve_in(&self.base_dir, path)
    }

    /// Evaluates a bare Jinja expression (Ansible `when:`, `failed_when:`, `changed_when:`,
    /// `that:` items, `loop:` given bare) to a value.
    /// Accepts bare expressions ("x is defined", "result.rc != 0") and also "{{ expr }}".
    pub fn eval(&self, expr: &str, vars: &Value, origin: &str) -> Result<Value, TemplateError> {
        let ctx = self.context(vars);
        let source: Cow<str> = match native::single_expression(expr) {
            Some(inner) => Cow::Borrowed(inner),
            // Old-style conditionals with templates inside ("{{ a }} == 1"): Ansible renders
            // them first and evaluates the result.
            None if native::has_markers(expr) => {
                Cow::Owned(self.render_inline(expr, &ctx, vars, origin)?)
            }
            None => Cow::Borrowed(expr),
        };
        let result = self.eval_in(&source, &ctx, vars, origin)?;
        to_vars_value(&result, origin)
    }

    /// eval + Jinja truthiness (Ansible semantics: the strings "yes","true","on","1" are
    /// true; "no","false","off","0","" false).
    pub fn eval_bool(&self, expr: &str, vars: &Value, origin: &str) -> Result<bool, TemplateError> {
        Ok(native::truthy(&self.eval(expr, vars, origin)?))
    }

    /// Renders a string from a playbook against already-converted variables.
    fn render_inline(
        &self,
        source: &str,
        ctx: &minijinja::Value,
        vars: &Value,
        origin: &str,
    ) -> Result<String, TemplateError> {
        let shared = self.shared_json();
        let failure = Failure {
            source,
            name: origin,
            kind: SourceKind::Inline,
            env: &self.env,
            vars,
            shared: shared.as_deref(),
        };
        let escaped = backslashes::escape_in_expressions(source);
        let formatted = percent_format::in_template(&escaped);
        let template = self
            .env
            .template_from_named_str(origin, &formatted)
            .map_err(|err| failure.translate(&err))?;
        template.render(ctx).map_err(|err| failure.translate(&err))
    }

    /// Evaluates one expression; an undefined result is an error, as strict mode makes it in
    /// templates.
    fn eval_in(
        &self,
        source: &str,
        ctx: &minijinja::Value,
        vars: &Value,
        origin: &str,
    ) -> Result<minijinja::Value, TemplateError> {
        let shared = self.shared_json();
        let failure = Failure {
            source,
            name: origin,
            kind: SourceKind::Expression,
            env: &self.env,
            vars,
            shared: shared.as_deref(),
        };
        let formatted = percent_format::in_expression(source);
        let expression = self
            .env
            .compile_expression(&formatted)
            .map_err(|err| failure.translate(&err))?;
        let result = expression
            .eval(ctx)
            .map_err(|err| failure.translate(&err))?;
        if result.is_undefined() {
            return Err(failure.undefined_result());
        }
        Ok(result)
    }
}

/// The playbook-relative path, else the same under `templates/`.
fn resolve_in(base_dir: &Path, path: &str) -> Option<PathBuf> {
    [base_dir.join(path), base_dir.join("templates").join(path)]
        .into_iter()
        .find(|candidate| candidate.is_file())
}

/// The loader behind `render_file` and `{% include %}` / `{% import %}` in templates.
fn load(base_dir: &Path, name: &str) -> Result<Option<String>, minijinja::Error> {
    let Some(path) = resolve_in(base_dir, name) else {
        return Ok(None);
    };
    // Python's `'...' % x` in template files too (see `percent_format`).
    let text =
        std::fs::read_to_string(&path).map(|text| percent_format::in_template(&text).into_owned());
    text.map(Some).map_err(|err| {
        minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("cannot read template {}", path.display()),
        )
        .with_source(err)
    })
}

/// `value` without marks (most values hold none and are not copied).
fn plain(value: Value) -> Value {
    if unsafe_text::holds_mark(&value) {
        unsafe_text::plain(value)
    } else {
        value
    }
}

fn to_vars_value(value: &minijinja::Value, origin: &str) -> Result<Value, TemplateError> {
    serde_json::to_value(value).map_err(|err| TemplateError::Render {
        location: origin.to_string(),
        detail: format!("cannot convert the result to data: {err}"),
    })
}

#[cfg(test)]
mod tests;

fn contains_template(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("{{") || s.contains("{%"),
        Value::Array(a) => a.iter().any(contains_template),
        Value::Object(_) if unsafe_text::text(v).is_some() => false,
        Value::Object(m) => m.values().any(contains_template),
        _ => false,
    }
}
