//! The remote half of the modules that edit a file's content in place
//! (`lineinfile`, `replace`, `blockinfile`): one round trip reads the file
//! with its attributes ([`read`]), the module computes the new content
//! here, and [`apply`] writes it (atomically, through symlinks, keeping
//! owner and group) only when it differs, with the file attributes asked
//! for, as Ansible's `atomic_move` and `set_file_attributes_if_different`.

use super::attributes::{Attributes, Current};
use super::file::last_line;
use super::{ActionContext, FileDiff, Outcome};
use crate::transport::remote_fs;
use crate::transport::{Script, ShellScript, TransportError};

/// Ansible's `state` of these modules: whether the content is to be there.
pub(super) fn present(state: Option<&str>, path: &str) -> Result<bool, String> {
    if path.is_empty() {
        return Err("path must not be empty".into());
    }
    match state {
        None | Some("present") => Ok(true),
        Some("absent") => Ok(false),
        Some(other) => Err(format!(
            "value of state must be one of: absent, present, got: {other}"
        )),
    }
}

/// What the host answered about the file, or the failure to report (a
/// directory is one, as in Ansible, with its `rc` 256).
pub(super) async fn read(
    ctx: &ActionContext<'_>,
    path: &str,
) -> Result<Result<Remote, Outcome>, TransportError> {
    let script = query_script(path);
    let out = ctx.conn.exec(Script::new(&script).sudo(ctx.sudo)).await?;
    if !out.success() {
        let reason = last_line(&out.stderr_str());
        return Ok(Err(Outcome::failed(format!(
            "cannot read {path}: {reason}"
        ))));
    }
    match Remote::parse(&out.stdout) {
        None => Ok(Err(Outcome::failed(format!(
            "cannot read {path}: unexpected answer from the host"
        )))),
        Some(Remote {
            kind: RemoteKind::Directory,
            ..
        }) => Ok(Err(Outcome::failed(format!(
            "Path {path} is a directory !"
        ))
        .with("rc", 256))),
        Some(file) => Ok(Ok(file)),
    }
}

/// One round trip: a header ended by a NUL (a path may hold a newline,
/// never a NUL), then the file's content.
fn query_script(path: &str) -> ShellScript {
    ShellScript::new().path_var("p", path).code(
        r#"if [ -d "$p" ]; then printf 'dir\0'; exit 0; fi
u=$(umask); i=$(id -u)
r=$(readlink -f -- "$p" 2>/dev/null) || r=
[ -n "$r" ] || r=$p
if [ -e "$p" ]; then
  printf 'file|%s|%s|%s|%s\0' "$u" "$i" "$(LC_ALL=C stat -L -c '%a|%U|%G|%u|%g' -- "$p")" "$r"
  exec cat -- "$p"
fi
if [ -d "$(dirname -- "$r")" ]; then d=1; else d=0; fi
printf 'absent|%s|%s|%s|%s\0' "$u" "$i" "$d" "$r"
"#,
    )
}

/// A module's new content for the file, and its message when it differs.
pub(super) struct NewContent<'a> {
    pub content: &'a [u8],
    pub changed: bool,
    pub msg: String,
}

/// What [`apply`] did: the outcome so far and the backup copy's path
/// (empty without one), which each module registers under its own key.
pub(super) struct Applied {
    pub outcome: Outcome,
    pub backup: String,
}

