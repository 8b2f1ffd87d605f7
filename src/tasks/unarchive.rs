//! `unarchive`: unpack a tar archive (plain, gzip, bzip2, xz) into an
//! existing directory of the host, as Ansible's `unarchive` does with GNU
//! tar: the archive comes from the project (sent to a private temporary
//! file on the host) or, with `remote_src`, is already there; `tar --diff`
//! against `dest` decides whether it is already unpacked, with ansible-core's
//! rules for which differences count (a mode or owner that the task sets
//! anyway does not); `mode`/`owner`/`group` are then applied to every
//! path of the archive that differs. `creates` skips the task. Like
//! ansible-core's tar handler, it is skipped in check mode.
//!
//! Not supported: zip archives, URLs as `src`, `include`/`exclude`,
//! `keep_newer`, `list_files`.

use serde::Deserialize;

use super::attributes::{Attributes, Current};
use super::file::{last_line, lenient};
use super::{ActionContext, ModuleSpec, Outcome, parse_args};
use crate::transport::{ShellScript, TransportError};
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "unarchive",
    args: &[
        "src",
        "dest",
        "remote_src",
        "creates",
        "extra_opts",
        "mode",
        "owner",
        "group",
    ],
    free_form: false,
    any_name: false,
    build: |args| Ok(Box::new(Unarchive::new(parse_args(args)?)?)),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    src: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    dest: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    remote_src: bool,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    creates: Option<String>,
    #[serde(default)]
    extra_opts: Option<Value>,
    mode: Option<Value>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    group: Option<String>,
}

struct Unarchive {
    src: String,
    dest: String,
    remote_src: bool,
    creates: Option<String>,
    extra_opts: Vec<String>,
    attrs: Attributes,
}

