//! Flags shared by the commands that run on hosts, and what they become.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::error::Error;
use crate::inventory::Inventory;
use crate::report::OutputFormat;
use crate::run::{Mode, RunOptions, TagFilter};
use crate::vars::{Value, VarMap};

#[derive(Args, Clone)]
pub struct InventoryOpts {
    /// Inventory file, directory or executable (repeatable). Default: $CONVOY_INVENTORY, else ansible.cfg's `inventory`, else localhost only.
    #[arg(short = 'i', long = "inventory", value_name = "INVENTORY")]
    pub inventory: Vec<PathBuf>,
    /// A file holding the ansible-vault password, or an executable printing it (repeatable). Default: $ANSIBLE_VAULT_PASSWORD_FILE, else ansible.cfg's `vault_password_file`.
    #[arg(
        long = "vault-password-file",
        alias = "vault-pass-file",
        value_name = "FILE"
    )]
    pub vault_password_file: Vec<PathBuf>,
    /// A vault password under a vault id: LABEL@FILE, LABEL@prompt or FILE (repeatable).
    #[arg(long = "vault-id", value_name = "[LABEL@]SOURCE")]
    pub vault_id: Vec<String>,
    /// Ask for the vault password once, on the terminal.
    #[arg(short = 'J', long = "ask-vault-pass", alias = "ask-vault-password")]
    pub ask_vault_pass: bool,
}

impl InventoryOpts {
    /// The vault passwords, gathered once before any file is read: the
    /// flags, else `$ANSIBLE_VAULT_PASSWORD_FILE`, else ansible.cfg's
    /// `vault_password_file`, as ansible-playbook looks for them.
    fn configure_vault(&self) -> Result<(), Error> {
        use crate::vault::secrets;
        let vault = |e: crate::vault::VaultError| Error::Usage(e.to_string());
        let mut found = Vec::new();
        for spec in &self.vault_id {
            found.push(secrets::from_vault_id(spec).map_err(vault)?);
        }
        let mut files = self.vault_password_file.clone();
        if files.is_empty() && found.is_empty() && !self.ask_vault_pass {
            if let Some(env) = std::env::var_os("ANSIBLE_VAULT_PASSWORD_FILE") {
                files.push(env.into());
            } else if let Some(file) =
                &crate::ansible_cfg::AnsibleCfg::current().vault_password_file
            {
                files.push(file.clone());
            }
        }
        for file in &files {
            found.push(secrets::from_file(file, "default").map_err(vault)?);
        }
        if self.ask_vault_pass {
            found.push(secrets::prompt("default").map_err(vault)?);
        }
        crate::vault::configure(found);
        Ok(())
    }

    pub fn load(&self) -> Result<Inventory, Error> {
        self.configure_vault()?;
        let mut sources = self.inventory.clone();
        if sources.is_empty()
            && let Some(env) = std::env::var_os("CONVOY_INVENTORY")
        {
            sources.push(env.into());
        }
        if sources.is_empty() {
            // As `ansible-playbook site.yml` does in an Ansible project.
            sources = crate::ansible_cfg::AnsibleCfg::find().inventory;
        }
        Ok(if sources.is_empty() {
            Inventory::localhost()
        } else {
            Inventory::load(&sources)?
        })
    }

    /// The inventory as a run of `playbook` sees it: with the
    /// `group_vars/` and `host_vars/` beside the playbook too, as Ansible.
    pub fn load_for(&self, playbook: &std::path::Path) -> Result<Inventory, Error> {
        let mut inventory = self.load()?;
        let dir = playbook.parent().unwrap_or(std::path::Path::new("."));
        inventory.load_playbook_vars(dir)?;
        Ok(inventory)
    }
}

