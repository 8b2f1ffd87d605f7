//! `lineinfile`: make sure one line is in a file (replacing the last line a
//! `regexp` matches, or inserting it after/before a marker) or that lines
//! are not, as Ansible's `lineinfile` does.
//!
//! One round trip reads the file with its attributes; the new content is
//! computed here by [`present`]/[`absent`], which follow Ansible's algorithm
//! line for line, and the file is written (atomically) only when it differs.
//! Patterns use the `regex` crate on bytes with ASCII classes, like Python's
//! `re` on bytes, minus look-around and back-references in the pattern.
//!
//! Not supported: `validate`, `unsafe_writes`, SELinux attributes.

use regex::bytes::Regex;
use serde::Deserialize;

use super::attributes::Attributes;
use super::file::lenient;
use super::file_edit::{self, NewContent, RemoteKind};
use super::python_re::{compile, expand};
use super::{ActionContext, ModuleSpec, Outcome, parse_args};
use crate::transport::TransportError;
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "lineinfile",
    args: &[
        "path",
        "dest",
        "destfile",
        "name",
        "line",
        "value",
        "regexp",
        "regex",
        "search_string",
        "state",
        "insertafter",
        "insertbefore",
        "create",
        "backrefs",
        "firstmatch",
        "backup",
        "mode",
        "owner",
        "group",
    ],
    free_form: false,
    any_name: false,
    build: |args| Ok(Box::new(LineInFile::new(parse_args(args)?)?)),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "dest", alias = "destfile", alias = "name")]
    path: String,
    #[serde(default, alias = "value", deserialize_with = "lenient::opt_string")]
    line: Option<String>,
    #[serde(default, alias = "regex", deserialize_with = "lenient::opt_string")]
    regexp: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    search_string: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    state: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    insertafter: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    insertbefore: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    create: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    backrefs: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    firstmatch: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    backup: bool,
    mode: Option<Value>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    group: Option<String>,
}

/// How lines are found (Ansible's `regexp` or `search_string`).
#[derive(Debug)]
pub(super) enum Matcher {
    Regex(Regex),
    Search(Vec<u8>),
}

impl Matcher {
    fn matches(&self, line: &[u8]) -> bool {
        match self {
            Matcher::Regex(re) => re.is_match(without_newline(line)),
            Matcher::Search(s) => s.is_empty() || line.windows(s.len()).any(|w| w == s.as_slice()),
        }
    }
}

/// Where a missing line goes.
#[derive(Debug)]
pub(super) enum Insert {
    Eof,
    Bof,
    After(Regex),
    Before(Regex),
}

/// The result of editing a file's content.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Edit {
    pub content: Vec<u8>,
    pub changed: bool,
    pub msg: String,
    /// Lines removed (`state: absent`).
    pub found: usize,
}

struct LineInFile {
    path: String,
    present: bool,
    line: Option<String>,
    matcher: Option<Matcher>,
    insert: Insert,
    create: bool,
    backrefs: bool,
    firstmatch: bool,
    backup: bool,
    attrs: Attributes,
}

