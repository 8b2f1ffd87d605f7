//! Regressions in tasks, each test named after what broke (the "Trust"
//! issue: every accepted key does what it says, everything else is an
//! error). Tasks run on a real fleet and the hosts are checked directly;
//! load errors run on a local host and prove nothing was touched.

mod support;

use std::path::Path;

use support::inventory::app_inventory;
use support::run::{Run, run};
use support::{Fleet, workdir, write_file};

/// Runs `playbook` (text) on the fleet's `app` group, with `host_extra` per host.
fn run_play(fleet: &Fleet, dir: &Path, host_extra: &str, playbook: &str) -> Run {
    let inventory = app_inventory(fleet, dir, host_extra);
    let playbook = write_file(dir, "play.yml", playbook);
    run(&[
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ])
}

/// A playbook refused before any host is touched: exit 3, the message on
/// stderr (the temp dir shown as `<dir>`), and no marker file written.
fn refused(playbook: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("touched");
    std::fs::write(
        dir.path().join("inv.yml"),
        "all:\n  hosts:\n    web1:\n      ansible_connection: local\n",
    )
    .unwrap();
    let first = format!(
        "- hosts: all\n  tasks:\n    - file: {{ path: {}, state: touch }}\n",
        marker.display()
    );
    std::fs::write(dir.path().join("play.yml"), first + playbook).unwrap();
    let out = support::convoy()
        .current_dir(dir.path())
        .args(["run", "play.yml", "-i", "inv.yml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "exit code; stderr:\n{stderr}");
    assert!(!marker.exists(), "a host was touched:\n{stderr}");
    stderr
}

#[test]
fn until_that_never_holds_fails_the_task_after_the_last_retry() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let r = run_play(
        &fleet,
        work.path(),
        "",
        "- hosts: app\n  tasks:\n    - name: wait for ready\n      shell: echo run >> /srv/runs\n      register: r\n      until: r.stdout == 'ready'\n      retries: 2\n      delay: 0\n",
    );
    assert_eq!(r.code, 2, "{}", r.dump());
    assert_eq!(r.count("h1", "failed"), 1, "{}", r.dump());
    assert_eq!(r.count("h1", "changed"), 0, "{}", r.dump());
    assert!(
        r.stdout
            .contains("NOTE FAILED - RETRYING: [h1]: wait for ready (2 retries left)."),
        "{}",
        r.dump()
    );
    assert!(
        r.stdout
            .contains("failed: [h1]: FAILED! => {\"attempts\":2,"),
        "{}",
        r.dump()
    );
    // The first call and two retries.
    assert_eq!(fleet.exec_ok(1, "cat /srv/runs"), "run\nrun\nrun\n");
}

#[test]
fn until_registers_attempts_as_ansible_does() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let r = run_play(
        &fleet,
        work.path(),
        "",
        "- hosts: app\n  tasks:\n    - shell: echo x >> /srv/n; wc -l < /srv/n\n      register: r\n      until: r.stdout | int == 2\n      delay: 0\n    - shell: 'false'\n      register: never\n      until: never.rc == 0\n      delay: 0\n      ignore_errors: true\n    - shell: 'false'\n      register: plain\n      retries: 1\n      delay: 0\n      ignore_errors: true\n    - copy:\n        dest: /srv/attempts\n        content: \"{{ r.attempts }} {{ r.failed }} {{ never.attempts }} {{ never.failed }} {{ plain.attempts }}\"\n",
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    // Ansible: success on the 2nd attempt; `until` alone retries 3 times and
    // reports 3 when out of attempts; `retries` alone retries on failure.
    assert_eq!(
        fleet.exec_ok(1, "cat /srv/attempts; echo; wc -l < /srv/n"),
        "2 False 3 True 1\n2\n"
    );
}

#[test]
fn when_on_a_loop_is_evaluated_per_item() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let r = run_play(
        &fleet,
        work.path(),
        "",
        "- hosts: app\n  tasks:\n    - file: { path: \"/srv/{{ item }}\", state: touch }\n      loop: [a, b, c]\n      when: item != 'b'\n      register: touched\n    - copy:\n        dest: /srv/skipped\n        content: \"{{ touched.results | map(attribute='skipped', default=false) | list }} {{ touched.msg }}\"\n    - file: { path: /srv/never, state: touch }\n      loop: [x]\n      when: item == 'y'\n      register: nothing\n    - copy: { dest: /srv/none, content: \"{{ nothing.skipped }} {{ nothing.msg }}\" }\n",
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in fleet.hosts() {
        let name = fleet.name(i);
        assert!(
            r.stdout
                .contains(&format!("skipping: [{name}] => (item=b)")),
            "{}",
            r.dump()
        );
        assert!(fleet.host_path(i, "/srv/a").exists());
        assert!(!fleet.host_path(i, "/srv/b").exists());
        assert!(fleet.host_path(i, "/srv/c").exists());
        assert!(!fleet.host_path(i, "/srv/never").exists());
        assert_eq!(
            fleet.exec_ok(i, "cat /srv/skipped; echo; cat /srv/none"),
            "[False, True, False] All items completed\nTrue All items skipped"
        );
    }
}

#[test]
fn loop_control_index_var_and_extended_are_defined() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let r = run_play(
        &fleet,
        work.path(),
        "",
        "- hosts: app\n  tasks:\n    - copy:\n        dest: \"/srv/{{ name }}\"\n        content: \"{{ i }} {{ ansible_loop.index }} {{ ansible_loop.index0 }} {{ ansible_loop.first }} {{ ansible_loop.last }} {{ ansible_loop.length }} {{ ansible_loop.revindex }} {{ ansible_loop.revindex0 }} {{ ansible_loop.previtem | default('-') }} {{ ansible_loop.nextitem | default('-') }} {{ ansible_loop.allitems | join(',') }} {{ ansible_loop_var }}\"\n      loop: [a, b, c]\n      loop_control: { loop_var: name, index_var: i, extended: true, label: \"file {{ name }}\" }\n",
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        r.stdout.contains("changed: [h1] => (item=file b)"),
        "{}",
        r.dump()
    );
    assert_eq!(
        fleet.exec_ok(1, "cat /srv/a; echo; cat /srv/b; echo; cat /srv/c"),
        "0 1 0 True False 3 3 2 - b a,b,c name\n\
         1 2 1 False False 3 2 1 a c a,b,c name\n\
         2 3 2 False True 3 1 0 b - a,b,c name"
    );
}

