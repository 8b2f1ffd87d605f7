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
    let mut tree = Tree::default();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let kind = entry.header().entry_type();
        let link = if kind.is_symlink() {
            link.map(|l| (l, LinkKind::Symbolic))
        } else if kind.is_hard_link() {
            link.map(|l| (l, LinkKind::Hard))
        } else {
            None
        };
        if let Err(e) = tree.add(&name, link, strip) {
            return Ok(Err(e));
        }
    }
    Ok(tree.check())
}

fn check_zip(path: &Path) -> Result<Result<(), UnsafeEntry>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| e.to_string())?;
    let mut tree = Tree::default();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| e.to_string())?;
        let name = entry.name().map_err(|e| e.to_string())?.into_owned();
        let link = if entry.is_symlink() {
            let mut target = String::new();
            entry
                .read_to_string(&mut target)
                .map_err(|e| e.to_string())?;
            Some((target, LinkKind::Symbolic))
        } else {
            None
        };
        if let Err(e) = tree.add(&name, link, 0) {
            return Ok(Err(e));
        }
    }
    Ok(tree.check())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LinkKind {
    Symbolic,
    Hard,
}

/// One entry of the archive: its name, where it lands, and a link's target.
struct Placed {
    name: String,
    at: Vec<String>,
    link: Option<(String, LinkKind)>,
}

/// As many links as Linux follows in one lookup before ELOOP.
const MAX_HOPS: usize = 40;

/// The release as the archive will leave it (after `--strip-components`):
/// each entry's path, and the links among them. Links are judged by
/// walking paths through it, as the kernel will, not as text: a chain of
/// links that each look harmless can together leave the release.
#[derive(Default)]
struct Tree {
    /// Symbolic links by their path in the release (the last entry wins, as on disk).
    symlinks: std::collections::HashMap<Vec<String>, String>,
    /// Every entry in archive order: its name, where it lands (its directory
    /// resolved through the links before it), and a link's target.
    entries: Vec<Placed>,
}

impl Tree {
    /// Records one entry; refuses at once what no walk can make safe.
    fn add(
        &mut self,
        name: &str,
        link: Option<(String, LinkKind)>,
        strip: u32,
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
        // Entries are unpacked in order: the links before this one decide
        // where its directory really is.
        let mut parts = components(&inside);
        let Some(last) = parts.pop() else {
            return Ok(());
        };
        let Some(mut parts) = self.walk(Vec::new(), parts.iter().map(String::as_str)) else {
            return refuse("path leaves the release through a link");
        };
        parts.push(last);
        let link = match link {
            Some((target, _)) if target.starts_with('/') => {
                return refuse("link to an absolute path");
            }
            Some((target, LinkKind::Hard)) => {
                // A hard link names a path from the archive root, stripped like the entries.
                let Some(t) = normalize(Path::new(&target)).and_then(|t| stripped(&t, strip))
                else {
                    return refuse("link points outside the release");
                };
                Some((t.to_string_lossy().into_owned(), LinkKind::Hard))
            }
            other => other,
        };
        match &link {
            Some((target, LinkKind::Symbolic)) => {
                self.symlinks.insert(parts.clone(), target.clone());
            }
            _ => {
                self.symlinks.remove(&parts);
            }
        }
        self.entries.push(Placed {
            name: name.to_owned(),
            at: parts,
            link,
        });
        Ok(())
    }

    /// Walks every link's target through all the links of the release (a
    /// later entry can make an earlier link's target a link).
    fn check(&self) -> Result<(), UnsafeEntry> {
        for Placed { name, at, link } in &self.entries {
            let dir = at[..at.len() - 1].to_vec();
            let resolved = match link {
                None => continue,
                Some((target, LinkKind::Symbolic)) => self.walk(dir, target.split('/')),
                Some((target, LinkKind::Hard)) => self.walk(Vec::new(), target.split('/')),
            };
            if resolved.is_none() {
                return Err(UnsafeEntry {
                    entry: name.clone(),
                    reason: "link points outside the release",
                });
            }
        }
        Ok(())
    }

    /// Follows `rest` from `at` (a directory inside the release), replacing
    /// each symbolic link met by its target; `None` when the walk climbs
    /// above the release, meets an absolute link, or loops.
    fn walk<'a>(
        &'a self,
        mut at: Vec<String>,
        rest: impl Iterator<Item = &'a str>,
    ) -> Option<Vec<String>> {
        let mut todo: std::collections::VecDeque<&str> = rest.collect();
        let mut hops = 0;
        while let Some(part) = todo.pop_front() {
            match part {
                "" | "." => {}
                ".." => {
                    at.pop()?;
                }
                name => {
                    at.push(name.to_owned());
                    if let Some(target) = self.symlinks.get(&at) {
                        hops += 1;
                        if hops > MAX_HOPS || target.starts_with('/') {
                            return None;
                        }
                        at.pop();
                        for t in target.split('/').rev() {
                            todo.push_front(t);
                        }
                    }
                }
            }
        }
        Some(at)
    }
}

fn components(path: &Path) -> Vec<String> {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect()
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

    /// The verdict on an archive of `entries` (name, symlink target).
    fn verdict_of(entries: &[(&str, Option<&str>)]) -> Option<(String, &'static str)> {
        let mut tree = Tree::default();
        for (name, link) in entries {
            let link = link.map(|l| (l.to_owned(), LinkKind::Symbolic));
            if let Err(e) = tree.add(name, link, 0) {
                return Some((e.entry, e.reason));
            }
        }
        tree.check().err().map(|e| (e.entry, e.reason))
    }

    fn verdict(name: &str, link: Option<&str>) -> Option<&'static str> {
        verdict_of(&[(name, link)]).map(|(_, r)| r)
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
        let hard = |target: &str| {
            let mut tree = Tree::default();
            tree.add("a/b", Some((target.to_owned(), LinkKind::Hard)), 0)
                .and_then(|()| tree.check())
                .err()
                .map(|e| e.reason)
        };
        assert_eq!(hard("../../x"), Some("link points outside the release"));
        assert_eq!(hard("a/c"), None);
    }

    #[test]
    fn a_chain_of_links_that_leaves_the_release_is_refused() {
        // As text each stays inside (`a/up2` is `a`, `x` is `a`); walked,
        // `a/up2` is the release itself and `x` its parent.
        let found = verdict_of(&[
            ("a/b/", None),
            ("a/b/up", Some("..")),
            ("a/up2", Some("b/up/..")),
            ("x", Some("a/up2/..")),
        ]);
        assert_eq!(
            found,
            Some(("x".to_owned(), "link points outside the release"))
        );
    }

    #[test]
    fn an_entry_written_through_a_link_that_leaves_is_refused() {
        let found = verdict_of(&[
            ("a/", None),
            ("a/b/", None),
            ("a/b/up", Some("../..")),
            ("a/b/up/out", Some("..")),
            ("a/b/up/out/evil", None),
        ]);
        assert_eq!(
            found,
            Some((
                "a/b/up/out/evil".to_owned(),
                "path leaves the release through a link"
            ))
        );
    }

    #[test]
    fn links_inside_the_release_pass_and_loops_are_refused() {
        assert_eq!(
            verdict_of(&[
                ("lib/", None),
                ("cur", Some("lib")),
                ("x", Some("cur/../cur/y"))
            ]),
            None
        );
        assert_eq!(
            verdict_of(&[("l1", Some("l2")), ("l2", Some("l1"))]),
            Some(("l1".to_owned(), "link points outside the release"))
        );
    }
}
