//! The command line: clap structs hold raw flags; each subcommand file turns
//! them into checked options and runs.

mod become_password;
mod ctl;
mod exec;
mod extra_vars;
mod inventory;
mod job;
mod lint;
mod listing;
mod logs;
mod patch;
mod plan;
mod ps;
mod render;
mod restart;
mod resume;
mod rollback;
mod run;
mod runs;
mod shared;
mod status;
mod traffic;
mod unlock;

pub(crate) use shared::{control_dir, play_hosts};

use clap::{Parser, Subcommand};

use crate::error::Error;
use crate::supervision::Action;

/// Deploy software to fleets of servers over SSH, the Ansible way.
#[derive(Parser)]
#[command(name = "convoy", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run a playbook's plays on the hosts they select.
    Run(run::Opts),
    /// Which release runs on which host (current, previous, who deployed it).
    Status(status::Opts),
    /// Switch back to the previous release (or --to VERSION) everywhere; nothing is shipped.
    Rollback(rollback::Opts),
    /// Where traffic goes between a play's pools (share, hosts, version); --to moves it by hand.
    Traffic(traffic::Opts),
    /// Make `<current>+patch.N` with some files replaced, and switch to it.
    Patch(patch::Opts),
    /// Show the rollout's batches and each host's current -> new version; changes nothing.
    Plan(plan::Opts),
    /// Check a playbook: every key, every template for every host; reports all problems, contacts no host.
    Lint(lint::Opts),
    /// Continue an interrupted rollout from its next batch, with the same plan.
    Resume(resume::Opts),
    /// Clear the deploy locks a dead run left behind.
    Unlock(unlock::Opts),
    /// Print the proxy files each proxy host would get; touches no host.
    Render(render::Opts),
    /// Run one command on the hosts a pattern selects.
    Exec(exec::Opts),
    /// Show the inventory as convoy understands it (like ansible-inventory).
    Inventory(inventory::Opts),
    /// Recent and running runs of this project, newest first, with their state.
    Runs(runs::Opts),
    /// Pause, continue, stop or roll back a running run (from another terminal or a CI job).
    Ctl(ctl::Opts),
    /// What the hosts' supervisors run (supervisord programs, systemd units): state, pid, uptime, release.
    Ps(ps::Opts),
    /// Restart a program in rollout order: batches, canary, pause, health gate, failure budget.
    Restart(restart::Opts),
    /// Stop a program in rollout order (batches, pause, failure budget).
    Stop(restart::Opts),
    /// Start a program in rollout order: batches, canary, pause, health gate, failure budget.
    Start(restart::Opts),
    /// A program's last output lines from every host, each prefixed with its host.
    Logs(logs::Opts),
    /// One-off work over many targets (databases, schemas, tenants), each tracked, exactly once.
    Job(job::Opts),
}

impl Cli {
    /// Runs the command; the result is the process exit code.
    pub fn run(self) -> Result<i32, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            match self.command {
                Command::Run(opts) => run::run(opts).await,
                Command::Exec(opts) => exec::run(opts).await,
                Command::Status(opts) => status::run(opts).await,
                Command::Rollback(opts) => rollback::run(opts).await,
                Command::Traffic(opts) => traffic::run(opts).await,
                Command::Patch(opts) => patch::run(opts).await,
                Command::Resume(opts) => resume::run(opts).await,
                Command::Plan(opts) => plan::run(opts).await,
                Command::Lint(opts) => lint::run(opts),
                Command::Unlock(opts) => unlock::run(opts).await,
                Command::Render(opts) => render::run(opts),
                Command::Inventory(opts) => inventory::run(opts),
                Command::Runs(opts) => runs::run(opts).await,
                Command::Ctl(opts) => ctl::run(opts).await,
                Command::Ps(opts) => ps::run(opts).await,
                Command::Restart(opts) => restart::run(opts, Action::Restart).await,
                Command::Stop(opts) => restart::run(opts, Action::Stop).await,
                Command::Start(opts) => restart::run(opts, Action::Start).await,
                Command::Logs(opts) => logs::run(opts).await,
                Command::Job(opts) => job::run(opts).await,
            }
        })
    }
}
