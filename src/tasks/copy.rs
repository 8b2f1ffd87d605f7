//! `copy`: put a local file or inline content on the host. Changed only when
//! the content (compared by sha256 on the host) or the attributes differ.

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::attributes::{Attributes, Current};
use super::{Action, ActionContext, FileDiff, ModuleSpec, Outcome, boxed, parse_args};
use crate::transport::TransportError;
use crate::transport::remote_fs::{self, PathKind};
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
                        // A file encrypted with ansible-vault is sent
                        // decrypted, as ansible-core's copy does (`decrypt`
                        // defaults to true there).
                        Ok(bytes) if bytes.starts_with(crate::vault::HEADER.as_bytes()) => {
                            let text = String::from_utf8_lossy(&bytes);
                            match crate::vault::decrypt(&text) {
                                Ok(plain) => (
                                    plain.into_bytes(),
                                    Path::new(src)
                                        .file_name()
                                        .map(|n| n.to_string_lossy().into_owned()),
                                ),
                                Err(e) => {
                                    return Ok(Outcome::failed(format!(
                                        "src {}: {e}",
                                        path.display()
                                    )));
                                }
                            }
                        }
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
                // Ansible's copy action writes a list or dict `content` with
                // json.dumps, and anything else as Python's str() (`True`).
                (None, Some(v @ (Value::Array(_) | Value::Object(_)))) => {
                    (crate::python_text::json_dumps(v).into_bytes(), None)
                }
                (None, Some(other)) => (crate::python_text::str(other).into_bytes(), None),
                (None, None) => unreachable!("checked when built"),
            };
            let attrs = match Attributes::from_args(
                self.mode.as_ref(),
                self.owner.clone(),
                self.group.clone(),
            ) {
                Ok(attrs) => attrs,
                Err(msg) => return Ok(Outcome::failed(msg)),
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

/// The umask `remote_fs::write_atomic` writes under: a new file starts
/// from `0644`, and a symbolic mode without `ugoa` is masked by it.
const WRITE_UMASK: u32 = 0o022;

/// Makes `dest` hold exactly `content` with `attrs`: one round trip to
/// compare, one more to write only when something differs.
pub(super) async fn put_content(
    ctx: &ActionContext<'_>,
    dest: &str,
    src_name: Option<&str>,
    content: &[u8],
    attrs: &Attributes,
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
    let current = (stat.kind == PathKind::File).then(|| Current {
        perms: u32::from_str_radix(&stat.mode, 8).unwrap_or(0),
        is_dir: false,
        owner: &stat.owner,
        group: &stat.group,
        uid: stat.uid,
        gid: stat.gid,
    });
    let attrs_differ = current
        .as_ref()
        .is_some_and(|c| !attrs.delta(c, WRITE_UMASK).is_empty());
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
            let attrs = attrs.for_write(current.as_ref(), WRITE_UMASK);
            if let Err(reason) =
                remote_fs::write_atomic(ctx.conn, &dest, content, &attrs, ctx.sudo).await?
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
