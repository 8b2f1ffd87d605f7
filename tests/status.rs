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
