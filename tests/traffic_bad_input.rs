//! Bad traffic keys in a proxy section: one clear message naming
//! file:line:column, exit code 3, and no host touched (a first task that
//! would touch a marker file did not run). Local hosts only, no fleet.

use std::path::Path;

const INVENTORY: &str = "all:\n  vars:\n    ansible_connection: local\n  children:\n    web:\n      hosts:\n        web1:\n        web2:\n    blue:\n      hosts:\n        web1:\n    green:\n      hosts:\n        web2:\n";

/// The play: a task that would touch MARKER, then a proxy section whose
/// traffic keys are TRAFFIC.
const PLAY: &str = "- name: play\n  hosts: web\n  tasks:\n    - name: would touch\n      file: { path: MARKER, state: touch }\n  proxy:\n    hosts: web1\n    files:\n      - template: t.j2\n        dest: /tmp/never-written.conf\nTRAFFIC";

/// Runs `convoy run` on the play with `traffic`; stderr (the temp dir
/// shown as `<dir>`), once exit 3 and the untouched marker are checked.
fn fails(traffic: &str) -> String {
    fails_with("x\n", traffic)
}

/// Like [`fails`], with the proxy template `template`.
fn fails_with(template: &str, traffic: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("touched");
    std::fs::write(dir.path().join("inv.yml"), INVENTORY).unwrap();
    std::fs::write(dir.path().join("t.j2"), template).unwrap();
    let play = PLAY
        .replace("MARKER", &marker.display().to_string())
        .replace("TRAFFIC", traffic);
    std::fs::write(dir.path().join("play.yml"), play).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_convoy"))
        .current_dir(dir.path())
        .args(["run", "play.yml", "-i", "inv.yml"])
        .output()
        .unwrap();
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&dir.path().display().to_string(), "<dir>");
    assert_eq!(out.status.code(), Some(3), "exit code; stderr:\n{stderr}");
    assert!(
        !Path::new(&marker).exists(),
        "a host was touched: the first task ran"
    );
    stderr
}

fn assert_says(stderr: &str, what: &str, at: &str) {
    assert!(stderr.contains(what), "wanted {what:?} in:\n{stderr}");
    assert!(stderr.contains(at), "wanted {at:?} in:\n{stderr}");
}

const POOLS: &str = "    pools:\n      blue: {hosts: blue}\n      green: {hosts: green}\n";

#[test]
fn steps_that_do_not_end_at_100_percent_are_refused_at_load() {
    let err = fails(&format!(
        "{POOLS}    traffic:\n      steps: [10%, 50%]\n      hold: 1s\n"
    ));
    assert_says(&err, "traffic steps must end at 100%", "play.yml:15:14");
    assert_says(&err, "the last is 50%", "play.yml");
}

#[test]
fn steps_that_do_not_grow_are_refused_at_their_step() {
    let err = fails(&format!(
        "{POOLS}    traffic:\n      steps: [50%, 10%, 100%]\n"
    ));
    assert_says(&err, "10% comes after 50%", "play.yml:15:22");
}

#[test]
fn a_step_that_is_not_a_share_is_refused() {
    let err = fails(&format!("{POOLS}    traffic:\n      steps: [half, 100%]\n"));
    assert_says(&err, "a share of requests like 10%", "play.yml:15:15");
}

#[test]
fn a_live_pool_that_is_not_declared_is_refused() {
    let err = fails(&format!("{POOLS}    live: red\n"));
    assert_says(&err, "`live` names pool `red`", "play.yml:14:11");
    assert_says(&err, "it has blue, green", "play.yml");
}

#[test]
fn a_pool_that_names_no_host_is_refused() {
    let err =
        fails("    pools:\n      blue: {hosts: blue}\n      green: {hosts: \"web:&nowhere\"}\n");
    assert_says(
        &err,
        "pattern \"nowhere\" matches no host",
        "play.yml:13:14",
    );
}

#[test]
fn a_host_in_both_pools_is_refused() {
    let err = fails("    pools:\n      blue: {hosts: blue}\n      green: {hosts: web}\n");
    assert_says(
        &err,
        "host web1 is in pool `blue` and in pool `green`",
        "play.yml:13:14",
    );
}

#[test]
fn one_pool_is_refused() {
    let err = fails("    pools:\n      blue: {hosts: blue}\n");
    assert_says(&err, "`pools` must name two pools", "play.yml:12:7");
}

#[test]
fn traffic_without_pools_is_refused() {
    let err = fails("    traffic:\n      steps: [100%]\n");
    assert_says(&err, "this proxy section has no `pools`", "play.yml:12:7");
}

#[test]
fn a_pool_whose_pattern_selects_none_is_refused() {
    let err = fails("    pools:\n      blue: {hosts: blue}\n      green: {hosts: \"web:!web\"}\n");
    assert_says(&err, "pool `green` names no host", "play.yml:13:14");
}

