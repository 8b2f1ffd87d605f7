//! Bad input gets one clear message naming file:line:column (or the host or
//! pattern), exit code 3, and no host touched. Each case puts a valid first
//! task before the mistake, on a local host, and checks the first task did
//! not run: proof that nothing was touched.

use std::path::Path;

use tempfile::TempDir;

const INVENTORY: &str = "all:\n  hosts:\n    web1:\n      ansible_connection: local\n  children:\n    web:\n      hosts:\n        web1:\n";

struct Case {
    dir: TempDir,
}

impl Case {
    fn new(playbook: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inv.yml"), INVENTORY).unwrap();
        std::fs::write(
            dir.path().join("play.yml"),
            playbook.replace("MARKER", &marker(dir.path())),
        )
        .unwrap();
        Case { dir }
    }

    fn file(self, rel: &str, content: &str) -> Case {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    /// Runs convoy and returns stderr with the temp dir replaced by `<dir>`.
    fn fails(&self, extra: &[&str]) -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_convoy"))
            .current_dir(self.dir.path())
            .args(["run", "play.yml", "-i", "inv.yml"])
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr)
            .replace(&self.dir.path().display().to_string(), "<dir>");
        assert_eq!(out.status.code(), Some(3), "exit code; stderr:\n{stderr}");
        assert!(
            !Path::new(&marker(self.dir.path())).exists(),
            "a host was touched: the first task ran"
        );
        stderr
    }
}

fn marker(dir: &Path) -> String {
    dir.join("touched").display().to_string()
}

const FIRST: &str = "- name: play\n  hosts: web\n  tasks:\n    - name: would touch\n      file: { path: MARKER, state: touch }\n";

