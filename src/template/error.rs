//! Template errors, and the translation of minijinja's errors into them.
//!
//! minijinja reports a strict-undefined failure as a bare "undefined value"; users need to
//! know *which* variable, so the translation asks [`super::undefined`] to name it.

use std::collections::HashSet;

use minijinja::ErrorKind;

use super::undefined;

/// Detail carried by the `mandatory` filter's error so the translation can recognise it.
pub(crate) const MANDATORY_DETAIL: &str = "mandatory variable not defined";

/// Why rendering or evaluating a template failed.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A variable (or attribute path) the template uses is not defined.
    #[error("undefined variable `{name}` in {location}")]
    Undefined {
        /// The variable as written, with its attribute path (`app.missing_attr`).
        name: String,
        /// Template file and line (`templates/app.conf.j2:3`) or the caller's origin.
        location: String,
    },
    /// The `mandatory` filter was applied to an undefined variable.
    #[error("mandatory variable `{name}` not defined in {location}")]
    Mandatory {
        /// The variable the filter was applied to.
        name: String,
        /// Where, as for [`TemplateError::Undefined`].
        location: String,
    },
    /// The template or expression does not parse.
    #[error("template syntax error in {location}: {detail}")]
    Syntax {
        /// Where, as for [`TemplateError::Undefined`].
        location: String,
        /// minijinja's description of the problem.
        detail: String,
    },
    /// Any other failure while rendering (bad filter argument, type error, failed lookup...).
    #[error("template error in {location}: {detail}")]
    Render {
        /// Where, as for [`TemplateError::Undefined`].
        location: String,
        /// minijinja's (or the filter's) description of the problem.
        detail: String,
    },
    /// A template file does not exist (neither as given nor under `templates/`).
    #[error("template file not found: {path}")]
    NotFound {
        /// The path as written in the playbook.
        path: String,
    },
}

impl TemplateError {
    /// The undefined variable's path as reported (`app.missing_attr`), for undefined and
    /// mandatory-variable errors; callers use its root to tell variables that only come
    /// into being at run time (registered results, facts) from typos.
    pub fn undefined_name(&self) -> Option<&str> {
        match self {
            TemplateError::Undefined { name, .. } | TemplateError::Mandatory { name, .. } => {
                Some(name)
            }
            _ => None,
        }
    }
}

/// How the failing source was run; decides how its location is written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceKind {
    /// A template file: located as `path:line`.
    File,
    /// A string from a playbook: the origin already says where it lives, so a file-style
    /// `:line` suffix would mislead; only multi-line strings get a line hint.
    Inline,
    /// A bare expression (`when:` and friends): the origin alone.
    Expression,
}

/// What the failing source was, so an error can be located and its variable named.
pub(crate) struct Failure<'a> {
    /// The source text of the template or expression that was run.
    pub source: &'a str,
    /// Name it was compiled under (the origin for strings, the path for files).
    pub name: &'a str,
    /// How it was run, which decides how locations are written.
    pub kind: SourceKind,
    /// The environment it ran in, to re-parse sources when naming an undefined variable.
    pub env: &'a minijinja::Environment<'static>,
    /// The variables it was rendered with.
    pub vars: &'a serde_json::Value,
    /// The play's shared variables ([`Templates::share`](super::Templates::share)),
    /// seen under `vars`.
    pub shared: Option<&'a serde_json::Value>,
}

