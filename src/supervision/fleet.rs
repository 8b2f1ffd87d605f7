//! The hosts a supervision command works on, each with its connection open
//! for the whole command (so a rolling restart asks, acts and checks over
//! one ssh master per host).

use crate::inventory::Inventory;
use crate::run::{Forks, RunOptions};
use crate::transport::{Become, Connection, Script, ShellScript};
use crate::vars::Value;

use super::script::{action_script, logs_script, status_script};
use super::{Action, HostPrograms, LogsSince};

/// Where supervisord's config is unless the inventory says otherwise
/// (Debian's `supervisor` package puts it there).
pub const DEFAULT_CONF: &str = "/etc/supervisor/supervisord.conf";

/// The inventory variable naming a host's supervisord config.
pub const CONF_VAR: &str = "convoy_supervisor_conf";

/// The exit status ssh gives when the connection itself failed.
const SSH_LOST: i32 = 255;

/// Why following a host's log ended before convoy stopped it.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The connection went away (host down, sshd killed, link cut).
    #[error("{0}")]
    Lost(String),
    /// The host's script said it cannot follow these logs (no such
    /// program, no stdout log).
    #[error("{0}")]
    Refused(String),
}

/// One reachable host.
pub struct SupervisedHost {
    pub name: String,
    /// The supervisord config passed to `supervisorctl -c`.
    pub conf: String,
    conn: Connection,
    sudo: Option<Become>,
}

/// The hosts of a pattern: those reachable, and why the others are not.
pub struct Supervised {
    pub hosts: Vec<SupervisedHost>,
    /// Hosts that could not be reached, with the reason.
    pub unreachable: Vec<(String, String)>,
    forks: Forks,
    /// Holds the ssh control sockets; removed after the connections close.
    _control_dir: tempfile::TempDir,
}

impl Supervised {
    /// Connects to `names` (in this order), `--forks` at a time. With
    /// `sudo`, every script runs as root through `sudo -n`.
    pub async fn connect(
        inventory: &Inventory,
        names: Vec<String>,
        options: &RunOptions,
        sudo: bool,
    ) -> std::io::Result<Supervised> {
        let control_dir = crate::cli::control_dir()?;
        let forks = Forks::new(options.forks);
        let dir = control_dir.path();
        let opened = forks
            .each(names, |name| async move {
                let mut vars = inventory.host_vars(&name);
                vars.extend(options.extra_vars.clone());
                let conn = crate::run::connect::open(&name, &vars, options, dir).await;
                (name, vars, conn)
            })
            .await;
        let (mut hosts, mut unreachable) = (Vec::new(), Vec::new());
        for (name, vars, conn) in opened {
            match conn {
                Ok(conn) => hosts.push(SupervisedHost {
                    conf: match vars.get(CONF_VAR) {
                        Some(Value::String(s)) => s.clone(),
                        _ => DEFAULT_CONF.to_owned(),
                    },
                    name,
                    conn,
                    sudo: sudo.then(|| Become {
                        user: "root".into(),
                        password: options.become_password.clone(),
                    }),
                }),
                Err(e) => unreachable.push((name, e.to_string())),
            }
        }
        Ok(Supervised {
            hosts,
            unreachable,
            forks,
            _control_dir: control_dir,
        })
    }

    pub fn forks(&self) -> Forks {
        self.forks
    }

    /// Every host's programs (one round trip each), in host order.
    pub async fn programs(&self) -> Vec<Result<HostPrograms, String>> {
        self.forks.each(&self.hosts, |host| host.programs()).await
    }

    pub async fn close(self) {
        for host in self.hosts {
            host.conn.close().await;
        }
    }
}

impl SupervisedHost {
    /// What the host's supervisor runs.
    pub async fn programs(&self) -> Result<HostPrograms, String> {
        let out = self.run(&status_script(&self.conf, None)).await?;
        HostPrograms::parse(&out)
    }

    /// Asks the supervisor to `action` `program`; `Ok` is what it said.
    pub async fn act(&self, action: Action, program: &str) -> Result<String, String> {
        self.run(&action_script(&self.conf, action, program))
            .await
            .map(|s| s.trim().to_owned())
    }

    /// The last `lines` lines of `program`'s output.
    pub async fn logs(
        &self,
        program: &str,
        lines: usize,
        since: Option<&LogsSince>,
    ) -> Result<String, String> {
        let since = since.map(LogsSince::journal_arg);
        self.run(&logs_script(
            &self.conf,
            program,
            lines,
            false,
            since.as_deref(),
        ))
        .await
    }

    /// The last `lines` lines of `program`'s output, then each new one,
    /// handed to `line` as it comes, until `stop` resolves.
    pub async fn follow_logs(
        &self,
        program: &str,
        lines: usize,
        since: Option<&LogsSince>,
        line: &mut (dyn FnMut(String) + Send),
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), FollowError> {
        let since = since.map(LogsSince::journal_arg);
        let script = logs_script(&self.conf, program, lines, true, since.as_deref());
        let (status, stderr) = self
            .conn
            .follow(Script::new(&script).sudo(self.sudo.as_ref()), line, stop)
            .await
            .map_err(|e| FollowError::Lost(e.to_string()))?;
        if status == 0 {
            return Ok(());
        }
        let said = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_owned());
        // ssh itself exits 255 when the connection goes (the script's own
        // failures exit 1): the host went away rather than said no.
        if status == SSH_LOST || status < 0 {
            return Err(FollowError::Lost(said.unwrap_or_else(|| {
                format!("the connection ended (ssh exit status {status})")
            })));
        }
        Err(FollowError::Refused(
            said.unwrap_or_else(|| format!("exit status {status}")),
        ))
    }

    /// The connection, for health commands run on the host.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Runs `script`: its stdout, or the last thing it said on failure.
    async fn run(&self, script: &ShellScript) -> Result<String, String> {
        let out = self
            .conn
            .exec(Script::new(script).sudo(self.sudo.as_ref()))
            .await
            .map_err(|e| e.to_string())?;
        if out.success() {
            return Ok(out.stdout_str());
        }
        let said = format!("{}\n{}", out.stdout_str(), out.stderr_str());
        let last = said
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_owned();
        Err(if last.is_empty() {
            format!("exit status {}", out.status)
        } else {
            last
        })
    }
}
