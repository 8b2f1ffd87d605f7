use std::path::{Component, Path, PathBuf};

use clap::Args;

use super::shared::HostOpts;
use crate::error::Error;
use crate::run::Mode;

#[derive(Args)]
pub struct Opts {
    /// The playbook whose current release is patched.
    pub playbook: PathBuf,
    #[command(flatten)]
    pub hosts: HostOpts,
    /// LOCAL:PATH_IN_RELEASE — a local file replacing (or adding) a file of the release. Repeatable.
    #[arg(long = "file", value_name = "LOCAL:PATH", required = true)]
    pub files: Vec<String>,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let files = opts
        .files
        .iter()
        .map(|f| read_patch_file(f))
        .collect::<Result<Vec<_>, _>>()?;
    let d = opts
        .hosts
        .load_distributions(&opts.playbook, Mode::Patch { files })?;
    super::exec::execute(&d.inventory, &d.playbook, &d.options, &opts.hosts).await
}

fn read_patch_file(arg: &str) -> Result<(String, Vec<u8>), Error> {
    let bad = |why: String| Error::Usage(format!("--file {arg}: {why}"));
    let (local, inside) = arg
        .split_once(':')
        .ok_or_else(|| bad("expected LOCAL:PATH_IN_RELEASE".into()))?;
    let inside_path = Path::new(inside);
    if inside.is_empty()
        || inside_path.is_absolute()
        || inside_path
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(bad(format!(
            "`{inside}` must be a relative path inside the release, without `..`"
        )));
    }
    let content = std::fs::read(local).map_err(|e| bad(format!("cannot read {local}: {e}")))?;
    Ok((inside.to_owned(), content))
}
