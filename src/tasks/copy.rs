//! `copy`: put a local file or inline content on the host. Changed only when
//! the content (compared by sha256 on the host) or the attributes differ.

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Action, ActionContext, FileDiff, ModuleSpec, Outcome, boxed, parse_args};
use crate::transport::TransportError;
use crate::transport::remote_fs::{self, FileAttrs, PathKind};
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "copy",
    args: &["src", "content", "dest", "mode", "owner", "group", "force"],
    free_form: false,
    any_name: false,
    build: |args| {
        let a: Args = parse_args(args)?;
        if a.src.is_some() == a.content.is_some() {
            return Err("give exactly one of `src` or `content`".into());
        }
        Ok(Box::new(a))
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    src: Option<String>,
    content: Option<Value>,
    dest: String,
    mode: Option<Value>,
    owner: Option<String>,
    group: Option<String>,
    /// false: only create the file when missing (Ansible's `force: no`).
    #[serde(default = "yes")]
    force: bool,
}

fn yes() -> bool {
    true
}

impl Action for Args {
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> super::BoxFuture<'a, Result<Outcome, TransportError>> {
        boxed(async move {
            let (content, name) = match (&self.src, &self.content) {
                (Some(src), _) => {
                    let path = ctx.base_dir.join(src);
                    let path = if path.exists() {
                        path
                    } else {
                        ctx.base_dir.join("files").join(src)
                    };
                    match std::fs::read(&path) {
                        Ok(bytes) => (
                            bytes,
                            Path::new(src)
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned()),
                        ),
                        Err(e) => {
                            return Ok(Outcome::failed(format!(
                                "cannot read src {}: {e}",
                                path.display()
                            )));
                        }
                    }
                }
                (None, Some(Value::String(s))) => (s.clone().into_bytes(), None),
                // Ansible writes structured `content` as JSON.
                (None, Some(other)) => (other.to_string().into_bytes(), None),
                (None, None) => unreachable!("checked when built"),
            };
            let attrs = FileAttrs {
                mode: normalize_mode(self.mode.as_ref()),
                owner: self.owner.clone(),
                group: self.group.clone(),
            };
            put_content(
                ctx,
                &self.dest,
                name.as_deref(),
                &content,
                &attrs,
                self.force,
            )
            .await
        })
    }
}

/// Mode as chmod takes it: `0644`, `644` and YAML's octal integer all become "0644";
/// symbolic modes (`u+x`) pass through.
pub fn normalize_mode(mode: Option<&Value>) -> Option<String> {
    match mode? {
        Value::Number(n) => n.as_u64().map(|n| format!("{n:04o}")),
        Value::String(s) if s.chars().all(|c| c.is_ascii_digit()) => {
            Some(format!("{:0>4}", s.trim_start_matches('0')))
        }
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Makes `dest` hold exactly `content` with `attrs`: one round trip to
/// compare, one more to write only when something differs.
pub(super) async fn put_content(
    ctx: &ActionContext<'_>,
    dest: &str,
    src_name: Option<&str>,
    content: &[u8],
    attrs: &FileAttrs,
    force: bool,
) -> Result<Outcome, TransportError> {
    let mut dest = dest.to_owned();
    let mut stat = remote_fs::stat(ctx.conn, &dest, true, ctx.sudo).await?;
    if stat.kind == PathKind::Directory || dest.ends_with('/') {
        let Some(name) = src_name else {
            return Ok(Outcome::failed(format!(
                "dest {dest} is a directory; give a file path"
            )));
        };
        dest = format!("{}/{name}", dest.trim_end_matches('/'));
        stat = remote_fs::stat(ctx.conn, &dest, true, ctx.sudo).await?;
    }
    if let Some(reason) = &stat.hash_error {
        // Unknown is not different: a host that cannot hash must not be rewritten on every run.
        return Ok(Outcome::failed(format!("cannot check {dest}: {reason}")));
    }
    let checksum = hex::encode(Sha256::digest(content));
    let content_differs = stat.sha256.as_deref() != Some(checksum.as_str());
    let attrs_differ = attributes_differ(&stat, attrs);
    let result = |o: Outcome| {
        o.with("dest", dest.clone())
            .with("checksum", checksum.clone())
            .with("size", content.len())
    };
    if !stat.exists && stat.kind == PathKind::Missing
        || (force && (content_differs || attrs_differ))
    {
        let mut outcome = Outcome::changed(true);
        if ctx.diff && content_differs {
            let before = if stat.exists {
                remote_fs::read(ctx.conn, &dest, ctx.sudo)
                    .await?
                    .unwrap_or_default()
            } else {
                vec![]
            };
            outcome.diffs.push(FileDiff {
                path: dest.clone(),
                before: String::from_utf8_lossy(&before).into_owned(),
                after: String::from_utf8_lossy(content).into_owned(),
            });
        }
        if !ctx.check {
            // Rewriting identical content just to fix attributes keeps the write atomic and simple.
            if let Err(reason) =
                remote_fs::write_atomic(ctx.conn, &dest, content, attrs, ctx.sudo).await?
            {
                return Ok(result(Outcome::failed(format!(
                    "cannot write {dest}: {reason}"
                ))));
            }
        }
        return Ok(result(outcome));
    }
    Ok(result(Outcome::ok()))
}

fn attributes_differ(stat: &remote_fs::RemoteStat, attrs: &FileAttrs) -> bool {
    let mode_differs = attrs
        .mode
        .as_deref()
        .filter(|m| m.chars().all(|c| c.is_ascii_digit()))
        .is_some_and(|m| m.trim_start_matches('0') != stat.mode.trim_start_matches('0'));
    let owner_differs = attrs.owner.as_deref().is_some_and(|o| o != stat.owner);
    let group_differs = attrs.group.as_deref().is_some_and(|g| g != stat.group);
    mode_differs || owner_differs || group_differs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_normalise_to_four_octal_digits() {
        assert_eq!(
            normalize_mode(Some(&Value::from(420))).as_deref(),
            Some("0644")
        );
        assert_eq!(
            normalize_mode(Some(&Value::from("644"))).as_deref(),
            Some("0644")
        );
        assert_eq!(
            normalize_mode(Some(&Value::from("0755"))).as_deref(),
            Some("0755")
        );
        assert_eq!(
            normalize_mode(Some(&Value::from("u+x"))).as_deref(),
            Some("u+x")
        );
    }
}