#[derive(Args, Clone)]
pub struct HostOpts {
    #[command(flatten)]
    pub inventory: InventoryOpts,
    /// Further limit the hosts to this pattern.
    #[arg(short = 'l', long = "limit", value_name = "PATTERN")]
    pub limit: Option<String>,
    /// Extra variables: key=value (repeatable, several per flag), YAML/JSON, or @file.
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    pub extra_vars: Vec<String>,
    /// Change nothing; report what would change.
    #[arg(short = 'C', long)]
    pub check: bool,
    /// Show the differences in changed files.
    #[arg(short = 'D', long)]
    pub diff: bool,
    /// Hosts worked on at once (default: ansible.cfg's `forks`, else 10).
    #[arg(short = 'f', long, value_name = "FORKS")]
    pub forks: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// More output (command stdout/stderr, ok results on a terminal).
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Use this ssh_config file instead of ~/.ssh/config (like `ssh -F`).
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
    /// Record unknown host keys instead of refusing them (changed keys are always refused).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Connect as this user where no inventory variable (ansible_user) names one, as ansible-playbook's -u.
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub remote_user: Option<String>,
    /// Continue at `pause: confirm` without asking (needed when not on a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Also take over a stale deploy lock: one its holder stopped renewing 5 minutes ago or more.
    #[arg(long)]
    pub force_unlock: bool,
    /// SSH connection timeout, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// SSH master connections open at once (default: five times --forks, at least 256); the
    /// least recently used idle one is closed for a host that needs one.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    #[command(flatten)]
    pub become_pass: super::become_password::BecomePassOpts,
}

impl HostOpts {
    pub fn run_options(
        &self,
        tags: TagFilter,
        mode: Mode,
        playbook: &std::path::Path,
    ) -> Result<RunOptions, Error> {
        let cfg = crate::ansible_cfg::AnsibleCfg::current();
        if let Some((file, line, message)) = &cfg.error {
            return Err(Error::Located {
                message: message.clone(),
                span: crate::source::SourceSpan::new(file, *line, 1),
            });
        }
        for warning in &cfg.warnings {
            eprintln!("warning: {warning}");
        }
        let forks = self.forks.or(cfg.forks).unwrap_or(10);
        if forks == 0 {
            return Err(Error::Usage("--forks must be at least 1".into()));
        }
        if self.max_connections == Some(0) {
            return Err(Error::Usage("--max-connections must be at least 1".into()));
        }
        Ok(RunOptions {
            limit: self.limit.clone(),
            extra_vars: super::extra_vars::parse_extra_vars(&self.extra_vars)?,
            check: self.check,
            diff: self.diff,
            forks,
            tags,
            ssh_config: self.ssh_config.clone(),
            accept_new_host_keys: self.accept_new_host_keys,
            remote_user: self.remote_user.clone(),
            connect_timeout: self.timeout,
            mode,
            yes: self.yes,
            force_unlock: self.force_unlock,
            run_id: crate::run::new_run_id(),
            resume: None,
            playbook_name: playbook.display().to_string(),
            // Only `run` and `exec` take `--once` (see [`OnceOpts`]).
            once: None,
            start_at: None,
            masters: crate::transport::MasterPool::new(
                self.max_connections
                    .unwrap_or_else(|| crate::transport::MasterPool::default_bound(forks)),
            ),
            // Asked last, once everything else is known to be right.
            become_password: self.become_pass.password()?,
        })
    }
}

/// `--once`: for the commands that run plays (`run`, `exec`) and only
/// them, so no other command accepts a flag it would ignore.
#[derive(Args, Debug, Clone)]
pub struct OnceOpts {
    /// Run in one instance only: take the named lock on the first host (by
    /// name) of the first play's pattern; another live run holding it skips (or fails).
    #[arg(long, value_name = "NAME")]
    pub once: Option<String>,
    /// With --once: what to do when another live run holds the lock.
    #[arg(long, value_enum, default_value_t = crate::playbook::IfHeld::Skip, value_name = "WHAT", requires = "once")]
    pub once_if_held: crate::playbook::IfHeld,
    /// With --once: take the lock over once its holder has not renewed it for this long.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration, value_name = "DURATION", requires = "once")]
    pub once_stale_after: Duration,
}

