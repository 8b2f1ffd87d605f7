//! `convoy status` over several playbooks on a real fleet: every
//! distribution per host, the host on another version marked, a lock left
//! in place shown with its holder, the last run's outcome, and one round
//! trip per host however many distributions it has.

mod support;

use serde_json::Value;

use support::run::run_in;
use support::tarball::release_tar_gz;
use support::{Fleet, workdir, write_file};

/// A playbook deploying distribution `NAME` under /srv/NAME.
fn playbook(name: &str) -> String {
    format!(
        r#"- name: Deploy {name}
  hosts: app
  vars: {{ version: "1.0.0" }}
  distribution:
    name: {name}
    version: "{{{{ version }}}}"
    source: "dist/{name}-{{{{ version }}}}.tar.gz"
    strip_components: 0
    root: /srv/{name}
    keep: 5
"#
    )
}

#[test]
fn status_of_two_playbooks_in_one_round_trip_per_host() {
    let fleet = Fleet::start(4);
    let work = workdir();
    let dir = work.path();
    let mut inventory = format!(
        "all:\n  vars:\n    convoy_ssh_config: {}\n  children:\n    app:\n      hosts:\n",
        fleet.ssh_config().display()
    );
    for i in fleet.hosts() {
        inventory.push_str(&format!(
            "        {}:\n          ansible_host: {}\n",
            fleet.name(i),
            fleet.addr(i)
        ));
    }
    write_file(dir, "inventory.yml", &inventory);
    write_file(dir, "a.yml", &playbook("web"));
    write_file(dir, "b.yml", &playbook("api"));
    write_file(dir, "dist/.keep", "");
    for name in ["web", "api"] {
        for version in ["1.0.0", "2.0.0"] {
            std::fs::write(
                dir.join(format!("dist/{name}-{version}.tar.gz")),
                release_tar_gz(version, 0),
            )
            .unwrap();
        }
    }
    let convoy = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["-i", "inventory.yml"]);
        run_in(dir, &all)
    };
    for (book, extra) in [
        ("a.yml", vec![]),
        ("b.yml", vec![]),
        ("a.yml", vec!["-e", "version=2.0.0", "-l", "h1:h2:h3"]),
        ("b.yml", vec!["-e", "version=2.0.0"]),
    ] {
        let mut args = vec!["run", book];
        args.extend_from_slice(&extra);
        let r = convoy(&args);
        assert_eq!(r.code, 0, "{book} {extra:?}: {}", r.dump());
    }
    // A lock a killed run left behind on h2's api.
    let holder = "root@elsewhere pid=4242 run=r-dead since=2026-01-01T00:00:00Z";
    fleet.exec_ok(
        2,
        &format!("mkdir /srv/api/.convoy/lock && echo '{holder}' > /srv/api/.convoy/lock/holder"),
    );

    let r = convoy(&["status", "a.yml", "b.yml", "--output", "json"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let status: Value = serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("status JSON: {e}\n{}", r.dump()));
    assert_eq!(status["web"]["majority"], "2.0.0", "{status}");
    assert_eq!(status["api"]["majority"], "2.0.0", "{status}");
    for i in fleet.hosts() {
        let host = fleet.name(i);
        let web = &status["web"]["hosts"][&host];
        let api = &status["api"]["hosts"][&host];
        let (web_current, web_previous) = if i == 4 {
            ("1.0.0", Value::Null)
        } else {
            ("2.0.0", Value::from("1.0.0"))
        };
        assert_eq!(web["current"], web_current, "{host}: {status}");
        assert_eq!(web["previous"], web_previous, "{host}: {status}");
        assert_eq!(web["differs"], i == 4, "{host}: {status}");
        assert_eq!(api["current"], "2.0.0", "{host}: {status}");
        assert_eq!(api["previous"], "1.0.0", "{host}: {status}");
        assert_eq!(api["differs"], false, "{host}: {status}");
        // The last line of each root's audit log: h4's web saw only 1.0.0.
        for (d, version) in [(web, web_current), (api, "2.0.0")] {
            assert_eq!(d["outcome"], "completed", "{host}: {status}");
            assert!(
                d["deployed_by"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("root@")),
                "{host}: {status}"
            );
            assert!(
                d["last_run"]
                    .as_str()
                    .is_some_and(|s| s.contains(&format!("version={version} outcome=completed"))),
                "{host}: {status}"
            );
            assert_eq!(d["round_trips"], 1, "{host}: {status}");
        }
        assert_eq!(web["lock"], Value::Null, "{host}: {status}");
        let lock = if i == 2 {
            Value::from(holder)
        } else {
            Value::Null
        };
        assert_eq!(api["lock"], lock, "{host}: {status}");
    }

    // A directory means its playbooks; the table marks the odd host and
    // shows the lock.
    let books = dir.join("books");
    std::fs::create_dir(&books).unwrap();
    for book in ["a.yml", "b.yml"] {
        std::fs::copy(dir.join(book), books.join(book)).unwrap();
    }
    let text = convoy(&["status", "books"]);
    assert_eq!(text.code, 0, "{}", text.dump());
    let web = text.stdout.split("\napi\n").next().unwrap_or_default();
    let row = |table: &str, host: &str| -> String {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(host))
            .unwrap_or_else(|| panic!("no row for {host}:\n{}", text.dump()))
            .to_owned()
    };
    assert!(row(web, "h4").contains(" *"), "{}", text.stdout);
    assert!(!row(web, "h1").contains(" *"), "{}", text.stdout);
    assert!(
        text.stdout
            .contains("root@elsewhere since 2026-01-01T00:00:00Z"),
        "{}",
        text.stdout
    );
}

