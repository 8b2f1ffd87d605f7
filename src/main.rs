//! convoy: deploy software to fleets of servers over SSH.

mod ansible_cfg;
mod cli;
mod distribution;
mod error;
mod inventory;
mod playbook;
mod proxy;
mod python_text;
mod report;
mod rollout;
mod run;
mod source;
mod supervision;
mod tasks;
mod template;
mod transport;
mod vars;
mod vars_file;
mod yaml;
mod yaml_scalars;

use clap::Parser;

fn main() {
    let code = match cli::Cli::parse().run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