#[test]
fn yaml_syntax_error_points_at_line_and_column() {
    let case = Case::new(&format!(
        "{FIRST}    - name: \"broken\n      command: echo\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn unknown_play_key_suggests_the_nearest() {
    let case = Case::new("- name: play\n  hostz: web\n  tasks: []\n");
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn unknown_task_keyword_suggests_the_nearest() {
    let case = Case::new(&format!(
        "{FIRST}    - name: typo\n      command: echo hi\n      regster: out\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn unknown_module_argument_suggests_the_nearest() {
    let case = Case::new(&format!(
        "{FIRST}    - name: typo\n      copy:\n        content: x\n        dset: /tmp/x\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn wrong_type_is_located() {
    let case = Case::new(&format!("{FIRST}  vars: [1, 2]\n"));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn task_without_module_is_named() {
    let case = Case::new(&format!(
        "{FIRST}    - name: nothing to do\n      register: out\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn undefined_variable_names_template_line_and_variable() {
    let case = Case::new(&format!(
        "{FIRST}    - name: render\n      template: {{ src: templates/app.j2, dest: /tmp/app }}\n"
    ))
    .file("templates/app.j2", "line one\nport = {{ app_port }}\n");
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn undefined_variable_in_task_arguments() {
    let case = Case::new(&format!(
        "{FIRST}    - name: greet\n      command: echo {{{{ greeting }}}}\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn missing_template_file() {
    let case = Case::new(&format!(
        "{FIRST}    - name: render\n      template:\n        src: templates/missing.j2\n        dest: /tmp/x\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn missing_copy_source() {
    let case = Case::new(&format!(
        "{FIRST}    - name: ship\n      copy:\n        src: files/nope.txt\n        dest: /tmp/x\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn pattern_matching_no_host_is_named() {
    let case = Case::new(
        "- name: play\n  hosts: webz\n  tasks:\n    - file: { path: MARKER, state: touch }\n",
    );
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn limit_matching_no_host_is_named() {
    let case = Case::new(FIRST);
    insta::assert_snapshot!(case.fails(&["--limit", "db"]));
}

#[test]
fn unreadable_inventory_is_named() {
    let case = Case::new(FIRST);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_convoy"))
        .current_dir(case.dir.path())
        .args(["run", "play.yml", "-i", "missing.yml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr)
        .replace(&case.dir.path().display().to_string(), "<dir>");
    insta::assert_snapshot!(stderr);
}

#[test]
fn bad_inventory_key_is_located() {
    let case = Case::new(FIRST).file("inv.yml", "all:\n  hostz:\n    web1:\n");
    insta::assert_snapshot!(case.fails(&[]));
}

/// A flag clap rejects is bad input too: exit 3 (clap's own 2 is convoy's
/// "a host failed"), one message, nothing contacted (no inventory given:
/// there is nothing it could have reached).
#[test]
fn a_flag_clap_rejects_exits_3() {
    for (args, said) in [
        (
            &["logs", "app", "web", "--since", "junk"][..],
            "error: invalid value 'junk' for '--since <SPAN|TIME>'",
        ),
        (
            &[
                "restart",
                "app",
                "web",
                "--no-health",
                "--health-cmd",
                "true",
            ][..],
            "error: the argument '--no-health' cannot be used with '--health-cmd <COMMAND>'",
        ),
        (
            &["restart", "app"][..],
            "error: the following required arguments were not provided",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_convoy"))
            .args(args)
            .env_remove("CONVOY_INVENTORY")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.starts_with(said), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_convoy"))
        .args(["logs", "--help"])
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--since"));
}

#[test]
fn unknown_script_argument_is_named() {
    let case = Case::new(&format!(
        "{FIRST}    - name: run it\n      script: files/run.sh\n      args:\n        chdri: /tmp\n"
    ))
    .file("files/run.sh", "#!/bin/sh\ntrue\n");
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn pause_with_seconds_and_minutes_is_refused() {
    let case = Case::new(&format!(
        "{FIRST}    - name: wait\n      pause: {{ seconds: 1, minutes: 1 }}\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn unknown_pause_argument_is_named() {
    let case = Case::new(&format!(
        "{FIRST}    - name: wait\n      ansible.builtin.pause: {{ second: 1 }}\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn include_vars_mixing_file_and_dir_is_refused() {
    let case = Case::new(&format!(
        "{FIRST}    - name: load\n      include_vars:\n        file: vars/a.yml\n        depth: 1\n"
    ))
    .file("vars/a.yml", "a: 1\n");
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn unsupported_meta_direction_is_refused() {
    let case = Case::new(&format!("{FIRST}    - name: stop\n      meta: end_batch\n"));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn unknown_meta_direction_is_refused() {
    let case = Case::new(&format!(
        "{FIRST}    - name: typo\n      ansible.builtin.meta: flush_handler\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn a_task_with_two_loops_is_refused_naming_both() {
    let case = Case::new(&format!(
        "{FIRST}    - name: two loops\n      debug: {{ msg: x }}\n      loop: [1]\n      with_dict: {{ a: 1 }}\n"
    ));
    let err = case.fails(&[]);
    assert!(err.contains("`loop` and `with_dict` both given"), "{err}");
    assert!(err.contains("play.yml:"), "{err}");
}

#[test]
fn a_with_lookup_convoy_lacks_is_an_unknown_key() {
    let case = Case::new(&format!(
        "{FIRST}    - name: subelements\n      debug: {{ msg: x }}\n      with_subelements: [[], x]\n"
    ));
    let err = case.fails(&[]);
    assert!(err.contains("with_subelements"), "{err}");
    assert!(err.contains("play.yml:8:7"), "{err}");
}

#[test]
fn unknown_get_url_argument_is_named() {
    let case = Case::new(&format!(
        "{FIRST}    - name: fetch\n      get_url:\n        url: http://192.0.2.1/x\n        dest: /tmp/x\n        checksm: sha256:ab\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn get_url_checksum_without_algorithm_is_refused() {
    let case = Case::new(&format!(
        "{FIRST}    - name: fetch\n      ansible.builtin.get_url: {{ url: http://192.0.2.1/x, dest: /tmp/x, checksum: abcdef }}\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn unknown_uri_argument_is_named() {
    let case = Case::new(&format!(
        "{FIRST}    - name: call\n      uri:\n        url: http://192.0.2.1/x\n        status_codes: [200]\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn uri_method_of_two_words_is_refused() {
    let case = Case::new(&format!(
        "{FIRST}    - name: call\n      uri: {{ url: http://192.0.2.1/x, method: GET POST }}\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn unknown_unarchive_argument_is_named() {
    let case = Case::new(&format!(
        "{FIRST}    - name: unpack\n      unarchive:\n        src: app.tgz\n        dest: /tmp\n        remote_scr: true\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn wait_for_connection_unknown_argument_is_named() {
    let case = Case::new(&format!(
        "{FIRST}    - name: back\n      wait_for_connection:\n        timeout: 5\n        port: 22\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn group_unknown_argument_is_named() {
    let case = Case::new(&format!(
        "{FIRST}    - name: team\n      group:\n        name: team\n        gid_max: 2000\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn user_unknown_argument_is_named() {
    let case = Case::new(&format!(
        "{FIRST}    - name: deploy user\n      user:\n        name: deploy\n        generate_ssh_key: true\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn cron_unknown_argument_is_named() {
    let case = Case::new(&format!(
        "{FIRST}    - name: nightly\n      cron:\n        name: nightly\n        job: /bin/true\n        minutes: \"5\"\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn cron_special_time_with_a_time_is_refused() {
    let case = Case::new(&format!(
        "{FIRST}    - name: nightly\n      cron: {{ name: nightly, job: /bin/true, special_time: daily, hour: \"2\" }}\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn local_action_naming_no_module_suggests_the_nearest() {
    let case = Case::new(&format!(
        "{FIRST}    - name: typo\n      local_action: comand echo hi\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn local_action_mapping_without_module_is_refused() {
    let case = Case::new(&format!(
        "{FIRST}    - name: no module\n      local_action:\n        cmd: echo hi\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn local_action_unknown_argument_is_located() {
    let case = Case::new(&format!(
        "{FIRST}    - name: typo\n      local_action:\n        module: copy\n        content: x\n        dset: /tmp/x\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn delegate_to_on_include_tasks_is_refused_as_ansible_core_refuses_it() {
    let case = Case::new(&format!(
        "{FIRST}    - name: elsewhere\n      include_tasks: more.yml\n      delegate_to: localhost\n"
    ))
    .file("more.yml", "- command: echo hi\n");
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn become_on_include_role_is_refused_as_ansible_core_refuses_it() {
    let case = Case::new(&format!(
        "{FIRST}    - name: as root\n      include_role: {{ name: r }}\n      become: true\n"
    ))
    .file("roles/r/tasks/main.yml", "- command: echo hi\n");
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn a_play_throttle_must_be_a_whole_number() {
    let case = Case::new(&format!("{FIRST}  throttle: two\n"));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn delegate_facts_must_be_a_boolean() {
    let case = Case::new(&format!(
        "{FIRST}    - name: facts\n      set_fact: {{ a: 1 }}\n      delegate_to: localhost\n      delegate_facts: web1\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn throttle_must_be_a_whole_number() {
    let case = Case::new(&format!(
        "{FIRST}    - name: slow\n      command: echo hi\n      throttle: some\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn ignore_unreachable_must_be_a_boolean() {
    let case = Case::new(&format!(
        "{FIRST}    - name: maybe\n      command: echo hi\n      ignore_unreachable: sometimes\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn any_errors_fatal_on_a_play_must_be_a_boolean() {
    let case = Case::new(&format!("{FIRST}  any_errors_fatal: often\n"));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn timeout_must_be_whole_seconds() {
    let case = Case::new(&format!(
        "{FIRST}    - name: slow\n      command: echo hi\n      timeout: 1m\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn environment_must_be_a_mapping() {
    let case = Case::new(&format!(
        "{FIRST}    - name: env\n      command: env\n      environment: 5\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn environment_on_a_play_must_be_a_mapping() {
    let case = Case::new(&format!("{FIRST}  environment: [1, 2]\n"));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn unknown_service_argument_is_named() {
    let case = Case::new(&format!(
        "{FIRST}    - name: svc\n      service: {{ name: web, state: started, enable: true }}\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn unknown_systemd_argument_is_named() {
    let case = Case::new(&format!(
        "{FIRST}    - name: unit\n      systemd: {{ name: web, daemon_reload: true, user: true }}\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn apt_unknown_argument_is_named() {
    let case = Case::new(&format!(
        "{FIRST}    - name: packages\n      apt:\n        name: nginx\n        install_suggests: true\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn apt_unsupported_state_is_refused() {
    let case = Case::new(&format!(
        "{FIRST}    - name: build deps\n      ansible.builtin.apt:\n        name: nginx\n        state: build-dep\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn apt_deb_and_name_together_are_refused() {
    let case = Case::new(&format!(
        "{FIRST}    - name: both\n      apt: name=nginx deb=/tmp/nginx.deb\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn apt_deb_url_is_refused() {
    let case = Case::new(&format!(
        "{FIRST}    - name: from the web\n      apt:\n        deb: https://example.invalid/x.deb\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn package_unknown_argument_is_named() {
    let case = Case::new(&format!(
        "{FIRST}    - name: packages\n      package:\n        name: nginx\n        stat: present\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn an_unknown_argument_of_include_tasks_is_refused_where_it_was_ignored() {
    let case = Case::new(&format!(
        "{FIRST}    - name: more\n      include_tasks: {{ file: more.yml, aply: {{ tags: [x] }} }}\n"
    ))
    .file("more.yml", "- command: echo hi\n");
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn an_unknown_argument_of_include_role_is_refused_where_it_became_a_role_variable() {
    let case = Case::new(&format!(
        "{FIRST}    - name: role\n      include_role: {{ name: r, task_from: other }}\n"
    ))
    .file("roles/r/tasks/main.yml", "- command: echo hi\n");
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn a_role_name_that_is_a_template_is_refused() {
    let case = Case::new(&format!(
        "{FIRST}    - name: role\n      include_role:\n        name: \"{{{{ which }}}}\"\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn an_import_cannot_name_its_file_with_a_template() {
    let case = Case::new(&format!(
        "{FIRST}    - name: more\n      import_tasks: \"{{{{ which }}}}.yml\"\n"
    ));
    insta::assert_snapshot!(case.fails(&[]));
}

#[test]
fn apply_takes_block_keywords_only() {
    let case = Case::new(&format!(
        "{FIRST}    - name: more\n      include_tasks:\n        file: more.yml\n        apply: {{ register: out }}\n"
    ))
    .file("more.yml", "- command: echo hi\n");
    insta::assert_snapshot!(case.fails(&[]));
}