impl OnceOpts {
    /// The run-wide lock these flags ask for, checked.
    pub fn spec(&self) -> Result<Option<crate::playbook::OnceSpec>, Error> {
        self.once
            .as_ref()
            .map(|name| {
                crate::playbook::OnceSpec::for_run(
                    name,
                    self.once_if_held,
                    self.once_stale_after,
                    crate::source::SourceSpan::new("<command line>", 1, 1),
                )
                .map_err(Error::Usage)
            })
            .transpose()
    }
}

/// What the commands acting on a playbook's distributions (plan, status,
/// rollback, patch, unlock) start from.
pub struct Distributions {
    pub inventory: Inventory,
    pub playbook: crate::playbook::Playbook,
    pub options: RunOptions,
}

impl HostOpts {
    /// Loads the inventory and the playbook, which must have a play with a
    /// `distribution` (say so plainly when it has none).
    pub fn load_distributions(
        &self,
        path: &std::path::Path,
        mode: Mode,
    ) -> Result<Distributions, Error> {
        let inventory = self.inventory.load_for(path)?;
        let playbook = crate::playbook::Playbook::load(path)?;
        if !playbook.plays.iter().any(|p| p.distribution.is_some()) {
            return Err(Error::Usage(format!(
                "{} has no play with a `distribution`",
                path.display()
            )));
        }
        let options = self.run_options(TagFilter::default(), mode, path)?;
        Ok(Distributions {
            inventory,
            playbook,
            options,
        })
    }
}

/// A private directory for ssh control sockets: short, because Unix socket
/// paths are limited to about 100 bytes; removed when dropped.
pub fn control_dir() -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("cvy.").tempdir_in("/tmp")
}

/// The hosts a play selects, narrowed by `--limit`.
pub fn play_hosts(
    inventory: &crate::inventory::Inventory,
    play: &crate::playbook::Play,
    options: &RunOptions,
) -> Result<Vec<String>, Error> {
    let selected = inventory
        .select(&play.hosts)
        .map_err(|source| Error::Pattern {
            source,
            span: Some(play.hosts_span.clone()),
        })?;
    let limit = match &options.limit {
        Some(l) => Some(
            inventory
                .select(l)
                .map_err(|source| Error::Pattern { source, span: None })?,
        ),
        None => None,
    };
    Ok(selected
        .into_iter()
        .filter(|h| {
            limit
                .as_ref()
                .is_none_or(|l| l.iter().any(|x| x.name == h.name))
        })
        .map(|h| h.name.clone())
        .collect())
}

/// One host's answer to [`Distributions::on_each_host`].
pub struct HostAnswer<T> {
    pub host: String,
    /// The distribution's root on the host.
    pub root: String,
    /// `Err` is the host's reason (unreachable, or the operation's error).
    pub answer: Result<T, String>,
}

/// A host of a play with a distribution: its connection variables and the
/// distribution's root there. Only `root` is rendered: no artifact is read
/// or hashed.
pub struct ReleaseTarget {
    pub host: String,
    pub vars: VarMap,
    pub root: String,
    /// The play's escalation (the same as a run's).
    pub sudo: Option<crate::transport::Become>,
}

impl Distributions {
    /// Runs `op` on the root of every host of every play with a
    /// distribution, over a connection of its own, `--forks` hosts at a
    /// time: the answers per distribution (by name), in play and host order.
    /// Every root is rendered before the first connection, so bad input
    /// touches no host.
    pub async fn on_each_host<T, F, Fut>(
        &self,
        op: F,
    ) -> Result<Vec<(String, Vec<HostAnswer<T>>)>, Error>
    where
        F: Fn(crate::transport::Connection, String, Option<crate::transport::Become>) -> Fut,
        Fut: std::future::Future<Output = (crate::transport::Connection, Result<T, String>)>,
    {
        let plays = self.targets()?;
        let control_dir = control_dir()?;
        let mut answers = Vec::new();
        for (name, targets) in plays {
            answers.push((
                name,
                on_each_target(targets, &self.options, control_dir.path(), &op).await,
            ));
        }
        Ok(answers)
    }

