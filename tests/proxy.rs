//! Proxy configs through a real nginx (Debian's package) on a proxy host of
//! the fleet: convoy renders one file per domain, validates the whole config
//! with `nginx -t`, installs, prunes and reloads. Every test checks the proxy
//! host itself (files, inodes, the manifest, what nginx serves, whether it
//! reloaded), not only what convoy prints.
//!
//! The helpers ([`Nginx`], [`AppServer`], `http_get`) live in
//! tests/support/nginx.rs, shared with the zero-downtime rollout: nginx on a
//! proxy host with its own pid and logs under /srv (the fleet shares /run and
//! /var/log/nginx between hosts), and a small HTTP app on app hosts that
//! serves its release directory and must be restarted to serve a new one.

mod support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::nginx::{AppServer, Nginx};
use support::run::{Run, run_in};
use support::{Fleet, workdir, write_file};

// ---------------------------------------------------------------- helpers

/// Where the proxy tier keeps its manifests in these tests: /var/lib is
/// shared between the fleet's hosts, /srv is each host's own.
const STATE_DIR: &str = "/srv/convoy-proxy";

/// An inventory with the fleet's hosts `proxies` in group `balancers` and
/// `apps` in group `app`; the manifests kept under /srv.
fn inventory(fleet: &Fleet, dir: &Path, proxies: &[usize], apps: &[usize]) -> PathBuf {
    let mut yaml = format!(
        "all:\n  vars:\n    convoy_ssh_config: {}\n    convoy_proxy_state_dir: {STATE_DIR}\n    app_name: hello\n    app_port: 8080\n    app_root: /srv\n  children:\n",
        fleet.ssh_config().display()
    );
    for (group, hosts) in [("balancers", proxies), ("app", apps)] {
        if hosts.is_empty() {
            continue;
        }
        yaml.push_str(&format!("    {group}:\n      hosts:\n"));
        for &i in hosts {
            yaml.push_str(&format!(
                "        {}:\n          ansible_host: {}\n",
                fleet.name(i),
                fleet.addr(i)
            ));
        }
    }
    write_file(dir, "inventory.yml", &yaml)
}

/// The repository's proxy examples (playbooks/proxy-*.yml, templates/nginx/,
/// templates/haproxy/) copied into `dir`.
fn example_project(dir: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for rel in [
        "playbooks/proxy-domains.yml",
        "playbooks/proxy-deploy.yml",
        "templates/nginx/site.conf.j2",
        "templates/nginx/upstream.conf.j2",
        "templates/nginx/maintenance.html.j2",
        "templates/haproxy/backend.cfg.j2",
    ] {
        write_file(dir, rel, &std::fs::read_to_string(root.join(rel)).unwrap());
    }
}

/// `vars/domains.yml` in `dir`: `parked_domains` with these names.
fn domains(dir: &Path, names: &[&str]) -> PathBuf {
    let mut yaml = String::from("parked_domains:\n");
    for name in names {
        yaml.push_str(&format!("  - name: {name}\n"));
    }
    write_file(dir, "vars/domains.yml", &yaml)
}

/// `convoy run playbooks/proxy-domains.yml -e @vars/domains.yml` in `dir`.
fn run_domains(dir: &Path, names: &[&str]) -> Run {
    domains(dir, names);
    run_in(
        dir,
        &[
            "run",
            "playbooks/proxy-domains.yml",
            "-i",
            "inventory.yml",
            "-e",
            "@vars/domains.yml",
        ],
    )
}

/// A file's identity and last change: equal stamps mean it was not touched.
fn stamp(fleet: &Fleet, i: usize, path: &str) -> (u64, i64, i64) {
    let meta = std::fs::metadata(fleet.host_path(i, path))
        .unwrap_or_else(|e| panic!("{path} on h{i}: {e}"));
    (meta.ino(), meta.mtime(), meta.mtime_nsec())
}