impl Unarchive {
    fn new(a: Args) -> Result<Self, String> {
        let (Some(src), Some(dest)) = (a.src, a.dest) else {
            return Err("src (or content) and dest are required".into());
        };
        if src.contains("://") {
            return Err("a URL as src is not supported; fetch it with get_url first".into());
        }
        let extra_opts = match a.extra_opts {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(items)) => items.iter().map(crate::python_text::str).collect(),
            Some(Value::String(s)) => s.split(',').map(|p| p.trim().to_owned()).collect(),
            Some(other) => vec![crate::python_text::str(&other)],
        };
        Ok(Unarchive {
            src,
            dest,
            remote_src: a.remote_src,
            creates: a.creates.filter(|c| !c.is_empty()),
            extra_opts,
            attrs: Attributes::from_args(a.mode.as_ref(), a.owner, a.group)?,
        })
    }

    async fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, TransportError> {
        let dest = self.dest.trim_end_matches('/');
        let dest = if dest.is_empty() { "/" } else { dest };
        // What the action plugin checks before anything is sent.
        let probe = ShellScript::new()
            .path_var("D", dest)
            .path_var("C", self.creates.as_deref().unwrap_or_default())
            .code(
                r#"if [ -n "$C" ] && [ -e "$C" ]; then echo creates; exit 0; fi
if [ -d "$D" ]; then echo dir; else echo nodir; fi"#,
            );
        let out = ctx.conn.exec(ctx.script(&probe)).await?;
        match out.stdout_str().trim() {
            "creates" => {
                let mut o = Outcome::ok().with_msg(format!(
                    "skipped, since {} exists",
                    self.creates.as_deref().unwrap_or_default()
                ));
                o.skipped = true;
                return Ok(o);
            }
            "dir" => {}
            _ => {
                return Ok(Outcome::failed(format!(
                    "dest '{}' must be an existing dir",
                    self.dest
                )));
            }
        }
        let local = if self.remote_src {
            None
        } else {
            let path = ctx.base_dir.join(&self.src);
            let path = if path.exists() {
                path
            } else {
                ctx.base_dir.join("files").join(&self.src)
            };
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => Some((path, meta.len())),
                _ => {
                    return Ok(Outcome::failed(format!(
                        "Could not find or access '{}'",
                        self.src
                    )));
                }
            }
        };
        if ctx.check {
            let mut o = Outcome::ok()
                .with_msg("remote module (unarchive) does not support check mode when using gtar");
            o.skipped = true;
            return Ok(o);
        }
        let archive = match self.inspect(ctx, dest, local.as_ref()).await? {
            Ok(archive) => archive,
            Err(msg) => return Ok(Outcome::failed(msg)),
        };
        let result = self.unpack(ctx, dest, &archive).await;
        if local.is_some() {
            // The copy sent over is removed, whatever happened.
            let script = ShellScript::new()
                .var("S", &archive.path)
                .code(r#"rm -f -- "$S""#);
            ctx.conn.exec(ctx.script(&script)).await?;
        }
        Ok(result?
            .with("dest", self.dest.clone())
            .with("src", self.src.clone()))
    }

    /// The tar options this task adds to every `tar` call.
    fn tar_args(&self, flag: &str) -> Vec<String> {
        let mut args = Vec::new();
        if !flag.is_empty() {
            args.push(flag.to_owned());
        }
        if !self.extra_opts.is_empty() {
            args.push("--show-transformed-names".into());
            args.extend(self.extra_opts.iter().cloned());
        }
        if let Some(o) = &self.attrs.owner {
            args.push(format!("--owner={o}"));
        }
        if let Some(g) = &self.attrs.group {
            args.push(format!("--group={g}"));
        }
        args
    }

    /// Sends the archive when it is local, finds the compression tar
    /// reads it with, lists it and compares it with `dest`: one round trip.
    async fn inspect(
        &self,
        ctx: &ActionContext<'_>,
        dest: &str,
        local: Option<&(std::path::PathBuf, u64)>,
    ) -> Result<Result<Archive, String>, TransportError> {
        let mut script = ShellScript::new().var("D", dest);
        script = match local {
            Some(_) => script.var("S", "").var("SENT", "1"),
            None => script.path_var("S", &self.src).var("SENT", ""),
        };
        let script = script.args(self.tar_args("")).code(INSPECT);
        let mut run = ctx.script(&script);
        if let Some((file, size)) = local {
            run = run.stdin_file(file, *size);
        }
        let out = ctx.conn.exec(run).await?;
        if !out.success() {
            return Ok(Err(last_line(&out.stderr_str())));
        }
        let text = out.stdout_str();
        let mut parts = text.splitn(3, '\0');
        let head = parts.next().unwrap_or_default();
        let listing = parts.next().unwrap_or_default();
        let diff = parts.next().unwrap_or_default();
        let mut head = head.lines();
        let (Some(path), Some(uid), Some(flag)) = (head.next(), head.next(), head.next()) else {
            return Ok(Err("unexpected answer from the host".into()));
        };
        let flag = match flag {
            "none" => "",
            f => f,
        };
        let uid: u32 = uid.trim().parse().unwrap_or(u32::MAX);
        Ok(Ok(Archive {
            path: path.to_owned(),
            flag: flag.to_owned(),
            files: listing.lines().map(str::to_owned).collect(),
            unarchived: self.diff_is_empty(diff, uid == 0),
        }))
    }

    /// ansible-core's reading of `tar --diff`: which lines are differences.
    fn diff_is_empty(&self, diff: &str, root: bool) -> bool {
        const DIFFERS: &[&str] = &[
            ": Mod time differs",
            ": Warning: Cannot stat: No such file or directory",
            ": Invalid owner",
            ": Invalid group",
            ": Symlink differs",
            ": Contents differ",
            ": Size differs",
        ];
        !diff.lines().any(|line| {
            if line.ends_with(": : Warning: Cannot stat: No such file or directory") {
                return false;
            }
            (root && self.attrs.owner.is_none() && line.ends_with(": Uid differs"))
                || (root && self.attrs.group.is_none() && line.ends_with(": Gid differs"))
                || (self.attrs.mode.is_none() && line.ends_with(": Mode differs"))
                || DIFFERS.iter().any(|d| {
                    if d.starts_with(": Invalid") {
                        line.contains(d)
                    } else {
                        line.ends_with(d)
                    }
                })
        })
    }

    /// Extracts unless already there, then sets the attributes asked for
    /// on every path of the archive.
    async fn unpack(
        &self,
        ctx: &ActionContext<'_>,
        dest: &str,
        archive: &Archive,
    ) -> Result<Outcome, TransportError> {
        let mut changed = false;
        if !archive.unarchived {
            let script = ShellScript::new()
                .var("D", dest)
                .var("S", &archive.path)
                .args(self.tar_args(&archive.flag))
                .code(r#"cd -- "$D" && tar --extract -C "$D" "$@" -f "$S""#);
            let out = ctx.conn.exec(ctx.script(&script)).await?;
            if !out.success() {
                return Ok(Outcome::failed(format!(
                    "failed to unpack {} to {dest}: {}",
                    archive.path,
                    last_line(&out.stderr_str())
                )));
            }
            changed = true;
        }
        if !self.attrs.is_empty() && !archive.files.is_empty() {
            match self.set_attributes(ctx, dest, &archive.files).await? {
                Ok(set) => changed |= set,
                Err(msg) => return Ok(Outcome::failed(msg)),
            }
        }
        Ok(Outcome::changed(changed).with("handler", handler_name(&archive.flag)))
    }

    /// Stats every path of the archive under `dest` and fixes those whose
    /// attributes differ (two round trips at most).
    async fn set_attributes(
        &self,
        ctx: &ActionContext<'_>,
        dest: &str,
        files: &[String],
    ) -> Result<Result<bool, String>, TransportError> {
        let paths: Vec<String> = files
            .iter()
            .map(|f| format!("{dest}/{}", f.trim_end_matches('/')))
            .collect();
        let script = ShellScript::new().args(&paths).code(
            r#"printf '%s\n' "$(umask)"
for p in "$@"; do LC_ALL=C stat -c '%a|%U|%G|%u|%g|%F' -- "$p" || echo missing; done"#,
        );
        let out = ctx.conn.exec(ctx.script(&script)).await?;
        let text = out.stdout_str();
        let mut lines = text.lines();
        let umask = lines
            .next()
            .and_then(|u| u32::from_str_radix(u.trim(), 8).ok())
            .unwrap_or(0o022);
        let mut fix = Vec::new();
        for (path, line) in paths.iter().zip(lines) {
            let f: Vec<&str> = line.split('|').collect();
            let [perms, owner, group, uid, gid, kind] = f.as_slice() else {
                continue;
            };
            let current = Current {
                perms: u32::from_str_radix(perms, 8).unwrap_or(0),
                is_dir: *kind == "directory",
                owner,
                group,
                uid: uid.parse().unwrap_or(u32::MAX),
                gid: gid.parse().unwrap_or(u32::MAX),
            };
            if *kind != "symbolic link" && !self.attrs.delta(&current, umask).is_empty() {
                fix.push(path.clone());
            }
        }
        if fix.is_empty() {
            return Ok(Ok(false));
        }
        let mut script = ShellScript::new().args(&fix).code(r#"for p in "$@"; do"#);
        script = script.then(&self.attrs.commands("\"$p\"", false, false));
        script = script.code("done");
        let out = ctx.conn.exec(ctx.script(&script)).await?;
        if !out.success() {
            return Ok(Err(format!(
                "cannot set attributes under {dest}: {}",
                last_line(&out.stderr_str())
            )));
        }
        Ok(Ok(true))
    }
}

super::action_by_async_run!(Unarchive);

/// The archive as the host sees it.
struct Archive {
    path: String,
    /// tar's compression flag (`-z`, `-j`, `-J`, or none).
    flag: String,
    /// Its paths, as `tar --list` prints them.
    files: Vec<String>,
    /// `tar --diff` found nothing that counts.
    unarchived: bool,
}

fn handler_name(flag: &str) -> &'static str {
    match flag {
        "-z" => "TgzArchive",
        "-j" => "TarBzipArchive",
        "-J" => "TarXzArchive",
        _ => "TarArchive",
    }
}

