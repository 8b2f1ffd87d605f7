//! The proxy hosts of one play, connected for the whole run, and the one
//! operation on them: bring every host to the config rendered for a fleet
//! state, all hosts in parallel.

use std::fmt;
use std::future::Future;
use std::path::Path;

use indexmap::IndexMap;

use super::changes::ChangeSet;
use super::config::{ProxyConfig, proxy_hosts};
use super::error::{RejectedFile, validator_output};
use super::remote::{self, InstallFailure};
use super::staged::StagedFiles;
use super::{FleetState, ProxyError};
use crate::inventory::Inventory;
use crate::playbook::ProxySpec;
use crate::run::{Forks, RunOptions};
use crate::template::Templates;
use crate::transport::{Become, Connection};
use crate::vars::VarMap;

/// The proxy tier of one play, connected for the run.
pub struct ProxyTier {
    spec: ProxySpec,
    hosts: Vec<ProxyHost>,
    /// `--forks`: proxy hosts worked on at once.
    forks: Forks,
    /// `--check`: what the previews so far would have installed, by host.
    staged: std::collections::HashMap<String, StagedFiles>,
}

struct ProxyHost {
    name: String,
    conn: Connection,
    sudo: Option<Become>,
}

/// What an apply changed, per proxy host (in inventory order).
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    pub hosts: IndexMap<String, HostChanges>,
}

/// What an apply changed on one proxy host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostChanges {
    pub written: Vec<String>,
    pub removed: Vec<String>,
    /// `reload` ran (it does only when a file was written or removed).
    pub reloaded: bool,
}

impl HostChanges {
    pub fn changed(&self) -> bool {
        !self.written.is_empty() || !self.removed.is_empty()
    }
}

/// `wrote a, b; removed c; reloaded`, or `proxy files up to date`.
impl fmt::Display for HostChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.changed() {
            return f.write_str("proxy files up to date");
        }
        let mut parts = Vec::new();
        if !self.written.is_empty() {
            parts.push(format!("wrote {}", self.written.join(", ")));
        }
        if !self.removed.is_empty() {
            parts.push(format!("removed {}", self.removed.join(", ")));
        }
        if self.reloaded {
            parts.push("reloaded".to_owned());
        }
        f.write_str(&parts.join("; "))
    }
}

/// What an apply would change on one proxy host (`--check`).
#[derive(Debug, Clone, Default)]
pub struct HostPreview {
    pub changes: HostChanges,
    /// Before/after of each file that would be written or removed.
    pub diffs: Vec<crate::tasks::FileDiff>,
}

/// `would write a, b; would remove c; would validate and reload`, or `proxy files up to date`.
impl fmt::Display for HostPreview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.changes;
        if !c.changed() {
            return f.write_str("proxy files up to date");
        }
        let mut parts = Vec::new();
        if !c.written.is_empty() {
            parts.push(format!("would write {}", c.written.join(", ")));
        }
        if !c.removed.is_empty() {
            parts.push(format!("would remove {}", c.removed.join(", ")));
        }
        if c.reloaded {
            parts.push("would validate and reload".to_owned());
        }
        f.write_str(&parts.join("; "))
    }
}

impl ProxyTier {
    /// Resolves the proxy hosts and renders every file for every proxy host
    /// against `state`, without connecting: the pre-flight check. Returns
    /// each proxy host's files.
    /// `vars_for(host)` gives the base variables of a proxy host (inventory,
    /// play vars, extra vars, and `ansible_play_name`, which names the
    /// host's manifest).
    pub fn check(
        spec: &ProxySpec,
        inventory: &Inventory,
        templates: &Templates,
        vars_for: &dyn Fn(&str) -> VarMap,
        state: &FleetState,
    ) -> Result<Vec<(String, ProxyConfig)>, ProxyError> {
        proxy_hosts(spec, inventory)?
            .into_iter()
            .map(|host| {
                let config = ProxyConfig::render(spec, templates, &host, vars_for(&host), state)?;
                Ok((host, config))
            })
            .collect()
    }

