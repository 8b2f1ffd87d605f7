//! How a play's release steps are escalated: decided here, once, for every
//! command that acts on a distribution (`run`, `rollback`, `status`,
//! `unlock`, `plan`), so that no caller decides it again, and none forgets.

use crate::playbook::Play;
use crate::transport::Become;

/// The play's `become` and `become_user` (default root), or `None`.
pub fn release_become(play: &Play) -> Option<Become> {
    play.sudo.unwrap_or(false).then(|| Become {
        user: play.become_user.clone().unwrap_or_else(|| "root".into()),
    })
}
