//! The spine on a real fleet: playbooks run over SSH on several hosts, and
//! the hosts themselves are checked afterwards.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use support::inventory::app_inventory;
use support::run::run;
use support::{Fleet, convoy, workdir, write_file};

/// The repository's example project (playbooks/, templates/, files/) copied into `dir`.
fn example_project(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for rel in [
        "playbooks/site.yml",
        "templates/app.conf.j2",
        "files/index.html",
    ] {
        write_file(dir, rel, &std::fs::read_to_string(root.join(rel)).unwrap());
    }
    dir.join("playbooks/site.yml")
}

fn snapshot(fleet: &Fleet, i: usize, path: &str) -> (u64, i64, i64) {
    let meta = std::fs::metadata(fleet.host_path(i, path)).unwrap();
    (meta.ino(), meta.mtime(), meta.mtime_nsec())
}

#[test]
fn example_playbook_converges_and_second_run_changes_nothing() {
    let fleet = Fleet::start(3);
    let work = workdir();
    let playbook = example_project(work.path());
    let inventory = app_inventory(&fleet, work.path(), "");
    let args = [
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ];

    let first = run(&args);
    assert_eq!(first.code, 0, "{}", first.dump());
    for i in fleet.hosts() {
        let name = fleet.name(i);
        // directory, page, config, handler
        assert_eq!(first.count(&name, "changed"), 4, "{}", first.dump());
        let conf = std::fs::read_to_string(fleet.host_path(i, "/srv/hello/app.conf")).unwrap();
        assert!(conf.contains("port = 8080"), "{conf}");
        assert!(conf.contains(&format!("on {name} ")), "{conf}");
        assert!(conf.contains("peers = h1,h2,h3"), "{conf}");
        let index = std::fs::read(fleet.host_path(i, "/srv/hello/index.html")).unwrap();
        assert_eq!(
            index,
            std::fs::read(work.path().join("files/index.html")).unwrap()
        );
        assert_eq!(
            fleet.exec_ok(
                i,
                "stat -c %a /srv/hello/app.conf /srv/hello/index.html /srv/hello"
            ),
            "640\n644\n755\n"
        );
        assert!(
            fleet.host_path(i, "/srv/hello/restarted-at").exists(),
            "handler ran on {name}"
        );
    }

    let before: Vec<_> = fleet
        .hosts()
        .flat_map(|i| {
            [
                "/srv/hello/app.conf",
                "/srv/hello/index.html",
                "/srv/hello/restarted-at",
            ]
            .map(|p| snapshot(&fleet, i, p))
        })
        .collect();
    let second = run(&args);
    assert_eq!(second.code, 0, "{}", second.dump());
    for i in fleet.hosts() {
        assert_eq!(
            second.count(&fleet.name(i), "changed"),
            0,
            "{}",
            second.dump()
        );
    }
    let after: Vec<_> = fleet
        .hosts()
        .flat_map(|i| {
            [
                "/srv/hello/app.conf",
                "/srv/hello/index.html",
                "/srv/hello/restarted-at",
            ]
            .map(|p| snapshot(&fleet, i, p))
        })
        .collect();
    assert_eq!(before, after, "the re-run modified files on the hosts");
    assert!(
        !second.stdout.contains("RUNNING HANDLER"),
        "no handler on a no-op run:\n{}",
        second.stdout
    );
}