impl LineInFile {
    fn new(a: Args) -> Result<Self, String> {
        let present = file_edit::present(a.state.as_deref(), &a.path)?;
        for (x, y, both) in [
            (
                "insertbefore",
                "insertafter",
                a.insertbefore.is_some() && a.insertafter.is_some(),
            ),
            (
                "regexp",
                "search_string",
                a.regexp.is_some() && a.search_string.is_some(),
            ),
            (
                "backrefs",
                "search_string",
                a.backrefs && a.search_string.is_some(),
            ),
        ] {
            if both {
                return Err(format!("parameters are mutually exclusive: {x}|{y}"));
            }
        }
        if present && a.backrefs && a.regexp.is_none() {
            return Err("regexp is required with backrefs=true".into());
        }
        if present && a.line.is_none() {
            return Err("line is required with state=present".into());
        }
        if !present && a.line.is_none() && a.regexp.is_none() && a.search_string.is_none() {
            return Err(
                "one of line, search_string, or regexp is required with state=absent".into(),
            );
        }
        let matcher = match (&a.regexp, &a.search_string) {
            (Some(re), _) => Some(Matcher::Regex(compile("regexp", re, false)?)),
            (None, Some(s)) => Some(Matcher::Search(s.clone().into_bytes())),
            (None, None) => None,
        };
        let insert = match (a.insertbefore.as_deref(), a.insertafter.as_deref()) {
            (Some("BOF"), _) | (None, Some("BOF")) => Insert::Bof,
            (Some(re), _) => Insert::Before(compile("insertbefore", re, false)?),
            (None, None | Some("EOF")) => Insert::Eof,
            (None, Some(re)) => Insert::After(compile("insertafter", re, false)?),
        };
        let attrs = Attributes::from_args(a.mode.as_ref(), a.owner, a.group)?;
        Ok(Self {
            path: a.path,
            present,
            line: a.line,
            matcher,
            insert,
            create: a.create,
            backrefs: a.backrefs,
            firstmatch: a.firstmatch,
            backup: a.backup,
            attrs,
        })
    }

    fn edit(&self, content: &[u8]) -> Edit {
        let line = self.line.as_deref().map(str::as_bytes);
        if self.present {
            let line = line.expect("checked when built");
            present(
                content,
                line,
                self.matcher.as_ref(),
                &self.insert,
                self.firstmatch,
                self.backrefs,
            )
        } else {
            absent(content, line, self.matcher.as_ref())
        }
    }

    async fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, TransportError> {
        let path = &self.path;
        let file = match file_edit::read(ctx, path).await? {
            Ok(file) => file,
            Err(failed) => return Ok(failed),
        };
        let content = match &file.kind {
            RemoteKind::Directory => unreachable!("read() fails on a directory"),
            RemoteKind::Missing { .. } if !self.present => {
                return Ok(Outcome::ok()
                    .with_msg("file not present")
                    .with("backup", ""));
            }
            RemoteKind::Missing { .. } if !self.create => {
                return Ok(Outcome::failed(format!(
                    "Destination {path} does not exist !"
                )));
            }
            RemoteKind::Missing { .. } => &[][..],
            RemoteKind::File { content, .. } => content.as_slice(),
        };
        let edit = self.edit(content);
        let new = NewContent {
            content: &edit.content,
            changed: edit.changed,
            msg: edit.msg,
        };
        let applied = file_edit::apply(ctx, path, &file, &self.attrs, new, self.backup).await?;
        let mut outcome = applied.outcome.with("backup", applied.backup);
        if !self.present {
            outcome = outcome.with("found", edit.found);
        }
        Ok(outcome)
    }
}

super::action_by_async_run!(LineInFile);

/// Fills `\1`, `\g<name>` in `template` from `re` matched against `line`.
fn expand_line(re: &Regex, line: &[u8], template: &[u8]) -> Vec<u8> {
    match re.captures(without_newline(line)) {
        Some(caps) => expand(&caps, template),
        None => template.to_vec(),
    }
}

/// Splits after each `\n`, as Python's `readlines` does.
fn split_lines(content: &[u8]) -> Vec<Vec<u8>> {
    content
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// A line as patterns see it: Python's `$` matches before a final newline.
fn without_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// Python's `rstrip(b'\r\n')`.
fn rstrip(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|&b| b != b'\r' && b != b'\n')
        .map_or(0, |i| i + 1);
    &line[..end]
}

fn ends_line(line: &[u8]) -> bool {
    matches!(line.last(), Some(b'\n' | b'\r'))
}