/// Every name in a directory of host i, hidden ones included, sorted.
fn listing(fleet: &Fleet, i: usize, dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fleet.host_path(i, dir))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The paths the (only) manifest on host i lists.
fn manifest(fleet: &Fleet, i: usize) -> Vec<String> {
    let names = listing(fleet, i, STATE_DIR);
    assert_eq!(
        names.len(),
        1,
        "one manifest expected in {STATE_DIR}: {names:?}"
    );
    assert!(names[0].starts_with("parked-domains-") && names[0].ends_with(".manifest"));
    std::fs::read_to_string(fleet.host_path(i, &format!("{STATE_DIR}/{}", names[0])))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

fn site(name: &str) -> String {
    format!("/etc/nginx/conf.d/parked-{name}.conf")
}

// ---------------------------------------------------------------- tests

#[test]
fn parked_domains_get_one_file_each_and_a_removed_domain_only_its_own() {
    let fleet = Fleet::start(1);
    let nginx = Nginx::start(&fleet, 1);
    let work = workdir();
    example_project(work.path());
    inventory(&fleet, work.path(), &[1], &[]);

    let first = run_domains(work.path(), &["a.example", "b.example", "c.example"]);
    assert_eq!(first.code, 0, "{}", first.dump());
    assert_eq!(
        listing(&fleet, 1, "/etc/nginx/conf.d"),
        [
            "parked-a.example.conf",
            "parked-b.example.conf",
            "parked-c.example.conf"
        ]
    );
    assert_eq!(
        manifest(&fleet, 1),
        [site("a.example"), site("b.example"), site("c.example")]
    );
    let mode = std::fs::metadata(fleet.host_path(1, &site("a.example")))
        .unwrap()
        .mode();
    assert_eq!(mode & 0o7777, 0o644);
    nginx.wait_reloads(1);
    for name in ["a.example", "b.example", "c.example"] {
        nginx.wait_for(name, 200, &format!("{name} is parked"));
    }
    nginx.wait_for("d.example", 404, "no such site");

    // One more domain: one more file, the others untouched.
    let before: Vec<_> = ["a.example", "b.example", "c.example"]
        .iter()
        .map(|n| stamp(&fleet, 1, &site(n)))
        .collect();
    let added = run_domains(
        work.path(),
        &["a.example", "b.example", "c.example", "d.example"],
    );
    assert_eq!(added.code, 0, "{}", added.dump());
    let after: Vec<_> = ["a.example", "b.example", "c.example"]
        .iter()
        .map(|n| stamp(&fleet, 1, &site(n)))
        .collect();
    assert_eq!(before, after, "existing site files were rewritten");
    assert_eq!(listing(&fleet, 1, "/etc/nginx/conf.d").len(), 4);
    nginx.wait_reloads(2);
    nginx.wait_for("d.example", 200, "d.example is parked");

    // One domain less: exactly its file goes.
    let kept: Vec<_> = ["a.example", "c.example", "d.example"]
        .iter()
        .map(|n| stamp(&fleet, 1, &site(n)))
        .collect();
    let removed = run_domains(work.path(), &["a.example", "c.example", "d.example"]);
    assert_eq!(removed.code, 0, "{}", removed.dump());
    assert_eq!(
        listing(&fleet, 1, "/etc/nginx/conf.d"),
        [
            "parked-a.example.conf",
            "parked-c.example.conf",
            "parked-d.example.conf"
        ]
    );
    let still: Vec<_> = ["a.example", "c.example", "d.example"]
        .iter()
        .map(|n| stamp(&fleet, 1, &site(n)))
        .collect();
    assert_eq!(kept, still, "remaining site files were rewritten");
    assert_eq!(
        manifest(&fleet, 1),
        [site("a.example"), site("c.example"), site("d.example")]
    );
    nginx.wait_reloads(3);
    nginx.wait_for("b.example", 404, "no such site");
    nginx.wait_for("a.example", 200, "a.example is parked");

    // Nothing changed: nothing written, no reload.
    let same = run_domains(work.path(), &["a.example", "c.example", "d.example"]);
    assert_eq!(same.code, 0, "{}", same.dump());
    let again: Vec<_> = ["a.example", "c.example", "d.example"]
        .iter()
        .map(|n| stamp(&fleet, 1, &site(n)))
        .collect();
    assert_eq!(still, again);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(nginx.reloads(), 3, "nginx reloaded without a change");
}

/// A playbook whose site template is the test's own (`templates/site.j2`).
const OWN_TEMPLATE_PLAY: &str = "\
- name: Sites
  hosts: balancers
  proxy:
    hosts: balancers
    files:
      - template: templates/site.j2
        dest: \"/etc/nginx/conf.d/{{ item }}.conf\"
        loop: \"{{ sites }}\"
    validate: nginx -t
    reload: RELOAD
";

fn own_template(dir: &Path, reload: &str, template: &str, sites: &[&str]) {
    write_file(
        dir,
        "play.yml",
        &OWN_TEMPLATE_PLAY.replace("RELOAD", reload),
    );
    write_file(dir, "templates/site.j2", template);
    write_file(dir, "vars.yml", &format!("sites: {sites:?}\n"));
}

const GOOD_SITE: &str = "server {\n    listen 80;\n    server_name {{ item }};\n    return 200 \"{{ item }} v1\\n\";\n}\n";

fn run_own(dir: &Path) -> Run {
    run_in(
        dir,
        &["run", "play.yml", "-i", "inventory.yml", "-e", "@vars.yml"],
    )
}

#[test]
fn a_config_nginx_rejects_changes_nothing_and_the_error_shows_why() {
    let fleet = Fleet::start(1);
    let nginx = Nginx::start(&fleet, 1);
    let work = workdir();
    inventory(&fleet, work.path(), &[1], &[]);
    own_template(
        work.path(),
        "nginx -s reload",
        GOOD_SITE,
        &["a.test", "b.test"],
    );
    let good = run_own(work.path());
    assert_eq!(good.code, 0, "{}", good.dump());
    nginx.wait_reloads(1);
    nginx.wait_for("a.test", 200, "a.test v1");
    let files = [
        "/etc/nginx/conf.d/a.test.conf",
        "/etc/nginx/conf.d/b.test.conf",
    ];
    let stamps: Vec<_> = files.iter().map(|f| stamp(&fleet, 1, f)).collect();
    let contents: Vec<_> = files
        .iter()
        .map(|f| std::fs::read_to_string(fleet.host_path(1, f)).unwrap())
        .collect();
    let state = listing(&fleet, 1, STATE_DIR);
    let manifest_before =
        std::fs::read_to_string(fleet.host_path(1, &format!("{STATE_DIR}/{}", state[0]))).unwrap();

    // A typo in a directive, and a new site in the same change.
    let typo = GOOD_SITE
        .replace("v1", "v2")
        .replace("    return", "    retrun_typo on;\n    return");
    own_template(
        work.path(),
        "nginx -s reload",
        &typo,
        &["a.test", "b.test", "c.test"],
    );
    let bad = run_own(work.path());
    assert_eq!(bad.code, 2, "{}", bad.dump());
    let all = bad.all();
    assert!(
        all.contains("unknown directive \"retrun_typo\" in /etc/nginx/conf.d/a.test.conf:4"),
        "nginx's message is not shown:\n{}",
        bad.dump()
    );
    assert!(
        all.contains("rendered /etc/nginx/conf.d/a.test.conf (from templates/site.j2)")
            && all.contains("retrun_typo on;"),
        "the rendered file is not shown:\n{}",
        bad.dump()
    );
    // The live config is exactly as before: same files (same inodes), no
    // new site, no leftovers, same manifest, no reload, still serving v1.
    let after: Vec<_> = files.iter().map(|f| stamp(&fleet, 1, f)).collect();
    assert_eq!(stamps, after, "live files were replaced");
    for (file, before) in files.iter().zip(&contents) {
        assert_eq!(
            &std::fs::read_to_string(fleet.host_path(1, file)).unwrap(),
            before
        );
    }
    assert_eq!(
        listing(&fleet, 1, "/etc/nginx/conf.d"),
        ["a.test.conf", "b.test.conf"]
    );
    assert_eq!(
        std::fs::read_to_string(fleet.host_path(1, &format!("{STATE_DIR}/{}", state[0]))).unwrap(),
        manifest_before
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(nginx.reloads(), 1, "nginx reloaded a rejected config");
    nginx.wait_for("a.test", 200, "a.test v1");
    nginx.wait_for("c.test", 404, "no such site");
    fleet.exec_ok(1, "nginx -t");
}

#[test]
fn a_failed_reload_restores_the_previous_files_and_reloads_them() {
    let fleet = Fleet::start(1);
    let nginx = Nginx::start(&fleet, 1);
    let work = workdir();
    inventory(&fleet, work.path(), &[1], &[]);
    // The reload fails once when /srv/fail-next-reload exists.
    write_file(
        fleet.host_path(1, "/srv"),
        "reload.sh",
        "if [ -f /srv/fail-next-reload ]; then rm /srv/fail-next-reload; echo 'reload refused for the test' >&2; exit 1; fi\nnginx -s reload\n",
    );
    own_template(work.path(), "sh /srv/reload.sh", GOOD_SITE, &["a.test"]);
    let good = run_own(work.path());
    assert_eq!(good.code, 0, "{}", good.dump());
    nginx.wait_reloads(1);
    let file = "/etc/nginx/conf.d/a.test.conf";
    let before = stamp(&fleet, 1, file);

    fleet.exec_ok(1, "touch /srv/fail-next-reload");
    own_template(
        work.path(),
        "sh /srv/reload.sh",
        &GOOD_SITE.replace("v1", "v2"),
        &["a.test", "b.test"],
    );
    let failed = run_own(work.path());
    assert_eq!(failed.code, 2, "{}", failed.dump());
    assert!(
        failed.all().contains("reload refused for the test")
            && failed
                .all()
                .contains("the previous files were restored and reloaded"),
        "{}",
        failed.dump()
    );
    assert_eq!(
        stamp(&fleet, 1, file),
        before,
        "a.test.conf was not restored"
    );
    assert_eq!(listing(&fleet, 1, "/etc/nginx/conf.d"), ["a.test.conf"]);
    // The second reload (of the restored files) went through.
    nginx.wait_reloads(2);
    nginx.wait_for("a.test", 200, "a.test v1");
    nginx.wait_for("b.test", 404, "no such site");
}

/// An inventory whose ssh goes nowhere: any connection attempt leaves
/// `ssh-attempted` in the work dir, and no packet is sent.
fn offline_inventory(dir: &Path) {
    let marker = dir.join("ssh-attempted");
    write_file(
        dir,
        "ssh_config",
        &format!(
            "Host *\n  ProxyCommand sh -c 'touch {}; exit 1'\n",
            marker.display()
        ),
    );
    write_file(
        dir,
        "inventory.yml",
        &format!(
            "all:\n  vars:\n    convoy_ssh_config: {}\n    app_name: hello\n    app_port: 8080\n    app_root: /srv\n  children:\n    app:\n      hosts:\n        app1: {{ ansible_host: 10.1.0.11 }}\n        app2: {{ ansible_host: 10.1.0.12 }}\n    balancers:\n      hosts:\n        lb1:\n        lb2:\n",
            dir.join("ssh_config").display()
        ),
    );
}

#[test]
fn render_prints_every_proxy_file_and_touches_no_host() {
    let work = workdir();
    example_project(work.path());
    offline_inventory(work.path());
    domains(work.path(), &["a.example", "b.example"]);
    let domains = run_in(
        work.path(),
        &[
            "render",
            "playbooks/proxy-domains.yml",
            "-i",
            "inventory.yml",
            "-e",
            "@vars/domains.yml",
            "--host",
            "lb2",
        ],
    );
    assert_eq!(domains.code, 0, "{}", domains.dump());
    insta::assert_snapshot!("render_domains", domains.stdout);
    let deploy = run_in(
        work.path(),
        &[
            "render",
            "playbooks/proxy-deploy.yml",
            "-i",
            "inventory.yml",
        ],
    );
    assert_eq!(deploy.code, 0, "{}", deploy.dump());
    insta::assert_snapshot!("render_upstream", deploy.stdout);
    assert!(!work.path().join("ssh-attempted").exists());
}

#[test]
fn an_undefined_variable_in_a_proxy_template_is_located_before_any_host_is_touched() {
    let work = workdir();
    offline_inventory(work.path());
    let template = "server {\n    listen {{ site_port }};\n    server_name {{ item }};\n}\n";
    own_template(work.path(), "nginx -s reload", template, &["a.test"]);
    let args = ["play.yml", "-i", "inventory.yml", "-e", "@vars.yml"];
    let render = run_in(work.path(), &[&["render"], &args[..]].concat());
    assert_eq!(render.code, 3, "{}", render.dump());
    insta::assert_snapshot!("undefined_variable", render.stderr);
    assert!(!work.path().join("ssh-attempted").exists());

    // The run's pre-flight check stops at the same place, touching nothing.
    let run = run_in(work.path(), &[&["run"], &args[..]].concat());
    assert_eq!(run.code, 3, "{}", run.dump());
    assert!(
        run.stderr
            .contains("undefined variable `site_port` in templates/site.j2:2"),
        "{}",
        run.dump()
    );
    assert!(
        !work.path().join("ssh-attempted").exists(),
        "a host was contacted"
    );
}

#[test]
fn the_upstream_template_balances_over_the_app_hosts() {
    let fleet = Fleet::start(3);
    let nginx = Nginx::start(&fleet, 1);
    for i in [2, 3] {
        write_file(fleet.host_path(i, "/srv/www"), "whoami", &fleet.name(i));
        AppServer::start(&fleet, i, "/srv/www", 8080);
    }
    let work = workdir();
    example_project(work.path());
    inventory(&fleet, work.path(), &[1], &[2, 3]);
    // A proxy-only play over the app hosts: all of them in service.
    write_file(
        work.path(),
        "playbooks/upstream.yml",
        "- name: Hello upstream\n  hosts: app\n  vars:\n    proxy_server_name: hello.test\n  proxy:\n    hosts: balancers\n    files:\n      - template: templates/nginx/upstream.conf.j2\n        dest: /etc/nginx/conf.d/hello.conf\n      - template: templates/nginx/maintenance.html.j2\n        dest: /var/www/maintenance/hello-maintenance.html\n    validate: nginx -t\n    reload: nginx -s reload\n",
    );
    let run = run_in(
        work.path(),
        &["run", "playbooks/upstream.yml", "-i", "inventory.yml"],
    );
    assert_eq!(run.code, 0, "{}", run.dump());
    let conf = std::fs::read_to_string(fleet.host_path(1, "/etc/nginx/conf.d/hello.conf")).unwrap();
    for i in [2, 3] {
        assert!(
            conf.contains(&format!("server {}:8080;", fleet.addr(i))),
            "{conf}"
        );
    }
    assert!(
        fleet
            .host_path(1, "/var/www/maintenance/hello-maintenance.html")
            .is_file()
    );
    nginx.wait_reloads(1);
    nginx.wait_for("hello.test", 200, "h");
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let (status, body) = nginx.get("hello.test", "/whoami").unwrap();
        assert_eq!(status, 200, "{body}");
        seen.insert(body);
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["h2", "h3"]);
}