    /// Connects to every proxy host in parallel; the first that cannot be
    /// reached is the error (the others are closed again). Scripts run
    /// through sudo when the host's vars say `ansible_become`
    /// (as `ansible_become_user`, default root).
    ///
    /// Not an `async fn`: `vars_for` is read before the returned future
    /// starts, so that future holds no reference to it and stays `Send`.
    pub fn connect<'a>(
        spec: &'a ProxySpec,
        inventory: &Inventory,
        options: &'a RunOptions,
        control_dir: &'a Path,
        vars_for: &dyn Fn(&str) -> VarMap,
    ) -> impl Future<Output = Result<ProxyTier, ProxyError>> + Send + 'a {
        // Escalated as its tasks would be: the connection variables decide
        // (a proxy section has no `become` keyword of its own).
        let targets = proxy_hosts(spec, inventory).and_then(|hosts| {
            hosts
                .into_iter()
                .map(|host| {
                    let vars = vars_for(&host);
                    let keywords = crate::run::escalation::BecomeKeywords::default();
                    let sudo = crate::run::escalation::resolve(
                        &keywords,
                        &vars,
                        &host,
                        options.become_password.as_ref(),
                    )?;
                    Ok((host, vars, sudo))
                })
                .collect::<Result<Vec<_>, ProxyError>>()
        });
        let forks = Forks::new(options.forks);
        async move {
            let opened = forks
                .each(targets?, |(name, vars, sudo)| async move {
                    let conn = crate::run::connect::open(&name, &vars, options, control_dir).await;
                    (name, sudo, conn)
                })
                .await;
            let mut hosts = Vec::new();
            let mut failure = None;
            for (name, sudo, conn) in opened {
                match conn {
                    Ok(conn) => hosts.push(ProxyHost { name, conn, sudo }),
                    Err(source) => {
                        failure.get_or_insert(ProxyError::Unreachable { host: name, source });
                    }
                }
            }
            let tier = ProxyTier {
                spec: spec.clone(),
                hosts,
                forks,
                staged: Default::default(),
            };
            match failure {
                None => Ok(tier),
                Some(error) => {
                    tier.close().await;
                    Err(error)
                }
            }
        }
    }

    /// Brings every proxy host to the config rendered for `state`, all in
    /// parallel, each in one round trip (nothing differs) or two: probe,
    /// then install (write beside, swap in with the old files kept,
    /// validate, reload; restore on failure). Everything is rendered before
    /// any host is contacted, so a template error changes nothing anywhere.
    /// Hosts that fail leave their previous files live; the others keep
    /// the new config (re-apply the previous state to undo them).
    pub fn apply<'a>(
        &'a mut self,
        templates: &Templates,
        vars_for: &dyn Fn(&str) -> VarMap,
        state: &FleetState,
    ) -> impl Future<Output = Result<ApplyReport, ProxyError>> + Send + 'a {
        let configs: Result<Vec<ProxyConfig>, ProxyError> = self
            .hosts
            .iter()
            .map(|h| ProxyConfig::render(&self.spec, templates, &h.name, vars_for(&h.name), state))
            .collect();
        let (hosts, forks) = (&self.hosts, self.forks);
        async move {
            let configs = configs?;
            // Collected first: a closure inside a `Send` future trips rustc's
            // check over higher-ranked lifetimes.
            let work: Vec<_> = hosts
                .iter()
                .zip(&configs)
                .map(|(h, c)| h.apply(c))
                .collect();
            let results = forks.all(work).await;
            let mut report = ApplyReport::default();
            let mut errors = Vec::new();
            for (host, result) in hosts.iter().zip(results) {
                match result {
                    Ok(changes) => {
                        report.hosts.insert(host.name.clone(), changes);
                    }
                    Err(e) => errors.push(e),
                }
            }
            match errors.len() {
                0 => Ok(report),
                1 => Err(errors.remove(0)),
                _ => Err(ProxyError::Hosts(errors)),
            }
        }
    }

    /// What [`ProxyTier::apply`] would do for `state`, asking each host
    /// (read-only) what it holds: nothing is written, validated or reloaded.
    /// With `diff`, the current content of each file that would change is
    /// read too. Each preview starts from what the previews before it would
    /// have installed ([`StagedFiles`]), as each apply of a run starts from
    /// the one before.
    pub fn preview<'a>(
        &'a mut self,
        templates: &Templates,
        vars_for: &dyn Fn(&str) -> VarMap,
        state: &FleetState,
        diff: bool,
    ) -> impl Future<Output = Result<IndexMap<String, HostPreview>, ProxyError>> + Send + 'a {
        let configs: Result<Vec<ProxyConfig>, ProxyError> = self
            .hosts
            .iter()
            .map(|h| ProxyConfig::render(&self.spec, templates, &h.name, vars_for(&h.name), state))
            .collect();
        let (hosts, forks, staged) = (&self.hosts, self.forks, &mut self.staged);
        async move {
            let configs = configs?;
            let work: Vec<_> = (hosts.iter().zip(&configs))
                .map(|(h, c)| h.preview(c, diff, staged.get(&h.name).cloned()))
                .collect();
            let results = forks.all(work).await;
            let mut previews = IndexMap::new();
            for (host, result) in hosts.iter().zip(results) {
                let (preview, files) = result?;
                staged.insert(host.name.clone(), files);
                previews.insert(host.name.clone(), preview);
            }
            Ok(previews)
        }
    }

    /// Each proxy host's traffic record ([`crate::traffic::record`]), in
    /// inventory order: `None` where the host has none yet.
    pub async fn read_records(
        &self,
        vars_for: &dyn Fn(&str) -> VarMap,
    ) -> Result<Vec<(String, Option<String>)>, ProxyError> {
        let paths: Vec<String> = self
            .hosts
            .iter()
            .map(|h| {
                let vars = vars_for(&h.name);
                let play = match vars.get("ansible_play_name") {
                    Some(crate::vars::Value::String(p)) => p.clone(),
                    _ => String::new(),
                };
                crate::traffic::record::path(&super::manifest::path(&vars, &play))
            })
            .collect();
        let work: Vec<_> = (self.hosts.iter().zip(&paths))
            .map(|(h, path)| async move {
                let read = crate::transport::remote_fs::read(&h.conn, path, h.sudo.as_ref())
                    .await
                    .map_err(|source| ProxyError::Unreachable {
                        host: h.name.clone(),
                        source,
                    })?;
                Ok::<_, ProxyError>((
                    h.name.clone(),
                    read.map(|b| String::from_utf8_lossy(&b).into_owned()),
                ))
            })
            .collect();
        self.forks.all(work).await.into_iter().collect()
    }

    /// Runs each host's script in `scripts` (by proxy host name) on that
    /// host, all in parallel, one round trip each: the traffic gate's
    /// readers. A host without a script is skipped.
    pub async fn exec_each(
        &self,
        scripts: &IndexMap<String, crate::transport::ShellScript>,
    ) -> Vec<(String, Result<crate::transport::ExecOutput, ProxyError>)> {
        let work: Vec<_> = self
            .hosts
            .iter()
            .filter_map(|h| scripts.get(&h.name).map(|s| (h, s)))
            .map(|(h, script)| async move {
                let script = crate::transport::Script::new(script).sudo(h.sudo.as_ref());
                let out = h
                    .conn
                    .exec(script)
                    .await
                    .map_err(|source| ProxyError::Unreachable {
                        host: h.name.clone(),
                        source,
                    });
                (h.name.clone(), out)
            })
            .collect();
        self.forks.all(work).await
    }

    pub async fn close(self) {
        self.forks.each(self.hosts, |h| h.conn.close()).await;
    }
}

