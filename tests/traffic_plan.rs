//! `convoy plan` on a play with pools shows the pools and the traffic
//! steps (offline: no host contacted).

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