impl Failure<'_> {
    /// Every variable the source saw, as layers: `vars`, then the shared ones.
    fn all_vars(&self) -> Vec<&serde_json::Value> {
        std::iter::once(self.vars).chain(self.shared).collect()
    }

    /// Where the error happened: `name:line` for files (or for templates included from a
    /// string), the origin itself for strings, plus the line inside multi-line strings.
    fn location(&self, err: &minijinja::Error) -> String {
        let line = err.line();
        match (self.kind, err.name()) {
            (SourceKind::Expression, _) => self.name.to_string(),
            (_, Some(name)) if name != self.name => match line {
                Some(line) => format!("{name}:{line}"),
                None => name.to_string(),
            },
            (SourceKind::Inline, _) => match line {
                Some(line) if self.source.contains('\n') => {
                    format!("{} (template line {line})", self.name)
                }
                _ => self.name.to_string(),
            },
            (SourceKind::File, _) => match line {
                Some(line) => format!("{}:{line}", self.name),
                None => self.name.to_string(),
            },
        }
    }

    /// Translates a minijinja error raised while compiling or running this source.
    pub fn translate(&self, err: &minijinja::Error) -> TemplateError {
        // A failure inside an included template arrives wrapped ("could not render include");
        // the inner error has the useful name, line and span.
        let inner = std::error::Error::source(err)
            .and_then(|cause| cause.downcast_ref::<minijinja::Error>());
        if let Some(inner) = inner {
            return self.translate(inner);
        }
        let location = self.location(err);
        if err.kind() == ErrorKind::SyntaxError {
            return TemplateError::Syntax {
                location,
                detail: err.detail().unwrap_or("invalid syntax").to_string(),
            };
        }
        if let Some(name) = self.undefined_name(err) {
            return if err.detail() == Some(MANDATORY_DETAIL) {
                TemplateError::Mandatory { name, location }
            } else {
                TemplateError::Undefined { name, location }
            };
        }
        TemplateError::Render {
            location,
            detail: describe(err),
        }
    }

    /// The undefined variable behind `err`, when `err` is about one: strict-undefined
    /// failures, and operators that refused an undefined operand ("... number and undefined").
    fn undefined_name(&self, err: &minijinja::Error) -> Option<String> {
        let about_undefined = err.kind() == ErrorKind::UndefinedError
            || (err.kind() == ErrorKind::InvalidOperation
                && err.detail().is_some_and(|d| d.contains("undefined")));
        if !about_undefined {
            return None;
        }
        if self.kind == SourceKind::Expression {
            // Expression errors carry no span: the whole expression is the place to look.
            let undeclared = self.undeclared(self.source, true);
            return undefined::name_in(self.source, None, &self.all_vars(), &undeclared);
        }
        // Errors from an included template carry that template's source; names must be
        // looked for there, not in ours.
        let source = err.template_source().unwrap_or(self.source);
        let undeclared = self.undeclared(source, false);
        undefined::name_in(source, err.range(), &self.all_vars(), &undeclared)
    }

    /// The names `source` reads from the context rather than declaring itself (loop
    /// variables, `set` targets and macro arguments are declared).
    fn undeclared(&self, source: &str, expression: bool) -> HashSet<String> {
        if expression {
            self.env
                .compile_expression(source)
                .map(|e| e.undeclared_variables(false))
                .unwrap_or_default()
        } else {
            self.env
                .template_from_str(source)
                .map(|t| t.undeclared_variables(false))
                .unwrap_or_default()
        }
    }

    /// The error for an expression that evaluated to undefined without minijinja objecting
    /// (a bare `when: missing`).
    pub fn undefined_result(&self) -> TemplateError {
        let undeclared = self.undeclared(self.source, true);
        let name = undefined::name_in(self.source, None, &self.all_vars(), &undeclared)
            .unwrap_or_else(|| self.source.trim().to_string());
        TemplateError::Undefined {
            name,
            location: self.name.to_string(),
        }
    }
}

/// minijinja's message without its own "(in name:line)" suffix (we give the location), and
/// with the underlying cause (e.g. the I/O error of a failed lookup) when there is one.
fn describe(err: &minijinja::Error) -> String {
    let mut text = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    // Jinja2 (so Ansible) evaluates Python's `'%02d' % x`; minijinja has no
    // such operator, and the `format` filter says the same thing.
    if text.contains("% operator on unsupported types string") {
        text.push_str(" (printf-style `'...' % x` is not supported: write `'...' | format(x)`)");
    }
    text
}
