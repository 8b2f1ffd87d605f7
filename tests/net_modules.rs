//! `get_url`, `uri` and `unarchive` on a real fleet, beyond what the
//! compat cases compare: check mode changes nothing on any host, and a
//! download that fails its checksum leaves no file behind (not even the
//! temporary one).

mod support;

use support::http_server::HttpServer;
use support::inventory::app_inventory;
use support::run::run;
use support::{Fleet, workdir, write_file};

#[test]
fn check_mode_downloads_unpacks_and_calls_nothing() {
    let fleet = Fleet::start(1);
    let work = workdir();
    std::fs::create_dir_all(fleet.host_path(1, "/var/www/files")).unwrap();
    std::fs::write(fleet.host_path(1, "/var/www/files/app.conf"), "port=1\n").unwrap();
    let server = HttpServer::start(&fleet, 1, "/var/www/files", 8089, 120);
    // An archive on the host, and an existing file that differs.
    fleet.exec_ok(
        1,
        "mkdir -p /srv/src/app /srv/out && echo a > /srv/src/app/a && tar -C /srv/src -czf /srv/app.tgz app && echo old > /srv/out/old.conf && touch -d 2000-01-01 /srv/out/old.conf",
    );
    let inventory = app_inventory(&fleet, work.path(), "");
    let playbook = write_file(
        work.path(),
        "play.yml",
        &format!(
            "- hosts: app\n  tasks:\n    - get_url: {{ url: '{url}/app.conf', dest: /srv/out/new.conf }}\n      register: new\n    - get_url: {{ url: '{url}/app.conf', dest: /srv/out/old.conf }}\n      register: old\n    - uri: {{ url: '{url}/app.conf', dest: /srv/out/uri.conf }}\n      register: called\n    - unarchive: {{ src: /srv/app.tgz, dest: /srv/out, remote_src: true }}\n      register: unpacked\n    - debug: {{ msg: 'new={{{{ new.changed }}}} old={{{{ old.changed }}}} called={{{{ called.skipped }}}} unpacked={{{{ unpacked.skipped }}}}' }}\n",
            url = server.url
        ),
    );
    let r = run(&[
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
        "--check",
    ]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        r.stdout
            .contains("new=True old=True called=True unpacked=True"),
        "{}",
        r.dump()
    );
    assert_eq!(
        fleet.exec_ok(
            1,
            "cd /srv/out && ls -A; cat old.conf; ls /tmp | grep -c convoy-http || true"
        ),
        "old.conf\nold\n0\n"
    );
    assert_eq!(r.count("h1", "changed"), 2, "{}", r.dump());
    assert_eq!(r.count("h1", "skipped"), 2, "{}", r.dump());
}

#[test]
fn a_checksum_mismatch_leaves_no_file_and_no_temporary() {
    let fleet = Fleet::start(1);
    let work = workdir();
    std::fs::create_dir_all(fleet.host_path(1, "/var/www/files")).unwrap();
    std::fs::write(fleet.host_path(1, "/var/www/files/app.conf"), "port=1\n").unwrap();
    let server = HttpServer::start(&fleet, 1, "/var/www/files", 8089, 120);
    fleet.exec_ok(1, "mkdir -p /srv/out");
    let inventory = app_inventory(&fleet, work.path(), "");
    let playbook = write_file(
        work.path(),
        "play.yml",
        &format!(
            "- hosts: app\n  tasks:\n    - get_url:\n        url: '{}/app.conf'\n        dest: /srv/out/app.conf\n        checksum: 'sha256:{}'\n",
            server.url,
            "0".repeat(64)
        ),
    );
    let r = run(&[
        "run",
        playbook.to_str().unwrap(),
        "-i",
        inventory.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "{}", r.dump());
    assert!(
        r.all().contains("did not match 0000000000000000000000000000000000000000000000000000000000000000; it was "),
        "{}",
        r.dump()
    );
    assert_eq!(
        fleet.exec_ok(1, "ls -A /srv/out; ls /tmp | grep -c convoy-http || true"),
        "0\n"
    );
}
