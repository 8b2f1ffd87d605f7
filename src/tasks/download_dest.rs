//! The destination side of a download (`get_url`, `uri`'s `dest`): what
//! the path on the host is now ([`probe`]), and the body left on the host
//! by [`http_request::send`] moved over it ([`install`]) or dropped
//! ([`drop_body`]).

use super::ActionContext;
use super::attributes::{Attributes, Current};
use super::file::last_line;
use super::http_request::HttpResponse;
use crate::transport::{ShellScript, TransportError};

/// Moves the downloaded body over `dest` as Ansible's `atomic_move`
/// does: a copy beside it, the replaced file's mode and owner (or a new
/// file's `0666` under the umask), the wanted attributes, a rename.
pub(super) async fn install(
    ctx: &ActionContext<'_>,
    body: &str,
    dest: &str,
    current: Option<&DestFile>,
    umask: u32,
    wanted: &Attributes,
) -> Result<Result<(), String>, TransportError> {
    let cur = current.map(DestFile::current);
    let mut attrs = wanted.for_write(cur.as_ref(), umask);
    if attrs.mode.is_none() {
        let perms = current.map_or(0o666 & !umask, |f| f.perms);
        attrs.mode = Some(format!("{perms:04o}"));
    }
    let mut script = ShellScript::new()
        .var("B", body)
        .var("D", dest)
        .var("T", format!("{dest}.convoy-tmp.{}", std::process::id()))
        .code(
            r#"trap 'rm -f -- "$T" "$B"' EXIT
cp -- "$B" "$T" || exit 1"#,
        );
    if current.is_some() && attrs.owner.is_none() && attrs.group.is_none() {
        // The replaced file's owner stays (as root; otherwise it is ours anyway).
        script = script.code(r#"chown --reference="$D" -- "$T" 2>/dev/null || :"#);
    }
    script = attrs
        .apply_to_t(script)
        .code(r#"mv -f -- "$T" "$D" || exit 1"#);
    let out = ctx.conn.exec(ctx.script(&script)).await?;
    Ok(if out.success() {
        Ok(())
    } else {
        Err(format!(
            "failed to copy {body} to {dest}: {}",
            last_line(&out.stderr_str())
        ))
    })
}

/// Applies the `wanted` mode/owner/group to an existing file (only
/// reporting in check mode); whether any differed.
pub(super) async fn set_attributes(
    ctx: &ActionContext<'_>,
    wanted: &Attributes,
    dest: &str,
    file: &DestFile,
    umask: u32,
) -> Result<Result<bool, String>, TransportError> {
    if wanted.delta(&file.current(), umask).is_empty() {
        return Ok(Ok(false));
    }
    if ctx.check {
        return Ok(Ok(true));
    }
    let script = ShellScript::new()
        .var("p", dest)
        .then(&wanted.commands("\"$p\"", false, false));
    let out = ctx.conn.exec(ctx.script(&script)).await?;
    if !out.success() {
        return Ok(Err(format!(
            "cannot set attributes of {dest}: {}",
            last_line(&out.stderr_str())
        )));
    }
    Ok(Ok(true))
}

/// Removes a body left on the host by [`http_request::send`].
pub(super) async fn drop_body(
    ctx: &ActionContext<'_>,
    response: &HttpResponse,
) -> Result<(), TransportError> {
    let script = ShellScript::new()
        .var("B", &response.body_file)
        .code(r#"rm -f -- "$B""#);
    ctx.conn.exec(ctx.script(&script)).await?;
    Ok(())
}

/// An existing destination file.
pub(super) struct DestFile {
    pub perms: u32,
    pub owner: String,
    pub group: String,
    pub uid: u32,
    pub gid: u32,
    pub sha1: String,
    /// Its digest with the checksum's algorithm (empty without one).
    pub digest: String,
}

impl DestFile {
    pub fn current(&self) -> Current<'_> {
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

pub(super) enum Kind {
    Directory,
    Missing { parent: bool },
    File(DestFile),
}

pub(super) struct Found {
    pub kind: Kind,
    pub umask: u32,
}

/// One round trip: what `dest` is, with its attributes and hashes.
pub(super) async fn probe(
    ctx: &ActionContext<'_>,
    dest: &str,
    alg: Option<&str>,
) -> Result<Result<Found, String>, TransportError> {
    let script = ShellScript::new()
        .path_var("D", dest)
        .var("ALG", alg.unwrap_or_default())
        .code(
            r#"umask
if [ -d "$D" ]; then echo dir; exit 0; fi
if [ -e "$D" ]; then
  echo file
  LC_ALL=C stat -L -c '%a|%U|%G|%u|%g' -- "$D" || exit 1
  s=$(sha1sum < "$D") || exit 1; echo "${s%% *}"
  g=; if [ -n "$ALG" ]; then g=$("${ALG}sum" < "$D") || exit 1; fi; echo "${g%% *}"
  exit 0
fi
if [ -d "$(dirname -- "$D")" ]; then echo absent1; else echo absent0; fi"#,
        );
    let out = ctx.conn.exec(ctx.script(&script)).await?;
    if !out.success() {
        return Ok(Err(format!(
            "cannot check {dest}: {}",
            last_line(&out.stderr_str())
        )));
    }
    Ok(parse_probe(&out.stdout_str())
        .ok_or_else(|| format!("cannot check {dest}: unexpected answer")))
}

fn parse_probe(text: &str) -> Option<Found> {
    let mut lines = text.lines();
    let umask = u32::from_str_radix(lines.next()?.trim(), 8).ok()?;
    let kind = match lines.next()? {
        "dir" => Kind::Directory,
        "absent1" => Kind::Missing { parent: true },
        "absent0" => Kind::Missing { parent: false },
        "file" => {
            let f: Vec<&str> = lines.next()?.split('|').collect();
            let [perms, owner, group, uid, gid] = f.as_slice() else {
                return None;
            };
            Kind::File(DestFile {
                perms: u32::from_str_radix(perms, 8).ok()?,
                owner: (*owner).to_owned(),
                group: (*group).to_owned(),
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
                sha1: lines.next()?.to_owned(),
                digest: lines.next().unwrap_or_default().to_owned(),
            })
        }
        _ => return None,
    };
    Some(Found { kind, umask })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_probe() {
        let f = parse_probe("0022\nfile\n640|root|adm|0|4\nda39\nabcd\n").unwrap();
        let Kind::File(file) = f.kind else { panic!() };
        assert_eq!(
            (file.perms, file.gid, file.digest.as_str()),
            (0o640, 4, "abcd")
        );
        assert!(matches!(
            parse_probe("0022\nabsent0\n").unwrap().kind,
            Kind::Missing { parent: false }
        ));
    }
}
