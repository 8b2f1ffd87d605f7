//! The local side of an artifact: found, packed (for a directory), checked
//! for unsafe entries and hashed — once per run, however many hosts get it.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::{ArchiveFormat, safety};

/// A local artifact ready to ship.
#[derive(Debug)]
pub struct LocalArtifact {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    pub format: ArchiveFormat,
    /// The name a single-file artifact gets inside the release.
    pub file_name: String,
}

#[derive(Debug, thiserror::Error, Clone)]
pub enum ArtifactError {
    #[error("artifact not found: {path}")]
    Missing { path: String },
    #[error("cannot read artifact {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("unsafe archive {path}: entry `{entry}`: {reason}; nothing was unpacked")]
    Unsafe {
        path: String,
        entry: String,
        reason: String,
    },
    #[error("artifact {path} has sha256 {actual}, but the playbook says {expected}")]
    Mismatch {
        path: String,
        expected: String,
        actual: String,
    },
}

/// One artifact's preparation, kept so that a failure is reported once too.
type Prepared = Result<Arc<LocalArtifact>, ArtifactError>;

/// Artifacts of this run, each prepared once.
#[derive(Default)]
pub struct ArtifactCache {
    entries: Mutex<HashMap<(PathBuf, u32), Prepared>>,
    /// Where directories are packed; removed with the cache.
    packed: Mutex<Option<tempfile::TempDir>>,
}

impl ArtifactCache {
    /// The artifact at `path` (a file or a directory), checked and hashed.
    pub fn local(
        &self,
        path: &Path,
        format: Option<ArchiveFormat>,
        strip: u32,
        expected: Option<&str>,
    ) -> Result<Arc<LocalArtifact>, ArtifactError> {
        let key = (path.to_owned(), strip);
        if let Some(done) = self.entries.lock().expect("not poisoned").get(&key) {
            return check_expected(done.clone()?, expected);
        }
        let result = self.prepare(path, format, strip).map(Arc::new);
        self.entries
            .lock()
            .expect("not poisoned")
            .insert(key, result.clone());
        check_expected(result?, expected)
    }

    fn prepare(
        &self,
        path: &Path,
        format: Option<ArchiveFormat>,
        strip: u32,
    ) -> Result<LocalArtifact, ArtifactError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|_| ArtifactError::Missing {
            path: shown.clone(),
        })?;
        let read_err = |e: std::io::Error| ArtifactError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        };
        let (file, format) = if meta.is_dir() {
            (self.pack(path).map_err(read_err)?, ArchiveFormat::TarGz)
        } else {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (
                path.to_owned(),
                format.unwrap_or_else(|| ArchiveFormat::from_name(&name)),
            )
        };
        if let Err(unsafe_entry) =
            safety::check(&file, format, strip).map_err(|reason| ArtifactError::Read {
                path: shown.clone(),
                reason,
            })?
        {
            return Err(ArtifactError::Unsafe {
                path: shown,
                entry: unsafe_entry.entry,
                reason: unsafe_entry.reason.to_owned(),
            });
        }
        let (sha256, size) = hash_file(&file).map_err(read_err)?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "artifact".into());
        Ok(LocalArtifact {
            path: file,
            sha256,
            size,
            format,
            file_name,
        })
    }

    /// Packs a directory into a tar.gz whose bytes only change when the files
    /// do (sorted entries, no owner names), so an unchanged directory is an
    /// unchanged artifact and ships zero bytes.
    fn pack(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let mut packed = self.packed.lock().expect("not poisoned");
        if packed.is_none() {
            *packed = Some(tempfile::Builder::new().prefix("convoy-pack.").tempdir()?);
        }
        let out_dir = packed.as_ref().expect("just set").path().to_owned();
        let out = out_dir.join(format!(
            "{}.tar.gz",
            self.entries.lock().expect("not poisoned").len()
        ));
        let encoder = flate2::write::GzEncoder::new(
            std::fs::File::create(&out)?,
            flate2::Compression::default(),
        );
        let mut builder = tar::Builder::new(encoder);
        builder.follow_symlinks(false);
        builder.mode(tar::HeaderMode::Deterministic);
        append_sorted(&mut builder, dir, Path::new(""))?;
        builder.into_inner()?.finish()?;
        Ok(out)
    }
}

fn append_sorted<W: std::io::Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let rel_path = rel.join(entry.file_name());
        builder.append_path_with_name(entry.path(), &rel_path)?;
        if entry.file_type()?.is_dir() {
            append_sorted(builder, root, &rel_path)?;
        }
    }
    Ok(())
}

fn check_expected(
    artifact: Arc<LocalArtifact>,
    expected: Option<&str>,
) -> Result<Arc<LocalArtifact>, ArtifactError> {
    match expected {
        Some(want) if !want.eq_ignore_ascii_case(&artifact.sha256) => {
            Err(ArtifactError::Mismatch {
                path: artifact.path.display().to_string(),
                expected: want.to_ascii_lowercase(),
                actual: artifact.sha256.clone(),
            })
        }
        _ => Ok(artifact),
    }
}

/// sha256 and size of a file, streamed.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}
