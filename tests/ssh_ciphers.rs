//! The cipher convoy's SSH masters negotiate on a real fleet: AES-GCM when
//! the ssh configuration does not choose `Ciphers` (it costs ssh and sshd
//! less CPU per byte than OpenSSH's default first choice,
//! chacha20-poly1305), the operator's own choice when it does.
//!
//! What was negotiated is read from each master's own debug log: `ssh` on
//! convoy's PATH is a wrapper that runs the real `/usr/bin/ssh` with
//! `LogLevel=DEBUG1` and its log file (`-E`) moved where the test can read
//! it after convoy removed its control directory.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::{Fleet, convoy, workdir, write_file};

const WRAPPER: &str = r#"#!/bin/bash
args=()
while (($#)); do
  if [[ $1 == -E ]]; then args+=(-E "$LOGS/ssh.$$.log"); shift 2; continue; fi
  args+=("$1"); shift
done
exec /usr/bin/ssh -o LogLevel=DEBUG1 "${args[@]}"
"#;

/// Runs a shell task on every host with `config` as convoy's ssh_config;
/// answers the ciphers the masters' logs say were negotiated (client to
/// server), one per master.
fn negotiated(fleet: &Fleet, dir: &Path, config: &Path) -> Vec<String> {
    let logs = dir.join("logs");
    let _ = std::fs::remove_dir_all(&logs);
    std::fs::create_dir_all(&logs).unwrap();
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let wrapper = write_file(&bin, "ssh", WRAPPER);
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = convoy()
        .current_dir(dir)
        .env("PATH", path)
        .env("LOGS", &logs)
        .args(["run", "site.yml", "-i", "inventory.yml", "--ssh-config"])
        .arg(config)
        .output()
        .unwrap();
    let run = support::run::Run::from_output(out);
    assert_eq!(run.code, 0, "{}", run.dump());
    for i in fleet.hosts() {
        assert_eq!(
            std::fs::read_to_string(fleet.host_path(i, "/tmp/cipher-ran")).unwrap_or_default(),
            "ran\n",
            "h{i}: {}",
            run.dump()
        );
    }
    let mut ciphers = Vec::new();
    for entry in std::fs::read_dir(&logs).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        if let Some(line) = text
            .lines()
            .find(|l| l.contains("kex: client->server cipher: "))
        {
            let after = line.split("kex: client->server cipher: ").nth(1).unwrap();
            ciphers.push(after.split_whitespace().next().unwrap().to_owned());
        }
    }
    ciphers.sort();
    ciphers
}

#[test]
fn masters_prefer_aes_gcm_unless_the_ssh_config_chooses_ciphers() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let dir = work.path();
    let mut inventory = String::from("all:\n  children:\n    app:\n      hosts:\n");
    for i in fleet.hosts() {
        inventory.push_str(&format!(
            "        {}: {{ ansible_host: {} }}\n",
            fleet.name(i),
            fleet.addr(i)
        ));
    }
    write_file(dir, "inventory.yml", &inventory);
    write_file(
        dir,
        "site.yml",
        "- hosts: app\n  gather_facts: false\n  tasks:\n    - shell: echo ran > /tmp/cipher-ran\n",
    );
    let fleet_config = std::fs::read_to_string(fleet.ssh_config()).unwrap();

    // The fleet's own config names no Ciphers: AES-GCM, on every master.
    let plain = write_file(dir, "plain_config", &fleet_config);
    let ciphers = negotiated(&fleet, dir, &plain);
    assert_eq!(
        ciphers,
        vec!["aes128-gcm@openssh.com"; fleet.count()],
        "one master per host, each on AES-GCM"
    );

    // The operator chose: kept as chosen, also through an Include.
    let chosen = write_file(
        dir,
        "chosen.conf",
        "Ciphers chacha20-poly1305@openssh.com,aes128-ctr\n",
    );
    let including = write_file(
        dir,
        "including_config",
        &format!("Include {}\n{fleet_config}", chosen.display()),
    );
    let ciphers = negotiated(&fleet, dir, &including);
    assert_eq!(
        ciphers,
        vec!["chacha20-poly1305@openssh.com"; fleet.count()],
        "the operator's Ciphers line wins"
    );
}
