//! Regressions of inventory loading, through the binary (`convoy inventory`),
//! no fleet needed. Each test is named after what broke.

mod support;

use support::run::run_in;
use support::{workdir, write_file};

fn host_vars(dir: &std::path::Path, inventory: &str, host: &str) -> serde_json::Value {
    let r = run_in(dir, &["inventory", "-i", inventory, "--host", host]);
    assert_eq!(r.code, 0, "{}", r.dump());
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.dump()))
}

/// convoy ranked `group_vars/all` below the group vars written in the
/// inventory file (and the README said so); ansible-core applies every
/// inventory-file group var first, then `group_vars/all`, then the other
/// `group_vars/` files (its default VARIABLE_PRECEDENCE).
#[test]
fn group_vars_all_outranks_inventory_file_group_vars() {
    let dir = workdir();
    write_file(
        &dir,
        "hosts",
        "[web]\nh1\n\n[web:vars]\nv=inventory_web\nw=inventory_web\n\n[all:vars]\nv=inventory_all\n",
    );
    write_file(
        &dir,
        "group_vars/all.yml",
        "v: group_vars_all\nw: group_vars_all\n",
    );
    write_file(&dir, "group_vars/web.yml", "w: group_vars_web\n");
    let vars = host_vars(dir.path(), "hosts", "h1");
    assert_eq!(vars["v"], "group_vars_all");
    assert_eq!(vars["w"], "group_vars_web");
}

/// An INI inventory was refused with a hint to convert it to YAML.
#[test]
fn ini_inventory_named_hosts_loads_with_ansible_types() {
    let dir = workdir();
    write_file(
        &dir,
        "hosts",
        "[web]\nweb[1:2] port=22 on=True text=true tags=\"['a']\"\n\n[web:vars]\nquoted='1'\n",
    );
    let mut vars = host_vars(dir.path(), "hosts", "web2");
    let map = vars.as_object_mut().unwrap();
    map.remove("inventory_file");
    map.remove("inventory_dir");
    assert_eq!(
        vars,
        serde_json::json!({
            "quoted": "1",
            "port": 22,
            "on": true,
            "text": "true",
            "tags": ["a"],
        })
    );
}

/// A bad INI line is named by file, line and column, with the reason, and
/// without the rest of the file.
#[test]
fn bad_ini_line_is_located() {
    let dir = workdir();
    write_file(&dir, "hosts", "[web]\nh1\nh2 novalue\nsecret_line=1\n");
    let r = run_in(dir.path(), &["inventory", "-i", "hosts", "--list"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains(
            "expected key=value host variable assignment, got: novalue\n  --> hosts:3:1\n   |\n 3 | h2 novalue\n   | ^"
        ),
        "{}",
        r.dump()
    );
    assert!(!r.stderr.contains("secret_line"), "{}", r.dump());
}

/// `y` and `n` in YAML were booleans (serde-saphyr's YAML 1.1 habit);
/// PyYAML, so Ansible, reads them as strings.
#[test]
fn yaml_y_and_n_stay_strings() {
    let dir = workdir();
    write_file(
        &dir,
        "hosts.yml",
        "all:\n  hosts:\n    h1: {a: y, b: n, c: yes, d: off, e: 1:30, f: 1e3}\n",
    );
    let vars = host_vars(dir.path(), "hosts.yml", "h1");
    for (k, v) in [
        ("a", serde_json::json!("y")),
        ("b", serde_json::json!("n")),
        ("c", serde_json::json!(true)),
        ("d", serde_json::json!(false)),
        ("e", serde_json::json!(90)),
        ("f", serde_json::json!("1e3")),
    ] {
        assert_eq!(vars[k], v, "{k}");
    }
}