/// Receives the archive (when sent), then prints its path, the uid, the flag tar
/// reads it with, a NUL, its listing, a NUL, and `tar --diff`'s output.
/// The task's tar options are the positional parameters.
const INSPECT: &str = r#"KEEP=
trap 'if [ -n "$SENT" ] && [ -z "$KEEP" ] && [ -n "$S" ]; then rm -f -- "$S"; fi' EXIT
if [ -n "$SENT" ]; then
  S=$(mktemp "${TMPDIR:-/tmp}/convoy-unarchive.XXXXXXXX") || exit 1
  cat > "$S" || { echo "Source '$S' failed to transfer" >&2; exit 1; }
elif [ ! -e "$S" ]; then echo "Source '$S' does not exist" >&2; exit 1
elif [ ! -r "$S" ]; then echo "Source '$S' not readable" >&2; exit 1
fi
[ -s "$S" ] || { echo "Invalid archive '$S', the file is 0 bytes" >&2; exit 1; }
command -v tar >/dev/null 2>&1 || { echo "Unable to find required 'gtar' or 'tar' binary in the path" >&2; exit 1; }
cd -- "$D" || exit 1
for f in -z none -j -J; do
  [ "$f" = none ] && g= || g=$f
  if L=$(LC_ALL=C tar --list -C "$D" $g "$@" -f "$S" 2>/dev/null); then
    KEEP=1
    printf '%s\n' "$S"; id -u; echo "$f"; printf '\0'
    printf '%s\n' "$L"; printf '\0'
    LC_ALL=C tar --diff -C "$D" $g "$@" -f "$S" 2>&1
    exit 0
  fi