    /// Every play with a distribution: its name and its hosts, each with
    /// the root rendered for it (bad input fails here, before any host).
    pub fn targets(&self) -> Result<Vec<(String, Vec<ReleaseTarget>)>, Error> {
        let templates = crate::template::Templates::new(&self.playbook.base_dir);
        crate::run::preflight::share_inventory(&templates, &self.inventory);
        let mut plays = Vec::new();
        for play in &self.playbook.plays {
            if let Some(spec) = &play.distribution {
                plays.push((
                    spec.name.clone(),
                    self.release_targets(play, spec, &templates)?,
                ));
            }
        }
        Ok(plays)
    }

    fn release_targets(
        &self,
        play: &crate::playbook::Play,
        spec: &crate::playbook::DistributionSpec,
        templates: &crate::template::Templates,
    ) -> Result<Vec<ReleaseTarget>, Error> {
        let (inventory, playbook, options) = (&self.inventory, &self.playbook, &self.options);
        let scope = crate::run::preflight::play_scope(playbook, play, options)?;
        play_hosts(inventory, play, options)?
            .into_iter()
            .map(|host| {
                let vars = crate::run::preflight::host_context(
                    &scope, inventory, playbook, options, &host,
                );
                let root = templates
                    .render_str_deep(
                        &spec.root,
                        &Value::Object(vars.clone()),
                        &spec.span.to_string(),
                    )
                    .map_err(|e| Error::Distribution {
                        message: e.to_string(),
                        span: spec.span.clone(),
                        host: host.clone(),
                    })?;
                let sudo = crate::run::escalation::for_release(
                    play,
                    templates,
                    &vars,
                    &host,
                    options.become_password.as_ref(),
                )?;
                Ok(ReleaseTarget {
                    host,
                    vars,
                    root,
                    sudo,
                })
            })
            .collect()
    }
}

/// [`Distributions::on_each_host`] for one play's targets.
async fn on_each_target<T, F, Fut>(
    targets: Vec<ReleaseTarget>,
    options: &RunOptions,
    control_dir: &std::path::Path,
    op: &F,
) -> Vec<HostAnswer<T>>
where
    F: Fn(crate::transport::Connection, String, Option<crate::transport::Become>) -> Fut,
    Fut: std::future::Future<Output = (crate::transport::Connection, Result<T, String>)>,
{
    crate::run::Forks::new(options.forks)
        .each(
            targets,
            |ReleaseTarget {
                 host,
                 vars,
                 root,
                 sudo,
             }| async move {
                let answer =
                    match crate::run::connect::open(&host, &vars, options, control_dir).await {
                        Ok(conn) => {
                            let (conn, answer) = op(conn, root.clone(), sudo).await;
                            conn.close().await;
                            answer
                        }
                        Err(e) => Err(e.to_string()),
                    };
                HostAnswer { host, root, answer }
            },
        )
        .await
}

/// The hosts `pattern` selects, narrowed by `--limit`, in inventory order;
/// a pattern selecting nothing is bad input, found before any connection.
pub fn pattern_hosts(
    inventory: &Inventory,
    pattern: &str,
    limit: Option<&str>,
) -> Result<Vec<String>, Error> {
    let selected = inventory
        .select(pattern)
        .map_err(|source| Error::Pattern { source, span: None })?;
    let limited = limit
        .map(|l| inventory.select(l))
        .transpose()
        .map_err(|source| Error::Pattern { source, span: None })?;
    let hosts: Vec<String> = selected
        .into_iter()
        .filter(|h| {
            limited
                .as_ref()
                .is_none_or(|l| l.iter().any(|x| x.name == h.name))
        })
        .map(|h| h.name.clone())
        .collect();
    if hosts.is_empty() {
        return Err(Error::Usage(format!(
            "pattern \"{pattern}\" with --limit \"{}\" matches no host",
            limit.unwrap_or_default()
        )));
    }
    Ok(hosts)
}
