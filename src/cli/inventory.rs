use clap::Args;

use super::shared::InventoryOpts;
use crate::error::Error;

#[derive(Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["list", "graph", "host"])))]
pub struct Opts {
    #[command(flatten)]
    pub inventory: InventoryOpts,
    /// All groups and hosts as JSON, with `_meta.hostvars`.
    #[arg(long)]
    pub list: bool,
    /// A tree of groups and hosts (optionally from one group).
    #[arg(long, num_args = 0..=1, value_name = "GROUP")]
    pub graph: Option<Option<String>>,
    /// One host's variables as JSON.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
}

pub fn run(opts: Opts) -> Result<i32, Error> {
    let inventory = opts.inventory.load()?;
    if opts.list {
        println!(
            "{}",
            serde_json::to_string_pretty(&inventory.to_list_json()).expect("json")
        );
    } else if let Some(group) = opts.graph {
        print!("{}", inventory.graph(group.as_deref())?);
    } else if let Some(host) = opts.host {
        if inventory.host(&host).is_none() {
            return Err(Error::Usage(format!(
                "host `{host}` is not in the inventory"
            )));
        }
        let mut vars = inventory.host_vars(&host);
        for magic in [
            "inventory_hostname",
            "inventory_hostname_short",
            "group_names",
        ] {
            vars.shift_remove(magic);
        }
        println!("{}", serde_json::to_string_pretty(&vars).expect("json"));
    }
    Ok(crate::error::EXIT_OK)
}