/// Ansible's `present()`: the last (or with `firstmatch` the first) line
/// the matcher finds is replaced by `line`; otherwise, unless the line is
/// already there, it is inserted after/before the last (first) line the
/// insert pattern matches, or at the end of the file.
pub(super) fn present(
    content: &[u8],
    line: &[u8],
    matcher: Option<&Matcher>,
    insert: &Insert,
    firstmatch: bool,
    backrefs: bool,
) -> Edit {
    let mut lines = split_lines(content);
    let mut found: Option<usize> = None;
    let mut matched = false;
    if let Some(m) = matcher {
        for (i, l) in lines.iter().enumerate() {
            if m.matches(l) {
                found = Some(i);
                matched = true;
                if firstmatch {
                    break;
                }
            }
        }
    }
    let mut anchor: Option<usize> = None;
    if !matched {
        for (i, l) in lines.iter().enumerate() {
            if rstrip(l) == line {
                found = Some(i);
            } else {
                let hit = match insert {
                    Insert::After(re) if re.is_match(without_newline(l)) => Some(i + 1),
                    Insert::Before(re) if re.is_match(without_newline(l)) => Some(i),
                    _ => None,
                };
                if hit.is_some() {
                    anchor = hit;
                    if firstmatch {
                        break;
                    }
                }
            }
        }
    }
    let with_nl = |l: &[u8]| {
        let mut v = l.to_vec();
        v.push(b'\n');
        v
    };
    let mut msg = "";
    if let Some(i) = found {
        let mut new_line = match matcher {
            Some(Matcher::Regex(re)) if backrefs && matched => expand_line(re, &lines[i], line),
            _ => line.to_vec(),
        };
        if !new_line.ends_with(b"\n") {
            new_line.push(b'\n');
        }
        if lines[i] != new_line {
            lines[i] = new_line;
            msg = "line replaced";
        }
    } else if backrefs {
        // Without a match there is nothing to fill the back-references with: leave the file alone.
    } else if matches!(insert, Insert::Bof) {
        lines.insert(0, with_nl(line));
        msg = "line added";
    } else if matches!(insert, Insert::Eof) || anchor.is_none() {
        if lines.last().is_some_and(|l| !ends_line(l)) {
            lines.push(b"\n".to_vec());
        }
        lines.push(with_nl(line));
        msg = "line added";
    } else if let (Insert::After(_), Some(at)) = (insert, anchor) {
        if at == lines.len() {
            if rstrip(&lines[at - 1]) != line {
                // Unlike Ansible, end an unterminated last line first instead of joining onto it.
                if !ends_line(&lines[at - 1]) {
                    lines[at - 1].push(b'\n');
                }
                lines.push(with_nl(line));
                msg = "line added";
            }
        } else if rstrip(&lines[at]) != line {
            lines.insert(at, with_nl(line));
            msg = "line added";
        }
    } else if let Some(at) = anchor {
        lines.insert(at, with_nl(line));
        msg = "line added";
    }
    Edit {
        content: lines.concat(),
        changed: !msg.is_empty(),
        msg: msg.to_owned(),
        found: 0,
    }
}