#[test]
fn overlapping_subnets_in_a_step_are_refused() {
    let err = fails(&format!(
        "{POOLS}    traffic:\n      steps: [{{clients: [10.1.0.0/16, 10.1.2.3]}}, 100%]\n"
    ));
    assert_says(
        &err,
        "subnets 10.1.0.0/16 and 10.1.2.3/32 overlap",
        "play.yml:15:15",
    );
}

#[test]
fn a_route_given_twice_is_refused() {
    let err = fails(&format!(
        "{POOLS}    traffic:\n      steps: [{{routes: [\"^/api\", \"^/api\"]}}, 100%]\n"
    ));
    assert_says(&err, "route \"^/api\" is given twice", "play.yml:15:15");
}

#[test]
fn a_targeted_step_after_a_share_is_refused() {
    let err = fails(&format!(
        "{POOLS}    traffic:\n      steps: [10%, {{routes: [\"^/api\"]}}, 100%]\n"
    ));
    assert_says(
        &err,
        "a targeted step comes before the shares",
        "play.yml:15:22",
    );
}

#[test]
fn a_template_that_fails_at_a_later_step_is_refused_before_the_run() {
    let template = "{% if traffic.shares and pools.green.weight == 50 %}{{ no_such_variable.at_all }}{% endif %}x\n";
    let err = fails_with(
        template,
        &format!("{POOLS}    traffic:\n      steps: [10%, 50%, 100%]\n"),
    );
    assert_says(&err, "traffic step 2/3: 50%", "play.yml:9:9");
    assert_says(
        &err,
        "undefined variable `no_such_variable`",
        "play.yml:15:7",
    );
}

#[test]
fn a_header_name_outside_its_charset_is_refused() {
    let err = fails(&format!(
        "{POOLS}    traffic:\n      steps: [{{header: {{X_Canary: [1]}}}}, 100%]\n"
    ));
    assert_says(
        &err,
        "header name \"X_Canary\" must be 1 to 64 letters, digits and -",
        "play.yml:15:15",
    );
}

#[test]
fn a_cookie_value_that_would_break_the_proxy_config_is_refused() {
    let err = fails(&format!(
        "{POOLS}    traffic:\n      steps: [{{cookie: {{canary: [\"a;deny\"]}}}}, 100%]\n"
    ));
    assert_says(
        &err,
        "cookie canary value \"a;deny\" must be 1 to 64 letters, digits, ., _ or -",
        "play.yml:15:15",
    );
}

#[test]
fn a_header_value_given_twice_is_refused() {
    let err = fails(&format!(
        "{POOLS}    traffic:\n      steps: [{{header: {{X-Canary: [beta, Beta]}}}}, 100%]\n"
    ));
    assert_says(
        &err,
        "header X-Canary value \"Beta\" is given twice (as \"beta\": values match ignoring case)",
        "play.yml:15:15",
    );
}

#[test]
fn a_cookie_value_yaml_reads_as_a_boolean_is_refused() {
    let err = fails(&format!(
        "{POOLS}    traffic:\n      steps: [{{cookie: {{canary: yes}}}}, 100%]\n"
    ));
    assert_says(&err, "quote it, like \"yes\"", "play.yml:15:15");
}

#[test]
fn a_header_step_with_two_names_is_refused() {
    let err = fails(&format!(
        "{POOLS}    traffic:\n      steps: [{{header: {{X-A: 1, X-B: 1}}}}, 100%]\n"
    ));
    assert_says(
        &err,
        "`header` takes one header name and its values",
        "play.yml:15:15",
    );
}

/// A request pool `heavy` with these keys, then `light` with those.
fn request_pools(heavy: &str, light: &str) -> String {
    format!(
        "    request_pools:\n      heavy: {{hosts: web, max_conns: 4, timeout: 30s, {heavy}}}\n      light: {{hosts: web, max_conns: 8, timeout: 5s, {light}}}\n"
    )
}

#[test]
fn request_pools_whose_routes_overlap_are_refused() {
    let err = fails(&request_pools(
        "routes: [\"^/upload\"]",
        "routes: [\"^/search\", \"^/upload/big\"]",
    ));
    assert_says(
        &err,
        "request pools `heavy` and `light` can both claim a request (any method, routes \"^/upload\" and \"^/upload/big\")",
        "play.yml:13:14",
    );
}

#[test]
fn request_pools_sharing_a_route_and_a_method_are_refused() {
    let err = fails(&request_pools(
        "routes: [\"^/api\"], methods: [POST, PUT]",
        "routes: [\"^/api\"], methods: [PUT]",
    ));
    assert_says(&err, "(PUT, route \"^/api\" in both)", "play.yml:13:14");
}

#[test]
fn a_request_pool_route_given_twice_is_refused() {
    let err = fails(&request_pools(
        "routes: [\"^/a\", \"^/a\"]",
        "methods: [GET]",
    ));
    assert_says(
        &err,
        "request pool `heavy`: route \"^/a\" is given twice",
        "play.yml:12:14",
    );
}

