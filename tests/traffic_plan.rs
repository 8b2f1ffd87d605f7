//! `convoy plan` on a play with pools shows the pools and the traffic
//! steps, and its request pools (offline: no host contacted).

#[test]
fn plan_shows_the_pools_and_the_traffic_steps_of_the_canary_example() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let inventory = "all:\n  vars:\n    app_name: hello\n    app_port: 8080\n    app_root: /nonexistent\n    ansible_connection: local\n  children:\n    balancers:\n      hosts:\n        lb:\n    app:\n      children:\n        blue:\n          hosts:\n            b1:\n            b2:\n        green:\n          hosts:\n            g1:\n";
    std::fs::write(dir.path().join("inv.yml"), inventory).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_convoy"))
        .current_dir(root)
        .args(["plan", "playbooks/canary.yml", "--offline", "-i"])
        .arg(dir.path().join("inv.yml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("  pools blue (b1, b2), green (g1): a run releases to the idle one only"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  traffic steps: 10%, 50%, 100%, each but the last held 15s"),
        "{stdout}"
    );
}

#[test]
fn plan_shows_each_request_pool_with_its_hosts_and_limits() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let inventory = "all:\n  vars:\n    app_name: hello\n    app_port: 8080\n    app_root: /nonexistent\n    ansible_connection: local\n  children:\n    balancers:\n      hosts:\n        lb:\n    app:\n      children:\n        blue:\n          hosts:\n            b1:\n            b2:\n        green:\n          hosts:\n            g1:\n";
    std::fs::write(dir.path().join("inv.yml"), inventory).unwrap();
    let playbook = std::fs::read_to_string(root.join("playbooks/canary.yml")).unwrap();
    let edited = playbook.replacen(
        "    pools:\n",
        "    request_pools:\n      heavy: {routes: [\"^/upload\"], methods: [POST, PUT], hosts: blue, max_conns: 4, timeout: 30s}\n      deletes: {methods: [DELETE], hosts: app, max_conns: 2, timeout: 5s}\n    pools:\n",
        1,
    );
    assert_ne!(edited, playbook);
    std::fs::write(dir.path().join("canary.yml"), edited).unwrap();
    for rel in [
        "templates/nginx/pools.conf.j2",
        "app/hello/VERSION",
        "app/hello/bin/hello",
    ] {
        let to = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root.join(rel), to).unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_convoy"))
        .current_dir(dir.path())
        .args(["plan", "canary.yml", "--offline", "-i", "inv.yml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("  request pool heavy: POST PUT on ^/upload to b1 b2 (4 connection(s) per server, timeout 30s)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  request pool deletes: DELETE on any path to b1 b2 g1 (2 connection(s) per server, timeout 5s)\n"),
        "{stdout}"
    );
}
