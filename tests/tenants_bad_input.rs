//! Bad tenant routing in a job's proxy section: one clear message naming
//! file:line:column, exit code 3, and no target started (the job's `run`
//! would touch a marker file). Local hosts only, no fleet.

const INVENTORY: &str = "all:\n  vars:\n    ansible_connection: local\n    convoy_proxy_state_dir: STATE\n  children:\n    db:\n      hosts:\n        db1:\n    web:\n      hosts:\n        web1:\n        web2:\n    blue:\n      hosts:\n        web1:\n    green:\n      hosts:\n        web2:\n";

/// A job whose work would touch MARKER, and a proxy section with pools
/// whose `tenants` key is TENANTS (its `by:` line is line 16).
const PLAY: &str = "- name: play\n  hosts: db\n  job:\n    name: j\n    targets: [TARGETS]\n    run: touch MARKER\n  proxy:\n    hosts: web1\n    files:\n      - template: t.j2\n        dest: DEST\n    pools:\n      blue: {hosts: blue}\n      green: {hosts: green}\n    tenants:\nTENANTS";

/// `convoy job run` on the play with `tenants` and `targets`; stderr (the
/// temp dir shown as `<dir>`), once exit 3, the untouched marker and the
/// unwritten proxy file are checked.
fn fails_with(targets: &str, tenants: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("touched");
    let dest = dir.path().join("proxy.conf");
    let state = dir.path().join("state");
    std::fs::write(
        dir.path().join("inv.yml"),
        INVENTORY.replace("STATE", &state.display().to_string()),
    )
    .unwrap();
    std::fs::write(dir.path().join("t.j2"), "{{ traffic.tenants.done }}\n").unwrap();
    let play = PLAY
        .replace("MARKER", &marker.display().to_string())
        .replace("DEST", &dest.display().to_string())
        .replace("TARGETS", targets)
        .replace("TENANTS", tenants);
    std::fs::write(dir.path().join("play.yml"), play).unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_convoy"))
        .current_dir(dir.path())
        .env("HOME", &home)
        .args(["job", "run", "play.yml", "-i", "inv.yml"])
        .output()
        .unwrap();
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&dir.path().display().to_string(), "<dir>");
    assert_eq!(out.status.code(), Some(3), "exit code; stderr:\n{stderr}");
    assert!(!marker.exists(), "a target ran");
    assert!(!dest.exists(), "the proxy file was written");
    stderr
}

fn fails(tenants: &str) -> String {
    fails_with("acme, globex", tenants)
}

fn assert_says(stderr: &str, what: &str, at: &str) {
    assert!(stderr.contains(what), "wanted {what:?} in:\n{stderr}");
    assert!(stderr.contains(at), "wanted {at:?} in:\n{stderr}");
}

const BY: &str = "      by: header X-Tenant\n";

#[test]
fn by_that_is_not_a_header_a_cookie_or_the_host_is_refused() {
    let err = fails("      by: path /t\n");
    assert_says(
        &err,
        "`tenants.by` is `header NAME`, `cookie NAME` or `host`, not \"path /t\"",
        "play.yml:16:11",
    );
    let err = fails("      by: header X\"Tenant\n");
    assert_says(
        &err,
        "header name \"X\\\"Tenant\" must be letters, digits and `-`",
        "play.yml:16:11",
    );
}

#[test]
fn a_tenant_pool_that_is_not_declared_is_refused() {
    let err = fails(&format!(
        "{BY}      pools: {{pending: blue, done: purple}}\n"
    ));
    assert_says(
        &err,
        "`tenants.pools.done` names pool `purple`, which `pools` does not declare (it has blue, green)",
        "play.yml:17:36",
    );
    let err = fails(&format!("{BY}      pools: {{in_progress: blue}}\n"));
    assert_says(
        &err,
        "maps `pending` and `done` to pools, not `in_progress`",
        "play.yml:17:28",
    );
    let err = fails(&format!(
        "{BY}      pools: {{pending: green, done: green}}\n"
    ));
    assert_says(&err, "both go to pool `green`", "play.yml:17:14");
}

#[test]
fn a_tenant_listed_twice_is_refused_at_the_second() {
    let err = fails(&format!(
        "{BY}      done: [acme, initech]\n      pending: [hooli, initech]\n"
    ));
    assert_says(
        &err,
        "tenant \"initech\" is listed twice (first at play.yml:17:20): a tenant has one state",
        "play.yml:18:24",
    );
}

#[test]
fn a_tenant_name_a_proxy_config_cannot_carry_is_refused() {
    let err = fails(&format!("{BY}      in_progress: [\"a;b\"]\n"));
    assert_says(
        &err,
        "tenant \"a;b\" must be lowercase letters, digits and `._-`",
        "play.yml:17:21",
    );
    let err = fails(&format!("{BY}      done: [default]\n"));
    assert_says(&err, "is a keyword of nginx's `map`", "play.yml:17:14");
}

#[test]
fn a_maintenance_that_is_not_an_error_status_is_refused() {
    let err = fails(&format!("{BY}      maintenance: 200\n"));
    assert_says(
        &err,
        "`tenants.maintenance` is the HTTP status",
        "play.yml:17:20",
    );
}

#[test]
fn an_unknown_tenants_key_is_refused() {
    let err = fails(&format!("{BY}      converted: [acme]\n"));
    assert_says(&err, "converted", "play.yml:17:");
}

#[test]
fn a_job_target_that_cannot_be_a_tenant_is_refused_before_any_target_starts() {
    // `Acme` is a valid target and an invalid tenant (upper case).
    let err = fails_with("Acme, globex", BY);
    assert_says(
        &err,
        "the job's target \"Acme\" cannot be published to the proxy's tenant map",
        "no target was started",
    );
}

#[test]
fn a_job_play_proxy_section_that_routes_no_tenants_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inv.yml"),
        INVENTORY.replace("STATE", "/nonexistent"),
    )
    .unwrap();
    let play = "- hosts: db\n  job:\n    name: j\n    targets: [acme]\n    run: echo\n  proxy:\n    hosts: web1\n    files: []\n";
    std::fs::write(dir.path().join("play.yml"), play).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_convoy"))
        .current_dir(dir.path())
        .args(["job", "run", "play.yml", "-i", "inv.yml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_says(
        &stderr,
        "a play with `job:` has no `proxy`: its work is the job's `run`, `tasks` (under `job:`) or `converters`; put other work in a play of its own (a proxy section with `pools` and `tenants`, and no `traffic`, is the one a job takes",
        "play.yml:3:",
    );
}
