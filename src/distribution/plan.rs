//! What one host should end up with: the distribution section rendered for
//! that host (version, root, artifact, release files).

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{ArchiveFormat, ArtifactCache, LocalArtifact, paths};
use crate::playbook::DistributionSpec;
use crate::template::Templates;
use crate::vars::Value;

/// Where the artifact comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A local file, pushed over the SSH connection.
    Push(Arc<LocalArtifact>),
    /// A URL the host fetches itself (curl or wget).
    Pull {
        url: String,
        sha256: String,
        format: ArchiveFormat,
        file_name: String,
    },
}

/// A file rendered into the release.
#[derive(Debug, Clone)]
pub struct ReleaseFile {
    /// Path inside the release.
    pub dest: String,
    pub content: String,
    pub mode: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ReleasePlan {
    pub name: String,
    pub version: String,
    pub root: String,
    pub source: Source,
    pub strip: u32,
    pub shared: Vec<String>,
    pub keep: u32,
    pub files: Vec<ReleaseFile>,
    pub owner: Option<String>,
    pub group: Option<String>,
    /// A digest of everything that makes up the release on the host: two
    /// runs with the same identity build the same release.
    pub identity: String,
}

impl ReleasePlan {
    pub fn sha256(&self) -> &str {
        match &self.source {
            Source::Push(a) => &a.sha256,
            Source::Pull { sha256, .. } => sha256,
        }
    }
    pub fn format(&self) -> ArchiveFormat {
        match &self.source {
            Source::Push(a) => a.format,
            Source::Pull { format, .. } => *format,
        }
    }
    pub fn file_name(&self) -> &str {
        match &self.source {
            Source::Push(a) => &a.file_name,
            Source::Pull { file_name, .. } => file_name,
        }
    }
    pub fn release_path(&self) -> String {
        format!("{}/releases/{}", self.root, self.version)
    }
}

/// Renders the section for one host. The error is a one-line message.
pub fn render(
    spec: &DistributionSpec,
    templates: &Templates,
    vars: &Value,
    base_dir: &Path,
    cache: &ArtifactCache,
) -> Result<ReleasePlan, String> {
    let origin = spec.span.to_string();
    let text = |s: &str| {
        templates
            .render_str_deep(s, vars, &origin)
            .map_err(|e| e.to_string())
    };
    // What can never be a valid layout is refused here, for every host,
    // before the first connection (see `paths`).
    paths::name(&spec.name)?;
    let version = text(&spec.version)?;
    paths::version(&version)?;
    let root = paths::root(&text(&spec.root)?)?;
    for shared in &spec.shared {
        paths::inside_release("shared path", shared)?;
    }
    let format = match &spec.format {
        Some(f) => Some(ArchiveFormat::parse(&text(f)?).ok_or_else(|| {
            format!("format `{f}` is not one of tar.gz, tgz, tar, tar.zst, zip, file")
        })?),
        None => None,
    };
    let source_text = text(&spec.source)?;
    let sha256 = spec
        .sha256
        .as_deref()
        .map(text)
        .transpose()?
        .map(|s| s.to_ascii_lowercase());
    let source = if source_text.starts_with("http://") || source_text.starts_with("https://") {
        let sha256 = sha256
            .ok_or_else(|| format!("`sha256` is required for the URL source {source_text}"))?;
        if sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("`sha256` must be 64 hex digits, got `{sha256}`"));
        }
        let file_name = source_text
            .rsplit('/')
            .next()
            .unwrap_or("artifact")
            .split('?')
            .next()
            .unwrap_or("artifact")
            .to_owned();
        let format = format.unwrap_or_else(|| ArchiveFormat::from_name(&file_name));
        Source::Pull {
            url: source_text,
            sha256,
            format,
            file_name,
        }
    } else {
        let path = base_dir.join(&source_text);
        Source::Push(
            cache
                .local(&path, format, spec.strip_components, sha256.as_deref())
                .map_err(|e| e.to_string())?,
        )
    };
    if spec.strip_components > 0
        && matches!(format_of(&source), ArchiveFormat::Zip | ArchiveFormat::File)
    {
        return Err("`strip_components` only applies to tar archives".into());
    }
    // Release files may name the release they belong to.
    let mut file_vars = vars.clone();
    if let Value::Object(map) = &mut file_vars {
        let path = format!("{root}/releases/{version}");
        map.insert(
            "release".into(),
            serde_json::json!({"version": version, "path": path}),
        );
        map.insert(
            "distribution".into(),
            serde_json::json!({"name": spec.name, "root": root}),
        );
    }
    let vars = &file_vars;
    let mut files = Vec::new();
    for t in &spec.templates {
        let dest = text(&t.dest)?;
        paths::inside_release("template dest", &dest)?;
        let content = templates
            .render_file(&text(&t.src)?, vars)
            .map_err(|e| e.to_string())?;
        let mode = crate::tasks::normalize_mode(t.mode.as_ref());
        files.push(ReleaseFile {
            dest,
            content,
            mode,
        });
    }
    let owner = spec.owner.as_deref().map(text).transpose()?;
    let group = spec.group.as_deref().map(text).transpose()?;
    let mut plan = ReleasePlan {
        name: spec.name.clone(),
        version,
        root,
        source,
        strip: spec.strip_components,
        shared: spec.shared.clone(),
        keep: spec.keep,
        files,
        owner,
        group,
        identity: String::new(),
    };
    plan.identity = identity(&plan);
    Ok(plan)
}

fn format_of(source: &Source) -> ArchiveFormat {
    match source {
        Source::Push(a) => a.format,
        Source::Pull { format, .. } => *format,
    }
}

fn identity(plan: &ReleasePlan) -> String {
    let mut h = Sha256::new();
    h.update(plan.sha256());
    h.update(plan.strip.to_le_bytes());
    for s in &plan.shared {
        h.update(b"\0shared\0");
        h.update(s);
    }
    for f in &plan.files {
        h.update(b"\0file\0");
        h.update(&f.dest);
        h.update(b"\0");
        h.update(&f.content);
        h.update(f.mode.as_deref().unwrap_or(""));
    }
    h.update(plan.owner.as_deref().unwrap_or(""));
    h.update(plan.group.as_deref().unwrap_or(""));
    hex::encode(h.finalize())[..16].to_owned()
}
