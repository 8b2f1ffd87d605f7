//! The proxy host side: two scripts, one round trip each. `probe` reads the
//! manifest and the digest of every file involved; `install` (only when
//! something differs) writes the new files beside the live ones, swaps them
//! in keeping the old ones, validates, reloads, and restores on failure, so
//! the live config is never left half-new or invalid.
//!
//! File contents travel as a tar stream on stdin (a command line is limited
//! to 128 KiB; hundreds of parked domains are not), and the work is done
//! per directory, not per file. New and previous files wait in hidden
//! directories beside the live ones (`DIR/.convoy-new/`, `DIR/.convoy-old/`,
//! same filesystem, so swapping is rename(2)); includes like
//! `conf.d/*.conf` or `sites-enabled/*` never load them.

use std::collections::{BTreeMap, HashMap};

use super::changes::ChangeSet;
use super::config::ProxyConfig;
use crate::transport::{Become, Connection, Script, ShellScript, TransportError};

/// What a proxy host holds for a section, as far as an apply cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFiles {
    /// Paths the manifest lists (none without a manifest).
    pub managed: Vec<String>,
    /// Regular files among the rendered and the managed paths.
    pub present: HashMap<String, PresentFile>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PresentFile {
    pub sha256: String,
    /// As `stat %a` prints it (`644`).
    pub mode: String,
}

/// Printed last by the probe: without it the probe did not run through.
const PROBE_DONE: &str = "convoy-probe-done";
const PROBE_DONE_ECHO: &str = "echo convoy-probe-done";

/// [`probe`]'s script, `M` (the manifest) set in front of it; stdin lists
/// the rendered paths. A host that cannot hash fails the probe (with the
/// reason) rather than making every file look changed.
const PROBE: &str = r#"if [ -f "$M" ]; then grep -v '^#' -- "$M" | sed 's/^/managed /'; fi
{ cat; if [ -f "$M" ]; then grep -v '^#' -- "$M"; fi; } | sort -u | {
  set --
  while IFS= read -r f; do if [ -f "$f" ]; then set -- "$@" "$f"; fi; done
  if [ $# -gt 0 ]; then convoy_sha256 "$@" && stat -L -c 'mode %a %n' -- "$@"; fi
} || exit 3"#;

/// Reads the manifest at `manifest` and hashes `dests` and the managed
/// files that exist (one round trip). `Err(message)` when the host could
/// not run the probe (e.g. sudo refused).
pub async fn probe(
    conn: &Connection,
    sudo: Option<&Become>,
    manifest: &str,
    dests: &[&str],
) -> Result<Result<HostFiles, String>, TransportError> {
    let script = ShellScript::new()
        .var("M", manifest)
        .sha256_function()
        .code(PROBE)
        .code(PROBE_DONE_ECHO);
    let mut list = dests.join("\n");
    list.push('\n');
    let out = conn
        .exec(Script::new(&script).stdin(list.as_bytes()).sudo(sudo))
        .await?;
    let text = out.stdout_str();
    if !text.lines().any(|l| l == PROBE_DONE) {
        return Ok(Err(last_line(&out.stderr_str())));
    }
    Ok(Ok(parse_probe(&text)))
}

fn parse_probe(text: &str) -> HostFiles {
    let mut files = HostFiles::default();
    let mut modes: HashMap<&str, &str> = HashMap::new();
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("managed ") {
            files.managed.push(path.to_owned());
        } else if let Some(rest) = line.strip_prefix("mode ") {
            if let Some((mode, path)) = rest.split_once(' ') {
                modes.insert(path, mode);
            }
        } else if let Some((sha, path)) = line.split_once("  ")
            && sha.len() == 64
            && sha.bytes().all(|b| b.is_ascii_hexdigit())
        {
            files.present.insert(
                path.to_owned(),
                PresentFile {
                    sha256: sha.to_owned(),
                    mode: String::new(),
                },
            );
        }
    }
    for (path, file) in files.present.iter_mut() {
        file.mode = modes
            .get(path.as_str())
            .copied()
            .unwrap_or_default()
            .to_owned();
    }
    files
}

