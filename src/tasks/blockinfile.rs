//! `blockinfile`: keep a block of lines between two marker lines in a file
//! (inserted after/before a pattern, at the end or the beginning), or
//! remove it, as Ansible's `blockinfile` does, step for step: markers are
//! whole lines, the last pair found is replaced, an unterminated line
//! before the block gets its newline.
//!
//! Not supported: `validate`, `unsafe_writes`, SELinux attributes.

use regex::bytes::Regex;
use serde::Deserialize;

use super::attributes::Attributes;
use super::file::lenient;
use super::file_edit::{self, NewContent, RemoteKind};
use super::python_re::compile;
use super::{ActionContext, ModuleSpec, Outcome, parse_args};
use crate::transport::TransportError;
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "blockinfile",
    args: &[
        "path",
        "dest",
        "destfile",
        "name",
        "state",
        "marker",
        "block",
        "content",
        "insertafter",
        "insertbefore",
        "create",
        "backup",
        "marker_begin",
        "marker_end",
        "append_newline",
        "prepend_newline",
        "mode",
        "owner",
        "group",
    ],
    free_form: false,
    any_name: false,
    build: |args| Ok(Box::new(BlockInFile::new(parse_args(args)?)?)),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "dest", alias = "destfile", alias = "name")]
    path: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    state: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    marker: Option<String>,
    #[serde(default, alias = "content", deserialize_with = "lenient::opt_string")]
    block: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    insertafter: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    insertbefore: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    create: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    backup: bool,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    marker_begin: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    marker_end: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    append_newline: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    prepend_newline: bool,
    mode: Option<Value>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    group: Option<String>,
}

/// Where a block without markers in the file goes.
#[derive(Debug)]
enum Insert {
    Eof,
    Bof,
    /// After (or before) the last line the pattern matches; `whole` when
    /// the pattern is multi-line (`(?m)`) and searches the whole file.
    Pattern {
        re: Regex,
        after: bool,
        whole: bool,
    },
}

struct BlockInFile {
    path: String,
    present: bool,
    begin: Vec<u8>,
    end: Vec<u8>,
    block: Vec<u8>,
    insert: Insert,
    create: bool,
    backup: bool,
    append_newline: bool,
    prepend_newline: bool,
    attrs: Attributes,
}

impl BlockInFile {
    fn new(a: Args) -> Result<Self, String> {
        let present = file_edit::present(a.state.as_deref(), &a.path)?;
        let insert = match (a.insertafter.as_deref(), a.insertbefore.as_deref()) {
            (Some(_), Some(_)) => {
                return Err("parameters are mutually exclusive: insertbefore|insertafter".into());
            }
            (None | Some("EOF"), None) => Insert::Eof,
            (None, Some("BOF")) => Insert::Bof,
            (Some(p), None) | (None, Some(p)) => Insert::Pattern {
                re: compile(
                    if a.insertafter.is_some() {
                        "insertafter"
                    } else {
                        "insertbefore"
                    },
                    p,
                    false,
                )?,
                after: a.insertafter.is_some(),
                whole: multi_line_flag(p),
            },
        };
        let marker = a
            .marker
            .unwrap_or_else(|| "# {mark} ANSIBLE MANAGED BLOCK".into());
        let mark = |word: Option<String>, default: &str| {
            let mut line = marker
                .replace("{mark}", word.as_deref().unwrap_or(default))
                .into_bytes();
            line.push(b'\n');
            line
        };
        Ok(Self {
            path: a.path,
            present,
            begin: mark(a.marker_begin, "BEGIN"),
            end: mark(a.marker_end, "END"),
            block: a.block.unwrap_or_default().into_bytes(),
            insert,
            create: a.create,
            backup: a.backup,
            append_newline: a.append_newline,
            prepend_newline: a.prepend_newline,
            attrs: Attributes::from_args(a.mode.as_ref(), a.owner, a.group)?,
        })
    }

