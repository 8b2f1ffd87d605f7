//! `user` and `group` on a real fleet host (whose /etc is its own, see
//! fleet.sh): refusals that leave the host as it was, check mode, and
//! values that must stay values.

mod support;

use std::path::Path;

use support::inventory::app_inventory;
use support::run::{Run, run};
use support::{Fleet, workdir, write_file};

fn run_play(fleet: &Fleet, dir: &Path, playbook: &str, extra: &[&str]) -> Run {
    let inventory = app_inventory(fleet, dir, "");
    let playbook = write_file(dir, "play.yml", playbook);
    let mut args = vec![
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn exists(fleet: &Fleet, kind: &str, name: &str) -> bool {
    fleet
        .exec(1, &format!("getent {kind} {name}"))
        .status
        .success()
}

#[test]
fn a_user_whose_group_does_not_exist_fails_naming_it_and_is_not_created() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let r = run_play(
        &fleet,
        work.path(),
        "- hosts: app\n  gather_facts: false\n  tasks:\n    - user: {name: cvacc-a, groups: [cvacc-nogroup]}\n",
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.dump());
    assert!(
        r.all()
            .contains("failed: [h1]: Group cvacc-nogroup does not exist"),
        "{}",
        r.dump()
    );
    assert!(!exists(&fleet, "passwd", "cvacc-a"));
}

#[test]
fn check_mode_creates_no_user_nor_group_and_says_it_would() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let play = "- hosts: app\n  gather_facts: false\n  tasks:\n    - group: {name: cvacc-g, gid: 23480}\n    - user: {name: cvacc-u, group: cvacc-g, home: /srv/cvacc-u}\n";
    let r = run_play(&fleet, work.path(), play, &["--check"]);
    // A user that does not exist would be created: ansible-core says so
    // before looking at its groups (which check mode did not create).
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.count("h1", "changed"), 2, "{}", r.dump());
    assert!(!exists(&fleet, "group", "cvacc-g"));
    assert!(!exists(&fleet, "passwd", "cvacc-u"));
    assert!(!fleet.host_path(1, "/srv/cvacc-u").exists());
    // For real: both made, the home from /etc/skel, owned by the user.
    let r = run_play(&fleet, work.path(), play, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.count("h1", "changed"), 2, "{}", r.dump());
    assert_eq!(
        fleet.exec_ok(1, "stat -c '%u:%g %a' /srv/cvacc-u; id -gn cvacc-u"),
        format!(
            "{}:23480 755\ncvacc-g\n",
            fleet.exec_ok(1, "id -u cvacc-u").trim()
        )
    );
    // Then in check mode the user's removal is announced, not done.
    let gone = "- hosts: app\n  gather_facts: false\n  tasks:\n    - user: {name: cvacc-u, state: absent, remove: true}\n    - group: {name: cvacc-g, state: absent}\n";
    let r = run_play(&fleet, work.path(), gone, &["--check"]);
    assert_eq!(r.count("h1", "changed"), 2, "{}", r.dump());
    assert!(exists(&fleet, "passwd", "cvacc-u"));
    assert!(exists(&fleet, "group", "cvacc-g"));
    let r = run_play(&fleet, work.path(), gone, &[]);
    assert_eq!(r.count("h1", "changed"), 2, "{}", r.dump());
    assert!(!exists(&fleet, "passwd", "cvacc-u"));
    assert!(
        !fleet.host_path(1, "/srv/cvacc-u").exists(),
        "remove: true removes the home"
    );
}

#[test]
fn a_comment_and_a_shell_with_shell_syntax_stay_values() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let comment = "$(touch /srv/pwned) `touch /srv/pwned2`; it's";
    let play = format!(
        "- hosts: app\n  gather_facts: false\n  tasks:\n    - user:\n        name: cvacc-v\n        create_home: false\n        comment: \"{}\"\n        shell: \"/bin/sh; touch /srv/pwned3\"\n      register: made\n    - copy: {{dest: /srv/registered, content: \"{{{{ made.comment }}}}|{{{{ made.shell }}}}\"}}\n",
        comment.replace('\\', "\\\\").replace('"', "\\\"")
    );
    let r = run_play(&fleet, work.path(), &play, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    for f in ["pwned", "pwned2", "pwned3"] {
        assert!(!fleet.host_path(1, &format!("/srv/{f}")).exists(), "{f}");
    }
    assert_eq!(
        fleet.exec_ok(1, "getent passwd cvacc-v | cut -d: -f5,7"),
        format!("{comment}:/bin/sh; touch /srv/pwned3\n")
    );
    assert_eq!(
        std::fs::read_to_string(fleet.host_path(1, "/srv/registered")).unwrap(),
        format!("{comment}|/bin/sh; touch /srv/pwned3")
    );
}