/// Why an install did not go through; the host's previous files are live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallFailure {
    /// A file could not be written or swapped in (the host's reason).
    Write(String),
    /// `validate` failed with the new files in place (its output).
    Validate(String),
    /// `reload` failed (its output); `restored` is how reloading the
    /// previous files went.
    Reload {
        output: String,
        restored: Result<(), String>,
    },
    /// Installed and reloaded, but the manifest could not be written.
    Manifest(String),
}

/// Separates the two reload outputs when reloading the restored files fails too.
const AGAIN: &str = "--- convoy: reloading the previous files ---";

/// The install script. `M` (manifest path), `V` (validate) and `RL`
/// (reload) are set in front of it; a tar on stdin brings `steps.sh`
/// (written for this change by [`steps`]), the new manifest and the files.
const INSTALL: &str = r#"set -u
umask 022
AGAIN='--- convoy: reloading the previous files ---'
fail() { printf '%s\n' "$*" >&2; exit 3; }
S=$(mktemp -d) || fail "cannot create a temporary directory"
trap 'rm -rf "$S"' EXIT
err=$( (umask 0; tar -x --no-same-owner -f - -C "$S") 2>&1 ) || fail "cannot unpack the rendered files: $err"
. "$S/steps.sh"
abort() { undo; tidy; fail "$@"; }
# 1. The new files beside the live ones, in DIR/.convoy-new/; nothing live changes.
stage
# 2. Each live file is kept as a hard link in DIR/.convoy-old/, then
#    replaced by rename(2): its path never goes missing.
swap
# 3. The whole config, new files in place, must pass the validator.
if [ -n "$V" ]; then
  out=$(sh -c "$V" 2>&1) || { undo; tidy; printf '%s\n' "$out" >&2; exit 4; }
fi
# 4. A failed reload puts the previous files back and reloads them.
if [ -n "$RL" ]; then
  out=$(sh -c "$RL" 2>&1) || {
    undo; tidy
    again=$(sh -c "$RL" 2>&1) && { printf '%s\n' "$out" >&2; exit 5; }
    printf '%s\n%s\n%s\n' "$out" "$AGAIN" "$again" >&2
    exit 6
  }
fi
# 5. Live: the copies go, the manifest records what is installed now.
tidy
if [ -f "$S/manifest" ]; then
  err=$( { mkdir -p "${M%/*}" && cat "$S/manifest" > "$M.tmp" && mv -f "$M.tmp" "$M"; } 2>&1 ) ||
    { printf 'cannot write %s: %s\n' "$M" "$err" >&2; exit 7; }
fi
"#;

/// Installs `changes` on the host (one round trip). `validate` and
/// `reload` run only when a file is written or removed: a manifest-only
/// change (adopting files already identical) reloads nothing.
pub async fn install(
    conn: &Connection,
    sudo: Option<&Become>,
    config: &ProxyConfig,
    changes: &ChangeSet<'_>,
) -> Result<Result<(), InstallFailure>, TransportError> {
    let (validate, reload) = match changes.touches_config() {
        true => (config.validate.as_deref(), config.reload.as_deref()),
        false => (None, None),
    };
    let script = ShellScript::new()
        .var("M", &config.manifest)
        .var("V", validate.unwrap_or_default())
        .var("RL", reload.unwrap_or_default())
        .code(INSTALL);
    let bundle = bundle(changes);
    let out = conn
        .exec(Script::new(&script).stdin(&bundle).sudo(sudo))
        .await?;
    let stderr = out.stderr_str();
    Ok(match out.status {
        0 => Ok(()),
        4 => Err(InstallFailure::Validate(stderr.trim_end().to_owned())),
        5 => Err(InstallFailure::Reload {
            output: stderr.trim_end().to_owned(),
            restored: Ok(()),
        }),
        6 => {
            let (output, again) = stderr.split_once(AGAIN).unwrap_or((&stderr, ""));
            Err(InstallFailure::Reload {
                output: output.trim().to_owned(),
                restored: Err(again.trim().to_owned()),
            })
        }
        7 => Err(InstallFailure::Manifest(last_line(&stderr))),
        _ => Err(InstallFailure::Write(last_line(&stderr))),
    })
}

/// What changes in one directory.
#[derive(Default)]
struct DirChanges<'a> {
    write: Vec<&'a str>,
    remove: Vec<&'a str>,
}

