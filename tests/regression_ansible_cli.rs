//! ansible-playbook's command-line flags and ansible.cfg settings, as
//! `convoy run` takes them (issue 10): each test named after what a user
//! coming from Ansible found missing.

mod support;

use support::inventory::app_inventory;
use support::run::{Run, run_in};
use support::{Fleet, workdir, write_file};

fn run_here(dir: &std::path::Path, playbook: &str, args: &[&str]) -> Run {
    write_file(dir, "play.yml", playbook);
    let mut all = vec!["run", "play.yml", "-i", "inventory.yml"];
    all.extend_from_slice(args);
    run_in(dir, &all)
}

const WHO: &str = "- hosts: app\n  gather_facts: false\n  tasks:\n    - command: id -un\n      register: who\n    - copy: { content: \"{{ who.stdout }}\", dest: /tmp/who, mode: '0644' }\n";

#[test]
fn dash_b_and_become_user_run_plays_that_say_nothing_as_that_user() {
    let fleet = Fleet::start(1);
    let work = workdir();
    app_inventory(&fleet, work.path(), "");
    let r = run_here(work.path(), WHO, &["-b", "--become-user", "convoy"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        fleet.exec_ok(1, "cat /tmp/who; stat -c ' %U' /tmp/who"),
        "convoy convoy\n"
    );
    // A play's own `become: false` beats the flag, as in Ansible.
    let r = run_here(
        work.path(),
        &WHO.replace(
            "gather_facts: false\n",
            "gather_facts: false\n  become: false\n",
        ),
        &["-b", "--become-user", "convoy"],
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(fleet.exec_ok(1, "cat /tmp/who"), "root");
}

#[test]
fn dash_u_names_the_ssh_user_where_the_inventory_names_none() {
    let fleet = Fleet::start(1);
    let work = workdir();
    app_inventory(&fleet, work.path(), "");
    let r = run_here(work.path(), WHO, &["-u", "convoy"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(fleet.exec_ok(1, "cat /tmp/who"), "convoy");
    // ansible_user in the inventory beats -u, as in Ansible.
    app_inventory(&fleet, work.path(), "ansible_user: root");
    let r = run_here(work.path(), WHO, &["-u", "convoy"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(fleet.exec_ok(1, "cat /tmp/who"), "root");
}

#[test]
fn ansible_cfg_remote_user_and_become_apply_below_inventory_and_play_keywords() {
    let fleet = Fleet::start(1);
    let work = workdir();
    app_inventory(&fleet, work.path(), "");
    write_file(
        work.path(),
        "ansible.cfg",
        "[defaults]\nremote_user = convoy\nforks = 2\n\n[privilege_escalation]\nbecome = True\nbecome_method = sudo\n",
    );
    let r = run_here(work.path(), WHO, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    // ssh as convoy, sudo to root.
    assert_eq!(
        fleet.exec_ok(1, "cat /tmp/who; stat -c ' %U' /tmp/who"),
        "root root\n"
    );
    let r = run_here(
        work.path(),
        &WHO.replace(
            "gather_facts: false\n",
            "gather_facts: false\n  become: false\n",
        )
        .replace("/tmp/who", "/tmp/who2"),
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(fleet.exec_ok(1, "cat /tmp/who2"), "convoy");
}

#[test]
fn ansible_cfg_become_method_other_than_sudo_is_an_error_naming_file_and_line() {
    let work = workdir();
    write_file(
        work.path(),
        "inventory.yml",
        "all:\n  hosts:\n    web1:\n      ansible_connection: local\n",
    );
    write_file(
        work.path(),
        "ansible.cfg",
        "[defaults]\nstrategy = free\n[privilege_escalation]\nbecome_method = su\n",
    );
    let marker = work.path().join("touched");
    let play = format!(
        "- hosts: all\n  tasks:\n    - file: {{ path: {}, state: touch }}\n",
        marker.display()
    );
    let r = run_here(work.path(), &play, &[]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr
            .contains("`become_method = su`: convoy escalates with sudo only")
            && r.stderr.contains("ansible.cfg:4:1"),
        "{}",
        r.dump()
    );
    assert!(!marker.exists(), "a host was touched");
    // An unknown key alone is a warning naming its line; the run goes on.
    write_file(work.path(), "ansible.cfg", "[defaults]\nstrategy = free\n");
    let r = run_here(work.path(), &play, &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        r.stderr
            .contains("ansible.cfg:2: `strategy` in [defaults] is not read by convoy (ignored)"),
        "{}",
        r.dump()
    );
}

#[test]
fn list_hosts_tasks_tags_and_syntax_check_contact_no_host() {
    let work = workdir();
    // An address nothing listens on: a connection attempt would fail the run.
    write_file(
        work.path(),
        "inventory.yml",
        "all:\n  children:\n    web:\n      hosts:\n        w1: { ansible_host: 127.0.0.1, ansible_port: 1 }\n        w2: { ansible_host: 127.0.0.1, ansible_port: 1 }\n",
    );
    let play = "- hosts: web\n  tags: [deploy]\n  tasks:\n    - name: first\n      debug: { msg: one }\n      tags: [a]\n    - block:\n        - name: inner\n          debug: { msg: two }\n          tags: [b]\n";
    let r = run_here(
        work.path(),
        play,
        &["--list-hosts", "--list-tasks", "--list-tags"],
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    for expected in [
        "hosts (2):\n      w1\n      w2\n",
        "      first\tTAGS: [a, deploy]\n",
        "      inner\tTAGS: [b, deploy]\n",
        "TASK TAGS: [a, b, deploy]",
    ] {
        assert!(r.stdout.contains(expected), "{expected:?} in\n{}", r.dump());
    }
    let r = run_here(work.path(), play, &["--list-tasks", "--tags", "b"]);
    assert!(!r.stdout.contains("first"), "{}", r.dump());
    let r = run_here(work.path(), play, &["--syntax-check"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let r = run_here(
        work.path(),
        "- hosts: web\n  taks: []\n",
        &["--syntax-check"],
    );
    assert_eq!(r.code, 3, "{}", r.dump());
}

#[test]
fn start_at_task_passes_over_the_tasks_before_it() {
    let fleet = Fleet::start(1);
    let work = workdir();
    app_inventory(&fleet, work.path(), "");
    let play = "- hosts: app\n  tasks:\n    - name: one\n      file: { path: /tmp/one, state: touch }\n    - name: two\n      file: { path: /tmp/two, state: touch }\n    - name: three\n      file: { path: /tmp/three, state: touch }\n";
    let r = run_here(work.path(), play, &["--start-at-task", "tw*"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        fleet.exec_ok(1, "ls /tmp/one /tmp/two /tmp/three 2>/dev/null; true"),
        "/tmp/three\n/tmp/two\n"
    );
    // Facts are still gathered.
    assert!(r.stdout.contains("Gathering Facts"), "{}", r.dump());
    let r = run_here(work.path(), play, &["--start-at-task", "four"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr
            .contains("--start-at-task \"four\": no task of play.yml has that name"),
        "{}",
        r.dump()
    );
}
