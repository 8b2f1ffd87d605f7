//! Refusing archives that would write outside their release: absolute
//! paths, `..` components, and links pointing outside. Checked on the
//! control machine from the archive's listing, before anything is unpacked.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use super::ArchiveFormat;

/// Why an entry is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeEntry {
    pub entry: String,
    pub reason: &'static str,
}

/// Checks every entry of the archive at `path`.
pub fn check(
    path: &Path,
    format: ArchiveFormat,
    strip: u32,
) -> Result<Result<(), UnsafeEntry>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = std::io::BufReader::new(file);
    match format {
        ArchiveFormat::TarGz => check_tar(flate2::read::GzDecoder::new(reader), strip),
        ArchiveFormat::Tar => check_tar(reader, strip),
        ArchiveFormat::TarZst => {
            let decoder =
                ruzstd::decoding::StreamingDecoder::new(reader).map_err(|e| e.to_string())?;
            check_tar(decoder, strip)
        }
        ArchiveFormat::Zip => check_zip(path),
        ArchiveFormat::File => Ok(Ok(())),
    }
}

fn check_tar(reader: impl Read, strip: u32) -> Result<Result<(), UnsafeEntry>, String> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let kind = entry.header().entry_type();
        let verdict = if kind.is_symlink() {
            check_entry(&name, link.as_deref(), strip, LinkKind::Symbolic)
        } else if kind.is_hard_link() {
            check_entry(&name, link.as_deref(), strip, LinkKind::Hard)
        } else {
            check_entry(&name, None, strip, LinkKind::Symbolic)
        };
        if let Err(e) = verdict {
            return Ok(Err(e));
        }
    }
    Ok(Ok(()))
}

fn check_zip(path: &Path) -> Result<Result<(), UnsafeEntry>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| e.to_string())?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| e.to_string())?;
        let name = entry.name().map_err(|e| e.to_string())?.into_owned();
        let link = if entry.is_symlink() {
            let mut target = String::new();
            entry
                .read_to_string(&mut target)
                .map_err(|e| e.to_string())?;
            Some(target)
        } else {
            None
        };
        if let Err(e) = check_entry(&name, link.as_deref(), 0, LinkKind::Symbolic) {
            return Ok(Err(e));
        }
    }
    Ok(Ok(()))
}

#[derive(Clone, Copy)]
enum LinkKind {
    Symbolic,
    Hard,
}

/// One entry: its own path, and for links, where the link points, as they
/// will be after `--strip-components`.
fn check_entry(
    name: &str,
    link: Option<&str>,
    strip: u32,
    kind: LinkKind,
) -> Result<(), UnsafeEntry> {
    let refuse = |reason| {
        Err(UnsafeEntry {
            entry: name.to_owned(),
            reason,
        })
    };
    if name.starts_with('/') {
        return refuse("absolute path");
    }
    let Some(inside) = normalize(Path::new(name)) else {
        return refuse("path leaves the release (..)");
    };
    let Some(inside) = stripped(&inside, strip) else {
        return Ok(()); // tar skips entries shallower than the strip
    };
    let Some(target) = link else { return Ok(()) };
    if target.starts_with('/') {
        return refuse("link to an absolute path");
    }
    // A symlink resolves from its own directory; a hard link names a path from the archive root.
    let resolved = match kind {
        LinkKind::Symbolic => normalize(&inside.parent().unwrap_or(Path::new("")).join(target)),
        LinkKind::Hard => normalize(Path::new(target)).and_then(|t| stripped(&t, strip)),
    };
    match resolved {
        Some(_) => Ok(()),
        None => refuse("link points outside the release"),
    }
}

/// The path without its first `strip` components; `None` if nothing is left.
fn stripped(path: &Path, strip: u32) -> Option<PathBuf> {
    let rest: PathBuf = path.components().skip(strip as usize).collect();
    (!rest.as_os_str().is_empty()).then_some(rest)
}

/// Resolves `.` and `..` lexically; `None` when the path climbs above its root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(name: &str, link: Option<&str>) -> Option<&'static str> {
        check_entry(name, link, 0, LinkKind::Symbolic)
            .err()
            .map(|e| e.reason)
    }

    #[test]
    fn refuses_escapes() {
        assert_eq!(verdict("app/bin/x", None), None);
        assert_eq!(verdict("/etc/passwd", None), Some("absolute path"));
        assert_eq!(
            verdict("../evil", None),
            Some("path leaves the release (..)")
        );
        assert_eq!(
            verdict("a/../../evil", None),
            Some("path leaves the release (..)")
        );
        assert_eq!(verdict("a/link", Some("../b")), None);
        assert_eq!(
            verdict("link", Some("../../../etc")),
            Some("link points outside the release")
        );
        assert_eq!(
            verdict("link", Some("/etc")),
            Some("link to an absolute path")
        );
        assert_eq!(
            check_entry("a/b", Some("../../x"), 0, LinkKind::Hard)
                .err()
                .map(|e| e.reason),
            Some("link points outside the release")
        );
        assert!(check_entry("a/b", Some("a/c"), 0, LinkKind::Hard).is_ok());
    }
}