#[test]
fn unknown_loop_control_key_is_a_load_error() {
    let stderr = refused(
        "- hosts: all\n  tasks:\n    - debug: { msg: hi }\n      loop: [1]\n      loop_control: { index: i }\n",
    );
    assert_eq!(
        stderr,
        "error: unknown key `index` in `loop_control` (did you mean `index_var`?)\n  --> play.yml:8:21\n   |\n 8 |       loop_control: { index: i }\n   |                     ^\n"
    );
}

#[test]
fn notify_of_a_handler_that_does_not_exist_is_a_load_error() {
    let stderr = refused(
        "- hosts: all\n  tasks:\n    - debug: { msg: hi }\n      notify: restart ap\n  handlers:\n    - name: restart app\n      debug: { msg: restarting }\n",
    );
    assert_eq!(
        stderr,
        "error: the requested handler \"restart ap\" was not found: no handler of this play has that `name` or `listen` (did you mean \"restart app\"?)\n  --> play.yml:7:15\n   |\n 7 |       notify: restart ap\n   |               ^\n"
    );
}

#[test]
fn notify_reaches_handlers_by_name_and_by_listen() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let r = run_play(
        &fleet,
        work.path(),
        "",
        "- hosts: app\n  tasks:\n    - copy: { content: x, dest: /srv/x }\n      notify: [by name, a topic]\n    - block:\n        - copy: { content: y, dest: /srv/y }\n      notify: by block\n  handlers:\n    - name: by name\n      file: { path: /srv/by-name, state: touch }\n    - name: listener\n      listen: a topic\n      file: { path: /srv/by-listen, state: touch }\n    - name: by block\n      file: { path: /srv/by-block, state: touch }\n",
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    // A block's notify reaches the handler when a task inside changes (Ansible's Notifiable block).
    assert!(fleet.host_path(1, "/srv/by-block").exists(), "{}", r.dump());
    assert!(fleet.host_path(1, "/srv/by-name").exists(), "{}", r.dump());
    assert!(
        fleet.host_path(1, "/srv/by-listen").exists(),
        "{}",
        r.dump()
    );
}

