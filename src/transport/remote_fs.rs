//! File operations on a host, each built on one `exec` round trip.

use super::{Become, Connection, Script, TransportError, quote};

/// What convoy needs to know about a remote path before changing it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteStat {
    pub exists: bool,
    pub kind: PathKind,
    /// Octal permission bits, e.g. "0644".
    pub mode: String,
    pub owner: String,
    pub group: String,
    /// Numeric ids: an `owner: "1000"` matches by id.
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub link_target: Option<String>,
    /// sha256 of a regular file's content, when asked for.
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PathKind {
    #[default]
    Missing,
    File,
    Directory,
    Link,
    Other,
}

/// Stats a path (without following a final symlink) and, for a regular
/// file, hashes it, all in one round trip.
pub async fn stat(
    conn: &Connection,
    path: &str,
    hash: bool,
    sudo: Option<&Become>,
) -> Result<RemoteStat, TransportError> {
    let p = quote(path);
    let hash_cmd = if hash {
        format!("if [ -f {p} ] && [ ! -L {p} ]; then sha256sum {p} | cut -d' ' -f1; fi")
    } else {
        String::new()
    };
    let script = format!(
        "if [ -e {p} ] || [ -L {p} ]; then LC_ALL=C stat -c '%F|%a|%U|%G|%s|%u|%g' {p}; \
         if [ -L {p} ]; then readlink {p}; else echo; fi; {hash_cmd} else echo absent; fi"
    );
    let out = conn.exec(Script::new(&script).sudo(sudo)).await?;
    Ok(parse_stat(&out.stdout_str()))
}

fn parse_stat(text: &str) -> RemoteStat {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("absent");
    if first == "absent" {
        return RemoteStat::default();
    }
    let fields: Vec<&str> = first.split('|').collect();
    let kind = match fields.first().copied().unwrap_or_default() {
        "regular file" | "regular empty file" => PathKind::File,
        "directory" => PathKind::Directory,
        "symbolic link" => PathKind::Link,
        _ => PathKind::Other,
    };
    let link = lines.next().filter(|l| !l.is_empty()).map(str::to_owned);
    let sha256 = lines.next().filter(|l| l.len() == 64).map(str::to_owned);
    RemoteStat {
        exists: true,
        kind,
        mode: format!("{:0>4}", fields.get(1).copied().unwrap_or("0")),
        owner: fields.get(2).copied().unwrap_or_default().to_owned(),
        group: fields.get(3).copied().unwrap_or_default().to_owned(),
        size: fields.get(4).and_then(|s| s.parse().ok()).unwrap_or(0),
        uid: fields.get(5).and_then(|s| s.parse().ok()).unwrap_or(0),
        gid: fields.get(6).and_then(|s| s.parse().ok()).unwrap_or(0),
        link_target: link,
        sha256,
    }
}

/// Reads a whole remote file; `None` when it does not exist.
pub async fn read(
    conn: &Connection,
    path: &str,
    sudo: Option<&Become>,
) -> Result<Option<Vec<u8>>, TransportError> {
    let p = quote(path);
    let script = format!("if [ -f {p} ]; then cat {p}; else exit 3; fi");
    let out = conn.exec(Script::new(&script).sudo(sudo)).await?;
    Ok(out.success().then_some(out.stdout))
}

/// Attributes to apply to a written file.
#[derive(Debug, Clone, Default)]
pub struct FileAttrs {
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

impl FileAttrs {
    /// Shell commands that apply these attributes to `quoted_path`.
    pub fn commands(&self, quoted_path: &str) -> String {
        let mut cmds = String::new();
        if let Some(mode) = &self.mode {
            cmds.push_str(&format!(" && chmod {} {quoted_path}", quote(mode)));
        }
        match (&self.owner, &self.group) {
            (Some(o), Some(g)) => cmds.push_str(&format!(
                " && chown {}:{} {quoted_path}",
                quote(o),
                quote(g)
            )),
            (Some(o), None) => cmds.push_str(&format!(" && chown {} {quoted_path}", quote(o))),
            (None, Some(g)) => cmds.push_str(&format!(" && chgrp {} {quoted_path}", quote(g))),
            (None, None) => {}
        }
        cmds
    }
}

/// Writes `content` to `path` atomically: a temporary file beside it,
/// attributes applied, then `mv` (rename(2)) over the destination, so a
/// reader never sees half a file. Returns the remote error text on failure.
pub async fn write_atomic(
    conn: &Connection,
    path: &str,
    content: &[u8],
    attrs: &FileAttrs,
    sudo: Option<&Become>,
) -> Result<Result<(), String>, TransportError> {
    let p = quote(path);
    let tmp = quote(&format!("{path}.convoy-tmp.{}", std::process::id()));
    // Keep the existing mode when none is given, as Ansible's copy does.
    let keep_mode = if attrs.mode.is_none() {
        format!("if [ -f {p} ]; then chmod \"$(stat -c %a {p})\" {tmp}; fi && ")
    } else {
        String::new()
    };
    let script = format!(
        "umask 022 && cat > {tmp} && {keep_mode}true{attrs} && mv -f {tmp} {p} || {{ rc=$?; rm -f {tmp}; exit $rc; }}",
        attrs = attrs.commands(&tmp),
    );
    let out = conn
        .exec(Script::new(&script).stdin(content).sudo(sudo))
        .await?;
    Ok(if out.success() {
        Ok(())
    } else {
        Err(out.stderr_str().trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_regular_file() {
        let s = parse_stat("regular file|644|root|root|12\n\n".to_owned().as_str());
        assert_eq!(s.kind, PathKind::File);
        assert_eq!(s.mode, "0644");
        assert_eq!(s.size, 12);
        assert!(s.link_target.is_none());
    }

    #[test]
    fn parses_a_link_and_absence() {
        let s = parse_stat("symbolic link|777|root|root|5\n/srv/x\n");
        assert_eq!(s.kind, PathKind::Link);
        assert_eq!(s.link_target.as_deref(), Some("/srv/x"));
        assert_eq!(parse_stat("absent\n"), RemoteStat::default());
    }
}
