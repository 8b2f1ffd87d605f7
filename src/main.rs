//! convoy: deploy software to fleets of servers over SSH.

mod cli;
mod distribution;
mod error;
mod inventory;
mod job;
mod playbook;
mod proxy;
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
