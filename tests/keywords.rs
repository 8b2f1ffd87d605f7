//! Task and play keywords whose effect the compatibility suite cannot see
//! in the hosts' files: how many hosts run a task at once (`throttle`),
//! what an unreachable host counts (`ignore_unreachable`, `delegate_to`).
//! Each runs the real binary on a real fleet and reads the hosts.

mod support;

use std::path::{Path, PathBuf};

use support::run::{Run, run};
use support::{Fleet, workdir, write_file};

/// An inventory of the fleet's hosts in `app`, plus `dead`: host 1's
/// address on a port nothing listens on (every connection refused).
fn inventory(fleet: &Fleet, dir: &Path, with_dead: bool) -> PathBuf {
    let mut yaml = format!(
        "all:\n  vars:\n    convoy_ssh_config: {}\n  children:\n    app:\n      hosts:\n",
        fleet.ssh_config().display()
    );
    for i in fleet.hosts() {
        yaml.push_str(&format!(
            "        {}:\n          ansible_host: {}\n",
            fleet.name(i),
            fleet.addr(i)
        ));
    }
    if with_dead {
        yaml.push_str(&format!(
            "        dead:\n          ansible_host: {}\n          ansible_port: 1\n",
            fleet.addr(1)
        ));
    }
    write_file(dir, "inventory.yml", &yaml)
}

fn run_playbook(fleet: &Fleet, dir: &Path, with_dead: bool, playbook: &str) -> Run {
    let inventory = inventory(fleet, dir, with_dead);
    let playbook = write_file(dir, "play.yml", playbook);
    run(&[
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
        "--forks",
        "10",
    ])
}

/// A shell line that records, on its host, when it started and ended.
fn timed(file: &str) -> String {
    format!("'s=$(date +%s.%N); sleep 1; echo \"$s $(date +%s.%N)\" > /srv/{file}'")
}