/// `steps.sh`: the shell functions `stage`, `swap`, `undo` and `tidy` for
/// this change, one batch of commands per directory (not per file: a few
/// processes per directory keep hundreds of files fast). `undo` is safe at
/// any point: it puts back what `.convoy-old/` holds, and removes a new
/// file only once `swap` has moved it in. The code is constant; each
/// directory (`D`), its index (`I`) and its file names (the positional
/// parameters) are set in front of it.
fn steps(changes: &ChangeSet<'_>) -> ShellScript {
    let mut dirs: BTreeMap<&str, DirChanges> = BTreeMap::new();
    for w in &changes.write {
        let (dir, name) = split(&w.file.dest);
        dirs.entry(dir).or_default().write.push(name);
    }
    for dest in &changes.remove {
        let (dir, name) = split(dest);
        dirs.entry(dir).or_default().remove.push(name);
    }
    let each = |script: ShellScript, f: &dyn Fn(ShellScript, &str, &DirChanges) -> ShellScript| {
        dirs.iter().enumerate().fold(script, |s, (i, (dir, c))| {
            f(s.var("D", dir).var("I", i.to_string()), dir, c)
        })
    };
    let script = ShellScript::new().code("MOVED=' '\nstage() {");
    let script = each(script, &|s, _, c| {
        if c.write.is_empty() {
            s.code(STAGE_NOTHING_NEW)
        } else {
            s.args(&c.write).code(STAGE_NEW)
        }
    })
    .code("}\nswap() {");
    let script = each(script, &|s, _, c| {
        let s = match c.write.is_empty() {
            true => s,
            false => s
                .args(&c.write)
                .code(SWAP_KEEP_OLD)
                .args(&c.write)
                .code(SWAP_MOVE_NEW),
        };
        match c.remove.is_empty() {
            true => s,
            false => s.args(&c.remove).code(SWAP_REMOVE),
        }
    })
    .code("  :\n}\nundo() {");
    let script = each(script, &|s, _, c| {
        let s = match c.write.is_empty() {
            true => s,
            false => s.args(&c.write).code(UNDO_WRITTEN),
        };
        match c.remove.is_empty() {
            true => s,
            false => s.args(&c.remove).code(UNDO_REMOVED),
        }
    })
    .code("  :\n}\ntidy() {");
    let hidden: Vec<String> = dirs
        .keys()
        .flat_map(|d| [format!("{d}/.convoy-new"), format!("{d}/.convoy-old")])
        .collect();
    script.args(hidden).code("  rm -rf -- \"$@\"\n}")
}

const STAGE_NOTHING_NEW: &str = r#"  err=$( { rm -rf -- "$D/.convoy-new" "$D/.convoy-old" && mkdir -p -- "$D/.convoy-old"; } 2>&1 ) || abort "cannot prepare $D: $err""#;

const STAGE_NEW: &str = r#"  for n in "$@"; do [ ! -d "$D/$n" ] || abort "cannot write $D/$n: it is a directory"; done
  err=$( { rm -rf -- "$D/.convoy-new" "$D/.convoy-old" && mkdir -p -- "$D/.convoy-new" "$D/.convoy-old" && cp -Rp -- "$S/files$D/." "$D/.convoy-new/"; } 2>&1 ) || abort "cannot write the new files into $D: $err""#;

