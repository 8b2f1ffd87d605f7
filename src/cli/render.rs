//! `convoy render`: the proxy files every proxy host would get, printed
//! instead of installed, so a proxy config can be reviewed (or diffed in
//! CI) before it ships. It touches no host: the app fleet is taken as all
//! in service, versions unknown.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::shared::HostOpts;
use crate::error::{EXIT_OK, Error};
use crate::playbook::Playbook;
use crate::proxy::{FleetState, ProxyConfig, proxy_hosts};
use crate::report::OutputFormat;
use crate::run::{Mode, Phase, TagFilter, preflight};
use crate::template::Templates;

#[derive(Args)]
pub struct Opts {
    /// The playbook whose `proxy:` sections are rendered.
    pub playbook: PathBuf,
    #[command(flatten)]
    pub hosts: HostOpts,
    /// Only this proxy host.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
}

pub fn run(opts: Opts) -> Result<i32, Error> {
    let inventory = opts.hosts.inventory.load_for(&opts.playbook)?;
    let playbook = Playbook::load(&opts.playbook)?;
    // No host is contacted: no sudo password is asked or read.
    let mut flags = opts.hosts.clone();
    flags.become_pass = super::become_password::BecomePassOpts::unused();
    let options = flags.run_options(
        TagFilter::default(),
        Mode::Deploy { phase: Phase::All },
        &opts.playbook,
    )?;
    let templates = Templates::new(&playbook.base_dir);
    preflight::share_inventory(&templates, &inventory);
    let limit = match &options.limit {
        Some(l) => Some(
            inventory
                .select(l)
                .map_err(|source| Error::Pattern { source, span: None })?,
        ),
        None => None,
    };
    let mut sections = 0;
    let mut shown = 0;
    let mut files = Vec::new();
    for play in &playbook.plays {
        let Some(spec) = &play.proxy else {
            continue;
        };
        sections += 1;
        let mut app_hosts = inventory
            .select(&play.hosts)
            .map_err(|source| Error::Pattern {
                source,
                span: Some(play.hosts_span.clone()),
            })?;
        // A job's proxy routes to its pools, not to the hosts it works on.
        if let (Some(_), Some(traffic)) = (&play.job, &spec.traffic) {
            app_hosts = crate::job::tenant_traffic::pool_hosts(traffic, &inventory);
        }
        let mut state =
            FleetState::in_service(&inventory, app_hosts.iter().map(|h| h.name.as_str()));
        state.set_section(spec, &inventory);
        let scope = preflight::play_scope(&playbook, play, &options)?;
        let hosts = proxy_hosts(spec, &inventory)?;
        let hosts = hosts.iter().filter(|h| {
            opts.host.as_ref().is_none_or(|only| only == *h)
                && limit
                    .as_ref()
                    .is_none_or(|l| l.iter().any(|x| &x.name == *h))
        });
        for host in hosts {
            let vars = preflight::proxy_host_context(
                &scope, &inventory, &playbook, &options, host, &play.name,
            );
            let config = ProxyConfig::render(spec, &templates, host, vars, &state)?;
            for file in &config.files {
                match opts.hosts.output {
                    OutputFormat::Text => {
                        println!("# {host}:{}", file.dest);
                        print!("{}", file.content);
                        if !file.content.ends_with('\n') {
                            println!();
                        }
                    }
                    OutputFormat::Json => files.push(json!({
                        "host": host,
                        "dest": file.dest,
                        "content": file.content,
                    })),
                }
            }
            shown += 1;
        }
    }
    if sections == 0 {
        return Err(Error::Usage(format!(
            "{} has no play with a `proxy` section",
            opts.playbook.display()
        )));
    }
    if shown == 0
        && let Some(host) = &opts.host
    {
        return Err(Error::Usage(format!(
            "{host} is not a proxy host of {}",
            opts.playbook.display()
        )));
    }
    if opts.hosts.output == OutputFormat::Json {
        // One document (README: Output), printed once everything rendered.
        println!("{}", json!({ "files": files }));
    }
    Ok(EXIT_OK)
}