/// The most spans open at one instant (the hosts share the machine's clock).
fn most_at_once(spans: &[(f64, f64)]) -> usize {
    spans
        .iter()
        .map(|(start, _)| {
            spans
                .iter()
                .filter(|(s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn spans(fleet: &Fleet, file: &str) -> Vec<(f64, f64)> {
    fleet
        .hosts()
        .map(|i| {
            let text = fleet.exec_ok(i, &format!("cat /srv/{file}"));
            let mut parts = text.split_whitespace().map(|t| t.parse::<f64>().unwrap());
            (parts.next().unwrap(), parts.next().unwrap())
        })
        .collect()
}

#[test]
fn throttle_bounds_how_many_hosts_run_the_task_at_once() {
    let fleet = Fleet::start(3);
    let work = workdir();
    let playbook = format!(
        "- hosts: app
  gather_facts: false
  tasks:
    - name: one at a time
      shell: {one}
      throttle: 1
    - name: unthrottled
      shell: {all}
    - name: a throttled block
      throttle: 2
      block:
        - name: inherits two
          shell: {two}
        - name: the task's own bound wins
          shell: {own}
          throttle: 1
",
        one = timed("one"),
        all = timed("all"),
        two = timed("two"),
        own = timed("own"),
    );
    let r = run_playbook(&fleet, work.path(), false, &playbook);
    assert_eq!(r.code, 0, "{}", r.dump());
    let at_once = |file| most_at_once(&spans(&fleet, file));
    // Without throttle the three hosts overlap: the measure can tell.
    assert_eq!(at_once("all"), 3, "unthrottled");
    assert_eq!(at_once("one"), 1, "throttle: 1");
    assert_eq!(at_once("two"), 2, "a block's throttle: 2");
    assert_eq!(
        at_once("own"),
        1,
        "a task's throttle: 1 under the block's 2"
    );
    for i in fleet.hosts() {
        assert_eq!(r.count(&fleet.name(i), "changed"), 4, "{}", r.dump());
    }
}

#[test]
fn ignore_unreachable_counts_the_host_ok_and_ignored_and_it_goes_on() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let r = run_playbook(
        &fleet,
        work.path(),
        true,
        "- hosts: app\n  gather_facts: false\n  ignore_unreachable: true\n  tasks:\n    - name: first\n      command: 'true'\n    - name: second\n      command: 'true'\n    - name: not ignored\n      command: 'true'\n      ignore_unreachable: false\n    - name: after\n      shell: echo done > /srv/after\n",
    );
    assert_eq!(r.code, 4, "an unreachable host at the end: {}", r.dump());
    assert_eq!(r.count("dead", "ok"), 2, "{}", r.dump());
    assert_eq!(r.count("dead", "ignored"), 2, "{}", r.dump());
    assert_eq!(r.count("dead", "unreachable"), 1, "{}", r.dump());
    assert_eq!(r.count("h1", "changed"), 4, "{}", r.dump());
    assert_eq!(fleet.exec_ok(1, "cat /srv/after").trim(), "done");
}

#[test]
fn a_delegated_host_that_cannot_be_reached_makes_the_task_host_unreachable() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let r = run_playbook(
        &fleet,
        work.path(),
        true,
        "- hosts: h1\n  gather_facts: false\n  tasks:\n    - name: on the dead host\n      command: 'true'\n      delegate_to: dead\n    - name: after\n      shell: echo done > /srv/after\n",
    );
    assert_eq!(r.code, 4, "{}", r.dump());
    assert_eq!(r.count("h1", "unreachable"), 1, "{}", r.dump());
    assert_eq!(r.count("h1", "ok"), 0, "{}", r.dump());
    assert!(
        !fleet.host_path(1, "/srv/after").exists(),
        "the unreachable host went on"
    );
}

/// ansible-core's result line for a delegated task names both hosts,
/// `[h1 -> h2(ADDRESS)]` when the delegated host's `ansible_host` is not its
/// name; a task delegated to its own host reads `[h2]`. Until this was
/// added convoy printed `[h1]` alone, hiding where the task ran.
#[test]
fn a_delegated_result_names_the_host_it_ran_on() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let r = run_playbook(
        &fleet,
        work.path(),
        false,
        "- hosts: app\n  gather_facts: false\n  tasks:\n    - name: on h2\n      copy: {dest: '/srv/from-{{ inventory_hostname }}', content: x}\n      delegate_to: h2\n",
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    let label = format!("changed: [h1 -> h2({})]", fleet.addr(2));
    assert!(r.stdout.contains(&label), "no {label:?}: {}", r.dump());
    assert!(r.stdout.contains("changed: [h2] "), "{}", r.dump());
    assert!(!r.stdout.contains("[h2 -> h2"), "{}", r.dump());
    for name in ["from-h1", "from-h2"] {
        assert!(fleet.host_path(2, &format!("/srv/{name}")).exists());
        assert!(!fleet.host_path(1, &format!("/srv/{name}")).exists());
    }
}

/// A tasks file named by a template is loaded when the run reaches it:
/// a mistake in it fails the hosts that include it, naming its place,
/// and the hosts that include a sound file go on.
#[test]
fn a_bad_tasks_file_named_by_a_template_fails_the_hosts_that_include_it() {
    let fleet = Fleet::start(2);
    let work = workdir();
    write_file(
        work.path(),
        "good.yml",
        "- copy: {dest: /srv/good, content: x}\n",
    );
    write_file(
        work.path(),
        "bad.yml",
        "- name: fine\n  debug: {msg: x}\n- name: typo\n  copyy: {dest: /srv/bad, content: x}\n",
    );
    let r = run_playbook(
        &fleet,
        work.path(),
        false,
        "- hosts: app\n  gather_facts: false\n  tasks:\n    - include_tasks: \"{{ 'good' if inventory_hostname == 'h1' else 'bad' }}.yml\"\n    - copy: {dest: /srv/after, content: x}\n",
    );
    assert_eq!(r.code, 2, "{}", r.dump());
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(out.contains("bad.yml:4:3"), "no location: {}", r.dump());
    assert!(out.contains("copyy"), "no key: {}", r.dump());
    assert!(fleet.host_path(1, "/srv/good").exists());
    assert!(fleet.host_path(1, "/srv/after").exists());
    assert!(!fleet.host_path(2, "/srv/bad").exists());
    assert!(!fleet.host_path(2, "/srv/after").exists());
    assert!(
        r.stdout.contains("h2 : ok=0") && r.stdout.contains("failed=1"),
        "{}",
        r.dump()
    );
}