impl ProxyHost {
    /// What an apply of `config` would change, from `staged` (what the
    /// previews before would have installed) or, the first time, a probe;
    /// with the files once it would have been installed.
    async fn preview(
        &self,
        config: &ProxyConfig,
        diff: bool,
        staged: Option<StagedFiles>,
    ) -> Result<(HostPreview, StagedFiles), ProxyError> {
        let unreachable = |source| ProxyError::Unreachable {
            host: self.name.clone(),
            source,
        };
        let sudo = self.sudo.as_ref();
        let dests: Vec<&str> = config.files.iter().map(|f| f.dest.as_str()).collect();
        let mut staged = match staged {
            Some(staged) => staged,
            None => StagedFiles::probed(
                remote::probe(&self.conn, sudo, &config.manifest, &dests)
                    .await
                    .map_err(unreachable)?
                    .map_err(|message| ProxyError::Install {
                        host: self.name.clone(),
                        message,
                    })?,
            ),
        };
        let changes = ChangeSet::between(config, staged.files());
        let mut preview = HostPreview {
            changes: HostChanges {
                written: changes.write.iter().map(|w| w.file.dest.clone()).collect(),
                removed: changes.remove.clone(),
                reloaded: changes.touches_config() && config.reload.is_some(),
            },
            diffs: vec![],
        };
        if diff {
            let staged = &staged;
            let read = |path: String| async move {
                if let Some(content) = staged.written(&path) {
                    return Ok(content.to_owned());
                }
                crate::transport::remote_fs::read(&self.conn, &path, sudo)
                    .await
                    .map(|content| {
                        String::from_utf8_lossy(&content.unwrap_or_default()).into_owned()
                    })
                    .map_err(unreachable)
            };
            for write in &changes.write {
                preview.diffs.push(crate::tasks::FileDiff {
                    path: write.file.dest.clone(),
                    before: read(write.file.dest.clone()).await?,
                    after: write.file.content.clone(),
                });
            }
            for dest in &changes.remove {
                preview.diffs.push(crate::tasks::FileDiff {
                    path: dest.clone(),
                    before: read(dest.clone()).await?,
                    after: String::new(),
                });
            }
        }
        staged.install(config, &changes);
        Ok((preview, staged))
    }