/// Was `gather_facts_true_is_an_error_naming_the_key`: convoy gathered no
/// facts and refused `gather_facts: true`. It gathers them now, as Ansible
/// does by default, in one round trip per host.
#[test]
fn gather_facts_true_gathers_facts_in_one_round_trip_per_host() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let inventory = app_inventory(&fleet, work.path(), "");
    let task = "  tasks:\n    - copy: { content: \"{{ ansible_hostname }} {{ ansible_facts.os_family }} {{ ansible_user_id }} {{ ansible_processor_vcpus > 0 }}\", dest: /srv/facts, mode: '0644' }\n";
    let trips = |gather: &str, name: &str| {
        let playbook = write_file(
            work.path(),
            name,
            &format!("- hosts: app\n  gather_facts: {gather}\n{task}"),
        );
        let started = std::time::Instant::now();
        let r = run(&[
            "run",
            playbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
            "--output",
            "json",
        ]);
        let elapsed = started.elapsed();
        assert_eq!(r.code, 0, "{}", r.dump());
        let recap = r.json_recap();
        let trips: Vec<u64> = fleet
            .hosts()
            .map(|i| {
                recap["hosts"][fleet.name(i)]["round_trips"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        (trips, elapsed, r)
    };
    let (with, with_time, r) = trips("true", "with.yml");
    for i in fleet.hosts() {
        assert_eq!(
            fleet.exec_ok(i, "cat /srv/facts"),
            format!("{} Debian root True", fleet.name(i)),
            "{}",
            r.dump()
        );
    }
    // `gather_facts: false` and a fact read: refused before the run.
    let playbook = write_file(
        work.path(),
        "without_facts.yml",
        &format!("- hosts: app\n  gather_facts: false\n{task}"),
    );
    let refused = run(&[
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ]);
    assert_eq!(refused.code, 3, "{}", refused.dump());
    assert!(
        refused.all().contains("ansible_hostname"),
        "{}",
        refused.dump()
    );
    // The cost of gathering: the same play reading no fact, with and without.
    let plain = "  tasks:\n    - copy: { content: same, dest: /srv/plain, mode: '0644' }\n";
    let run_plain = |gather: &str, name: &str| {
        let playbook = write_file(
            work.path(),
            name,
            &format!("- hosts: app\n  gather_facts: {gather}\n{plain}"),
        );
        let started = std::time::Instant::now();
        let r = run(&[
            "run",
            playbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
            "--output",
            "json",
        ]);
        assert_eq!(r.code, 0, "{}", r.dump());
        let gathering: Vec<f64> = r
            .events()
            .iter()
            .filter(|e| e["event"] == "host_result" && e["task"] == "Gathering Facts")
            .map(|e| e["duration"].as_f64().unwrap())
            .collect();
        let recap = r.json_recap();
        let trips: Vec<u64> = fleet
            .hosts()
            .map(|i| {
                recap["hosts"][fleet.name(i)]["round_trips"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        (trips, started.elapsed(), gathering)
    };
    // The first run writes the file (a check and a write); later ones only check.
    run_plain("false", "plain_first.yml");
    let (gathered, gathered_time, gathering) = run_plain("true", "plain_with.yml");
    let (bare, bare_time, none) = run_plain("false", "plain_without.yml");
    assert!(none.is_empty(), "gather_facts: false gathered");
    assert_eq!(
        gathering.len(),
        fleet.hosts().count(),
        "one gathering per host"
    );
    for (g, b) in gathered.iter().zip(&bare) {
        assert_eq!(
            *g,
            b + 1,
            "gathering costs one round trip per host: {gathered:?} against {bare:?}"
        );
    }
    eprintln!(
        "facts: round trips per host {gathered:?} with gathering, {bare:?} without; gathering took {:?} s per host; runs {:.0} ms against {:.0} ms (first run reading facts: {with:?} trips, {:.0} ms)",
        gathering,
        gathered_time.as_secs_f64() * 1000.0,
        bare_time.as_secs_f64() * 1000.0,
        with_time.as_secs_f64() * 1000.0,
    );
}

#[test]
fn unknown_gather_subset_is_an_error_naming_file_line_col() {
    let stderr = refused(
        "- hosts: all\n  gather_subset: [network, hardwre]\n  tasks:\n    - debug: { msg: hi }\n",
    );
    assert_eq!(
        stderr,
        "error: `gather_subset`: unknown gather_subset `hardwre`: use all, min, hardware, network, virtual or one of platform, distribution, date_time, env, user, service_mgr, pkg_mgr (each may be negated with `!`)\n  --> play.yml:5:18\n   |\n 5 |   gather_subset: [network, hardwre]\n   |                  ^\n"
    );
}

#[test]
fn gather_facts_that_is_not_a_boolean_is_an_error_naming_the_key() {
    let stderr =
        refused("- hosts: all\n  gather_facts: sometimes\n  tasks:\n    - debug: { msg: hi }\n");
    assert!(
        stderr.starts_with("error: `gather_facts` takes true or false\n  --> play.yml:5:17\n"),
        "{stderr}"
    );
}

#[test]
fn gather_facts_false_or_no_is_accepted() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let r = run_play(
        &fleet,
        work.path(),
        "",
        "- hosts: app\n  gather_facts: no\n  tasks:\n    - file: { path: /srv/one, state: touch }\n- hosts: app\n  gather_facts: false\n  tasks:\n    - file: { path: /srv/two, state: touch }\n",
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(fleet.host_path(1, "/srv/one").exists());
    assert!(fleet.host_path(1, "/srv/two").exists());
}

#[test]
fn inventory_ansible_become_is_honoured_by_tasks() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let r = run_play(
        &fleet,
        work.path(),
        "ansible_user: convoy\n          ansible_become: true",
        "- hosts: app\n  tasks:\n    - command: id -un\n      register: who\n    - copy: { content: \"{{ who.stdout }}\", dest: /srv/who, mode: '0600' }\n",
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        fleet.exec_ok(1, "cat /srv/who; echo; stat -c '%U %a' /srv/who"),
        "root\nroot 600\n"
    );
}

#[test]
fn ansible_become_vars_override_become_keywords_as_in_ansible() {
    let fleet = Fleet::start(1);
    let work = workdir();
    // Ansible: connection variables win over the keywords, each on its own.
    let r = run_play(
        &fleet,
        work.path(),
        "ansible_user: convoy",
        "- hosts: app\n  become: true\n  become_user: root\n  tasks:\n    - command: id -un\n      register: by_play\n    - command: id -un\n      become: true\n      vars: { ansible_become: false }\n      register: var_off\n    - command: id -un\n      vars: { ansible_become_user: nobody }\n      register: var_user\n    - block:\n        - command: id -un\n          register: by_block\n      become: false\n    - copy: { content: \"{{ by_play.stdout }} {{ var_off.stdout }} {{ var_user.stdout }} {{ by_block.stdout }}\", dest: /srv/who }\n",
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        fleet.exec_ok(1, "cat /srv/who"),
        "root convoy nobody convoy"
    );
}

#[test]
fn become_method_other_than_sudo_is_refused_naming_the_host() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let inventory = app_inventory(&fleet, work.path(), "ansible_become: true");
    let mut text = std::fs::read_to_string(&inventory).unwrap();
    // The group `app` carries the method.
    text.push_str("      vars:\n        ansible_become_method: su\n");
    std::fs::write(&inventory, text).unwrap();
    let playbook = write_file(
        work.path(),
        "play.yml",
        "- hosts: app\n  tasks:\n    - file: { path: /srv/touched, state: touch }\n",
    );
    let r = run(&[
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains(
            "host h1: ansible_become_method `su` is not supported: convoy becomes another user with sudo only"
        ),
        "{}",
        r.dump()
    );
    for i in fleet.hosts() {
        assert!(!fleet.host_path(i, "/srv/touched").exists());
    }
}

#[test]
fn become_method_keyword_other_than_sudo_is_a_load_error() {
    let stderr = refused(
        "- hosts: all\n  tasks:\n    - command: id\n      become: true\n      become_method: su\n",
    );
    assert_eq!(
        stderr,
        "error: `become_method: su` is not supported: convoy becomes another user with sudo only\n  --> play.yml:8:22\n   |\n 8 |       become_method: su\n   |                      ^\n"
    );
}

#[test]
fn release_templates_resolve_variables_whose_values_are_templates() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let dir = work.path();
    std::fs::create_dir_all(dir.join("dist")).unwrap();
    std::fs::write(
        dir.join("dist/hello.tar.gz"),
        support::tarball::release_tar_gz("1.0.0", 0),
    )
    .unwrap();
    write_file(
        dir,
        "templates/release.conf.j2",
        "version={{ app_version }} name={{ names[0] }} port={{ ports.http }}\n",
    );
    write_file(dir, "templates/task.conf.j2", "version={{ app_version }}\n");
    let r = run_play(
        &fleet,
        dir,
        "",
        "- hosts: app\n  vars:\n    app_version: \"{{ version | default('1.0.0') }}\"\n    names: [\"app-{{ app_version }}\"]\n    ports: { http: \"{{ 8000 + 80 }}\" }\n  tasks:\n    - template: { src: templates/task.conf.j2, dest: /srv/task.conf }\n    - copy: { content: \"{{ 'same' if app_version == '1.0.0' else 'differs' }}\", dest: /srv/condition }\n  distribution:\n    name: hello\n    version: \"{{ app_version }}\"\n    source: dist/hello.tar.gz\n    root: /srv/hello\n    templates:\n      - src: templates/release.conf.j2\n        dest: release.conf\n",
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in fleet.hosts() {
        assert_eq!(
            fleet.exec_ok(i, "cat /srv/hello/current/release.conf /srv/task.conf /srv/condition; readlink /srv/hello/current"),
            "version=1.0.0 name=app-1.0.0 port=8080\nversion=1.0.0\nsamereleases/1.0.0\n"
        );
    }
}

/// Nanoseconds since the epoch written on the host at `path` (hosts share the machine's clock).
fn stamp(fleet: &Fleet, i: usize, path: &str) -> u128 {
    fleet
        .exec_ok(i, &format!("cat {path}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn rollout_on_a_plain_play_runs_tasks_and_handlers_batch_by_batch() {
    let fleet = Fleet::start(4);
    let work = workdir();
    let r = run_play(
        &fleet,
        work.path(),
        "",
        "- hosts: app\n  rollout:\n    canary: 1\n    batch: 2\n    health: { command: \"test -f /srv/handled\", timeout: 10s, interval: 1s }\n  tasks:\n    - shell: date +%s%N > /srv/first\n      notify: handle\n    - shell: date +%s%N > /srv/second\n  handlers:\n    - name: handle\n      shell: date +%s%N > /srv/handled\n",
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.stdout.contains("BATCH 1/3 (canary) [h1]"), "{}", r.dump());
    assert!(r.stdout.contains("BATCH 2/3 [h2, h3]"), "{}", r.dump());
    assert!(r.stdout.contains("BATCH 3/3 [h4]"), "{}", r.dump());
    // Each batch ran every task, its handlers and its health gate before the next began.
    let batches: [&[usize]; 3] = [&[1], &[2, 3], &[4]];
    for pair in batches.windows(2) {
        for &done in pair[0] {
            for &next in pair[1] {
                assert!(
                    stamp(&fleet, done, "/srv/handled") < stamp(&fleet, next, "/srv/first"),
                    "h{next} started before h{done}'s batch ended\n{}",
                    r.dump()
                );
            }
        }
    }
    for i in fleet.hosts() {
        assert_eq!(r.count(&fleet.name(i), "failed"), 0, "{}", r.dump());
        // facts (gathered per batch, as in Ansible), first, second, handler, health
        assert_eq!(r.count(&fleet.name(i), "ok"), 5, "{}", r.dump());
    }
}

#[test]
fn rollout_on_a_plain_play_stops_when_the_failure_budget_is_exceeded() {
    let fleet = Fleet::start(4);
    let work = workdir();
    let r = run_play(
        &fleet,
        work.path(),
        "",
        "- hosts: app\n  rollout: { batch: 2 }\n  tasks:\n    - fail: { msg: broken }\n      when: inventory_hostname == 'h2'\n    - file: { path: /srv/done, state: touch }\n",
    );
    assert_eq!(r.code, 2, "{}", r.dump());
    assert!(
        r.stdout.contains(
            "failure budget exceeded: 1 host(s) failed (h2), 0 allowed; 1 batch(es) not started"
        ),
        "{}",
        r.dump()
    );
    assert!(fleet.host_path(1, "/srv/done").exists());
    assert!(!fleet.host_path(2, "/srv/done").exists());
    assert!(!fleet.host_path(3, "/srv/done").exists(), "batch 2 started");
    assert!(!fleet.host_path(4, "/srv/done").exists(), "batch 2 started");
}

#[test]
fn rollout_on_a_plain_play_stops_when_every_host_of_a_batch_fails() {
    let fleet = Fleet::start(3);
    let work = workdir();
    // A budget as large as the fleet: only Ansible's rule stops the play.
    let r = run_play(
        &fleet,
        work.path(),
        "",
        "- hosts: app\n  rollout: { canary: 1, batch: 1, max_fail: \"100%\" }\n  tasks:\n    - fail: { msg: broken }\n      when: inventory_hostname == 'h1'\n    - file: { path: /srv/done, state: touch }\n",
    );
    assert_eq!(r.code, 2, "{}", r.dump());
    assert!(
        r.stdout
            .contains("every host of batch 1/3 failed: the play stops, 2 batch(es) not started"),
        "{}",
        r.dump()
    );
    for i in fleet.hosts() {
        assert!(!fleet.host_path(i, "/srv/done").exists());
    }
}

#[test]
fn rollback_keys_on_a_plain_play_rollout_are_a_load_error() {
    let stderr = refused(
        "- hosts: all\n  rollout: { batch: 1, on_failure: rollback }\n  tasks:\n    - debug: { msg: hi }\n",
    );
    assert_eq!(
        stderr,
        "error: `on_failure: rollback` needs a `distribution:` (a release to go back to); on a play of plain tasks, `rollout:` runs them batch by batch and stops on failure\n  --> play.yml:5:36\n   |\n 5 |   rollout: { batch: 1, on_failure: rollback }\n   |                                    ^\n"
    );
}

#[test]
fn file_copy_template_lineinfile_compare_numeric_owners_and_symbolic_modes_alike() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let uid = fleet.exec_ok(1, "id -u convoy").trim().to_owned();
    let gid = fleet.exec_ok(1, "id -g convoy").trim().to_owned();
    // An identical file already there, without the mode's bit.
    fleet.exec_ok(1, "printf x > /srv/c && chmod 0600 /srv/c");
    write_file(work.path(), "templates/t.j2", "t\n");
    let playbook = format!(
        "- hosts: app\n  tasks:\n    - copy: {{ content: x, dest: /srv/c, owner: \"{uid}\", group: \"{gid}\", mode: u+x }}\n    - template: {{ src: t.j2, dest: /srv/t, owner: \"{uid}\", mode: g+w }}\n    - file: {{ path: /srv/d, state: directory, owner: \"{uid}\", mode: \"u=rwx,g=rx,o=\" }}\n    - lineinfile: {{ path: /srv/l, line: a=1, create: true, owner: \"{uid}\", group: \"{gid}\", mode: o-r }}\n"
    );
    let first = run_play(&fleet, work.path(), "", &playbook);
    assert_eq!(first.code, 0, "{}", first.dump());
    assert_eq!(first.count("h1", "changed"), 4, "{}", first.dump());
    let state = fleet.exec_ok(1, "cd /srv && stat -c '%n %a %u %g' c t d l");
    assert_eq!(
        state,
        format!("c 700 {uid} {gid}\nt 664 {uid} 0\nd 750 {uid} 0\nl 640 {uid} {gid}\n")
    );
    let second = run_play(&fleet, work.path(), "", &playbook);
    assert_eq!(second.code, 0, "{}", second.dump());
    assert_eq!(second.count("h1", "changed"), 0, "{}", second.dump());
    assert_eq!(
        fleet.exec_ok(1, "cd /srv && stat -c '%n %a %u %g' c t d l"),
        state
    );
}

#[test]
fn no_log_hides_loop_items_diffs_errors_retries_and_hook_output() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let dir = work.path();
    std::fs::create_dir_all(dir.join("dist")).unwrap();
    std::fs::write(
        dir.join("dist/hello.tar.gz"),
        support::tarball::release_tar_gz("1.0.0", 0),
    )
    .unwrap();
    let inventory = app_inventory(&fleet, dir, "");
    let playbook = write_file(
        dir,
        "play.yml",
        "- hosts: app\n  tasks:\n    - command: echo {{ item }}\n      loop: [SECRET_A]\n      no_log: true\n    - block:\n        - copy: { content: SECRET_B, dest: /srv/s }\n        - shell: echo SECRET_C >&2; exit 3\n          ignore_errors: true\n      no_log: true\n    - shell: echo SECRET_D\n      register: r\n      until: false\n      retries: 1\n      delay: 0\n      no_log: true\n      ignore_errors: true\n    - copy: { content: \"{{ r.stdout }}\", dest: /srv/registered }\n      no_log: true\n  distribution:\n    name: hello\n    version: 1.0.0\n    source: dist/hello.tar.gz\n    root: /srv/hello\n  hooks:\n    prepare:\n      - shell: echo SECRET_E\n        no_log: true\n",
    );
    let r = support::run::run_in(
        dir,
        &[
            "run",
            playbook.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
            "--diff",
            "-v",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    let mut journals = String::new();
    for entry in walk(&dir.join(".convoy")) {
        journals.push_str(&std::fs::read_to_string(entry).unwrap_or_default());
    }
    assert!(!journals.is_empty(), "no journal under {}", dir.display());
    for secret in ["SECRET_A", "SECRET_B", "SECRET_C", "SECRET_D", "SECRET_E"] {
        assert!(
            !r.stdout.contains(secret),
            "{secret} printed:\n{}",
            r.dump()
        );
        assert!(
            !r.stderr.contains(secret),
            "{secret} printed:\n{}",
            r.dump()
        );
        assert!(
            !journals.contains(secret),
            "{secret} journaled:\n{journals}"
        );
    }
    assert!(
        r.stdout.contains("(item=(censored due to no_log))"),
        "{}",
        r.dump()
    );
    // The tasks did run, and a registered result keeps its values (as in Ansible).
    assert_eq!(
        fleet.exec_ok(1, "cat /srv/s /srv/registered"),
        "SECRET_BSECRET_D"
    );
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn proxy_templates_resolve_variables_whose_values_are_templates() {
    let fleet = Fleet::start(1);
    let work = workdir();
    write_file(
        work.path(),
        "templates/site.j2",
        "# {{ app_version }} {{ upstream_names | join(',') }}\n",
    );
    let r = run_play(
        &fleet,
        work.path(),
        "",
        "- hosts: app\n  vars:\n    app_version: \"{{ version | default('1.0.0') }}\"\n    site: \"shop-{{ app_version }}\"\n    upstream_names: [\"{{ site }}-a\"]\n  proxy:\n    hosts: app\n    files:\n      - template: templates/site.j2\n        dest: \"/etc/nginx/{{ site }}.conf\"\n    validate: \"true\"\n    reload: \"true\"\n",
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        fleet.exec_ok(1, "cat /etc/nginx/shop-1.0.0.conf"),
        "# 1.0.0 shop-1.0.0-a\n"
    );
}

#[test]
fn resume_of_a_plain_play_rollout_continues_after_the_finished_batches() {
    let fleet = Fleet::start(3);
    let work = workdir();
    fleet.exec_ok(2, "touch /srv/fail");
    let inventory = app_inventory(&fleet, work.path(), "");
    let playbook = write_file(
        work.path(),
        "play.yml",
        "- hosts: app\n  rollout: { batch: 1 }\n  tasks:\n    - shell: test ! -e /srv/fail\n    - shell: echo run >> /srv/runs\n",
    );
    let args = [
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ];
    let first = support::run::run_in(work.path(), &args);
    assert_eq!(first.code, 2, "{}", first.dump());
    assert!(
        !fleet.host_path(3, "/srv/runs").exists(),
        "{}",
        first.dump()
    );
    let line = first
        .stdout
        .lines()
        .find(|l| l.contains("NOTE journal: "))
        .unwrap();
    let journal = line.split("NOTE journal: ").nth(1).unwrap().trim();
    let run_id = Path::new(journal)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    fleet.exec_ok(2, "rm /srv/fail");
    let resumed = support::run::run_in(work.path(), &["resume", &run_id]);
    assert_eq!(resumed.code, 0, "{}", resumed.dump());
    assert!(
        resumed
            .stdout
            .contains("NOTE resuming: batches 1-2 of 3 finished in the interrupted run"),
        "{}",
        resumed.dump()
    );
    // Batches 1 and 2 are not run again; batch 3 runs.
    assert_eq!(fleet.exec_ok(1, "cat /srv/runs"), "run\n");
    assert!(!fleet.host_path(2, "/srv/runs").exists());
    assert_eq!(fleet.exec_ok(3, "cat /srv/runs"), "run\n");
}

#[test]
fn listen_on_a_task_that_is_not_a_handler_is_a_load_error() {
    let stderr =
        refused("- hosts: all\n  tasks:\n    - debug: { msg: hi }\n      listen: restart\n");
    assert_eq!(
        stderr,
        "error: `listen` is for handlers: a task under `tasks:` or `hooks:` is never notified\n  --> play.yml:6:7\n   |\n 6 |     - debug: { msg: hi }\n   |       ^\n"
    );
}

#[test]
fn max_fail_percentage_that_is_not_a_percentage_is_an_error_naming_the_key() {
    // Refused as a whole before it was implemented; now a bad value is.
    let stderr = refused(
        "- hosts: all\n  serial: 1\n  max_fail_percentage: 130\n  tasks:\n    - debug: { msg: hi }\n",
    );
    assert!(
        stderr.starts_with(
            "error: `max_fail_percentage` is a percentage from 0 to 100 (`30` or `\"30%\"`)"
        ) && stderr.contains("--> play.yml:6:24\n"),
        "{stderr}"
    );
}

#[test]
fn serial_that_is_not_a_size_is_an_error_naming_the_key() {
    let stderr = refused("- hosts: all\n  serial: [1, lots]\n  tasks:\n    - debug: { msg: hi }\n");
    assert!(
        stderr.starts_with("error: `serial` takes a count, a percentage like \"30%\" or a list of them\n  --> play.yml:5:11\n"),
        "{stderr}"
    );
}

/// `check_mode:` on a task was refused as an unknown key. Now a task (or a
/// block) with `check_mode: true` runs in check mode as in Ansible, while
/// `check_mode: false` never lifts `--check`: convoy's dry run changes
/// nothing, and the run says so for that task.
#[test]
fn check_mode_keyword_on_a_task_was_refused() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let play = "- hosts: app\n  gather_facts: false\n  tasks:\n    - copy: { dest: /srv/forced, content: \"x\\n\" }\n      check_mode: true\n      register: forced\n    - block:\n        - file: { path: /srv/in_block, state: touch }\n      check_mode: true\n    - copy: { dest: /srv/real, content: \"{{ forced.changed }}\\n\" }\n      check_mode: false\n      diff: false\n";
    let r = run_play(&fleet, work.path(), "", play);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(!fleet.host_path(1, "/srv/forced").exists(), "{}", r.dump());
    assert!(
        !fleet.host_path(1, "/srv/in_block").exists(),
        "{}",
        r.dump()
    );
    // Outside --check, `check_mode: false` runs the task as usual; the forced
    // task reported the change it would make.
    assert_eq!(fleet.exec_ok(1, "cat /srv/real").trim(), "True");

    let inventory = app_inventory(&fleet, work.path(), "");
    let check = write_file(
        work.path(),
        "check.yml",
        &play.replace("/srv/real", "/srv/real2"),
    );
    let r = run(&[
        "run",
        check.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
        "--check",
    ]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        !fleet.host_path(1, "/srv/real2").exists(),
        "--check changed a host: {}",
        r.dump()
    );
    assert!(
        r.stdout
            .contains("`check_mode: false` runs in check mode anyway"),
        "{}",
        r.dump()
    );
}

/// `environment:` is set in front of the module's shell, under sudo (as
/// ansible-core sets it in front of the module's interpreter): the task's
/// program gets the values as data, and an `IFS` is what a fresh shell
/// makes of it, not an assignment in the middle of convoy's script.
#[test]
fn environment_under_become_reaches_the_program_and_an_ifs_leaves_the_shell_whole() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let r = run_play(
        &fleet,
        work.path(),
        "ansible_user: convoy",
        r#"- hosts: app
  gather_facts: false
  tasks:
    - shell: 'printf "%s|%s|[%s]\n" "$CV" "$(id -un)" "$IFS" > /tmp/env-become'
      become: true
      environment:
        CV: "a b '$(touch /tmp/env-pwned)' `x`"
        IFS: x
"#,
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        fleet.exec_ok(
            1,
            "cat /tmp/env-become; if [ -e /tmp/env-pwned ]; then echo ran; else echo data; fi"
        ),
        "a b '$(touch /tmp/env-pwned)' `x`|root|[ \t\n]\ndata\n"
    );
}

#[test]
fn git_arguments_it_does_not_handle_are_refused_by_name() {
    let stderr = refused(
        "- hosts: all\n  tasks:\n    - git: { repo: /srv/r.git, dest: /srv/r, refspec: refs/pull/1/head }\n",
    );
    assert_eq!(
        stderr,
        "error: unknown key `refspec` in arguments of module `git`\n  --> play.yml:6:46\n   |\n 6 |     - git: { repo: /srv/r.git, dest: /srv/r, refspec: refs/pull/1/head }\n   |                                              ^\n"
    );
    let stderr = refused(
        "- hosts: all\n  tasks:\n    - git: { repo: /srv/r.git, dest: /srv/r, version: --upload-pack=touch }\n",
    );
    assert!(
        stderr.contains("`version` may not begin with `-` (git would take it for an option)"),
        "{stderr}"
    );
}

/// The repository, `dest` and `version` reach git as data: quotes, `$(…)`
/// and backticks in them run nothing and name the paths they spell.
#[test]
fn git_values_reach_git_as_data_never_as_code() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let hostile = "/srv/it's a \"repo\" $(touch /srv/pwned) `touch /srv/pwned2`";
    std::fs::write(fleet.host_path(1, "/srv/name"), hostile).unwrap();
    fleet.exec_ok(
        1,
        "export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@x GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@x; \
         N=$(cat /srv/name) && git init -q --bare -b main \"$N.git\" && git clone -q \"$N.git\" /srv/work 2>/dev/null \
         && cd /srv/work && echo data > README && git add README && git commit -qm one \
         && git tag 'v1;touch$IFS/srv/pwned3' && git push -q origin main --tags",
    );
    let yaml_hostile = hostile.replace('"', "\\\"");
    let r = run_play(
        &fleet,
        work.path(),
        "",
        &format!(
            "- hosts: app\n  tasks:\n    - git:\n        repo: \"{yaml_hostile}.git\"\n        dest: \"{yaml_hostile} clone\"\n        version: \"v1;touch$IFS/srv/pwned3\"\n      register: cloned\n    - copy: {{ dest: /srv/registered, content: \"{{{{ cloned.changed }}}} {{{{ cloned.before }}}}\" }}\n"
        ),
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    let clone = fleet.host_path(1, &format!("{hostile} clone/README"));
    assert_eq!(std::fs::read_to_string(&clone).unwrap(), "data\n");
    assert_eq!(
        std::fs::read_to_string(fleet.host_path(1, "/srv/registered")).unwrap(),
        // `before` is None (a clone), which renders as nothing, as in Ansible.
        "True "
    );
    for marker in ["/srv/pwned", "/srv/pwned2", "/srv/pwned3"] {
        assert!(!fleet.host_path(1, marker).exists(), "{marker} was created");
    }
}
