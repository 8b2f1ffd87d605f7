//! Regressions of the "Trust" issue: secrets given with `-e` leaked into
//! output and world-readable journals, `!vault` values were used as plain
//! strings, YAML budget errors were unreadable, `--output json` was ignored
//! by some commands, `resume` of a finished run re-ran it, `exec` kept no
//! journal, and a run that reached no host said "completed".
//!
//! Each test is named after what broke. Tests on a real fleet use
//! `support::Fleet`; the others use hosts with `ansible_connection: local`
//! and check a marker file to prove what ran.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use support::inventory::app_inventory;
use support::run::{Run, run_in};
use support::tarball::release_tar_gz;
use support::{Fleet, workdir, write_file};

// ---------------------------------------------------------------- helpers

/// Two local hosts in group `web`.
const LOCAL_INVENTORY: &str = "all:\n  children:\n    web:\n      hosts:\n        web1:\n          ansible_connection: local\n        web2:\n          ansible_connection: local\n";

/// A project of local hosts: `inv.yml` and `play.yml`, whose first task
/// appends a line to `touched` (so a test sees whether any host was worked on).
struct Local {
    dir: tempfile::TempDir,
}

impl Local {
    fn new(tasks_after_marker: &str) -> Local {
        let dir = workdir();
        write_file(dir.path(), "inv.yml", LOCAL_INVENTORY);
        let marker = dir.path().join("touched");
        write_file(
            dir.path(),
            "play.yml",
            &format!(
                "- name: play\n  hosts: web\n  tasks:\n    - name: mark\n      shell: echo {{{{ inventory_hostname }}}} >> {}\n{tasks_after_marker}",
                marker.display()
            ),
        );
        Local { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, rel: &str, content: &str) -> &Local {
        write_file(self.path(), rel, content);
        self
    }

    /// `convoy ARGS...` run in the project dir.
    fn convoy(&self, args: &[&str]) -> Run {
        run_in(self.path(), args)
    }

    /// `convoy run play.yml -i inv.yml EXTRA...`
    fn run(&self, extra: &[&str]) -> Run {
        let mut args = vec!["run", "play.yml", "-i", "inv.yml"];
        args.extend_from_slice(extra);
        self.convoy(&args)
    }

    /// Lines the marker task wrote (one per host per run).
    fn touched(&self) -> usize {
        std::fs::read_to_string(self.path().join("touched"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// Runs, expecting bad input: exit 3 and no host touched; returns stderr.
    fn refused(&self, extra: &[&str]) -> String {
        let r = self.run(extra);
        assert_eq!(r.code, 3, "exit code:\n{}", r.dump());
        assert_eq!(self.touched(), 0, "a host was worked on:\n{}", r.dump());
        r.stderr
    }
}

fn journals_in(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir.join(".convoy/runs"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.sort();
    paths
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Everything a run left for anyone to read: its output and its journals.
fn everything(r: &Run, dir: &Path) -> String {
    let mut all = r.all();
    for j in journals_in(dir) {
        all.push_str(&std::fs::read_to_string(j).unwrap());
    }
    all
}

fn assert_private_journal(journal: &Path) {
    let runs = journal.parent().unwrap();
    assert_eq!(mode(journal), 0o600, "{}", journal.display());
    assert_eq!(mode(runs), 0o700, "{}", runs.display());
    assert_eq!(mode(runs.parent().unwrap()), 0o700, ".convoy");
}

// ---------------------------------------------------------------- 1. secrets

const SECRETS: &[&str] = &["hunter2", "s3cr3t-api", "t0k3n-long", "fr0m-file"];

#[test]
fn extra_var_values_appeared_in_run_start_argv_and_journal() {
    let p = Local::new(
        "    - name: uses them\n      shell: test -n '{{ db_password }}{{ api_key }}{{ token }}{{ file_secret }}'\n",
    );
    p.file("secrets.yml", "file_secret: fr0m-file\n");
    let r = p.run(&[
        "--output",
        "json",
        "-e",
        "db_password=hunter2",
        "-e",
        r#"{"api_key": "s3cr3t-api"}"#,
        "--extra-vars=token=t0k3n-long",
        "-e",
        "@secrets.yml",
    ]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(p.touched(), 2);
    let all = everything(&r, p.path());
    for secret in SECRETS {
        assert!(!all.contains(secret), "{secret} leaked:\n{all}");
    }
    // The keys are kept, in the screen's events and in the journal alike.
    let start = r
        .events()
        .into_iter()
        .find(|e| e["event"] == "run_start")
        .unwrap_or_else(|| panic!("no run_start:\n{}", r.dump()));
    let argv: Vec<&str> = start["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(argv.contains(&"db_password=<hidden>"), "{argv:?}");
    assert!(argv.contains(&r#"{"api_key":"<hidden>"}"#), "{argv:?}");
    assert!(argv.contains(&"--extra-vars=token=<hidden>"), "{argv:?}");
    assert!(argv.contains(&"@secrets.yml"), "{argv:?}");
    let journal = r.journal();
    assert_eq!(journal.of("run_start")[0]["argv"], start["argv"]);
}

#[test]
fn journal_was_world_readable() {
    let p = Local::new("");
    // A .convoy left open by an older convoy (or a loose umask) is tightened.
    std::fs::create_dir_all(p.path().join(".convoy/runs")).unwrap();
    for dir in [".convoy", ".convoy/runs"] {
        std::fs::set_permissions(p.path().join(dir), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    let r = p.run(&[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let journal = r.journal();
    journal.assert_in_project(p.path());
    assert_private_journal(&journal.path);
}

#[test]
fn bad_extra_vars_echoed_their_values() {
    let p = Local::new("");
    for arg in [
        "hunter2",
        "a=1 hunter2",
        "pw='hunter2",
        r#"{"pw": "hunter2""#,
    ] {
        let stderr = p.refused(&["-e", arg]);
        assert!(stderr.contains("bad extra vars"), "{stderr}");
        assert!(!stderr.contains("hunter2"), "-e {arg}: {stderr}");
    }
    // A broken `-e @file` is located, without showing its lines.
    p.file("secrets.yml", "db_password: hunter2\nother: \"hunter2\n");
    let stderr = p.refused(&["-e", "@secrets.yml"]);
    assert!(stderr.contains("secrets.yml:"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn resume_replayed_hidden_extra_vars_as_values() {
    let p = Local::new("");
    // An interrupted run (no run_end) that was given a secret.
    let journal = r#"{"event":"run_start","run_id":"r1","playbook":"play.yml","argv":["run","play.yml","-i","inv.yml","-e","db_password=<hidden>"]}"#;
    p.file(".convoy/runs/r1.jsonl", &format!("{journal}\n"));
    let r = p.convoy(&["resume", "r1"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("convoy resume r1 -e db_password=..."),
        "{}",
        r.dump()
    );
    assert_eq!(p.touched(), 0);
    // Given again, they are used, and still not shown.
    let r = p.convoy(&["resume", "r1", "-e", "db_password=hunter2"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(p.touched(), 2);
    let all = everything(&r, p.path());
    assert!(!all.contains("hunter2"), "{all}");
}

// ---------------------------------------------------------------- 2. vault

const VAULT_VALUE: &str = "!vault |\n          $ANSIBLE_VAULT;1.1;AES256\n          62313365396662343061393464336163383764373764613633653634306231386433626436623361\n";
const VAULT_FILE: &str = "$ANSIBLE_VAULT;1.1;AES256\n62313365396662343061393464336163383764373764613633653634306231386433626436623361\n";

#[test]
fn vault_value_in_a_playbook_was_a_plain_string() {
    let p = Local::new("");
    p.file(
        "play.yml",
        &format!(
            "- name: play\n  hosts: web\n  vars:\n    db_password: {VAULT_VALUE}  tasks:\n    - name: mark\n      shell: echo x >> {}\n",
            p.path().join("touched").display()
        ),
    );
    let stderr = p.refused(&[]);
    assert!(stderr.contains("`!vault` value"), "{stderr}");
    assert!(stderr.contains("play.yml:4:18"), "{stderr}");
}

#[test]
fn vault_encrypted_vars_file_said_expected_a_mapping() {
    let p = Local::new("");
    p.file(
        "play.yml",
        &format!(
            "- name: play\n  hosts: web\n  vars_files: [secrets.yml]\n  tasks:\n    - name: mark\n      shell: echo x >> {}\n",
            p.path().join("touched").display()
        ),
    );
    p.file("secrets.yml", VAULT_FILE);
    let stderr = p.refused(&[]);
    assert!(stderr.contains("encrypted with ansible-vault"), "{stderr}");
    assert!(!stderr.contains("expected a mapping"), "{stderr}");
    assert!(stderr.contains("secrets.yml:1:1"), "{stderr}");
    // So do an encrypted playbook and an encrypted inventory.
    p.file("play.yml", VAULT_FILE);
    let stderr = p.refused(&[]);
    assert!(
        stderr.contains("encrypted with ansible-vault") && stderr.contains("play.yml:1:1"),
        "{stderr}"
    );
    p.file("inv.yml", VAULT_FILE);
    let stderr = p.refused(&[]);
    assert!(
        stderr.contains("encrypted with ansible-vault") && stderr.contains("inv.yml:1:1"),
        "{stderr}"
    );
    p.file("inv.yml", LOCAL_INVENTORY);
    // The same file given with `-e @` says the same.
    p.file("play.yml", "- name: play\n  hosts: web\n  tasks: []\n");
    let stderr = p.refused(&["-e", "@secrets.yml"]);
    assert!(stderr.contains("encrypted with ansible-vault"), "{stderr}");
}

#[test]
fn vault_values_in_inventory_and_vars_dirs_were_plain_strings() {
    let p = Local::new("");
    let inventory = format!(
        "all:\n  children:\n    web:\n      hosts:\n        web1:\n          ansible_connection: local\n          db_password: {}",
        VAULT_VALUE.replace("\n          ", "\n            ")
    );
    p.file("inv.yml", &inventory);
    let stderr = p.refused(&[]);
    assert!(
        stderr.contains("`!vault` value") && stderr.contains("inv.yml:7:24"),
        "{stderr}"
    );

    p.file("inv.yml", LOCAL_INVENTORY);
    p.file("group_vars/web.yml", &format!("db_password: {VAULT_VALUE}"));
    let stderr = p.refused(&[]);
    assert!(
        stderr.contains("`!vault` value") && stderr.contains("web.yml:1:14"),
        "{stderr}"
    );

    p.file("group_vars/web.yml", "plain: 1\n");
    p.file("host_vars/web2.yml", VAULT_FILE);
    let stderr = p.refused(&[]);
    assert!(
        stderr.contains("encrypted with ansible-vault") && stderr.contains("host_vars/web2.yml"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------- 3. YAML budget

#[test]
fn yaml_budget_error_printed_nodes_debug_struct() {
    let p = Local::new("");
    let mut vars = "    a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n".to_owned();
    for i in 1..9 {
        let refs = vec![format!("*a{}", i - 1); 10].join(",");
        vars.push_str(&format!("    a{i}: &a{i} [{refs}]\n"));
    }
    p.file(
        "play.yml",
        &format!("- name: play\n  hosts: web\n  vars:\n{vars}  tasks: []\n"),
    );
    let stderr = p.refused(&[]);
    assert!(
        stderr.starts_with("error: too many YAML nodes (aliases expanding?)\n  --> play.yml:"),
        "{stderr}"
    );
    assert!(!stderr.contains("Nodes {"), "{stderr}");
}

#[test]
fn deep_nesting_error_echoed_a_200kb_line() {
    let p = Local::new("");
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    p.file(
        "play.yml",
        &format!("- name: play\n  hosts: web\n  vars:\n    x: {deep}\n  tasks: []\n"),
    );
    let stderr = p.refused(&[]);
    assert!(stderr.contains("nested too deeply"), "{stderr}");
    assert!(stderr.contains("play.yml:4:"), "{stderr}");
    assert!(
        stderr.len() < 1000,
        "{} bytes:\n{stderr:.2000}",
        stderr.len()
    );
}

// ---------------------------------------------------------------- 5. resume

#[test]
fn resume_of_a_completed_run_reran_the_playbook() {
    let p = Local::new("");
    let r = p.run(&[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(p.touched(), 2);
    let run_id = r.journal().run_id;
    let again = p.convoy(&["resume", &run_id]);
    assert_eq!(again.code, 0, "{}", again.dump());
    assert!(
        again
            .all()
            .contains(&format!("run {run_id} ended: completed; nothing to resume")),
        "{}",
        again.dump()
    );
    assert_eq!(p.touched(), 2, "the playbook ran again:\n{}", again.dump());
}

// ---------------------------------------------------------------- 6. exec

/// The `host_result` events of a run's JSON output, by host.
fn results_by_host(r: &Run) -> std::collections::BTreeMap<String, Value> {
    r.events()
        .into_iter()
        .filter(|e| e["event"] == "host_result")
        .map(|e| (e["host"].as_str().unwrap().to_owned(), e))
        .collect()
}

#[test]
fn exec_wrote_no_journal() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let inventory = app_inventory(&fleet, work.path(), "");
    let inv = inventory.to_str().unwrap();

    // Every host answers: its own output, exit 0, a private journal in the
    // current directory with the same events as the screen.
    let ok = run_in(
        work.path(),
        &[
            "exec", "app", "-i", inv, "--output", "json", "--", "hostname",
        ],
    );
    assert_eq!(ok.code, 0, "{}", ok.dump());
    let results = results_by_host(&ok);
    for i in fleet.hosts() {
        let name = fleet.name(i);
        let result = &results[&name];
        assert_eq!(result["status"], "changed", "{result}");
        assert_eq!(
            result["output"].as_str().map(str::trim),
            Some(name.as_str())
        );
    }
    let journal = ok.journal();
    journal.assert_in_project(work.path());
    assert_private_journal(&journal.path);
    assert_eq!(journal.outcome(), "completed");
    assert_eq!(journal.of("host_result").len(), 2, "{}", journal.dump());
    assert_eq!(
        journal.of("run_start")[0]["argv"][0],
        "exec",
        "{}",
        journal.dump()
    );

    // Text output: each host's output follows its result line.
    let text = run_in(
        work.path(),
        &["exec", "app", "-i", inv, "--", "echo \"on $(hostname)\""],
    );
    assert_eq!(text.code, 0, "{}", text.dump());
    let lines: Vec<&str> = text.stdout.lines().collect();
    for i in fleet.hosts() {
        let at = lines
            .iter()
            .position(|l| l.contains(&format!("changed: [h{i}]")))
            .unwrap_or_else(|| panic!("no result for h{i}:\n{}", text.dump()));
        assert!(
            lines[at + 1].ends_with(&format!(" on h{i}")),
            "h{i}'s output:\n{}",
            text.dump()
        );
    }

    // A command failing on one host: exit 2, that host failed, the other ok.
    let failed = run_in(
        work.path(),
        &["exec", "app", "-i", inv, "--", "test \"$(hostname)\" = h1"],
    );
    assert_eq!(failed.code, 2, "{}", failed.dump());
    assert!(
        failed.result_lines("failed", "h2").len() == 1,
        "{}",
        failed.dump()
    );
    assert_eq!(failed.count("h1", "failed"), 0, "{}", failed.dump());
    assert_eq!(failed.journal().outcome(), "failed");

    // A host that cannot be reached: exit 4, said so.
    fleet.stop_sshd(2);
    let unreachable = run_in(work.path(), &["exec", "app", "-i", inv, "--", "true"]);
    assert_eq!(unreachable.code, 4, "{}", unreachable.dump());
    assert_eq!(
        unreachable.count("h2", "unreachable"),
        1,
        "{}",
        unreachable.dump()
    );
    assert_eq!(
        unreachable.count("h1", "failed"),
        0,
        "{}",
        unreachable.dump()
    );
    assert_eq!(journals_in(work.path()).len(), 4);
}

// ---------------------------------------------------------------- 7. unreachable

const DEPLOY: &str = r#"- name: Deploy hello
  hosts: app
  vars: { version: "1.0.0" }
  distribution:
    name: hello
    version: "{{ version }}"
    source: "dist/hello-{{ version }}.tar.gz"
    strip_components: 0
    root: /srv/hello
"#;

#[test]
fn deploy_to_an_unreachable_fleet_said_completed() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let inventory = app_inventory(&fleet, work.path(), "");
    write_file(work.path(), "deploy.yml", DEPLOY);
    std::fs::create_dir_all(work.path().join("dist")).unwrap();
    std::fs::write(
        work.path().join("dist/hello-1.0.0.tar.gz"),
        release_tar_gz("1.0.0", 0),
    )
    .unwrap();
    fleet.stop_sshd(1);
    fleet.link_down(2);
    let r = run_in(
        work.path(),
        &[
            "run",
            "deploy.yml",
            "-i",
            inventory.to_str().unwrap(),
            "--timeout",
            "2s",
        ],
    );
    assert_eq!(r.code, 4, "{}", r.dump());
    assert!(
        r.notes()
            .iter()
            .any(|n| n == "hello deploy ended: unreachable"),
        "{}",
        r.dump()
    );
    assert!(!r.all().contains("ended: completed"), "{}", r.dump());
    for i in fleet.hosts() {
        assert_eq!(r.count(&fleet.name(i), "unreachable"), 1, "{}", r.dump());
    }
    let journal = r.journal();
    assert_private_journal(&journal.path);
    assert_eq!(journal.outcome(), "unreachable", "{}", journal.dump());
    assert_eq!(journal.of("run_end")[0]["exit_code"], 4);
}

// ---------------------------------------------------------------- 4. --output json

/// The one JSON document a command printed on stdout.
fn document(r: &Run) -> Value {
    serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON document: {e}\n{}", r.dump()))
}

/// A project of a distribution `hello` on a fleet of two (deploy.yml).
fn deploy_project(fleet: &Fleet) -> (tempfile::TempDir, PathBuf) {
    let work = workdir();
    let inventory = app_inventory(fleet, work.path(), "");
    write_file(work.path(), "deploy.yml", DEPLOY);
    std::fs::create_dir_all(work.path().join("dist")).unwrap();
    std::fs::write(
        work.path().join("dist/hello-1.0.0.tar.gz"),
        release_tar_gz("1.0.0", 0),
    )
    .unwrap();
    (work, inventory)
}

#[test]
fn plan_and_unlock_ignored_output_json() {
    let fleet = Fleet::start(2);
    let (work, inventory) = deploy_project(&fleet);
    let inv = inventory.to_str().unwrap();
    let convoy = |args: &[&str]| run_in(work.path(), args);

    let plan = convoy(&["plan", "deploy.yml", "-i", inv, "--output", "json"]);
    assert_eq!(plan.code, 0, "{}", plan.dump());
    let doc = document(&plan);
    let play = &doc["plays"][0];
    assert_eq!(play["distribution"], "hello", "{doc}");
    assert_eq!(play["version"], "1.0.0", "{doc}");
    let planned: Vec<&Value> = play["batches"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["hosts"].as_array().unwrap())
        .collect();
    assert_eq!(planned.len(), 2, "{doc}");
    for host in &planned {
        assert_eq!(host["current"], Value::Null, "{doc}");
        assert_eq!(host["new"], "1.0.0", "{doc}");
    }

    let deploy = convoy(&["run", "deploy.yml", "-i", inv]);
    assert_eq!(deploy.code, 0, "{}", deploy.dump());
    let plan = convoy(&["plan", "deploy.yml", "-i", inv, "--output", "json"]);
    let doc = document(&plan);
    assert_eq!(
        doc["plays"][0]["batches"][0]["hosts"][0]["current"], "1.0.0",
        "{doc}"
    );

    fleet.stop_sshd(2);
    let unlock = convoy(&["unlock", "deploy.yml", "-i", inv, "--output", "json"]);
    assert_eq!(unlock.code, 4, "{}", unlock.dump());
    let doc = document(&unlock);
    let hosts = doc["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{doc}");
    assert_eq!(hosts[0]["host"], "h1", "{doc}");
    assert_eq!(hosts[0]["unlocked"], false, "{doc}");
    assert_eq!(hosts[0]["root"], "/srv/hello", "{doc}");
    assert!(hosts[1]["unreachable"].is_string(), "{doc}");

    // plan says which host could not be read, too.
    let plan = convoy(&["plan", "deploy.yml", "-i", inv, "--output", "json"]);
    assert_eq!(plan.code, 4, "{}", plan.dump());
    let doc = document(&plan);
    let unreachable: Vec<&Value> = doc["plays"][0]["batches"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["hosts"].as_array().unwrap())
        .filter(|h| h["unreachable"].is_string())
        .collect();
    assert_eq!(unreachable.len(), 1, "{doc}");
    assert_eq!(unreachable[0]["host"], "h2", "{doc}");
}

const PROXY_PLAY: &str = "- name: Sites\n  hosts: balancers\n  proxy:\n    hosts: balancers\n    files:\n      - template: site.j2\n        dest: \"/etc/nginx/conf.d/{{ item }}.conf\"\n        loop: [a.test, b.test]\n    validate: nginx -t\n    reload: nginx -s reload\n";

#[test]
fn render_and_lint_ignored_output_json() {
    let p = Local::new("");
    p.file(
        "inv.yml",
        "all:\n  children:\n    balancers:\n      hosts:\n        lb1:\n          ansible_connection: local\n",
    );
    p.file("play.yml", PROXY_PLAY);
    p.file("site.j2", "server_name {{ item }};\n");
    let r = p.convoy(&["render", "play.yml", "-i", "inv.yml", "--output", "json"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let doc = document(&r);
    let files: Vec<(String, String, String)> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap().to_owned();
            (s("host"), s("dest"), s("content"))
        })
        .collect();
    assert_eq!(
        files,
        [
            (
                "lb1".to_owned(),
                "/etc/nginx/conf.d/a.test.conf".to_owned(),
                "server_name a.test;\n".to_owned()
            ),
            (
                "lb1".to_owned(),
                "/etc/nginx/conf.d/b.test.conf".to_owned(),
                "server_name b.test;\n".to_owned()
            ),
        ]
    );

    let lint = p.convoy(&[
        "lint",
        "play.yml",
        "-i",
        "inv.yml",
        "--no-proxy-validate",
        "--output",
        "json",
    ]);
    assert_eq!(lint.code, 0, "{}", lint.dump());
    assert_eq!(document(&lint)["ok"], true);
    p.file("site.j2", "server_name {{ nowhere }};\n");
    let lint = p.convoy(&[
        "lint",
        "play.yml",
        "-i",
        "inv.yml",
        "--no-proxy-validate",
        "--output",
        "json",
    ]);
    assert_eq!(lint.code, 3, "{}", lint.dump());
    let doc = document(&lint);
    assert_eq!(doc["ok"], false);
    assert!(
        doc["problems"][0].as_str().unwrap().contains("nowhere"),
        "{doc}"
    );
}
