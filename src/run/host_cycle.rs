//! One host's part in a play's release cycle, carried by the host itself
//! from the cycle's start to its end: what it should get (the plan), what
//! it held when the cycle first asked, and where this run took `current`.
//! Every step reads and updates this one value, so no step has to keep a
//! list of its own beside the hosts, and none has to read typed state back
//! out of the templates' facts.

use serde_json::json;

use super::HostState;
use crate::distribution::ReleasePlan;
use crate::distribution::remote::{HostRelease, HostStatus};
use crate::transport::Become;

#[derive(Debug, Clone)]
pub struct HostCycle {
    /// The distribution rendered for this host. In a rollback or a patch,
    /// its version is the one the host is taken to.
    pub plan: ReleasePlan,
    /// What the host held when first asked (with the lock, or by a check).
    pub found: Option<HostRelease>,
    /// A rollback's reading of the host's releases, taken with the lock
    /// (the target is chosen from it).
    pub status: Option<HostStatus>,
    /// Set once this run repointed `current` forward.
    pub switched: Option<Switch>,
    /// `convoy patch` made this host's patched release.
    pub patched: bool,
    /// How its release steps are escalated (see `escalation::for_release`).
    pub sudo: Option<Become>,
    /// What the switch hooks run by the last switch's own round trip came
    /// to, one per hook, until they are reported (see `switch_hooks`).
    pub hooks: Vec<crate::tasks::Outcome>,
    /// Marks this run's deploy lock `complete` here; the first script the
    /// run sends the host once every lock is taken carries it (see
    /// `lock_renewal::FirstRenewal::Later`), then it is spent.
    pub lock_mark: Option<crate::transport::ShellScript>,
    /// This run released its deploy lock here already, in the host's last
    /// step (a rollback's switch): the release at the end skips it.
    pub unlocked: bool,
    /// Set before a script that may release the lock is sent: the lock's
    /// renewal then takes a lock found gone as released, not as lost.
    pub releasing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// A forward switch made by this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// The rollout batch (0-based).
    pub batch: usize,
    /// The version `current` named before (None on a first deploy).
    pub from: Option<String>,
}

impl HostCycle {
    pub fn new(plan: ReleasePlan, sudo: Option<Become>) -> Self {
        Self {
            plan,
            found: None,
            status: None,
            switched: None,
            patched: false,
            sudo,
            hooks: Vec::new(),
            lock_mark: None,
            unlocked: false,
            releasing: Default::default(),
        }
    }

    /// The version `current` named when the cycle first asked.
    pub fn found_current(&self) -> Option<&str> {
        self.found.as_ref().and_then(|f| f.current.as_deref())
    }
}

impl HostState {
    /// The plan of this host's cycle, if it takes part in one.
    pub fn plan(&self) -> Option<&ReleasePlan> {
        self.cycle.as_ref().map(|c| &c.plan)
    }

    /// The version `current` names, as far as this run knows.
    pub fn running(&self) -> Option<String> {
        let cycle = self.cycle.as_ref()?;
        match &cycle.switched {
            Some(_) => Some(cycle.plan.version.clone()),
            None => cycle.found_current().map(str::to_owned),
        }
    }

    /// How this host's release steps are escalated.
    pub fn release_sudo(&self) -> Option<Become> {
        self.cycle.as_ref().and_then(|c| c.sudo.clone())
    }

    /// Whether the host takes part in the cycle and can still act.
    pub fn cycling(&self) -> bool {
        self.active() && self.cycle.is_some()
    }

    /// `release` and `distribution` as hooks, gates and later tasks see
    /// them: the release the host is being taken to, and the one it leaves
    /// (`previous`, kept from before when not given).
    pub fn publish_release(&mut self, previous: Option<&str>) {
        let Some(plan) = self.plan() else { return };
        let previous = previous.map(str::to_owned).or_else(|| {
            self.facts
                .get("release")
                .and_then(|r| r.get("previous"))
                .and_then(|p| p.as_str())
                .map(str::to_owned)
        });
        let release = json!({
            "version": plan.version,
            "path": plan.release_path(),
            "previous": previous,
            "sha256": plan.sha256(),
        });
        let distribution = json!({"name": plan.name, "root": plan.root});
        self.facts.insert("release".into(), release);
        self.facts.insert("distribution".into(), distribution);
    }
}
