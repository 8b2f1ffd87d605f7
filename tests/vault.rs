//! ansible-vault on a fleet host: what is encrypted arrives decrypted on
//! the host, and no plaintext reaches the screen, `--output json` or the
//! journal; without the right password nothing is touched. The
//! ciphertexts were made by `ansible-vault` (ansible-core 2.18) with the
//! password `hunter2-pass`; the compat case `vault` compares whole
//! projects with ansible-core.

mod support;

use support::inventory::app_inventory;
use support::run::run_in;
use support::{Fleet, workdir, write_file};

/// `db_password: !vault |` holding `s3cret value`.
const INLINE: &str = "    db_password: !vault |
          $ANSIBLE_VAULT;1.1;AES256
          32336561303966633337616431323461356333326139353439353361333538636232333938623138
          6261333737343666633039663664356339356433613536620a376532343030393630616665356634
          37653533613435663636353538363439353261613864303163653764616661376666613265343736
          6330663761393333650a386230383263333134633832616538393661633734626662333738666431
          3834
";

fn playbook() -> String {
    format!(
        "- hosts: app\n  gather_facts: false\n  vars:\n{INLINE}  tasks:\n    - debug: {{var: db_password}}\n    - debug: {{msg: \"connecting with {{{{ db_password }}}}\"}}\n    - copy: {{content: \"password={{{{ db_password }}}}\\n\", dest: /srv/app.conf, mode: '0600'}}\n"
    )
}

#[test]
fn vault_values_reach_the_host_and_never_the_output_or_the_journal() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let dir = work.path();
    app_inventory(&fleet, dir, "");
    write_file(dir, "play.yml", &playbook());
    write_file(dir, "pw", "hunter2-pass\n");
    let args = [
        "run",
        "play.yml",
        "-i",
        "inventory.yml",
        "--vault-password-file",
        "pw",
    ];
    let text = run_in(dir, &[&args[..], &["-v", "--diff"]].concat());
    assert_eq!(text.code, 0, "{}", text.dump());
    assert_eq!(
        fleet.exec_ok(1, "cat /srv/app.conf"),
        "password=s3cret value\n"
    );
    fleet.exec_ok(1, "rm /srv/app.conf");
    let json = run_in(dir, &[&args[..], &["--output", "json", "--diff"]].concat());
    assert_eq!(json.code, 0, "{}", json.dump());
    assert!(json.stdout.contains("********"), "{}", json.dump());

    let mut journals = String::new();
    for entry in std::fs::read_dir(dir.join(".convoy/runs")).unwrap() {
        journals.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    assert!(!journals.is_empty());
    for (what, out) in [
        ("text stdout", &text.stdout),
        ("text stderr", &text.stderr),
        ("json stdout", &json.stdout),
        ("journal", &journals),
    ] {
        assert!(!out.contains("s3cret"), "{what} shows the secret:\n{out}");
    }
    assert!(
        text.stdout.contains("connecting with ********"),
        "{}",
        text.dump()
    );
}

#[test]
fn without_the_right_vault_password_the_file_and_line_are_named_and_no_host_is_touched() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let dir = work.path();
    app_inventory(&fleet, dir, "");
    write_file(dir, "play.yml", &playbook());
    write_file(dir, "wrong", "not-the-password\n");
    for extra in [
        &[][..],
        &["--vault-password-file", "wrong"][..],
        &["--vault-id", "prod@wrong"][..],
    ] {
        let r = run_in(
            dir,
            &[&["run", "play.yml", "-i", "inventory.yml"][..], extra].concat(),
        );
        assert_eq!(r.code, 3, "{extra:?}: {}", r.dump());
        assert!(
            r.stderr.contains("play.yml:4:18"),
            "{extra:?}: {}",
            r.dump()
        );
        assert!(
            r.stderr.contains("vault password"),
            "{extra:?}: {}",
            r.dump()
        );
        assert_eq!(
            fleet.exec_ok(1, "test -e /srv/app.conf && echo there || echo absent"),
            "absent\n"
        );
    }
    // Asked on a terminal only: from a pipe it is refused, not waited for.
    let r = run_in(
        dir,
        &["run", "play.yml", "-i", "inventory.yml", "--ask-vault-pass"],
    );
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(r.stderr.contains("not a terminal"), "{}", r.dump());
}

#[test]
fn a_password_script_prints_the_vault_password() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let dir = work.path();
    app_inventory(&fleet, dir, "");
    write_file(dir, "play.yml", &playbook());
    let script = write_file(dir, "pw.sh", "#!/bin/sh\necho hunter2-pass\n");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let r = run_in(
        dir,
        &[
            "run",
            "play.yml",
            "-i",
            "inventory.yml",
            "--vault-id",
            "dev@pw.sh",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        fleet.exec_ok(1, "cat /srv/app.conf"),
        "password=s3cret value\n"
    );
}
