use std::path::{Path, PathBuf};

use clap::Args;

use super::shared::HostOpts;
use crate::error::Error;
use crate::run::{Mode, Phase, TagFilter};
use crate::traffic::by_hand::{Destination, TrafficControl};

#[derive(Args)]
pub struct Opts {
    /// The playbook whose play has `proxy.pools`.
    pub playbook: PathBuf,
    #[command(flatten)]
    pub hosts: HostOpts,
    /// Move the traffic by hand: a share for the idle pool (`10%`; `100%`
    /// makes it live), or a pool that takes every request (`green`).
    #[arg(long, value_name = "SHARE|POOL")]
    pub to: Option<String>,
}

/// Shows where traffic goes per pool (share, hosts, version); with
/// `--to`, moves it first. Exit 0, 2 when the proxy tier refused the move
/// (its previous files serve), 3 for bad input.
pub async fn run(opts: Opts) -> Result<i32, Error> {
    let to = opts
        .to
        .as_deref()
        .map(Destination::parse)
        .transpose()
        .map_err(Error::Usage)?;
    let inventory = opts.hosts.inventory.load_for(&opts.playbook)?;
    let options = opts.hosts.run_options(
        TagFilter::default(),
        Mode::Deploy { phase: Phase::All },
        Path::new(&opts.playbook),
    )?;
    let control_dir = super::control_dir()?;
    let mut control =
        TrafficControl::open(&opts.playbook, &inventory, &options, control_dir.path()).await?;
    let mut code = 0;
    if let Some(why) = to.as_ref().and_then(|to| control.refuse(to)) {
        control.close().await;
        return Err(Error::Usage(why));
    }
    if let Some(to) = &to {
        match control.set(to).await {
            Ok(done) => println!("{done}"),
            Err(e) => {
                eprintln!("error: {e}");
                code = 2;
            }
        }
    }
    println!("traffic of play {:?}:", control.play);
    let t = control.traffic();
    for (name, p) in &t.pools {
        println!(
            "  {name:<8} {:>3}%{}  version {}  hosts {}",
            p.share,
            if *name == t.live { " live" } else { "     " },
            p.version.as_deref().unwrap_or("-"),
            p.hosts.join(", ")
        );
    }
    if let Some((pool, target)) = &t.target {
        println!("  and {target} to {pool}");
    }
    if let Some(map) = &t.tenants {
        println!(
            "  tenants: {} (pending to {}, done to {})",
            map.summary(),
            map.routing.pending_pool,
            map.routing.done_pool
        );
        for state in crate::traffic::tenants::TenantState::ALL {
            let names = map.in_state(state);
            if !names.is_empty() {
                println!("    {:<11} {}", state.key(), names.join(" "));
            }
        }
    }
    control.close().await;
    Ok(code)
}
