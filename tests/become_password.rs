//! Become with a password on a fleet host: a user whose sudo rule asks for
//! one (made inside the host: its /etc is its own), reached with `-u`.
//! The password comes from `--become-password-file`, from an inventory
//! variable (a `!vault` value), or from the terminal (`-K`, through a
//! pseudo-terminal as an operator types it); it reaches sudo on stdin and
//! nothing else: not the host's process list, not convoy's output, not
//! the files a task writes. A wrong or missing one fails the host with
//! ansible-core's message and changes nothing; a user whose sudo does not
//! ask still works when given one.

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::run::run_in;
use support::{CLEAN_PATH, Fleet, fresh_home, workdir, write_file};

/// The password of `deployer` on h1; also the plaintext of [`VAULTED`].
const PASSWORD: &str = "s3cret value";

/// [`PASSWORD`] encrypted by ansible-vault (ansible-core 2.18) with the
/// vault password `hunter2-pass` (the same value as tests/vault.rs).
const VAULTED: &str = "!vault |
            $ANSIBLE_VAULT;1.1;AES256
            32336561303966633337616431323461356333326139353439353361333538636232333938623138
            6261333737343666633039663664356339356433613536620a376532343030393630616665356634
            37653533613435663636353538363439353261613864303163653764616661376666613265343736
            6330663761393333650a386230383263333134633832616538393661633734626662333738666431
            3834";