    /// Ansible's algorithm on the file's content (`None`: no file).
    fn edit(&self, original: Option<&[u8]>) -> (Vec<u8>, &'static str) {
        let mut lines = original.map(split_lines).unwrap_or_default();
        let mut block_lines = Vec::new();
        if self.present && !self.block.is_empty() {
            let mut block = self.block.clone();
            if !block.ends_with(b"\n") {
                block.push(b'\n');
            }
            block_lines.push(self.begin.clone());
            block_lines.extend(split_lines(&block));
            block_lines.push(self.end.clone());
        }
        let (mut n0, mut n1) = (None, None);
        for (i, line) in lines.iter().enumerate() {
            if *line == self.begin {
                n0 = Some(i);
            }
            if *line == self.end {
                n1 = Some(i);
            }
        }
        let mut at = match (n0, n1) {
            (Some(b), Some(e)) if b < e => {
                lines.drain(b..=e);
                b
            }
            (Some(b), Some(e)) => {
                lines.drain(e..=b);
                e
            }
            _ => match &self.insert {
                Insert::Eof => lines.len(),
                Insert::Bof => 0,
                Insert::Pattern { re, after, whole } => {
                    let mut found = None;
                    if *whole {
                        let text = original.unwrap_or_default();
                        if let Some(m) = re.find(text) {
                            let upto = if *after { m.end() } else { m.start() };
                            found = Some(text[..upto].iter().filter(|&&b| b == b'\n').count());
                        }
                    } else {
                        for (i, line) in lines.iter().enumerate() {
                            if re.is_match(line) {
                                found = Some(i);
                            }
                        }
                    }
                    match found {
                        None => lines.len(),
                        Some(i) if *after => i + 1,
                        Some(i) => i,
                    }
                }
            },
        };
        if at > 0 && !lines[at - 1].ends_with(b"\n") {
            lines[at - 1].push(b'\n');
        }
        if self.prepend_newline && self.present && at != 0 && lines[at - 1] != b"\n" {
            lines.insert(at, b"\n".to_vec());
            at += 1;
        }
        let inserted = block_lines.len();
        lines.splice(at..at, block_lines);
        if self.append_newline && self.present {
            let next = at + inserted;
            if next < lines.len() && lines[next] != b"\n" {
                lines.insert(next, b"\n".to_vec());
            }
        }
        let result = lines.concat();
        let msg = if original == Some(result.as_slice()) {
            ""
        } else if original.is_none() {
            "File created"
        } else if inserted == 0 {
            "Block removed"
        } else {
            "Block inserted"
        };
        (result, msg)
    }

    async fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, TransportError> {
        let path = &self.path;
        let file = match file_edit::read(ctx, path).await? {
            Ok(file) => file,
            Err(failed) => return Ok(failed),
        };
        let original = match &file.kind {
            RemoteKind::Directory => unreachable!("read() fails on a directory"),
            RemoteKind::Missing { .. } if !self.create => {
                return Ok(Outcome::failed(format!("Path {path} does not exist !")).with("rc", 257));
            }
            RemoteKind::Missing { .. } if !self.present => {
                return Ok(Outcome::ok().with_msg(format!("File {path} not present")));
            }
            RemoteKind::Missing { .. } => None,
            RemoteKind::File { content, .. } => Some(content.as_slice()),
        };
        let (content, msg) = self.edit(original);
        let new = NewContent {
            content: &content,
            changed: !msg.is_empty(),
            msg: msg.to_owned(),
        };
        let applied = file_edit::apply(ctx, path, &file, &self.attrs, new, self.backup).await?;
        let mut outcome = applied.outcome;
        if !applied.backup.is_empty() {
            outcome = outcome.with("backup_file", applied.backup);
        }
        Ok(outcome)
    }
}

super::action_by_async_run!(BlockInFile);