#[test]
fn unreachable_and_rekeyed_hosts_are_named_and_the_others_finish() {
    let fleet = Fleet::start(3);
    let work = workdir();
    let inventory = app_inventory(&fleet, work.path(), "");
    let playbook = write_file(
        work.path(),
        "play.yml",
        "- hosts: app\n  tasks:\n    - copy: { content: done, dest: /srv/done }\n",
    );
    fleet.stop_sshd(2);
    fleet.rekey(3);
    let r = run(&[
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 4, "{}", r.dump());
    assert!(
        r.stdout.contains("unreachable: [h2]: ") && r.stdout.contains("Connection refused"),
        "{}",
        r.dump()
    );
    // Regression: a changed host key was ssh's 15-line banner. Now one
    // line: the host, the reason, the known_hosts entry and the fix.
    let h3 = r
        .stdout
        .lines()
        .find(|l| l.contains("unreachable: [h3]: "))
        .unwrap_or_else(|| panic!("no line for h3:\n{}", r.dump()));
    assert!(
        h3.contains("host key verification failed: the host's key has changed")
            && h3.contains(&format!(
                "known_hosts entry {}:",
                fleet.known_hosts().display()
            ))
            && h3.contains(&format!(
                "ssh-keygen -f \"{}\" -R \"{}\"",
                fleet.known_hosts().display(),
                fleet.addr(3)
            )),
        "{h3}\n{}",
        r.dump()
    );
    assert!(
        !r.stdout.contains("@@@@"),
        "ssh's banner is shown:\n{}",
        r.dump()
    );
    assert_eq!(r.count("h2", "unreachable"), 1);
    assert_eq!(r.count("h3", "unreachable"), 1);
    assert_eq!(
        std::fs::read_to_string(fleet.host_path(1, "/srv/done")).unwrap(),
        "done"
    );
    assert!(!fleet.host_path(2, "/srv/done").exists());
    assert!(!fleet.host_path(3, "/srv/done").exists());
}

#[test]
fn a_failing_command_stops_only_its_host() {
    let fleet = Fleet::start(3);
    let work = workdir();
    let inventory = app_inventory(&fleet, work.path(), "");
    fleet.exec_ok(2, "touch /srv/broken");
    let playbook = write_file(
        work.path(),
        "play.yml",
        "- hosts: app\n  tasks:\n    - name: health\n      command: test ! -e /srv/broken\n    - name: after\n      file: { path: /srv/after, state: touch }\n",
    );
    let r = run(&[
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "{}", r.dump());
    assert!(
        r.stdout.contains("failed: [h2]: non-zero return code 1"),
        "{}",
        r.dump()
    );
    assert_eq!(r.count("h2", "failed"), 1);
    assert!(fleet.host_path(1, "/srv/after").exists());
    assert!(fleet.host_path(3, "/srv/after").exists());
    assert!(!fleet.host_path(2, "/srv/after").exists());
}

#[test]
fn become_runs_as_root_for_a_non_root_user() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let inventory = app_inventory(&fleet, work.path(), "ansible_user: convoy");
    let playbook = write_file(
        work.path(),
        "play.yml",
        "- hosts: app\n  tasks:\n    - command: id -un\n      register: plain\n    - command: id -un\n      become: true\n      register: root\n    - copy: { content: \"{{ plain.stdout }} {{ root.stdout }}\", dest: /srv/who, owner: root, mode: '0600' }\n      become: true\n",
    );
    let r = run(&[
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in fleet.hosts() {
        assert_eq!(
            fleet.exec_ok(i, "cat /srv/who; echo; stat -c '%U %a' /srv/who"),
            "convoy root\nroot 600\n"
        );
    }
}

#[test]
fn check_mode_changes_nothing_and_says_what_would_run() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let playbook = example_project(work.path());
    let inventory = app_inventory(&fleet, work.path(), "");
    let r = run(&[
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
        "--check",
    ]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        r.stdout.contains("would run: cat /srv/hello/app.conf")
            || r.stdout.contains("changed: [h1]"),
        "{}",
        r.dump()
    );
    for i in fleet.hosts() {
        assert!(
            !fleet.host_path(i, "/srv/hello").exists(),
            "--check created files on h{i}"
        );
        assert!(r.count(&fleet.name(i), "changed") > 0);
    }
}

#[test]
fn diff_shows_what_changes_in_a_template() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let playbook = example_project(work.path());
    let inventory = app_inventory(&fleet, work.path(), "");
    let args = [
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ];
    assert_eq!(run(&args).code, 0);
    let mut with_diff = args.to_vec();
    with_diff.extend(["--diff", "-e", "app_port=9090"]);
    let r = run(&with_diff);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        r.stdout.contains("-port = 8080") && r.stdout.contains("+port = 9090"),
        "{}",
        r.dump()
    );
    assert!(
        std::fs::read_to_string(fleet.host_path(1, "/srv/hello/app.conf"))
            .unwrap()
            .contains("port = 9090")
    );
}

#[test]
fn no_log_keeps_secrets_out_of_every_output() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let inventory = app_inventory(&fleet, work.path(), "");
    let playbook = write_file(
        work.path(),
        "play.yml",
        "- hosts: app\n  tasks:\n    - copy: { content: \"{{ lookup('env', 'DB_PASSWORD') }}\", dest: /srv/secret, mode: '0600' }\n      no_log: true\n    - shell: echo {{ lookup('env', 'DB_PASSWORD') }}; exit 1\n      no_log: true\n",
    );
    for output in ["text", "json"] {
        let out = convoy()
            .env("DB_PASSWORD", "hunter2-s3cret")
            .args([
                "run",
                playbook.to_str().unwrap(),
                "-i",
                inventory.to_str().unwrap(),
                "--diff",
                "-v",
                "--output",
                output,
            ])
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(2), "{all}");
        assert!(
            !all.contains("hunter2"),
            "secret leaked in {output} output:\n{all}"
        );
        assert!(all.contains("no_log"), "{all}");
    }
    assert_eq!(
        std::fs::read_to_string(fleet.host_path(1, "/srv/secret")).unwrap(),
        "hunter2-s3cret"
    );
}