/// Writes a file with content (its bytes go on stdin, after sudo's
/// handshake), unpacks a local archive (streamed from a file as stdin),
/// and records who ran it and what the host's process list showed of
/// sudo meanwhile.
const PLAY: &str = "- hosts: app
  gather_facts: false
  become: true
  tasks:
    - copy: {content: \"hello from sudo\\n\", dest: \"/srv/{{ tag }}.txt\", mode: '0644'}
    - file: {path: \"/srv/{{ tag }}.d\", state: directory}
    - unarchive: {src: site.tar.gz, dest: \"/srv/{{ tag }}.d\"}
    - shell: \"id -un > /srv/{{ tag }}.who; ps -eo args | grep -e BECOME-SUCCESS -e sudo > /srv/{{ tag }}.ps || true\"
    - debug: {msg: \"the password is {{ ansible_become_password | default('none') }}\"}
      when: tag == 'vault'
";

/// The play and the archive it unpacks.
fn project(dir: &std::path::Path) {
    write_file(dir, "play.yml", PLAY);
    let archive = support::tarball::tar_gz(&[support::tarball::Entry::File(
        "index.html",
        b"unpacked through sudo\n",
        0o644,
    )]);
    std::fs::write(dir.join("site.tar.gz"), archive).unwrap();
}

/// A user whose sudo always asks (no cached timestamp), made inside h1.
fn add_deployer(fleet: &Fleet) {
    fleet.exec_ok(
        1,
        &format!(
            "useradd -m -s /bin/sh deployer && echo 'deployer:{PASSWORD}' | chpasswd && \
             printf 'Defaults:deployer timestamp_timeout=0\\ndeployer ALL=(ALL) ALL\\n' \
               >/etc/sudoers.d/deployer && chmod 0440 /etc/sudoers.d/deployer && \
             visudo -c -q -f /etc/sudoers.d/deployer"
        ),
    );
    // The rule asks: without a password, sudo refuses.
    let refused = fleet.ssh_as(1, "deployer", "sudo -n true");
    assert!(!refused.status.success());
}

fn inventory(fleet: &Fleet, dir: &std::path::Path, host_vars: &str) {
    write_file(
        dir,
        "inventory.yml",
        &format!(
            "all:\n  vars:\n    convoy_ssh_config: {}\n  children:\n    app:\n      hosts:\n        h1:\n          ansible_host: {}\n{host_vars}",
            fleet.ssh_config().display(),
            fleet.addr(1)
        ),
    );
}

/// What a run left on h1 for `tag`: owner and content of the copied
/// file, who ran the shell task, the unpacked file.
fn written(fleet: &Fleet, tag: &str) -> String {
    fleet.exec_ok(
        1,
        &format!(
            "stat -c %U /srv/{tag}.txt; cat /srv/{tag}.txt; cat /srv/{tag}.who; \
             cat /srv/{tag}.d/index.html"
        ),
    )
}

/// What [`written`] answers after a run as root.
const WRITTEN: &str = "root\nhello from sudo\nroot\nunpacked through sudo\n";

fn assert_never_shown(what: &str, text: &str) {
    assert!(
        !text.contains(PASSWORD) && !text.contains("s3cret"),
        "{what} shows the password:\n{text}"
    );
}

/// convoy run on a pseudo-terminal (`script`), `answer` typed once the
/// question is on the screen; answers the exit code and all it showed.
fn run_on_a_terminal(dir: &std::path::Path, args: &str, answer: &str) -> (i32, String) {
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_convoy"));
    let mut child = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .current_dir(dir)
        .env_clear()
        .env("PATH", CLEAN_PATH)
        .env("HOME", fresh_home())
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux script");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut shown = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&shown).contains("BECOME password: ") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => shown.extend(chunk),
            Err(_) => panic!(
                "no password question within 30 s:\n{}",
                String::from_utf8_lossy(&shown)
            ),
        }
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
    let status = support::run::wait_or_kill(&mut child, Duration::from_secs(120))
        .expect("convoy on a terminal did not end within 120 s");
    drop(stdin);
    reader.join().unwrap();
    shown.extend(rx.try_iter().flatten());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let shown = String::from_utf8_lossy(&shown).into_owned() + &err;
    (status.code().unwrap_or(-1), shown)
}

#[test]
fn become_password_from_a_file_a_vaulted_variable_or_the_terminal_reaches_sudo_and_nothing_else() {
    let fleet = Fleet::start(1);
    add_deployer(&fleet);
    let work = workdir();
    let dir = work.path();
    inventory(&fleet, dir, "");
    project(dir);
    write_file(dir, "become-pw", &format!("{PASSWORD}\n"));
    let run = ["run", "play.yml", "-i", "inventory.yml", "-u", "deployer"];

    // --become-password-file, text (with -v) and json output.
    let text = run_in(
        dir,
        &[
            &run[..],
            &[
                "-v",
                "--become-password-file",
                "become-pw",
                "-e",
                "tag=file",
            ],
        ]
        .concat(),
    );
    assert_eq!(text.code, 0, "{}", text.dump());
    assert_eq!(written(&fleet, "file"), WRITTEN);
    let ps = fleet.exec_ok(1, "cat /srv/file.ps");
    assert!(ps.contains("BECOME-SUCCESS-"), "{ps}");
    assert_never_shown("the host's process list", &ps);
    let json = run_in(
        dir,
        &[
            &run[..],
            &[
                "--output",
                "json",
                "--become-password-file",
                "become-pw",
                "-e",
                "tag=json",
            ],
        ]
        .concat(),
    );
    assert_eq!(json.code, 0, "{}", json.dump());
    assert_eq!(written(&fleet, "json"), WRITTEN);
    for (what, out) in [
        ("text stdout", &text.stdout),
        ("text stderr", &text.stderr),
        ("json stdout", &json.stdout),
        ("json stderr", &json.stderr),
    ] {
        assert_never_shown(what, out);
    }

    // An ad hoc command through sudo (`exec -b`) takes it too.
    let exec = run_in(
        dir,
        &[
            "exec",
            "app",
            "-i",
            "inventory.yml",
            "-u",
            "deployer",
            "-b",
            "--become-password-file",
            "become-pw",
            "--",
            "id -un > /srv/exec.who",
        ],
    );
    assert_eq!(exec.code, 0, "{}", exec.dump());
    assert_eq!(
        fleet.exec_ok(1, "stat -c %U /srv/exec.who; cat /srv/exec.who"),
        "root\nroot\n"
    );
    assert_never_shown("exec's output", &exec.dump());

    // ansible_become_password as a vaulted inventory variable.
    inventory(
        &fleet,
        dir,
        &format!("          ansible_become_password: {VAULTED}\n"),
    );
    write_file(dir, "vault-pw", "hunter2-pass\n");
    let vaulted = run_in(
        dir,
        &[
            &run[..],
            &["-v", "--vault-password-file", "vault-pw", "-e", "tag=vault"],
        ]
        .concat(),
    );
    assert_eq!(vaulted.code, 0, "{}", vaulted.dump());
    assert_eq!(written(&fleet, "vault"), WRITTEN);
    assert_never_shown("a run with a vaulted password", &vaulted.dump());
    assert!(
        vaulted.stdout.contains("the password is ********"),
        "{}",
        vaulted.dump()
    );

    // The variable wins over the command line's password (as ansible-core).
    write_file(dir, "wrong-pw", "not the password\n");
    let over = run_in(
        dir,
        &[
            &run[..],
            &[
                "--vault-password-file",
                "vault-pw",
                "--become-password-file",
                "wrong-pw",
                "-e",
                "tag=over",
            ],
        ]
        .concat(),
    );
    assert_eq!(over.code, 0, "{}", over.dump());
    assert_eq!(written(&fleet, "over"), WRITTEN);

    // -K: asked once on the terminal, not echoed.
    inventory(&fleet, dir, "");
    let (code, shown) = run_on_a_terminal(
        dir,
        "run play.yml -i inventory.yml -u deployer -K -e tag=asked",
        PASSWORD,
    );
    assert_eq!(code, 0, "{shown}");
    assert_eq!(shown.matches("BECOME password: ").count(), 1, "{shown}");
    assert_never_shown("a run with -K", &shown);
    assert_eq!(written(&fleet, "asked"), WRITTEN);
}

#[test]
fn a_wrong_or_missing_become_password_fails_the_host_with_ansible_cores_message_and_changes_nothing()
 {
    let fleet = Fleet::start(1);
    add_deployer(&fleet);
    let work = workdir();
    let dir = work.path();
    inventory(&fleet, dir, "");
    project(dir);
    write_file(dir, "wrong-pw", "not the password\n");
    let run = ["run", "play.yml", "-i", "inventory.yml", "-u", "deployer"];
    let absent = |tag: &str| {
        fleet.exec_ok(
            1,
            &format!("ls /srv/{tag}.txt /srv/{tag}.who 2>/dev/null || echo absent"),
        )
    };

    let started = Instant::now();
    let wrong = run_in(
        dir,
        &[
            &run[..],
            &[
                "-v",
                "--become-password-file",
                "wrong-pw",
                "-e",
                "tag=wrong",
            ],
        ]
        .concat(),
    );
    assert_eq!(wrong.code, 2, "{}", wrong.dump());
    assert!(
        wrong.stdout.contains("Incorrect sudo password"),
        "{}",
        wrong.dump()
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a wrong password took {:?}",
        started.elapsed()
    );
    assert!(
        !wrong.dump().contains("not the password"),
        "{}",
        wrong.dump()
    );
    assert_eq!(absent("wrong"), "absent\n");
    // The host answered: it failed, it was not unreachable.
    assert_eq!(wrong.count("h1", "failed"), 1, "{}", wrong.dump());
    assert_eq!(wrong.count("h1", "unreachable"), 0, "{}", wrong.dump());

    let missing = run_in(dir, &[&run[..], &["-e", "tag=missing"]].concat());
    assert_eq!(missing.code, 2, "{}", missing.dump());
    assert!(
        missing.stdout.contains("Missing sudo password"),
        "{}",
        missing.dump()
    );
    assert_eq!(absent("missing"), "absent\n");

    // -K without a terminal: refused before any host is contacted.
    let no_tty = run_in(dir, &[&run[..], &["-K", "-e", "tag=notty"]].concat());
    assert_eq!(no_tty.code, 3, "{}", no_tty.dump());
    assert!(
        no_tty.stderr.contains("stdin is not a terminal"),
        "{}",
        no_tty.dump()
    );
    assert!(!no_tty.stdout.contains("h1"), "{}", no_tty.dump());
    assert_eq!(absent("notty"), "absent\n");
}

#[test]
fn a_user_whose_sudo_does_not_ask_still_works_with_a_password_and_the_script_never_reads_it() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let dir = work.path();
    inventory(&fleet, dir, "");
    project(dir);
    write_file(dir, "become-pw", &format!("{PASSWORD}\n"));
    // `convoy` is NOPASSWD (fleet.sh): sudo never asks, the marker comes
    // first, and only then the file's content is fed.
    let r = run_in(
        dir,
        &[
            "run",
            "play.yml",
            "-i",
            "inventory.yml",
            "-u",
            "convoy",
            "--become-password-file",
            "become-pw",
            "-e",
            "tag=nopasswd",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(written(&fleet, "nopasswd"), WRITTEN);
    let (code, shown) = run_on_a_terminal(
        dir,
        "run play.yml -i inventory.yml -u convoy -K -e tag=nopasswd-k",
        PASSWORD,
    );
    assert_eq!(code, 0, "{shown}");
    assert_eq!(written(&fleet, "nopasswd-k"), WRITTEN);
    assert_never_shown("a run with -K", &shown);
    assert_never_shown("the run's output", &r.dump());

    // The control machine itself (`ansible_connection: local`, run as
    // root: sudo does not ask) goes through the same handshake.
    write_file(
        dir,
        "local.yml",
        "all:\n  hosts:\n    control:\n      ansible_connection: local\n",
    );
    write_file(
        dir,
        "local-play.yml",
        "- hosts: all\n  gather_facts: false\n  become: true\n  tasks:\n    - copy: {content: \"hello from sudo\\n\", dest: \"{{ out }}/local.txt\"}\n",
    );
    let out = format!("out={}", dir.display());
    let local = run_in(
        dir,
        &[
            "run",
            "local-play.yml",
            "-i",
            "local.yml",
            "--become-password-file",
            "become-pw",
            "-e",
            &out,
        ],
    );
    assert_eq!(local.code, 0, "{}", local.dump());
    assert_eq!(
        std::fs::read_to_string(dir.join("local.txt")).unwrap(),
        "hello from sudo\n"
    );
}