/// Keeps each live file that is replaced as a hard link (or copy) in
/// `.convoy-old/`. The loop turns the names into the paths that exist.
const SWAP_KEEP_OLD: &str = r#"  for n in "$@"; do shift; if [ -e "$D/$n" ] || [ -L "$D/$n" ]; then set -- "$@" "$D/$n"; fi; done
  if [ $# -gt 0 ]; then err=$( { ln -f -- "$@" "$D/.convoy-old/" 2>/dev/null || cp -pP -- "$@" "$D/.convoy-old/"; } 2>&1 ) || abort "cannot keep the previous files of $D: $err"; fi"#;

const SWAP_MOVE_NEW: &str = r#"  for n in "$@"; do shift; set -- "$@" "$D/.convoy-new/$n"; done
  MOVED="$MOVED$I "
  err=$(mv -f -- "$@" "$D/" 2>&1) || abort "cannot install the new files into $D: $err""#;

const SWAP_REMOVE: &str = r#"  for n in "$@"; do shift; if [ -e "$D/$n" ] || [ -L "$D/$n" ]; then set -- "$@" "$D/$n"; fi; done
  if [ $# -gt 0 ]; then err=$(mv -f -- "$@" "$D/.convoy-old/" 2>&1) || abort "cannot remove files from $D: $err"; fi"#;

const UNDO_WRITTEN: &str = r#"  for n in "$@"; do
    if [ -e "$D/.convoy-old/$n" ] || [ -L "$D/.convoy-old/$n" ]; then mv -f -- "$D/.convoy-old/$n" "$D/$n"
    else case "$MOVED" in *" $I "*) [ -e "$D/.convoy-new/$n" ] || rm -f -- "$D/$n";; esac; fi
  done"#;

const UNDO_REMOVED: &str = r#"  for n in "$@"; do if [ -e "$D/.convoy-old/$n" ] || [ -L "$D/.convoy-old/$n" ]; then mv -f -- "$D/.convoy-old/$n" "$D/$n"; fi; done"#;

/// A dest's directory and file name (dests are checked absolute paths).
fn split(dest: &str) -> (&str, &str) {
    dest.rsplit_once('/').unwrap_or(("", dest))
}

/// `steps.sh`, the new manifest and the files (under `files/` at their
/// directories' paths, with their final modes), as the script unpacks them.
fn bundle(changes: &ChangeSet<'_>) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut add = |name: &str, data: &[u8], mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        // GNU tar warns about files from 1970.
        header.set_mtime(now);
        tar.append_data(&mut header, name, data)
            .expect("writing a tar into memory cannot fail");
    };
    add("steps.sh", steps(changes).text().as_bytes(), 0o600);
    if let Some(manifest) = &changes.manifest {
        add("manifest", manifest.as_bytes(), 0o600);
    }
    for w in &changes.write {
        add(
            &format!("files{}", w.file.dest),
            w.file.content.as_bytes(),
            w.mode,
        );
    }
    tar.into_inner()
        .expect("writing a tar into memory cannot fail")
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("the host gave no reason")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn the_probe_reads_managed_paths_digests_and_modes() {
        let text = format!(
            "managed /etc/nginx/conf.d/a.conf\nmanaged /etc/nginx/conf.d/gone.conf\n{SHA}  /etc/nginx/conf.d/a.conf\nmode 640 /etc/nginx/conf.d/a.conf\n{PROBE_DONE}\n"
        );
        let files = parse_probe(&text);
        assert_eq!(
            files.managed,
            ["/etc/nginx/conf.d/a.conf", "/etc/nginx/conf.d/gone.conf"]
        );
        assert_eq!(
            files.present["/etc/nginx/conf.d/a.conf"],
            PresentFile {
                sha256: SHA.into(),
                mode: "640".into()
            }
        );
        assert_eq!(files.present.len(), 1);
    }

    #[test]
    fn the_reload_marker_is_the_scripts() {
        assert!(INSTALL.contains(&format!("AGAIN='{AGAIN}'")));
    }
}

/// The scripts run for real, on this machine, against a scratch directory.
#[cfg(test)]
mod script_tests {
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    use super::*;
    use crate::proxy::config::RenderedFile;
    use crate::transport::LocalConnection;

    struct Scratch {
        dir: tempfile::TempDir,
        conn: Connection,
    }