/// Whether a pattern sets Python's `re.MULTILINE` inline (`(?m)`, `(?im)`).
fn multi_line_flag(pattern: &str) -> bool {
    pattern
        .strip_prefix("(?")
        .and_then(|rest| rest.split_once(')'))
        .is_some_and(|(flags, _)| {
            flags.chars().all(|c| c.is_ascii_alphabetic()) && flags.contains('m')
        })
}

/// Python's `bytes.splitlines(keepends=True)`: lines end at `\n`, `\r\n`
/// or a lone `\r`.
fn split_lines(content: &[u8]) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < content.len() {
        let end = match content[i] {
            b'\n' => Some(i + 1),
            b'\r' if content.get(i + 1) == Some(&b'\n') => Some(i + 2),
            b'\r' => Some(i + 1),
            _ => None,
        };
        match end {
            Some(e) => {
                lines.push(content[start..e].to_vec());
                start = e;
                i = e;
            }
            None => i += 1,
        }
    }
    if start < content.len() {
        lines.push(content[start..].to_vec());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(args: serde_json::Value, text: Option<&str>) -> (String, &'static str) {
        let b = BlockInFile::new(parse_args(args).unwrap()).unwrap();
        let (c, msg) = b.edit(text.map(str::as_bytes));
        (String::from_utf8(c).unwrap(), msg)
    }

    #[test]
    fn inserts_replaces_and_removes_the_block() {
        let args = serde_json::json!({"path": "/x", "block": "a=1\nb=2"});
        let block = "# BEGIN ANSIBLE MANAGED BLOCK\na=1\nb=2\n# END ANSIBLE MANAGED BLOCK\n";
        assert_eq!(
            edit(args.clone(), Some("x")),
            (format!("x\n{block}"), "Block inserted")
        );
        assert_eq!(edit(args.clone(), None), (block.to_owned(), "File created"));
        let text = format!("x\n{block}y\n");
        assert_eq!(edit(args, Some(&text)), (text.clone(), ""));
        let args = serde_json::json!({"path": "/x", "block": "c=3"});
        assert_eq!(
            edit(args, Some(&text)).0,
            "x\n# BEGIN ANSIBLE MANAGED BLOCK\nc=3\n# END ANSIBLE MANAGED BLOCK\ny\n"
        );
        let args = serde_json::json!({"path": "/x", "state": "absent"});
        assert_eq!(edit(args, Some(&text)), ("x\ny\n".into(), "Block removed"));
    }

    #[test]
    fn insert_positions_and_markers() {
        let args = serde_json::json!({"path": "/x", "block": "k", "insertafter": "^\\[a\\]",
            "marker": "<!-- {mark} -->", "marker_begin": "start"});
        assert_eq!(
            edit(args, Some("[a]\nz\n")).0,
            "[a]\n<!-- start -->\nk\n<!-- END -->\nz\n"
        );
        let args = serde_json::json!({"path": "/x", "block": "k", "insertbefore": "BOF"});
        assert!(edit(args, Some("z\n")).0.ends_with("BLOCK\nz\n"));
        let args = serde_json::json!({"path": "/x", "block": "k", "insertbefore": "^z",
            "prepend_newline": true, "append_newline": true});
        assert_eq!(
            edit(args, Some("y\nz\n")).0,
            "y\n\n# BEGIN ANSIBLE MANAGED BLOCK\nk\n# END ANSIBLE MANAGED BLOCK\n\nz\n"
        );
        assert!(multi_line_flag("(?m)^a\nb") && !multi_line_flag("^a"));
    }

    #[test]
    fn arguments() {
        let build = |v| BlockInFile::new(parse_args(v)?).map(|_| ());
        assert!(
            build(serde_json::json!({"path": "/x", "insertafter": "a", "insertbefore": "b"}))
                .is_err()
        );
        assert!(build(serde_json::json!({"path": "/x", "validate": "x %s"})).is_err());
        assert!(build(serde_json::json!({"path": "/x", "state": "gone"})).is_err());
    }
}
