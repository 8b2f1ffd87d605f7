//! convoy: deploy software to fleets of servers over SSH.

mod ansible_cfg;
mod cli;
mod distribution;
mod error;
mod facts;
mod inventory;
mod job;
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
mod terminal;
mod traffic;
mod transport;
mod vars;
mod vars_file;
mod vault;
mod yaml;
mod yaml_scalars;

use clap::Parser;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // clap exits 2 on a usage error, which convoy's exit codes give to
        // failed hosts: a CI step must read a wrong flag as bad input (3).
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            std::process::exit(error::EXIT_BAD_INPUT);
        }
        // --help, --version: printed on stdout, exit 0.
        Err(e) => e.exit(),
    };
    let code = match cli.run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
