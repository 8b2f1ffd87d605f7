//! `vars_prompt` on a fleet host: asked on a terminal (through a
//! pseudo-terminal, as an operator types), the default without one, `-e`
//! instead of asking, and a question nobody can answer refused before any
//! host is touched.

mod support;

use std::io::Write;

use support::inventory::app_inventory;
use support::run::run_in;
use support::{Fleet, workdir, write_file};

const PLAY: &str = "- hosts: app
  gather_facts: false
  vars_prompt:
    - name: release_name
      prompt: Release name
      private: false
      default: spring
    - name: token
      prompt: Token
  tasks:
    - copy: {content: \"{{ release_name }} {{ token }}\\n\", dest: /srv/answers, mode: '0600'}
";

#[test]
fn vars_prompt_is_asked_on_a_terminal_and_its_answers_reach_the_host() {
    let fleet = Fleet::start(1);
    let work = workdir();
    app_inventory(&fleet, work.path(), "");
    write_file(work.path(), "play.yml", PLAY);
    let command = format!(
        "{} run play.yml -i inventory.yml",
        env!("CARGO_BIN_EXE_convoy")
    );
    let mut child = std::process::Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .current_dir(work.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux script");
    // An empty line takes the default; the private answer is not echoed.
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    stdin.write_all(b"\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    stdin.write_all(b"t0ken-42\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("Release name [spring]: "), "{shown}");
    assert!(shown.contains("Token: "), "{shown}");
    assert!(
        !shown.contains("t0ken-42"),
        "the private answer was echoed:\n{shown}"
    );
    assert_eq!(fleet.exec_ok(1, "cat /srv/answers"), "spring t0ken-42\n");
}

#[test]
fn without_a_terminal_defaults_and_extra_vars_answer_and_a_question_without_one_is_refused() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let dir = work.path();
    app_inventory(&fleet, dir, "");
    write_file(dir, "play.yml", PLAY);
    let r = run_in(dir, &["run", "play.yml", "-i", "inventory.yml"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(r.stderr.contains("vars_prompt `token`"), "{}", r.dump());
    assert!(r.stderr.contains("play.yml:8:7"), "{}", r.dump());
    assert_eq!(
        fleet.exec_ok(1, "test -e /srv/answers && echo there || echo absent"),
        "absent\n"
    );
    let r = run_in(
        dir,
        &["run", "play.yml", "-i", "inventory.yml", "-e", "token=abc"],
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(fleet.exec_ok(1, "cat /srv/answers"), "spring abc\n");
    let r = run_in(
        dir,
        &[
            "run",
            "play.yml",
            "-i",
            "inventory.yml",
            "-e",
            "token=abc",
            "-e",
            "release_name=fall",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(fleet.exec_ok(1, "cat /srv/answers"), "fall abc\n");
}

#[test]
fn vars_prompt_keys_convoy_lacks_are_refused_at_load() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let dir = work.path();
    app_inventory(&fleet, dir, "");
    write_file(
        dir,
        "play.yml",
        "- hosts: app\n  gather_facts: false\n  vars_prompt:\n    - name: pw\n      encrypt: sha512_crypt\n  tasks: []\n",
    );
    let r = run_in(
        dir,
        &["run", "play.yml", "-i", "inventory.yml", "-e", "pw=x"],
    );
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(r.stderr.contains("encrypt"), "{}", r.dump());
    assert!(r.stderr.contains("play.yml:5:"), "{}", r.dump());
}