#[test]
fn json_output_is_one_event_per_line() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let inventory = app_inventory(&fleet, work.path(), "");
    let playbook = write_file(
        work.path(),
        "play.yml",
        "- hosts: app\n  tasks:\n    - name: hi\n      command: echo hi\n",
    );
    let r = run(&[
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "run_start",
            "note",
            "play_start",
            // Gathering Facts (a play gathers by default, as in Ansible)
            "task_start",
            "host_result",
            "host_result",
            // hi
            "task_start",
            "host_result",
            "host_result",
            "recap",
            "run_end"
        ]
    );
    assert!(
        events[1]["message"]
            .as_str()
            .unwrap()
            .starts_with("journal: ")
    );
    assert_eq!(events[10]["outcome"], "completed");
    assert_eq!(events[10]["exit_code"], 0);
    let results: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "host_result")
        .collect();
    assert_eq!(results.len(), 4);
    for e in &results[..2] {
        assert_eq!(e["task"], "Gathering Facts");
        assert_eq!(e["status"], "ok");
    }
    for e in &results[2..] {
        assert_eq!(e["task"], "hi");
        assert_eq!(e["status"], "changed");
        assert!(e["duration"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(events[9]["hosts"]["h1"]["changed"], 1);
    assert_eq!(events[9]["hosts"]["h1"]["ok"], 2);
}

#[test]
fn handlers_run_once_in_definition_order_on_notifying_hosts_only() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let inventory = app_inventory(&fleet, work.path(), "");
    let playbook = write_file(
        work.path(),
        "play.yml",
        "- hosts: app\n  tasks:\n    - copy: { content: '{{ inventory_hostname }}', dest: /srv/a }\n      when: inventory_hostname == 'h1'\n      notify: [second, first]\n    - copy: { content: x, dest: /srv/b }\n      when: inventory_hostname == 'h1'\n      notify: first\n  handlers:\n    - name: first\n      shell: echo first >> /srv/handlers\n    - name: second\n      shell: echo second >> /srv/handlers\n",
    );
    let r = run(&[
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        std::fs::read_to_string(fleet.host_path(1, "/srv/handlers")).unwrap(),
        "first\nsecond\n"
    );
    assert!(!fleet.host_path(2, "/srv/handlers").exists());
}

#[test]
fn executable_inventory_feeds_the_run() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let hosts: Vec<String> = fleet
        .hosts()
        .map(|i| format!("\"{}\"", fleet.name(i)))
        .collect();
    let hostvars: Vec<String> = fleet
        .hosts()
        .map(|i| {
            format!(
                "\"{}\": {{\"ansible_host\": \"{}\", \"role\": \"r{i}\"}}",
                fleet.name(i),
                fleet.addr(i)
            )
        })
        .collect();
    let script = format!(
        "#!/bin/sh\ncat <<'JSON'\n{{\"app\": {{\"hosts\": [{}]}}, \"all\": {{\"vars\": {{\"convoy_ssh_config\": \"{}\"}}}}, \"_meta\": {{\"hostvars\": {{{}}}}}}}\nJSON\n",
        hosts.join(", "),
        fleet.ssh_config().display(),
        hostvars.join(", ")
    );
    let inventory = write_file(work.path(), "cmdb.sh", &script);
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&inventory)
        .status()
        .unwrap();
    let playbook = write_file(
        work.path(),
        "play.yml",
        "- hosts: app\n  tasks:\n    - copy: { content: '{{ role }}', dest: /srv/role }\n",
    );
    let r = run(&[
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        std::fs::read_to_string(fleet.host_path(1, "/srv/role")).unwrap(),
        "r1"
    );
    assert_eq!(
        std::fs::read_to_string(fleet.host_path(2, "/srv/role")).unwrap(),
        "r2"
    );
}

/// ssh masters and control sockets of a run (they live under /tmp/cvy.*).
fn leftover_ssh() -> Vec<String> {
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    let mut left: Vec<String> = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| l.contains("/tmp/cvy."))
        .map(str::to_owned)
        .collect();
    for entry in std::fs::read_dir("/tmp").unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("cvy.") {
            left.push(entry.path().display().to_string());
        }
    }
    left
}