#[test]
fn a_request_pool_route_that_is_no_regex_is_refused() {
    let err = fails(&request_pools("routes: [\"^/(a\"]", "methods: [GET]"));
    assert_says(
        &err,
        "request pool `heavy`: route \"^/(a\" is not a regex",
        "play.yml:12:14",
    );
}

#[test]
fn a_request_pool_with_zero_connections_is_refused() {
    let err = fails(
        "    request_pools:\n      heavy: {hosts: web, routes: [\"^/a\"], max_conns: 0, timeout: 30s}\n",
    );
    assert_says(
        &err,
        "request pool `heavy`: `max_conns` must be a whole number of connections, 1 or more",
        "play.yml:12:55",
    );
}

#[test]
fn a_request_pool_with_a_zero_timeout_is_refused() {
    let err = fails(
        "    request_pools:\n      heavy: {hosts: web, routes: [\"^/a\"], max_conns: 2, timeout: 0s}\n",
    );
    assert_says(
        &err,
        "request pool `heavy`: `timeout` must be a duration of 1s or more",
        "play.yml:12:67",
    );
}

#[test]
fn a_request_pool_taking_no_request_is_refused() {
    let err = fails("    request_pools:\n      heavy: {hosts: web, max_conns: 2, timeout: 30s}\n");
    assert_says(
        &err,
        "request pool `heavy`: give `routes`, `methods` or both",
        "play.yml:12:14",
    );
}

#[test]
fn a_request_pool_method_that_is_no_method_is_refused() {
    let err = fails(&request_pools("methods: [post]", "methods: [GET]"));
    assert_says(
        &err,
        "request pool `heavy`: method \"post\" must be an upper-case word like POST",
        "play.yml:12:14",
    );
}

#[test]
fn a_request_pool_naming_no_host_is_refused_before_any_host_is_touched() {
    let err = fails(
        "    request_pools:\n      heavy: {hosts: nowhere, routes: [\"^/a\"], max_conns: 2, timeout: 30s}\n",
    );
    assert_says(
        &err,
        "request pool `heavy` names no host: pattern \"nowhere\" matches no host",
        "play.yml:12:14",
    );
}

#[test]
fn a_request_pool_on_the_live_pool_without_pools_is_refused() {
    let err = fails(
        "    request_pools:\n      heavy: {hosts: live, routes: [\"^/a\"], max_conns: 2, timeout: 30s}\n",
    );
    assert_says(
        &err,
        "request pool `heavy`: `hosts: live` names the live pool's hosts, and this proxy section has no `pools`",
        "play.yml:12:14",
    );
}

/// `request_pools` in a section whose templates never read it would be
/// accepted and change nothing: refused, naming the key and the template.
#[test]
fn request_pools_no_template_reads_were_accepted_and_changed_nothing() {
    let err = fails_with(
        "upstream app { server 127.0.0.1:8080; }\n",
        "    request_pools:\n      heavy: {hosts: web, routes: [\"^/a\"], max_conns: 2, timeout: 30s}\n",
    );
    assert_says(
        &err,
        "`request_pools` is stated, but none of this section's templates (t.j2) reads `request_pools`",
        "play.yml:7:5",
    );
}

/// `tenants` where the templates render pools but no tenant map.
#[test]
fn tenants_no_template_reads_were_accepted_and_changed_nothing() {
    let err = fails_with(
        "{% for p in pools.values() %}{{ p.name }}{% endfor %}\n",
        &format!("{POOLS}    tenants:\n      by: header X-Tenant\n      done: [acme]\n"),
    );
    assert_says(
        &err,
        "`tenants` is stated, but none of this section's templates (t.j2) reads `traffic.tenants`",
        "play.yml:7:5",
    );
}

/// A template that reads the key (or may, through an include) passes the check.
#[test]
fn request_pools_read_by_the_template_or_an_include_pass_the_check() {
    for template in [
        "{% for rp in request_pools %}{{ rp.name }}{% endfor %}\n",
        "{% include 'part.j2' %}\n",
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inv.yml"), INVENTORY).unwrap();
        std::fs::write(dir.path().join("t.j2"), template).unwrap();
        std::fs::write(dir.path().join("part.j2"), "{{ request_pools | length }}\n").unwrap();
        let marker = dir.path().join("touched");
        let play = PLAY.replace("MARKER", &marker.display().to_string()).replace(
            "TRAFFIC",
            "    request_pools:\n      heavy: {hosts: web, routes: [\"^/a\"], max_conns: 2, timeout: 30s}\n",
        );
        std::fs::write(dir.path().join("play.yml"), play).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_convoy"))
            .current_dir(dir.path())
            .args(["run", "--check", "play.yml", "-i", "inv.yml"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "template {template:?}:\n{stderr}"
        );
        assert!(!marker.exists(), "--check touched a file");
        assert!(!stderr.contains("is stated"), "{stderr}");
    }
}