    impl Scratch {
        fn new() -> Scratch {
            Scratch {
                dir: tempfile::tempdir().unwrap(),
                conn: Connection::Local(LocalConnection::default()),
            }
        }
        fn path(&self, rel: &str) -> String {
            self.dir.path().join(rel).display().to_string()
        }
        fn read(&self, rel: &str) -> Option<String> {
            std::fs::read_to_string(self.dir.path().join(rel)).ok()
        }
        fn inode(&self, rel: &str) -> u64 {
            std::fs::metadata(self.dir.path().join(rel)).unwrap().ino()
        }
        /// Every name under the scratch dir, temporary ones included.
        fn listing(&self) -> Vec<String> {
            fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
                for entry in std::fs::read_dir(dir).unwrap().flatten() {
                    let path = entry.path();
                    if path.is_dir() {
                        walk(&path, base, out);
                    } else {
                        out.push(path.strip_prefix(base).unwrap().display().to_string());
                    }
                }
            }
            let mut out = Vec::new();
            walk(self.dir.path(), self.dir.path(), &mut out);
            out.sort();
            out
        }
        /// A config of `files` (relative dest, content) checked by `validate`.
        fn config(&self, files: &[(&str, &str)], validate: &str, reload: &str) -> ProxyConfig {
            ProxyConfig {
                files: files
                    .iter()
                    .map(|(dest, content)| RenderedFile {
                        dest: self.path(dest),
                        content: (*content).into(),
                        mode: None,
                        template: "t.j2".into(),
                    })
                    .collect(),
                validate: Some(validate.into()).filter(|v: &String| !v.is_empty()),
                reload: Some(reload.into()).filter(|r: &String| !r.is_empty()),
                manifest: self.path("state/p.manifest"),
                play: "p".into(),
            }
        }
        async fn apply(&self, config: &ProxyConfig) -> (bool, Result<(), InstallFailure>) {
            let dests: Vec<&str> = config.files.iter().map(|f| f.dest.as_str()).collect();
            let found = probe(&self.conn, None, &config.manifest, &dests)
                .await
                .unwrap()
                .unwrap();
            let changes = ChangeSet::between(config, &found);
            if changes.is_empty() {
                return (false, Ok(()));
            }
            (
                true,
                install(&self.conn, None, config, &changes).await.unwrap(),
            )
        }
    }

    #[tokio::test]
    async fn files_are_installed_pruned_and_recorded() {
        let s = Scratch::new();
        std::fs::create_dir(s.dir.path().join("conf")).unwrap();
        std::fs::write(s.dir.path().join("conf/theirs.conf"), "not ours").unwrap();
        // The validator sees the new files in place; the reload is recorded.
        let validate = format!("grep -q b1 {}", s.path("conf/b.conf"));
        let reload = format!("echo reloaded >> {}", s.path("reloads"));
        let first = s.config(
            &[("conf/a.conf", "a1"), ("conf/b.conf", "b1")],
            &validate,
            &reload,
        );
        assert_eq!(s.apply(&first).await, (true, Ok(())));
        assert_eq!(s.read("conf/a.conf").as_deref(), Some("a1"));
        assert_eq!(s.read("reloads").as_deref(), Some("reloaded\n"));
        let manifest = s.read("state/p.manifest").unwrap();
        assert!(manifest.ends_with(&format!(
            "{}\n{}\n",
            s.path("conf/a.conf"),
            s.path("conf/b.conf")
        )));

        // Unchanged: one probe, no reload.
        assert_eq!(s.apply(&first).await, (false, Ok(())));
        assert_eq!(s.read("reloads").as_deref(), Some("reloaded\n"));

        // a.conf goes, b.conf stays as it is, c.conf comes; theirs.conf is not ours.
        let b = s.inode("conf/b.conf");
        let validate = format!("test ! -e {}", s.path("conf/a.conf"));
        let second = s.config(
            &[("conf/b.conf", "b1"), ("conf/c.conf", "c1")],
            &validate,
            &reload,
        );
        assert_eq!(s.apply(&second).await, (true, Ok(())));
        assert_eq!(s.inode("conf/b.conf"), b);
        assert_eq!(
            s.listing(),
            [
                "conf/b.conf",
                "conf/c.conf",
                "conf/theirs.conf",
                "reloads",
                "state/p.manifest"
            ]
        );
        assert_eq!(s.read("reloads").as_deref(), Some("reloaded\nreloaded\n"));
    }

    #[tokio::test]
    async fn a_rejected_config_leaves_the_live_files_as_they_were() {
        let s = Scratch::new();
        let reload = format!("echo reloaded >> {}", s.path("reloads"));
        let good = s.config(&[("conf/a.conf", "a1"), ("conf/b.conf", "b1")], "", &reload);
        s.apply(&good).await.1.unwrap();
        let (a, b) = (s.inode("conf/a.conf"), s.inode("conf/b.conf"));
        let before = s.listing();
        let manifest = s.read("state/p.manifest");

        let validate = format!("! grep -l bogus {} >&2", s.path("conf/*.conf"));
        let bad = s.config(
            &[("conf/a.conf", "a2 bogus"), ("conf/new.conf", "n")],
            &validate,
            &reload,
        );
        let (_, result) = s.apply(&bad).await;
        assert_eq!(result, Err(InstallFailure::Validate(s.path("conf/a.conf"))));
        // Same inodes, same content, nothing left behind, nothing reloaded.
        assert_eq!((s.inode("conf/a.conf"), s.inode("conf/b.conf")), (a, b));
        assert_eq!(s.read("conf/a.conf").as_deref(), Some("a1"));
        assert_eq!(s.listing(), before);
        assert_eq!(s.read("state/p.manifest"), manifest);
        assert_eq!(s.read("reloads").as_deref(), Some("reloaded\n"));
    }

    #[tokio::test]
    async fn a_failed_reload_puts_the_previous_files_back_and_reloads_them() {
        let s = Scratch::new();
        // Fails while a2 is live; the reload of the restored a1 succeeds.
        let reload = format!(
            "if grep -q a2 {a}; then echo refused a2 >&2; exit 1; fi; cat {a} >> {log}",
            a = s.path("conf/a.conf"),
            log = s.path("reloads")
        );
        s.apply(&s.config(&[("conf/a.conf", "a1")], "", &reload))
            .await
            .1
            .unwrap();
        let a = s.inode("conf/a.conf");
        let (_, result) = s
            .apply(&s.config(&[("conf/a.conf", "a2"), ("conf/b.conf", "b")], "", &reload))
            .await;
        assert_eq!(
            result,
            Err(InstallFailure::Reload {
                output: "refused a2".into(),
                restored: Ok(())
            })
        );
        assert_eq!(s.inode("conf/a.conf"), a);
        assert_eq!(s.read("reloads").as_deref(), Some("a1a1"));
        assert_eq!(s.listing(), ["conf/a.conf", "reloads", "state/p.manifest"]);

        // When the restored files do not reload either, both outputs are kept.
        let (_, result) = s
            .apply(&s.config(&[("conf/a.conf", "a3")], "", "echo no >&2; exit 1"))
            .await;
        assert_eq!(
            result,
            Err(InstallFailure::Reload {
                output: "no".into(),
                restored: Err("no".into())
            })
        );
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_written_changes_nothing() {
        let s = Scratch::new();
        s.apply(&s.config(&[("conf/a.conf", "a1")], "", ""))
            .await
            .1
            .unwrap();
        std::fs::create_dir_all(s.dir.path().join("conf/dir.conf")).unwrap();
        let (_, result) = s
            .apply(&s.config(&[("conf/a.conf", "a2"), ("conf/dir.conf", "x")], "", ""))
            .await;
        assert_eq!(
            result,
            Err(InstallFailure::Write(format!(
                "cannot write {}: it is a directory",
                s.path("conf/dir.conf")
            )))
        );
        assert_eq!(s.read("conf/a.conf").as_deref(), Some("a1"));
        assert_eq!(s.listing(), ["conf/a.conf", "state/p.manifest"]);
    }

    #[tokio::test]
    async fn hostile_file_names_are_installed_and_removed_as_data() {
        let markers = crate::transport::hostile::Markers::new();
        let s = Scratch::new();
        // Dests never hold control characters or backslashes (see config).
        let names: Vec<String> = markers
            .values()
            .into_iter()
            .filter(|v| !v.contains('\n') && !v.contains('\\'))
            .enumerate()
            .map(|(i, v)| format!("conf{i}/n {v}"))
            .collect();
        let files: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), n.as_str())).collect();
        let reload = format!("echo reloaded >> {}", s.path("reloads"));
        assert_eq!(
            s.apply(&s.config(&files, "", &reload)).await,
            (true, Ok(()))
        );
        for name in &names {
            assert_eq!(s.read(name).as_deref(), Some(name.as_str()), "{name:?}");
        }
        assert_eq!(
            s.apply(&s.config(&files, "", &reload)).await,
            (false, Ok(()))
        );
        // Half of them go; a rejected validation puts everything back.
        let (keep, gone) = files.split_at(files.len() / 2);
        let before = s.listing();
        let (_, result) = s.apply(&s.config(keep, "false", &reload)).await;
        assert!(
            matches!(result, Err(InstallFailure::Validate(_))),
            "{result:?}"
        );
        assert_eq!(s.listing(), before);
        assert_eq!(s.apply(&s.config(keep, "", &reload)).await, (true, Ok(())));
        for (name, _) in gone {
            assert_eq!(s.read(name), None, "{name:?} removed");
        }
        markers.assert_untouched();
    }
}