    async fn apply(&self, config: &ProxyConfig) -> Result<HostChanges, ProxyError> {
        let unreachable = |source| ProxyError::Unreachable {
            host: self.name.clone(),
            source,
        };
        let install_error = |message| ProxyError::Install {
            host: self.name.clone(),
            message,
        };
        let sudo = self.sudo.as_ref();
        let dests: Vec<&str> = config.files.iter().map(|f| f.dest.as_str()).collect();
        let found = remote::probe(&self.conn, sudo, &config.manifest, &dests)
            .await
            .map_err(unreachable)?
            .map_err(install_error)?;
        let changes = ChangeSet::between(config, &found);
        if changes.is_empty() {
            return Ok(HostChanges::default());
        }
        let failure = match remote::install(&self.conn, sudo, config, &changes)
            .await
            .map_err(unreachable)?
        {
            Ok(()) => {
                return Ok(HostChanges {
                    written: changes.write.iter().map(|w| w.file.dest.clone()).collect(),
                    removed: changes.remove.clone(),
                    reloaded: changes.touches_config() && config.reload.is_some(),
                });
            }
            Err(failure) => failure,
        };
        let command = |c: &Option<String>| c.clone().unwrap_or_default();
        Err(match failure {
            InstallFailure::Write(message) => install_error(message),
            InstallFailure::Validate(output) => {
                let written: Vec<_> = changes.write.iter().map(|w| w.file).collect();
                let output = validator_output(&output);
                ProxyError::Validate {
                    host: self.name.clone(),
                    command: command(&config.validate),
                    rejected: RejectedFile::shown(&written, &output),
                    output,
                }
            }
            InstallFailure::Reload { output, restored } => ProxyError::Reload {
                host: self.name.clone(),
                command: command(&config.reload),
                output,
                restored,
            },
            InstallFailure::Manifest(message) => ProxyError::Manifest {
                host: self.name.clone(),
                path: config.manifest.clone(),
                message,
            },
        })
    }
}