#[test]
fn connections_are_closed_at_the_end_and_on_interrupt() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let inventory = app_inventory(&fleet, work.path(), "");
    let quick = write_file(
        work.path(),
        "quick.yml",
        "- hosts: app\n  tasks:\n    - command: 'true'\n",
    );
    let r = run(&[
        "run",
        quick.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.dump());
    // Other tests run at the same time; only this run's (now finished) processes matter,
    // so give a parallel run no chance to be counted: compare against the fleet's addresses.
    let mine = |l: &String| fleet.hosts().any(|i| l.contains(&fleet.addr(i)));
    assert!(
        leftover_ssh().iter().filter(|l| mine(l)).count() == 0,
        "{:?}",
        leftover_ssh()
    );

    let slow = write_file(
        work.path(),
        "slow.yml",
        "- hosts: app\n  tasks:\n    - shell: sleep 3; touch /srv/settled\n    - file: { path: /srv/next, state: touch }\n",
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_convoy"))
        .args([
            "run",
            slow.to_str().unwrap(),
            "-i",
            inventory.to_str().unwrap(),
        ])
        .env("HOME", support::fresh_home())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    for i in fleet.hosts() {
        assert!(
            fleet.host_path(i, "/srv/settled").exists(),
            "the running task settled on h{i}"
        );
        assert!(
            !fleet.host_path(i, "/srv/next").exists(),
            "no new task started on h{i}"
        );
    }
    assert!(
        leftover_ssh().iter().filter(|l| mine(l)).count() == 0,
        "{:?}",
        leftover_ssh()
    );
}

/// Blocks on real hosts: `when` on a block decides per host, `rescue` runs
/// where the block failed and forgives the failure, `always` runs
/// everywhere, and a block `when` that cannot be evaluated fails the host
/// (it is not taken as false). Checked on the hosts' own files.
#[test]
fn blocks_enter_rescue_and_always_per_host() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let inventory = app_inventory(&fleet, work.path(), "");
    let playbook = write_file(
        work.path(),
        "blocks.yml",
        r#"- hosts: app
  tasks:
    - name: only h1 enters
      when: inventory_hostname == "h1"
      block:
        - name: mark entered
          file: { path: /srv/entered, state: touch }
    - name: fail on h2, rescued
      block:
        - name: fails on h2
          command: "{{ 'false' if inventory_hostname == 'h2' else 'true' }}"
        - name: after the failure
          file: { path: /srv/block-finished, state: touch }
      rescue:
        - name: rescue
          file: { path: /srv/rescued, state: touch }
      always:
        - name: always
          file: { path: /srv/always, state: touch }
    - name: a probe that is skipped (registers no rc)
      command: "true"
      when: false
      register: probe
    - name: a condition that cannot be evaluated
      when: probe.rc == 0
      block:
        - name: never
          file: { path: /srv/never, state: touch }
    - name: after
      file: { path: /srv/after, state: touch }
"#,
    );
    let r = run(&[
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ]);
    let exists = |i: usize, p: &str| fleet.host_path(i, p).exists();
    // `when` per host.
    assert!(exists(1, "/srv/entered"), "{}", r.dump());
    assert!(!exists(2, "/srv/entered"), "{}", r.dump());
    // h1: the block finished, nothing to rescue; h2: rescued after the failure.
    assert!(exists(1, "/srv/block-finished") && !exists(1, "/srv/rescued"));
    assert!(!exists(2, "/srv/block-finished") && exists(2, "/srv/rescued"));
    assert!(exists(1, "/srv/always") && exists(2, "/srv/always"));
    assert_eq!(r.recap_field("h2", "rescued"), "1", "{}", r.dump());
    // The unevaluable condition fails both hosts: nothing after it runs.
    for i in fleet.hosts() {
        let name = fleet.name(i);
        assert!(
            !exists(i, "/srv/never") && !exists(i, "/srv/after"),
            "{}",
            r.dump()
        );
        // h2's failure inside the rescued block is shown too, but not counted.
        let failed = r.failed_lines(&name);
        assert_eq!(
            failed.len(),
            if name == "h2" { 2 } else { 1 },
            "{}",
            r.dump()
        );
        assert!(
            failed
                .last()
                .unwrap()
                .contains("undefined variable `probe.rc` in "),
            "{}",
            r.dump()
        );
        assert_eq!(r.count(&name, "failed"), 1, "{}", r.dump());
    }
    assert_ne!(r.code, 0, "{}", r.dump());
}

/// `set_fact` takes any name; facts outlive the play, and the next play
/// sees every host's facts through `hostvars` (as in Ansible).
#[test]
fn facts_set_in_one_play_are_seen_in_the_next_through_hostvars() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let inventory = app_inventory(&fleet, work.path(), "");
    let playbook = write_file(
        work.path(),
        "facts.yml",
        r#"- hosts: app
  tasks:
    - name: a fact per host
      set_fact:
        role_name: "primary-{{ inventory_hostname }}"
        peers: "{{ groups['app'] | length }}"
- hosts: app
  tasks:
    - name: write what this host and h1 know
      copy:
        dest: /srv/facts.txt
        content: "{{ role_name }} {{ peers }} {{ hostvars['h1'].role_name }} {{ ansible_play_hosts | join(',') }}\n"
"#,
    );
    let r = run(&[
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in fleet.hosts() {
        let name = fleet.name(i);
        let text = std::fs::read_to_string(fleet.host_path(i, "/srv/facts.txt")).unwrap();
        assert_eq!(text, format!("primary-{name} 2 primary-h1 h1,h2\n"));
    }
}
