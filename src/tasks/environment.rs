//! `environment:`: the variables a module's remote process gets, merged
//! as ansible-core merges them (ActionBase._compute_environment_string):
//! the play's entries first, then each enclosing block's (a role's too),
//! then the task's, each rendered for the host and item, a later name over
//! an earlier one. Values are Python's `str()` of what they render to, and
//! reach the host as quoted shell words: a value is never code.
//!
//! A module gets them through [`super::ActionContext::script`], which sets
//! them for the shell its script starts (see `Script::env`): every program
//! the module runs on the host inherits them, as every process an
//! ansible-core module starts inherits its own environment.

use crate::transport::ShellScript;
use crate::vars::Value;

/// The variables in force for one module call, in the order first given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    vars: Vec<(String, String)>,
}

impl Environment {
    /// Merges `entries` (outermost first), each rendered by `render`; an
    /// entry that does not render to a mapping, or a name no shell can
    /// hold, is the task's failure.
    pub fn resolve<'v>(
        entries: impl IntoIterator<Item = &'v Value>,
        render: impl Fn(&Value) -> Result<Value, String>,
    ) -> Result<Self, String> {
        let mut env = Environment::default();
        for entry in entries {
            let rendered = render(entry)?;
            let map = match rendered {
                Value::Object(map) => map,
                Value::Null => continue,
                Value::String(s) if s.is_empty() => continue,
                other => {
                    return Err(format!(
                        "environment must be a dictionary, received {} ({})",
                        crate::python_text::str(&other),
                        python_type(&other)
                    ));
                }
            };
            for (name, value) in map {
                if !ShellScript::is_variable_name(&name) {
                    return Err(format!(
                        "environment: `{name}` is not a variable name a shell can set"
                    ));
                }
                let text = crate::python_text::str(&value);
                match env.vars.iter_mut().find(|(n, _)| *n == name) {
                    Some(slot) => slot.1 = text,
                    None => env.vars.push((name, text)),
                }
            }
        }
        Ok(env)
    }

    /// The variables, in the order first given; each name one a shell can set.
    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }
}

fn python_type(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "<class 'bool'>",
        Value::Number(n) if n.is_f64() => "<class 'float'>",
        Value::Number(_) => "<class 'int'>",
        Value::String(_) => "<class 'str'>",
        Value::Array(_) => "<class 'list'>",
        _ => "<class 'NoneType'>",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolve(entries: &[Value]) -> Result<Environment, String> {
        Environment::resolve(entries, |v| Ok(v.clone()))
    }

    #[test]
    fn later_entries_win_and_values_are_python_text() {
        let env = resolve(&[
            json!({"A": "play", "B": 1}),
            json!({"A": "task", "C": true}),
        ])
        .unwrap();
        assert_eq!(
            env.vars,
            [("A", "task"), ("B", "1"), ("C", "True")].map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
    }

    /// Runs `code` on this machine as a module's script runs, with `env`.
    fn run_with(env: &Environment, code: &'static str) -> String {
        use crate::transport::{Connection, LocalConnection, Script};
        let conn = Connection::Local(LocalConnection::default());
        let script = ShellScript::new().code(code);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = rt
            .block_on(conn.exec(Script::new(&script).env(env.vars())))
            .unwrap();
        out.stdout_str()
    }

    #[test]
    fn a_value_is_data_in_the_shell() {
        let hostile = "$(touch /tmp/convoy-env-pwned) `x` 'q' \"d\" ; $HOME";
        let env = resolve(&[json!({"X": hostile})]).unwrap();
        assert_eq!(run_with(&env, "printf '%s' \"$X\""), hostile);
    }

    /// A `PATH` without the shell's directory, or an `IFS`, is the
    /// environment of the script's shell from its start, not assignments
    /// in the middle of convoy's own script.
    #[test]
    fn path_and_ifs_do_not_break_the_script() {
        let env = resolve(&[json!({"PATH": "/nonexistent", "IFS": "x"})]).unwrap();
        assert_eq!(
            run_with(
                &env,
                "set -- a b; printf '%s|%s|%s' \"$#\" \"$PATH\" \"$1\""
            ),
            "2|/nonexistent|a"
        );
    }

    #[test]
    fn what_is_not_a_mapping_or_a_name_is_refused() {
        assert_eq!(
            resolve(&[json!("text")]).unwrap_err(),
            "environment must be a dictionary, received text (<class 'str'>)"
        );
        assert!(
            resolve(&[json!({"A-B": "x"})])
                .unwrap_err()
                .contains("`A-B`")
        );
        assert!(resolve(&[json!({"A;rm": "x"})]).is_err());
    }
}
