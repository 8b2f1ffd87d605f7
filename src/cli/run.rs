use std::path::PathBuf;

use clap::Args;

use super::shared::HostOpts;
use crate::error::Error;
use crate::playbook::Playbook;
use crate::run::{Mode, Phase, TagFilter};

#[derive(Args)]
pub struct Opts {
    /// The playbook to run.
    pub playbook: PathBuf,
    #[command(flatten)]
    pub hosts: HostOpts,
    #[command(flatten)]
    pub once: super::shared::OnceOpts,
    /// Only run tasks with these tags (comma-separated, repeatable).
    #[arg(short = 't', long = "tags", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip tasks with these tags.
    #[arg(long = "skip-tags", value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// How far the release cycle goes: `prepare` ships and unpacks everywhere, switching nothing.
    #[arg(long, value_enum, default_value_t = Phase::All)]
    pub phase: Phase,
    /// Become (sudo) in plays that do not say, as ansible-playbook's -b (sudo's password: -K).
    #[arg(short = 'b', long = "become")]
    pub become_: bool,
    /// The user to become in plays that do not say (default root).
    #[arg(long = "become-user", value_name = "USER")]
    pub become_user: Option<String>,
    /// Load and check the playbook, contact no host, exit 0 (ansible-playbook's --syntax-check).
    #[arg(long)]
    pub syntax_check: bool,
    /// Print each play's hosts and exit, contacting no host.
    #[arg(long)]
    pub list_hosts: bool,
    /// Print each play's tasks and exit, contacting no host.
    #[arg(long)]
    pub list_tasks: bool,
    /// Print each play's tags and exit, contacting no host.
    #[arg(long)]
    pub list_tags: bool,
    /// Pass over the tasks before the first one with this name (or shell pattern).
    #[arg(long, value_name = "TASK")]
    pub start_at_task: Option<String>,
    /// Set by `convoy resume`: the interrupted run's batches.
    #[arg(skip)]
    pub resume: Option<crate::run::Resume>,
}

pub async fn run(opts: Opts) -> Result<i32, Error> {
    let inventory = opts.hosts.inventory.load_for(&opts.playbook)?;
    let mut playbook = Playbook::load(&opts.playbook)?;
    playbook.default_become(opts.become_.then_some(true), opts.become_user.clone());
    if opts.syntax_check {
        println!("playbook: {}", opts.playbook.display());
        return Ok(0);
    }
    if opts.list_hosts || opts.list_tasks || opts.list_tags {
        // Listing contacts no host: no password is asked (as ansible-playbook).
        let mut flags = opts.hosts.clone();
        flags.become_pass = super::become_password::BecomePassOpts::unused();
        let options = flags.run_options(
            TagFilter {
                only: opts.tags.clone(),
                skip: opts.skip_tags.clone(),
            },
            Mode::Deploy { phase: opts.phase },
            &opts.playbook,
        )?;
        let listing = super::listing::Listing {
            hosts: opts.list_hosts,
            tasks: opts.list_tasks,
            tags: opts.list_tags,
        };
        listing.print(&opts.playbook, &inventory, &playbook, &options)?;
        return Ok(0);
    }
    let tags = TagFilter {
        only: opts.tags,
        skip: opts.skip_tags,
    };
    let mode = Mode::Deploy { phase: opts.phase };
    let mut options = opts.hosts.run_options(tags, mode, &opts.playbook)?;
    options.resume = opts.resume;
    if let Some(name) = &opts.start_at_task {
        options.start_at = Some(crate::run::StartAt::new(name, &playbook).ok_or_else(|| {
            Error::Usage(format!(
                "--start-at-task {name:?}: no task of {} has that name",
                opts.playbook.display()
            ))
        })?);
    }
    options.once = opts.once.spec()?;
    crate::playbook::answer_prompts(&mut playbook, &options.extra_vars)?;
    super::exec::execute(&inventory, &playbook, &options, &opts.hosts).await
}