/// A plain web playbook for group `GROUP` (distribution `NAME`).
fn group_playbook(name: &str, group: &str) -> String {
    playbook(name).replace("hosts: app", &format!("hosts: {group}"))
}

#[test]
fn status_of_twenty_hosts_and_two_distributions_is_one_round_trip_each() {
    let fleet = Fleet::start(20);
    let work = workdir();
    let dir = work.path();
    // web on h1..h12, api on h9..h20: h9..h12 have both.
    let mut inventory = format!(
        "all:\n  vars:\n    convoy_ssh_config: {}\n  hosts:\n",
        fleet.ssh_config().display()
    );
    for i in fleet.hosts() {
        inventory.push_str(&format!(
            "    {}:\n      ansible_host: {}\n",
            fleet.name(i),
            fleet.addr(i)
        ));
    }
    inventory.push_str("  children:\n    web:\n      hosts:\n");
    for i in 1..=12 {
        inventory.push_str(&format!("        h{i}:\n"));
    }
    inventory.push_str("    api:\n      hosts:\n");
    for i in 9..=20 {
        inventory.push_str(&format!("        h{i}:\n"));
    }
    write_file(dir, "inventory.yml", &inventory);
    write_file(dir, "books/web.yml", &group_playbook("web", "web"));
    write_file(dir, "books/api.yml", &group_playbook("api", "api"));
    write_file(dir, "books/dist/.keep", "");
    for name in ["web", "api"] {
        for version in ["1.0.0", "2.0.0"] {
            std::fs::write(
                dir.join(format!("books/dist/{name}-{version}.tar.gz")),
                release_tar_gz(version, 0),
            )
            .unwrap();
        }
    }
    let convoy = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["-i", "inventory.yml"]);
        run_in(dir, &all)
    };
    // Everyone on 2.0.0 but h5 (web) and h17 (api), the odd hosts.
    for (book, extra) in [
        ("books/web.yml", vec![]),
        ("books/api.yml", vec![]),
        (
            "books/web.yml",
            vec!["-e", "version=2.0.0", "-l", "web:!h5"],
        ),
        (
            "books/api.yml",
            vec!["-e", "version=2.0.0", "-l", "api:!h17"],
        ),
    ] {
        let mut args = vec!["run", book];
        args.extend_from_slice(&extra);
        let r = convoy(&args);
        assert_eq!(r.code, 0, "{book} {extra:?}: {}", r.dump());
    }
    let holder = "ops@cron1 pid=4242 run=r-dead since=2026-01-01T00:00:00Z";
    fleet.exec_ok(
        14,
        &format!("mkdir /srv/api/.convoy/lock && echo '{holder}' > /srv/api/.convoy/lock/holder"),
    );

    let started = std::time::Instant::now();
    let r = convoy(&["status", "books", "--output", "json"]);
    let took = started.elapsed();
    assert_eq!(r.code, 0, "{}", r.dump());
    let status: Value = serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("status JSON: {e}\n{}", r.dump()));
    let mut trips = std::collections::BTreeMap::new();
    for (name, hosts, odd) in [("web", 1..=12, 5), ("api", 9..=20, 17)] {
        let d = &status[name];
        assert_eq!(d["majority"], "2.0.0", "{name}: {d}");
        assert_eq!(d["hosts"].as_object().unwrap().len(), 12, "{name}: {d}");
        for i in hosts {
            let host = fleet.name(i);
            let h = &d["hosts"][&host];
            let (current, previous) = if i == odd {
                ("1.0.0", Value::Null)
            } else {
                ("2.0.0", Value::from("1.0.0"))
            };
            assert_eq!(h["current"], current, "{name} {host}: {h}");
            assert_eq!(h["previous"], previous, "{name} {host}: {h}");
            assert_eq!(h["differs"], i == odd, "{name} {host}: {h}");
            assert_eq!(h["outcome"], "completed", "{name} {host}: {h}");
            assert!(
                h["deployed_at"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("20")),
                "{name} {host}: {h}"
            );
            assert!(
                h["deployed_by"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("root@")),
                "{name} {host}: {h}"
            );
            let lock = if name == "api" && i == 14 {
                Value::from(holder)
            } else {
                Value::Null
            };
            assert_eq!(h["lock"], lock, "{name} {host}: {h}");
            // The same figure in both distributions: the host's whole visit.
            assert_eq!(h["round_trips"], 1, "{name} {host}: {h}");
            trips.insert(host, h["round_trips"].as_u64().unwrap());
        }
        // What the hosts hold, read there: the odd host's `current`.
        assert_eq!(
            std::fs::read_link(fleet.host_path(odd, &format!("/srv/{name}/current")))
                .unwrap()
                .display()
                .to_string(),
            "releases/1.0.0"
        );
    }
    assert_eq!(trips.len(), 20);

    let text = convoy(&["status", "books"]);
    assert_eq!(text.code, 0, "{}", text.dump());
    assert!(
        text.stdout
            .ends_with("asked 20 host(s): 1 round trip each\n"),
        "{}",
        text.stdout
    );
    let marked: Vec<&str> = text
        .stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("*"))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    // books/api.yml sorts first: its table comes first.
    assert_eq!(marked, ["h17", "h5"], "{}", text.stdout);
    eprintln!(
        "figures: status: 20 hosts, 2 distributions (24 host-distributions), round trips per host: {:?}, took {took:?}",
        trips.values().collect::<std::collections::BTreeSet<_>>()
    );
}