/// Ansible's `absent()`: removes every line the matcher finds (or, without
/// one, every line equal to `line`).
pub(super) fn absent(content: &[u8], line: Option<&[u8]>, matcher: Option<&Matcher>) -> Edit {
    let lines = split_lines(content);
    let total = lines.len();
    let kept: Vec<Vec<u8>> = lines
        .into_iter()
        .filter(|l| match (matcher, line) {
            (Some(m), _) => !m.matches(l),
            (None, Some(line)) => rstrip(l) != line,
            (None, None) => true,
        })
        .collect();
    let found = total - kept.len();
    Edit {
        content: kept.concat(),
        changed: found > 0,
        msg: if found > 0 {
            format!("{found} line(s) removed")
        } else {
            String::new()
        },
        found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> Regex {
        compile("regexp", p, false).unwrap()
    }

    fn add(
        content: &str,
        line: &str,
        m: Option<Matcher>,
        insert: Insert,
    ) -> (String, &'static str) {
        let e = present(
            content.as_bytes(),
            line.as_bytes(),
            m.as_ref(),
            &insert,
            false,
            false,
        );
        let msg = match e.msg.as_str() {
            "line added" => "added",
            "line replaced" => "replaced",
            "" => "",
            other => panic!("{other}"),
        };
        (String::from_utf8(e.content).unwrap(), msg)
    }

    #[test]
    fn appends_once() {
        assert_eq!(
            add("a\nb\n", "c", None, Insert::Eof),
            ("a\nb\nc\n".into(), "added")
        );
        assert_eq!(
            add("a\nc\nb\n", "c", None, Insert::Eof),
            ("a\nc\nb\n".into(), "")
        );
        assert_eq!(add("a", "c", None, Insert::Eof), ("a\nc\n".into(), "added"));
        assert_eq!(add("", "c", None, Insert::Eof), ("c\n".into(), "added"));
        // An exact line without its newline gets one (Ansible's "line replaced").
        assert_eq!(
            add("a\nc", "c", None, Insert::Eof),
            ("a\nc\n".into(), "replaced")
        );
    }

    #[test]
    fn replaces_the_last_match() {
        let m = || Some(Matcher::Regex(re("^#?Port ")));
        let text = "#Port 22\nX 1\nPort 2222\n";
        assert_eq!(
            add(text, "Port 22", m(), Insert::Eof),
            ("#Port 22\nX 1\nPort 22\n".into(), "replaced")
        );
        assert_eq!(
            add("#Port 22\nX 1\nPort 22\n", "Port 22", m(), Insert::Eof).1,
            ""
        );
        let first = present(
            text.as_bytes(),
            b"Port 22",
            m().as_ref(),
            &Insert::Eof,
            true,
            false,
        );
        assert_eq!(first.content, b"Port 22\nX 1\nPort 2222\n");
        // No match: appended.
        assert_eq!(
            add("X 1\n", "Port 22", m(), Insert::Eof),
            ("X 1\nPort 22\n".into(), "added")
        );
        // `$` matches before the newline, as in Python.
        let m = Some(Matcher::Regex(re("^X 1$")));
        assert_eq!(add("X 1\n", "X 2", m, Insert::Eof).0, "X 2\n");
    }

    #[test]
    fn inserts_after_and_before() {
        let after = || Insert::After(re("^\\[main\\]"));
        assert_eq!(
            add("[main]\nb=1\n", "a=0", None, after()).0,
            "[main]\na=0\nb=1\n"
        );
        assert_eq!(add("[main]\na=0\n", "a=0", None, after()).1, "");
        assert_eq!(add("x\n[main]", "a=0", None, after()).0, "x\n[main]\na=0\n");
        // Last marker wins unless firstmatch.
        assert_eq!(
            add("[main]\n[main]\n", "a", None, after()).0,
            "[main]\n[main]\na\n"
        );
        let e = present(b"[main]\n[main]\n", b"a", None, &after(), true, false);
        assert_eq!(e.content, b"[main]\na\n[main]\n");
        // No marker: at the end.
        assert_eq!(add("x\n", "a", None, after()).0, "x\na\n");
        let before = Insert::Before(re("^b"));
        assert_eq!(add("a\nb\n", "z", None, before).0, "a\nz\nb\n");
        assert_eq!(add("a\nb\n", "z", None, Insert::Bof).0, "z\na\nb\n");
        // An existing line is found before inserting anywhere.
        assert_eq!(add("z\na\nb\n", "z", None, Insert::Bof).1, "");
    }

    #[test]
    fn backrefs() {
        let m = Matcher::Regex(re("^(Listen) (?P<port>\\d+)$"));
        let e = present(
            b"Listen 80\n",
            b"\\1 \\g<port>0",
            Some(&m),
            &Insert::Eof,
            false,
            true,
        );
        assert_eq!(e.content, b"Listen 800\n");
        let e = present(b"Other\n", b"\\1 8080", Some(&m), &Insert::Eof, false, true);
        assert!(!e.changed);
        assert_eq!(e.content, b"Other\n");
    }

    #[test]
    fn search_string_and_absent() {
        let s = || Some(Matcher::Search(b"Port".to_vec()));
        assert_eq!(
            add("#Port 1\nx\n", "Port 2", s(), Insert::Eof).0,
            "Port 2\nx\n"
        );
        let e = absent(b"a\nb\na\n", Some(b"a"), None);
        assert_eq!(
            (e.content.as_slice(), e.found, e.msg.as_str()),
            (&b"b\n"[..], 2, "2 line(s) removed")
        );
        let m = Matcher::Regex(re("^#"));
        let e = absent(b"#x\ny\n#z", Some(b"y"), Some(&m));
        assert_eq!(e.content, b"y\n");
        assert!(!absent(b"y\n", Some(b"a"), None).changed);
    }

    #[test]
    fn ascii_classes_and_literal_unicode() {
        assert!(re("^\\w+$").is_match("abc".as_bytes()));
        assert!(re("é").is_match("café".as_bytes()));
        assert!(compile("regexp", "(?<=a)b", false).is_err());
    }

    #[test]
    fn arguments() {
        let build = |v| LineInFile::new(parse_args(v)?).map(|_| ());
        assert!(build(serde_json::json!({"path": "/x", "line": "a"})).is_ok());
        assert!(build(serde_json::json!({"dest": "/x", "line": 8080, "create": "yes"})).is_ok());
        assert!(build(serde_json::json!({"path": "/x"})).is_err());
        assert!(build(serde_json::json!({"path": "/x", "state": "absent"})).is_err());
        assert!(build(serde_json::json!({"path": "/x", "line": "a", "insertafter": "x", "insertbefore": "y"})).is_err());
        assert!(build(serde_json::json!({"path": "/x", "line": "a", "backrefs": true})).is_err());
        assert!(build(serde_json::json!({"path": "/x", "line": "a", "validate": "x %s"})).is_err());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn edits_files_on_this_machine() {
        use super::super::file::testing::run_local;
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("etc/app.conf");
        let args = serde_json::json!({"path": f, "line": "a=1"});
        let o = run_local(&SPEC, args.clone(), false);
        assert_eq!(
            o.msg,
            Some(format!("Destination {} does not exist !", f.display()))
        );
        let args = serde_json::json!({"path": f, "line": "a=1", "create": true, "mode": "0600"});
        let o = run_local(&SPEC, args.clone(), true);
        assert!(o.changed && !f.exists());
        let o = run_local(&SPEC, args.clone(), false);
        assert!(o.changed && !o.failed, "{:?}", o.msg);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "a=1\n");
        assert!(!run_local(&SPEC, args, false).changed);

        std::fs::write(&f, "# a=0\nb=2\na=0\n").unwrap();
        let link = tmp.path().join("link.conf");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        let args =
            serde_json::json!({"path": link, "regexp": "^a=", "line": "a=1", "backup": true});
        let o = run_local(&SPEC, args.clone(), false);
        assert!(o.changed && !o.failed, "{:?}", o.msg);
        assert_eq!(o.msg.as_deref(), Some("line replaced"));
        assert_eq!(o.diffs[0].before, "# a=0\nb=2\na=0\n");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "# a=0\nb=2\na=1\n");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "written through the link"
        );
        let backup = o.result["backup"].as_str().unwrap().to_owned();
        assert_eq!(
            std::fs::read_to_string(&backup).unwrap(),
            "# a=0\nb=2\na=0\n"
        );
        assert!(!run_local(&SPEC, args, false).changed);

        let o = run_local(
            &SPEC,
            serde_json::json!({"path": f, "regexp": "^#", "state": "absent"}),
            false,
        );
        assert!(o.changed && !o.failed, "{:?}", o.msg);
        assert_eq!(o.result["found"], 1);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "b=2\na=1\n");
        let o = run_local(
            &SPEC,
            serde_json::json!({"path": f, "line": "b=2", "mode": "0640"}),
            false,
        );
        assert_eq!(
            o.msg.as_deref(),
            Some("ownership, perms or SE linux context changed")
        );
        let o = run_local(
            &SPEC,
            serde_json::json!({"path": tmp.path(), "line": "x"}),
            false,
        );
        assert_eq!(
            o.msg,
            Some(format!("Path {} is a directory !", tmp.path().display()))
        );
    }
}