done
echo "Failed to find handler for \"$S\". Make sure the required command to extract the file is installed." >&2
exit 1"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn unarchive(args: serde_json::Value) -> Unarchive {
        Unarchive::new(parse_args(args).unwrap()).unwrap()
    }

    #[test]
    fn which_differences_count() {
        let plain = unarchive(serde_json::json!({"src": "a.tgz", "dest": "/d"}));
        assert!(plain.diff_is_empty("", true));
        assert!(!plain.diff_is_empty("app/x: Mod time differs\n", true));
        assert!(!plain.diff_is_empty(
            "tar: app/y: Warning: Cannot stat: No such file or directory\n",
            true
        ));
        assert!(!plain.diff_is_empty("app/x: Mode differs\n", true));
        assert!(!plain.diff_is_empty("app/x: Uid differs\n", true));
        // Not root: the owner is not compared.
        assert!(plain.diff_is_empty("app/x: Uid differs\n", false));
        let moded = unarchive(serde_json::json!({"src": "a.tgz", "dest": "/d", "mode": "0600"}));
        // The task sets the mode anyway.
        assert!(moded.diff_is_empty("app/x: Mode differs\n", true));
    }

    #[test]
    fn arguments() {
        let build = |v| Unarchive::new(parse_args(v)?).map(|_| ());
        assert!(build(serde_json::json!({"src": "a.tgz"})).is_err());
        assert!(build(serde_json::json!({"src": "http://h/a.tgz", "dest": "/d"})).is_err());
        assert!(
            build(serde_json::json!({"src": "a.tgz", "dest": "/d", "exclude": ["x"]})).is_err()
        );
        let u = unarchive(
            serde_json::json!({"src": "a", "dest": "/d", "extra_opts": ["--strip-components=1"], "owner": "app"}),
        );
        assert_eq!(
            u.tar_args("-z"),
            [
                "-z",
                "--show-transformed-names",
                "--strip-components=1",
                "--owner=app"
            ]
        );
    }
}
