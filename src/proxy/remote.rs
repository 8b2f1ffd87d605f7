//! The proxy host side: two scripts, one round trip each. `probe` reads the
//! manifest and the digest of every file involved; `install` (only when
//! something differs) writes the new files beside the live ones, swaps them
//! in keeping the old ones, validates, reloads, and restores on failure, so
//! the live config is never left half-new or invalid.
//!
//! File contents travel as a tar stream on stdin (a command line is limited
//! to 128 KiB; hundreds of parked domains are not). Temporary names start
//! with a dot (`.NAME.convoy-new`, `.NAME.convoy-old`) so that includes like
//! `conf.d/*.conf` or `sites-enabled/*` never load them.

use std::collections::HashMap;

use super::changes::ChangeSet;
use super::config::ProxyConfig;
use crate::transport::{Become, Connection, Script, TransportError, quote};

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

/// Reads the manifest at `manifest` and hashes `dests` and the managed
/// files that exist (one round trip). `Err(message)` when the host could
/// not run the probe (e.g. sudo refused).
pub async fn probe(
    conn: &Connection,
    sudo: Option<&Become>,
    manifest: &str,
    dests: &[&str],
) -> Result<Result<HostFiles, String>, TransportError> {
    let script = format!(
        "M={m}\n\
         if [ -f \"$M\" ]; then grep -v '^#' \"$M\" | sed 's/^/managed /'; fi\n\
         {{ cat; if [ -f \"$M\" ]; then grep -v '^#' \"$M\"; fi; }} | sort -u |\n\
         while IFS= read -r f; do if [ -f \"$f\" ]; then printf '%s\\0' \"$f\"; fi; done |\n\
         xargs -0 -r sh -c 'sha256sum -- \"$@\"; stat -L -c \"mode %a %n\" -- \"$@\"' sh\n\
         echo {PROBE_DONE}",
        m = quote(manifest),
    );
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

/// The install script; `M` (manifest path), `V` (validate) and `RL`
/// (reload) are set in front of it, the plan and files come on stdin.
/// Plan lines: `w<TAB>INDEX<TAB>MODE|-<TAB>DEST`, `r<TAB>-<TAB>-<TAB>DEST`.
const INSTALL: &str = r#"set -u
AGAIN='--- convoy: reloading the previous files ---'
fail() { printf '%s\n' "$*" >&2; exit 3; }
S=$(mktemp -d) || fail "cannot create a temporary directory"
trap 'rm -rf "$S"' EXIT
err=$(tar -xf - -C "$S" 2>&1) || fail "cannot unpack the rendered files: $err"
: > "$S/swapped"
names() { dir=${1%/*}; new="$dir/.${1##*/}.convoy-new"; old="$dir/.${1##*/}.convoy-old"; }
# Undoes step 2: kept files come back by rename (same inode), new ones go.
restore() {
  while IFS='	' read -r how d; do
    names "$d"
    case $how in kept) mv -fT "$old" "$d" ;; new) rm -f "$d" ;; esac
  done < "$S/swapped"
}
abort() {
  while IFS='	' read -r op i mode d; do names "$d"; rm -f "$new"; done < "$S/plan"
  restore
  fail "$@"
}
# 1. Every new file beside its live one; nothing live changes yet.
while IFS='	' read -r op i mode d; do
  [ "$op" = w ] || continue
  names "$d"
  [ ! -d "$d" ] || abort "cannot write $d: it is a directory"
  err=$( { mkdir -p "$dir" && cat "$S/$i" > "$new" &&
    if [ "$mode" != - ]; then chmod "$mode" "$new"; elif [ -f "$d" ]; then chmod "$(stat -L -c %a "$d")" "$new"; fi; } 2>&1 ) ||
    abort "cannot write $d: $err"
done < "$S/plan"
# 2. Swap: a live file is kept as a hard link, then replaced by rename(2),
#    so its path never goes missing and restoring it is one rename.
while IFS='	' read -r op i mode d; do
  names "$d"
  if [ -e "$d" ] || [ -L "$d" ]; then
    case $op in
    w) err=$( { ln -f "$d" "$old" 2>/dev/null || cp -pP "$d" "$old"; } 2>&1 ) || abort "cannot keep a copy of $d: $err"
       err=$(mv -fT "$new" "$d" 2>&1) || abort "cannot install $d: $err" ;;
    r) err=$(mv -fT "$d" "$old" 2>&1) || abort "cannot remove $d: $err" ;;
    esac
    printf 'kept\t%s\n' "$d" >> "$S/swapped"
  elif [ "$op" = w ]; then
    err=$(mv -fT "$new" "$d" 2>&1) || abort "cannot install $d: $err"
    printf 'new\t%s\n' "$d" >> "$S/swapped"
  fi
done < "$S/plan"
# 3. The whole config, new files in place, must pass the validator.
if [ -n "$V" ]; then
  out=$(sh -c "$V" 2>&1) || { restore; printf '%s\n' "$out" >&2; exit 4; }
fi
# 4. A failed reload puts the previous files back and reloads them.
if [ -n "$RL" ]; then
  out=$(sh -c "$RL" 2>&1) || {
    restore
    again=$(sh -c "$RL" 2>&1) && { printf '%s\n' "$out" >&2; exit 5; }
    printf '%s\n%s\n%s\n' "$out" "$AGAIN" "$again" >&2
    exit 6
  }
fi
# 5. Live: the copies go, the manifest records what is installed now.
while IFS='	' read -r how d; do
  names "$d"
  if [ "$how" = kept ]; then rm -f "$old"; fi
done < "$S/swapped"
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
    let script = format!(
        "M={}; V={}; RL={}\n{INSTALL}",
        quote(&config.manifest),
        quote(validate.unwrap_or_default()),
        quote(reload.unwrap_or_default()),
    );
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

/// The plan, the new manifest and the files, as the script unpacks them.
fn bundle(changes: &ChangeSet<'_>) -> Vec<u8> {
    let mut plan = String::new();
    for (i, file) in changes.write.iter().enumerate() {
        let mode = file.mode.as_deref().unwrap_or("-");
        plan.push_str(&format!("w\t{i}\t{mode}\t{}\n", file.dest));
    }
    for dest in &changes.remove {
        plan.push_str(&format!("r\t-\t-\t{dest}\n"));
    }
    let mut tar = tar::Builder::new(Vec::new());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut add = |name: &str, data: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        // GNU tar warns about files from 1970.
        header.set_mtime(now);
        tar.append_data(&mut header, name, data)
            .expect("writing a tar into memory cannot fail");
    };
    add("plan", plan.as_bytes());
    if let Some(manifest) = &changes.manifest {
        add("manifest", manifest.as_bytes());
    }
    for (i, file) in changes.write.iter().enumerate() {
        add(&i.to_string(), file.content.as_bytes());
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