/// Writes `new` over the file `file` describes when it changed (with a
/// backup copy first if asked), then sets `attrs`; only reports in check
/// mode. The message gets Ansible's "ownership, perms or SE linux context
/// changed" when the attributes differ.
pub(super) async fn apply(
    ctx: &ActionContext<'_>,
    path: &str,
    file: &Remote,
    attrs: &Attributes,
    new: NewContent<'_>,
    backup: bool,
) -> Result<Applied, TransportError> {
    let (before, meta) = match &file.kind {
        RemoteKind::File { meta, content } => (content.as_slice(), Some(meta)),
        _ => (&[][..], None),
    };
    let current = meta.map(Meta::current);
    let attrs_differ = current
        .as_ref()
        .is_some_and(|c| !attrs.delta(c, file.umask).is_empty());
    let mut msg = new.msg;
    if attrs_differ {
        if new.changed {
            msg.push_str(" and ");
        }
        msg.push_str("ownership, perms or SE linux context changed");
    }
    let mut outcome = Outcome::changed(new.changed || attrs_differ).with_msg(msg);
    if ctx.diff && new.changed {
        outcome.diffs.push(FileDiff {
            path: path.to_owned(),
            before: String::from_utf8_lossy(before).into_owned(),
            after: String::from_utf8_lossy(new.content).into_owned(),
        });
    }
    let done = |outcome, backup| Ok(Applied { outcome, backup });
    if ctx.check || !outcome.changed {
        return done(outcome, String::new());
    }
    let real = &file.real;
    let mut backup_path = String::new();
    if new.changed {
        // Rare extras, one more round trip: the parent directory for `create`, a backup copy.
        let mut prepare = ShellScript::new();
        if matches!(file.kind, RemoteKind::Missing { parent: false }) {
            let dir = real
                .rsplit_once('/')
                .map_or(".", |(d, _)| if d.is_empty() { "/" } else { d });
            prepare = prepare.var("d", dir).code(r#"mkdir -p -- "$d" || exit 1"#);
        }
        if backup && meta.is_some() {
            prepare = prepare.var("q", real).code(
                r#"b="$q.$$.$(date +%Y-%m-%d@%H:%M:%S)~"
cp -p -- "$q" "$b" || exit 1
printf '%s\n' "$b""#,
            );
        }
        if !prepare.is_empty() {
            let out = ctx.conn.exec(Script::new(&prepare).sudo(ctx.sudo)).await?;
            if !out.success() {
                let reason = last_line(&out.stderr_str());
                return done(
                    Outcome::failed(format!("cannot write {path}: {reason}")),
                    backup_path,
                );
            }
            backup_path = out.stdout_str().trim().to_owned();
        }
        // As root, keep the file's owner and group (a fresh file would be root's).
        let keep = |id: Option<u32>| id.filter(|_| file.uid == 0).map(|id| id.to_string());
        let mut write = attrs.for_write(current.as_ref(), file.umask);
        write.owner = write.owner.or_else(|| keep(meta.map(|m| m.uid)));
        write.group = write.group.or_else(|| keep(meta.map(|m| m.gid)));
        if let Err(reason) =
            remote_fs::write_atomic(ctx.conn, real, new.content, &write, ctx.sudo).await?
        {
            return done(
                Outcome::failed(format!("cannot write {path}: {}", last_line(&reason))),
                backup_path,
            );
        }
    } else {
        let write = attrs.for_write(current.as_ref(), file.umask);
        let script = write.apply_to_t(ShellScript::new().var("T", real));
        let out = ctx.conn.exec(Script::new(&script).sudo(ctx.sudo)).await?;
        if !out.success() {
            let reason = last_line(&out.stderr_str());
            return done(
                Outcome::failed(format!("cannot set attributes of {path}: {reason}")),
                backup_path,
            );
        }
    }
    done(outcome, backup_path)
}

/// An existing file's attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Meta {
    perms: u32,
    owner: String,
    group: String,
    uid: u32,
    gid: u32,
}

impl Meta {
    fn current(&self) -> Current<'_> {
        Current {
            perms: self.perms,
            is_dir: false,
            owner: &self.owner,
            group: &self.group,
            uid: self.uid,
            gid: self.gid,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum RemoteKind {
    Directory,
    Missing { parent: bool },
    File { meta: Meta, content: Vec<u8> },
}

/// What the query script answered.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Remote {
    pub kind: RemoteKind,
    pub umask: u32,
    /// The remote user's uid.
    pub uid: u32,
    /// Where to write: the path with symlinks resolved (Ansible writes through links).
    pub real: String,
}

impl Remote {
    pub(super) fn parse(out: &[u8]) -> Option<Self> {
        let (header, content) = match out.iter().position(|&b| b == b'\0') {
            Some(i) => (&out[..i], &out[i + 1..]),
            None => (out, &[][..]),
        };
        let header = std::str::from_utf8(header).ok()?;
        if header == "dir" {
            return Some(Remote {
                kind: RemoteKind::Directory,
                umask: 0,
                uid: 0,
                real: String::new(),
            });
        }
        let (tag, rest) = header.split_once('|')?;
        let f: Vec<&str> = rest
            .splitn(if tag == "file" { 8 } else { 4 }, '|')
            .collect();
        let umask = u32::from_str_radix(f.first()?, 8).ok()?;
        let uid = f.get(1)?.parse().ok()?;
        let (kind, real) = match (tag, f.as_slice()) {
            ("file", [_, _, perms, owner, group, u, g, real]) => (
                RemoteKind::File {
                    meta: Meta {
                        perms: u32::from_str_radix(perms, 8).ok()?,
                        owner: (*owner).to_owned(),
                        group: (*group).to_owned(),
                        uid: u.parse().ok()?,
                        gid: g.parse().ok()?,
                    },
                    content: content.to_vec(),
                },
                *real,
            ),
            ("absent", [_, _, parent, real]) => (
                RemoteKind::Missing {
                    parent: *parent == "1",
                },
                *real,
            ),
            _ => return None,
        };
        Some(Remote {
            kind,
            umask,
            uid,
            real: real.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_query_answer() {
        let r = Remote::parse(b"file|0022|0|644|root|adm|0|4|/etc/a|b\0x=1\n").unwrap();
        assert_eq!(r.real, "/etc/a|b");
        assert_eq!(r.uid, 0);
        let RemoteKind::File { meta, content } = r.kind else {
            panic!()
        };
        assert_eq!(
            (meta.perms, meta.gid, content.as_slice()),
            (0o644, 4, &b"x=1\n"[..])
        );
        let r = Remote::parse(b"absent|0002|1000|0|/srv/new/file\0").unwrap();
        assert_eq!(r.kind, RemoteKind::Missing { parent: false });
        assert_eq!(r.umask, 0o002);
        assert_eq!(Remote::parse(b"dir\0").unwrap().kind, RemoteKind::Directory);
    }
}
