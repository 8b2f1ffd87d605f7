//! `replace`: replace every match of a multi-line `regexp` in a file (or in
//! the part of it between `after` and `before`), as Ansible's `replace`
//! does: `re.subn` with `re.MULTILINE` over the file's text, a Python
//! replacement template (`\1`, `\g<name>`), changed only when the text
//! differs.
//!
//! Not supported: `validate`, `encoding` (UTF-8 only), `unsafe_writes`.

use regex::bytes::Regex;
use serde::Deserialize;

use super::attributes::Attributes;
use super::file::lenient;
use super::file_edit::{self, NewContent, RemoteKind};
use super::python_re::{compile, compile_with, expand};
use super::{ActionContext, ModuleSpec, Outcome, parse_args};
use crate::transport::TransportError;
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "replace",
    args: &[
        "path", "dest", "destfile", "name", "regexp", "replace", "after", "before", "backup",
        "mode", "owner", "group",
    ],
    free_form: false,
    any_name: false,
    build: |args| Ok(Box::new(Replace::new(parse_args(args)?)?)),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "dest", alias = "destfile", alias = "name")]
    path: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    regexp: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    replace: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    after: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    before: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    backup: bool,
    mode: Option<Value>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    group: Option<String>,
}

struct Replace {
    path: String,
    regexp: Regex,
    replace: String,
    /// Ansible's section pattern built from `after`/`before`, with its text.
    section: Option<(Regex, String)>,
    backup: bool,
    attrs: Attributes,
}

impl Replace {
    fn new(a: Args) -> Result<Self, String> {
        if a.path.is_empty() {
            return Err("path must not be empty".into());
        }
        let Some(regexp) = a.regexp else {
            return Err("missing required arguments: regexp".into());
        };
        let after = a.after.filter(|s| !s.is_empty());
        let before = a.before.filter(|s| !s.is_empty());
        let pattern = match (&after, &before) {
            (Some(x), Some(y)) => Some(format!("{x}(?P<subsection>.*?){y}")),
            (Some(x), None) => Some(format!("{x}(?P<subsection>.*)")),
            (None, Some(y)) => Some(format!("(?P<subsection>.*){y}")),
            (None, None) => None,
        };
        let section = match pattern {
            // re.DOTALL: `.` crosses lines.
            Some(p) => Some((compile("after/before", &format!("(?s){p}"), true)?, p)),
            None => None,
        };
        Ok(Self {
            path: a.path,
            regexp: compile_with("regexp", &regexp, true, true)?,
            replace: a.replace.unwrap_or_default(),
            section,
            backup: a.backup,
            attrs: Attributes::from_args(a.mode.as_ref(), a.owner, a.group)?,
        })
    }

    /// The new content and the number of replacements, or the message of a
    /// section pattern that found nothing.
    fn edit(&self, contents: &[u8]) -> Result<(Vec<u8>, usize), String> {
        let (start, end) = match &self.section {
            None => (0, contents.len()),
            Some((re, text)) => match re.captures(contents).and_then(|c| c.name("subsection")) {
                Some(m) => (m.start(), m.end()),
                None => {
                    return Err(format!(
                        "Pattern for before/after params did not match the given file: {text}"
                    ));
                }
            },
        };
        let section = &contents[start..end];
        let (replaced, count) = subn(&self.regexp, self.replace.as_bytes(), section);
        let mut out = contents[..start].to_vec();
        out.extend_from_slice(&replaced);
        out.extend_from_slice(&contents[end..]);
        Ok((out, count))
    }

    async fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, TransportError> {
        let path = &self.path;
        let file = match file_edit::read(ctx, path).await? {
            Ok(file) => file,
            Err(failed) => return Ok(failed),
        };
        let contents = match &file.kind {
            RemoteKind::Directory => unreachable!("read() fails on a directory"),
            RemoteKind::Missing { .. } => {
                return Ok(Outcome::failed(format!("Path {path} does not exist !")).with("rc", 257));
            }
            RemoteKind::File { content, .. } => content.as_slice(),
        };
        let (after, count) = match self.edit(contents) {
            Ok(edit) => edit,
            // Ansible exits here, before looking at the file's attributes.
            Err(msg) => return Ok(Outcome::ok().with_msg(msg).with("rc", 0)),
        };
        let changed = count > 0 && after != contents;
        let new = NewContent {
            content: &after,
            changed,
            msg: if changed {
                format!("{count} replacements made")
            } else {
                String::new()
            },
        };
        let applied = file_edit::apply(ctx, path, &file, &self.attrs, new, self.backup).await?;
        let mut outcome = applied.outcome.with("rc", 0);
        if !applied.backup.is_empty() {
            outcome = outcome.with("backup_file", applied.backup);
        }
        Ok(outcome)
    }
}

super::action_by_async_run!(Replace);

/// Python's `re.subn(re, template, text)`: every non-overlapping match
/// replaced by the expanded template, and how many there were.
fn subn(re: &Regex, template: &[u8], text: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(text.len());
    let mut last = 0;
    let mut count = 0;
    for caps in re.captures_iter(text) {
        let m = caps.get(0).expect("group 0 is the match");
        out.extend_from_slice(&text[last..m.start()]);
        out.extend_from_slice(&expand(&caps, template));
        last = m.end();
        count += 1;
    }
    out.extend_from_slice(&text[last..]);
    (out, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replace(args: serde_json::Value, text: &str) -> Result<(String, usize), String> {
        let r = Replace::new(parse_args(args)?)?;
        r.edit(text.as_bytes())
            .map(|(c, n)| (String::from_utf8(c).unwrap(), n))
    }

    #[test]
    fn replaces_every_match_line_by_line() {
        let args =
            serde_json::json!({"path": "/x", "regexp": "^(\\w+)=old$", "replace": "\\1=new"});
        assert_eq!(
            replace(args.clone(), "a=old\nb=old\nc=keep\n").unwrap(),
            ("a=new\nb=new\nc=keep\n".into(), 2)
        );
        assert_eq!(replace(args, "none\n").unwrap(), ("none\n".into(), 0));
        // No `replace`: matches are removed.
        let args = serde_json::json!({"path": "/x", "regexp": "#.*"});
        assert_eq!(replace(args, "a # x\n").unwrap().0, "a \n");
    }

    #[test]
    fn only_between_after_and_before() {
        let args = serde_json::json!({"path": "/x", "regexp": "^x$", "replace": "y",
            "after": "\\[s\\]", "before": "\\[t\\]"});
        assert_eq!(
            replace(args.clone(), "x\n[s]\nx\n[t]\nx\n").unwrap().0,
            "x\n[s]\ny\n[t]\nx\n"
        );
        let err = replace(args, "x\n").unwrap_err();
        assert!(
            err.starts_with("Pattern for before/after params did not match"),
            "{err}"
        );
    }

    #[test]
    fn arguments() {
        let build = |v| Replace::new(parse_args(v)?).map(|_| ());
        assert!(build(serde_json::json!({"path": "/x"})).is_err());
        assert!(build(serde_json::json!({"path": "/x", "regexp": "("})).is_err());
        assert!(
            build(serde_json::json!({"path": "/x", "regexp": "a", "encoding": "latin-1"})).is_err()
        );
    }
}
