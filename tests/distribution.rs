//! `distribution:` plays (versioned releases) on a real fleet: an artifact is
//! shipped once, unpacked into `releases/<version>`, made live by switching
//! the `current` symlink, rolled back, patched and reported on. Every test
//! checks the hosts themselves (links, files, inodes, leftovers), not only
//! what convoy prints.
//!
//! Archives are built here (a small ustar writer + the system `gzip`), so
//! each test controls every entry, including unsafe ones.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use support::http_server::HttpServer;
use support::inventory::app_inventory;
use support::project::{Project, ROOT};
use support::tarball::{Entry, hello_script, release_tar_gz, tar_gz};
use support::{Fleet, workdir, write_file};

// ---------------------------------------------------------------- helpers

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// 64-hex-digit words in `s`.
fn hex_digests(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 64)
        .map(|w| w.to_ascii_lowercase())
        .collect()
}

/// A release artifact written by a test.
struct Artifact {
    bytes: Vec<u8>,
    sha: String,
}

// ---------------------------------------------------------------- the project

const TEMPLATE: &str = "host={{ inventory_hostname }}\nversion={{ version }}\n";

/// The playbook; `@SOURCE@`, `@EXTRA@` (more `distribution:` keys, 4-space
/// indented lines) and `@KEEP@` are filled in by [`Project::write_playbook`].
/// The hooks append one line per run to /srv/hooks.log on the host, with what
/// they see (release.*, distribution.root, where `current` points).
const PLAYBOOK: &str = r#"- name: Deploy hello
  hosts: app
  vars: { version: "1.0.0" }
  distribution:
    name: hello
    version: "{{ version }}"
    source: "@SOURCE@"
@EXTRA@    strip_components: 0
    root: /srv/hello
    shared: [log, uploads]
    keep: @KEEP@
    templates:
      - src: templates/hello.conf.j2
        dest: config/hello.conf
  hooks:
    prepare:
      - name: prepare marker
        shell: 'echo "prepare {{ release.version }} {{ release.path }} {{ distribution.root }} cur=$(readlink /srv/hello/current) cfg=$(test -f {{ release.path }}/config/hello.conf && echo yes || echo no)" >> /srv/hooks.log'
    switch:
      - name: restart marker
        shell: 'echo "switch {{ release.version }} {{ release.path }} {{ distribution.root }} cur=$(readlink /srv/hello/current) prev={{ release.previous }}" >> /srv/hooks.log'
    confirm:
      - name: confirm marker
        shell: 'echo "confirm {{ release.version }} {{ release.path }} {{ distribution.root }} cur=$(readlink /srv/hello/current)" >> /srv/hooks.log'
"#;

const LOCAL_SOURCE: &str = "dist/hello-{{ version }}.tar.gz";

impl Project {
    /// A fleet of `n` hosts and a project: deploy.yml (local source, keep 3),
    /// templates/hello.conf.j2, inventory.yml.
    fn new(n: usize) -> Project {
        let fleet = Fleet::start(n);
        let work = workdir();
        let inventory = app_inventory(&fleet, work.path(), "");
        write_file(work.path(), "templates/hello.conf.j2", TEMPLATE);
        let playbook = work.path().join("deploy.yml");
        let p = Project {
            fleet,
            work,
            playbook,
            inventory,
            in_dir: false,
        };
        p.write_playbook(LOCAL_SOURCE, "", 3);
        p
    }

    fn write_playbook(&self, source: &str, extra: &str, keep: u32) {
        let text = PLAYBOOK
            .replace("@SOURCE@", source)
            .replace("@EXTRA@", extra)
            .replace("@KEEP@", &keep.to_string());
        std::fs::write(&self.playbook, text).unwrap();
    }

    /// Writes dist/hello-VERSION.tar.gz (see [`release_tar_gz`]).
    fn artifact(&self, version: &str, blob: usize) -> Artifact {
        let bytes = release_tar_gz(version, blob);
        self.write_dist(version, &bytes)
    }

    fn write_dist(&self, version: &str, bytes: &[u8]) -> Artifact {
        let path = self.dir().join(format!("dist/hello-{version}.tar.gz"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        Artifact {
            bytes: bytes.to_vec(),
            sha: sha256_hex(bytes),
        }
    }

    fn assert_current(&self, i: usize, version: &str) {
        let meta = std::fs::symlink_metadata(self.path(i, "current"));
        assert!(
            meta.as_ref().is_ok_and(|m| m.file_type().is_symlink()),
            "h{i}: {ROOT}/current is not a symlink: {meta:?}"
        );
        assert_eq!(
            self.current(i).as_deref(),
            Some(format!("releases/{version}").as_str()),
            "h{i}: where current points"
        );
        assert_eq!(
            self.read(i, "current/VERSION"),
            format!("{version}\n"),
            "h{i}: current/VERSION"
        );
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn first_deploy_lays_out_the_release_and_a_rerun_ships_nothing() {
    let p = Project::new(2);
    let art = p.artifact("1.0.0", 0);

    let first = p.deploy("1.0.0", &[]);
    assert_eq!(first.code, 0, "{}", first.dump());
    for i in p.fleet.hosts() {
        let name = p.fleet.name(i);
        // Text recap: the artifact's bytes went to each host once.
        assert!(art.bytes.len() < 1024, "test artifact should be tiny");
        assert_eq!(
            first.recap_field(&name, "artifact"),
            format!("{}B", art.bytes.len()),
            "{}",
            first.dump()
        );

        p.assert_current(i, "1.0.0");
        let rel = "releases/1.0.0";
        assert_eq!(p.read(i, &format!("{rel}/VERSION")), "1.0.0\n");
        assert_eq!(
            p.read(i, &format!("{rel}/bin/hello")),
            hello_script("1.0.0")
        );
        let mode = std::fs::metadata(p.path(i, &format!("{rel}/bin/hello")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "h{i}: bin/hello lost its exec bits");
        assert_eq!(
            p.fleet.exec_ok(i, &format!("{ROOT}/current/bin/hello")),
            "hello 1.0.0\n"
        );

        // Shared dirs: real dirs under shared/, symlinked into the release.
        for d in ["log", "uploads"] {
            assert!(
                p.path(i, &format!("shared/{d}")).is_dir(),
                "h{i}: shared/{d} is not a directory"
            );
            let link = p.path(i, &format!("{rel}/{d}"));
            assert!(
                std::fs::symlink_metadata(&link)
                    .unwrap_or_else(|e| panic!("h{i}: {rel}/{d}: {e}"))
                    .file_type()
                    .is_symlink(),
                "h{i}: {rel}/{d} is not a symlink"
            );
            assert_eq!(
                p.fleet
                    .exec_ok(i, &format!("readlink -f {ROOT}/{rel}/{d}"))
                    .trim(),
                format!("{ROOT}/shared/{d}"),
                "h{i}: {rel}/{d} points elsewhere"
            );
        }
        p.fleet
            .exec_ok(i, &format!("echo probe > {ROOT}/current/log/probe"));
        assert_eq!(p.read(i, "shared/log/probe"), "probe\n");

        // The template, rendered per host into the release.
        assert_eq!(
            p.read(i, &format!("{rel}/config/hello.conf")),
            format!("host={name}\nversion=1.0.0\n")
        );

        // Content-addressed store and release metadata.
        let stored = std::fs::read(p.path(i, &format!(".convoy/artifacts/{}", art.sha)))
            .unwrap_or_else(|e| panic!("h{i}: artifact not in the store: {e}"));
        assert_eq!(stored, art.bytes, "h{i}: stored artifact differs");
        let meta: Value = serde_json::from_str(&p.read(i, ".convoy/releases/1.0.0.json")).unwrap();
        assert_eq!(meta["version"], "1.0.0", "{meta}");
        assert_eq!(meta["sha256"], art.sha.as_str(), "{meta}");
        assert!(
            meta["deployed_at"].as_str().is_some_and(|s| !s.is_empty()),
            "{meta}"
        );
        let by = meta["deployed_by"].as_str().unwrap_or_default();
        assert!(
            by.starts_with("root@") && by.len() > "root@".len(),
            "deployed_by should be user@machine: {meta}"
        );
        assert!(
            meta["playbook"].as_str().is_some_and(|s| !s.is_empty()),
            "{meta}"
        );

        // Hooks: prepare saw the rendered template and no `current` yet,
        // switch ran after the switch, confirm last.
        let hooks = p.hook_lines(i);
        let tail = format!("1.0.0 {ROOT}/{rel} {ROOT}");
        assert_eq!(hooks.len(), 3, "h{i}: {hooks:?}");
        assert_eq!(hooks[0], format!("prepare {tail} cur= cfg=yes"), "h{i}");
        assert!(
            hooks[1].starts_with(&format!("switch {tail} cur=releases/1.0.0 prev=")),
            "h{i}: {hooks:?}"
        );
        assert_eq!(hooks[2], format!("confirm {tail} cur=releases/1.0.0"));
        p.assert_no_leftovers(i);
    }

    let version_file = "releases/1.0.0/VERSION";
    let snap = |i: usize| {
        let m = std::fs::metadata(p.path(i, version_file)).unwrap();
        (m.ino(), m.mtime(), m.mtime_nsec())
    };
    let before: Vec<_> = p.fleet.hosts().map(snap).collect();

    let second = p.deploy("1.0.0", &["--output", "json"]);
    assert_eq!(second.code, 0, "{}", second.dump());
    for i in p.fleet.hosts() {
        assert_eq!(
            second.artifact_bytes(&p.fleet.name(i)),
            0,
            "{}",
            second.dump()
        );
        p.assert_current(i, "1.0.0");
    }
    let after: Vec<_> = p.fleet.hosts().map(snap).collect();
    assert_eq!(before, after, "the re-run rewrote {version_file}");

    let third = p.deploy("1.0.0", &[]);
    assert_eq!(third.code, 0, "{}", third.dump());
    for i in p.fleet.hosts() {
        assert_eq!(
            third.recap_field(&p.fleet.name(i), "artifact"),
            "0B",
            "{}",
            third.dump()
        );
    }
}

#[test]
fn upgrade_then_rollback_and_rollback_to() {
    let p = Project::new(2);
    p.artifact("1.0.0", 0);
    let v2 = p.artifact("2.0.0", 0);
    p.deploy_ok("1.0.0", &[]);

    let up = p.deploy("2.0.0", &["--output", "json"]);
    assert_eq!(up.code, 0, "{}", up.dump());
    for i in p.fleet.hosts() {
        assert_eq!(
            up.artifact_bytes(&p.fleet.name(i)),
            v2.bytes.len() as u64,
            "{}",
            up.dump()
        );
        p.assert_current(i, "2.0.0");
        assert!(p.path(i, "releases/1.0.0/VERSION").is_file());
        let hooks = p.hook_lines(i);
        let switches: Vec<&String> = hooks.iter().filter(|l| l.starts_with("switch ")).collect();
        assert_eq!(switches.len(), 2, "h{i}: {hooks:?}");
        assert_eq!(
            *switches[1],
            format!("switch 2.0.0 {ROOT}/releases/2.0.0 {ROOT} cur=releases/2.0.0 prev=1.0.0"),
            "h{i}"
        );
        assert!(
            hooks.contains(&format!(
                "prepare 2.0.0 {ROOT}/releases/2.0.0 {ROOT} cur=releases/1.0.0 cfg=yes"
            )),
            "h{i}: {hooks:?}"
        );
    }

    // Back to the previous release: nothing shipped, switch hooks ran.
    let back = p.convoy("rollback", &["--output", "json"]);
    assert_eq!(back.code, 0, "{}", back.dump());
    for i in p.fleet.hosts() {
        assert_eq!(back.artifact_bytes(&p.fleet.name(i)), 0, "{}", back.dump());
        p.assert_current(i, "1.0.0");
        let last = p.hook_lines(i).last().cloned().unwrap_or_default();
        let switch_line = p
            .hook_lines(i)
            .into_iter()
            .rfind(|l| l.starts_with("switch "))
            .unwrap();
        assert!(
            switch_line.starts_with(&format!(
                "switch 1.0.0 {ROOT}/releases/1.0.0 {ROOT} cur=releases/1.0.0 "
            )),
            "h{i}: the switch hook did not run for the rollback (last line {last:?})"
        );
    }

    let to = p.convoy("rollback", &["--to", "2.0.0", "--output", "json"]);
    assert_eq!(to.code, 0, "{}", to.dump());
    for i in p.fleet.hosts() {
        assert_eq!(to.artifact_bytes(&p.fleet.name(i)), 0, "{}", to.dump());
        p.assert_current(i, "2.0.0");
        let switch_line = p
            .hook_lines(i)
            .into_iter()
            .rfind(|l| l.starts_with("switch "))
            .unwrap();
        assert!(
            switch_line.starts_with(&format!(
                "switch 2.0.0 {ROOT}/releases/2.0.0 {ROOT} cur=releases/2.0.0 "
            )),
            "h{i}: {switch_line:?}"
        );
    }

    // A release no host has: bad input, nothing changes anywhere.
    let hooks_before: Vec<_> = p.fleet.hosts().map(|i| p.hook_lines(i)).collect();
    let missing = p.convoy("rollback", &["--to", "9.9.9"]);
    assert_eq!(missing.code, 3, "{}", missing.dump());
    let all = missing.all();
    assert!(
        all.contains("9.9.9") && all.contains("h1") && all.contains("h2"),
        "the message should name the version and the hosts without it:\n{}",
        missing.dump()
    );
    for i in p.fleet.hosts() {
        p.assert_current(i, "2.0.0");
    }
    let hooks_after: Vec<_> = p.fleet.hosts().map(|i| p.hook_lines(i)).collect();
    assert_eq!(
        hooks_before, hooks_after,
        "hooks ran for a refused rollback"
    );

    // A release only some hosts have: refused as a whole, naming the others.
    p.fleet.exec_ok(
        2,
        &format!("rm -rf {ROOT}/releases/1.0.0 {ROOT}/.convoy/releases/1.0.0.json"),
    );
    let partial = p.convoy("rollback", &["--to", "1.0.0"]);
    assert_eq!(partial.code, 3, "{}", partial.dump());
    assert!(partial.all().contains("h2"), "{}", partial.dump());
    for i in p.fleet.hosts() {
        p.assert_current(i, "2.0.0");
    }
    let hooks_after: Vec<_> = p.fleet.hosts().map(|i| p.hook_lines(i)).collect();
    assert_eq!(
        hooks_before, hooks_after,
        "hooks ran for a refused rollback"
    );
}

#[test]
fn keep_prunes_old_releases_but_never_current_or_previous() {
    let p = Project::new(2);
    let versions = ["1.0.0", "2.0.0", "3.0.0", "4.0.0", "5.0.0"];
    for v in versions {
        p.artifact(v, 0);
        p.deploy_ok(v, &[]);
    }
    let expected: BTreeSet<String> = ["3.0.0", "4.0.0", "5.0.0"]
        .into_iter()
        .map(String::from)
        .collect();
    for i in p.fleet.hosts() {
        p.assert_current(i, "5.0.0");
        assert_eq!(p.releases(i), expected, "h{i}: releases kept with keep: 3");
        for v in &expected {
            assert_eq!(
                p.read(i, &format!("releases/{v}/VERSION")),
                format!("{v}\n")
            );
        }
        p.assert_no_leftovers(i);
    }

    // After a rollback to the oldest kept release, that release is "the one
    // before" the next deploy: it must survive pruning, the count still holds.
    let back = p.convoy("rollback", &["--to", "3.0.0"]);
    assert_eq!(back.code, 0, "{}", back.dump());
    p.artifact("6.0.0", 0);
    p.deploy_ok("6.0.0", &[]);
    for i in p.fleet.hosts() {
        p.assert_current(i, "6.0.0");
        let kept = p.releases(i);
        assert!(
            kept.contains("6.0.0") && kept.contains("3.0.0"),
            "h{i}: current (6.0.0) or the one before it (3.0.0) was pruned: {kept:?}"
        );
        assert_eq!(kept.len(), 3, "h{i}: keep: 3 but {kept:?}");
        p.assert_no_leftovers(i);
    }
    // ... and rollback goes back to it.
    let back = p.convoy("rollback", &[]);
    assert_eq!(back.code, 0, "{}", back.dump());
    for i in p.fleet.hosts() {
        p.assert_current(i, "3.0.0");
    }
}

#[test]
fn current_is_always_a_complete_release_during_the_switch() {
    let p = Project::new(2);
    p.artifact("1.0.0", 0);
    p.artifact("2.0.0", 256 * 1024);
    p.deploy_ok("1.0.0", &[]);

    let currents: Vec<PathBuf> = p.fleet.hosts().map(|i| p.path(i, "current")).collect();
    let stop = AtomicBool::new(false);
    let (r, bad, bad_count, seen) = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut bad = Vec::new();
            let mut bad_count = 0usize;
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            let mut note = |what: String| {
                bad_count += 1;
                if bad.len() < 20 {
                    bad.push(what);
                }
            };
            while !stop.load(Ordering::Relaxed) {
                for (n, cur) in currents.iter().enumerate() {
                    match std::fs::read_to_string(cur.join("VERSION")) {
                        Ok(v) if v == "1.0.0\n" || v == "2.0.0\n" => {
                            *seen.entry(format!("h{} {}", n + 1, v.trim())).or_default() += 1;
                        }
                        Ok(v) => note(format!("h{}: current/VERSION = {v:?}", n + 1)),
                        Err(e) => note(format!("h{}: current/VERSION: {e}", n + 1)),
                    }
                    if let Err(e) = std::fs::read_to_string(cur.join("config/hello.conf")) {
                        note(format!("h{}: current/config/hello.conf: {e}", n + 1));
                    }
                    if let Err(e) = std::fs::metadata(cur.join("bin/hello")) {
                        note(format!("h{}: current/bin/hello: {e}", n + 1));
                    }
                }
            }
            (bad, bad_count, seen)
        });
        let r = p.deploy("2.0.0", &[]);
        stop.store(true, Ordering::Relaxed);
        let (bad, bad_count, seen) = watcher.join().unwrap();
        (r, bad, bad_count, seen)
    });
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(
        bad_count, 0,
        "current was incomplete or wrong during the switch ({bad_count} times), first: {bad:#?}"
    );
    for i in p.fleet.hosts() {
        assert!(
            seen.get(&format!("h{i} 1.0.0")).is_some_and(|&n| n > 0),
            "the watcher never saw 1.0.0 on h{i}: {seen:?}"
        );
        p.assert_current(i, "2.0.0");
        assert_eq!(
            p.read(i, "current/config/hello.conf"),
            format!("host=h{i}\nversion=2.0.0\n")
        );
    }
}

#[test]
fn corrupted_transfer_fails_with_both_digests_and_leaves_nothing() {
    let p = Project::new(2);
    p.artifact("1.0.0", 0);
    p.deploy_ok("1.0.0", &[]);
    let v2 = p.artifact("2.0.0", 2 * 1024 * 1024);

    // On h2, corrupt any artifact being received: overwrite its first bytes
    // (sticks whatever the writer's access pattern) and append a byte, never
    // creating the file (`nocreat`): convoy removes it on the mismatch, and a
    // plain `>>` racing that removal would leave a file convoy never made. Bounded
    // (~15 s) and stopped early by /srv/stop-corrupter. It also looks for
    // `*.part.*` (not a spec name) so that it corrupts such files too; the
    // names it hit are checked against the spec at the end.
    let corrupter = format!(
        "for n in $(seq 3000); do \
           [ -e /srv/stop-corrupter ] && exit 0; \
           for f in {ROOT}/.convoy/artifacts/*.part {ROOT}/.convoy/artifacts/*.part.* \
                    {ROOT}/.convoy/artifacts/.tmp*; do \
             if [ -f \"$f\" ] && [ -s \"$f\" ]; then \
               printf 'CORRUPT!' | dd of=\"$f\" bs=8 count=1 conv=notrunc,nocreat 2>/dev/null; \
               printf x | dd of=\"$f\" oflag=append conv=notrunc,nocreat 2>/dev/null; \
               echo \"$f\" >> /srv/corrupter.hits; \
             fi; \
           done; \
           sleep 0.005; \
         done"
    );
    let (r, hits) = std::thread::scope(|s| {
        let c = s.spawn(|| p.fleet.exec(2, &corrupter));
        std::thread::sleep(Duration::from_millis(300));
        let r = p.deploy("2.0.0", &[]);
        std::fs::write(p.fleet.host_path(2, "/srv/stop-corrupter"), "").unwrap();
        c.join().unwrap();
        let hits = std::fs::read_to_string(p.fleet.host_path(2, "/srv/corrupter.hits"))
            .unwrap_or_default();
        (r, hits)
    });
    assert!(
        !hits.is_empty() || r.code != 0,
        "the corrupter never saw a temporary file under {ROOT}/.convoy/artifacts on h2 \
         (the test did not corrupt anything):\n{}",
        r.dump()
    );
    eprintln!("corrupter hits on h2:\n{hits}");
    assert_eq!(r.code, 2, "corrupter hits: {hits}\n{}", r.dump());
    assert_eq!(r.count("h2", "failed"), 1, "{}", r.dump());
    let lines = r.failed_lines("h2");
    let line = lines
        .iter()
        .find(|l| l.contains("sha256 mismatch"))
        .unwrap_or_else(|| panic!("no `sha256 mismatch` failure for h2:\n{}", r.dump()));
    let digests = hex_digests(line);
    assert!(
        digests.contains(&v2.sha),
        "the expected digest {} is not in {line:?}",
        v2.sha
    );
    assert!(
        digests.iter().any(|d| *d != v2.sha),
        "the actual digest is not in {line:?}"
    );
    p.assert_current(2, "1.0.0");
    for i in p.fleet.hosts() {
        p.assert_no_leftovers(i);
        p.assert_store_consistent(i);
    }
    // The file being received had a temporary name as the spec says.
    for f in hits.lines() {
        let base = f.rsplit('/').next().unwrap();
        assert!(
            base.ends_with(".part") || base.starts_with(".tmp"),
            "the artifact was received as {f}: temporary names must end in .part or start with .tmp"
        );
    }
}

#[test]
fn url_with_a_wrong_sha256_fails_with_both_digests() {
    let p = Project::new(2);
    p.artifact("1.0.0", 0);
    p.deploy_ok("1.0.0", &[]);

    // A URL whose content does not have the given sha256: every host fails.
    let v3 = release_tar_gz("3.0.0", 0);
    let v3_sha = sha256_hex(&v3);
    let wrong = sha256_hex(b"not the artifact");
    std::fs::create_dir_all(p.fleet.host_path(1, "/srv/www")).unwrap();
    std::fs::write(p.fleet.host_path(1, "/srv/www/hello-3.0.0.tar.gz"), &v3).unwrap();
    let server = HttpServer::start(&p.fleet, 1, "/srv/www", 8080, 60);
    p.write_playbook(
        &format!("{}/hello-{{{{ version }}}}.tar.gz", server.url),
        &format!("    sha256: \"{wrong}\"\n"),
        3,
    );
    let before: Vec<_> = p.fleet.hosts().map(|i| p.current(i)).collect();
    let r = p.deploy("3.0.0", &[]);
    assert_eq!(r.code, 2, "{}", r.dump());
    for i in p.fleet.hosts() {
        let name = p.fleet.name(i);
        let lines = r.failed_lines(&name);
        let line = lines
            .iter()
            .find(|l| l.contains("sha256 mismatch"))
            .unwrap_or_else(|| panic!("no `sha256 mismatch` failure for {name}:\n{}", r.dump()));
        let digests = hex_digests(line);
        assert!(
            digests.contains(&wrong) && digests.contains(&v3_sha),
            "{name}: expected {wrong} and actual {v3_sha} in {line:?}"
        );
        assert_eq!(p.current(i), before[i - 1], "{name}: current changed");
        assert!(
            !p.path(i, "releases/3.0.0").exists(),
            "{name}: release 3.0.0 made"
        );
        p.assert_no_leftovers(i);
        p.assert_store_consistent(i);
    }
    drop(server);
}

#[test]
fn full_disk_fails_with_the_path_and_leaves_nothing() {
    let p = Project::new(1);
    p.fleet.exec_ok(
        1,
        &format!("mkdir -p {ROOT} && mount -t tmpfs -o size=256k tmpfs {ROOT}"),
    );
    p.artifact("1.0.0", 0);
    p.artifact("2.0.0", 2 * 1024 * 1024);
    let first = p.deploy("1.0.0", &[]);
    assert_eq!(first.code, 0, "{}", first.dump());
    let readlink = |p: &Project| p.fleet.exec(1, &format!("readlink {ROOT}/current"));
    assert_eq!(
        String::from_utf8_lossy(&readlink(&p).stdout).trim(),
        "releases/1.0.0"
    );

    let r = p.deploy("2.0.0", &[]);
    assert_eq!(r.code, 2, "{}", r.dump());
    // Checked inside the host: the tmpfs is only mounted there.
    assert_eq!(
        String::from_utf8_lossy(&readlink(&p).stdout).trim(),
        "releases/1.0.0",
        "current changed"
    );
    assert_eq!(
        p.fleet.exec_ok(1, &format!("cat {ROOT}/current/VERSION")),
        "1.0.0\n"
    );
    p.assert_no_leftovers(1);
    let listing = p.fleet.exec_ok(
        1,
        &format!("ls -A {ROOT}/releases {ROOT}/.convoy/artifacts"),
    );
    for name in listing.lines() {
        assert!(
            !(name.starts_with(".tmp") || name.ends_with(".part") || name.contains(".part.")),
            "left behind: {name}\n{listing}"
        );
    }
    assert!(
        !listing.contains(&sha256_hex(
            &std::fs::read(p.dir().join("dist/hello-2.0.0.tar.gz")).unwrap()
        )),
        "a partial 2.0.0 artifact is in the store:\n{listing}"
    );
    // The message, checked last so that a wrong message does not hide a wrong state.
    let lines = r.failed_lines("h1");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("No space left on device") && l.contains(&format!("{ROOT}/"))),
        "no failure naming a path under {ROOT} with `No space left on device`:\n{}",
        r.dump()
    );
    p.fleet.exec_ok(1, &format!("umount {ROOT}"));
}

#[test]
fn unsafe_archives_are_refused_before_any_host_is_contacted() {
    let p = Project::new(1);
    let version = b"1.0.0\n".as_slice();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "../evil",
            tar_gz(&[
                Entry::File("VERSION", version, 0o644),
                Entry::File("../evil", b"evil\n", 0o644),
            ]),
        ),
        (
            "/etc/evil",
            tar_gz(&[
                Entry::File("VERSION", version, 0o644),
                Entry::File("/etc/evil", b"evil\n", 0o644),
            ]),
        ),
        (
            "etc-link",
            tar_gz(&[
                Entry::File("VERSION", version, 0o644),
                Entry::Symlink("etc-link", "../../../etc"),
            ]),
        ),
    ];
    for sshd_up in [true, false] {
        if !sshd_up {
            // Reaching the host now fails (exit 4): exit 3 proves the archive
            // was checked before any connection.
            p.fleet.stop_sshd(1);
        }
        for (entry, bytes) in &cases {
            p.write_dist("1.0.0", bytes);
            let r = p.deploy("1.0.0", &[]);
            assert_eq!(r.code, 3, "{entry} (sshd up: {sshd_up}): {}", r.dump());
            let all = r.all();
            assert!(
                all.contains("unsafe") && all.contains(entry),
                "the message should say `unsafe` and name {entry:?}:\n{}",
                r.dump()
            );
            assert!(
                !p.fleet.host_path(1, ROOT).exists(),
                "{entry}: {ROOT} was created on the host"
            );
            assert!(!p.fleet.host_path(1, "/srv/evil").exists());
            assert!(!p.fleet.host_path(1, "/srv/hooks.log").exists());
        }
    }
}

#[test]
fn pull_mode_hosts_fetch_the_url_themselves() {
    let p = Project::new(2);
    let bytes = release_tar_gz("1.0.0", 0);
    let sha = sha256_hex(&bytes);
    std::fs::create_dir_all(p.fleet.host_path(1, "/srv/www")).unwrap();
    std::fs::write(p.fleet.host_path(1, "/srv/www/hello-1.0.0.tar.gz"), &bytes).unwrap();
    let server = HttpServer::start(&p.fleet, 1, "/srv/www", 8080, 60);
    p.write_playbook(
        &format!("{}/hello-{{{{ version }}}}.tar.gz", server.url),
        &format!("    sha256: \"{sha}\"\n"),
        3,
    );

    let r = p.deploy("1.0.0", &["--output", "json"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in p.fleet.hosts() {
        assert_eq!(r.artifact_bytes(&p.fleet.name(i)), 0, "{}", r.dump());
        p.assert_current(i, "1.0.0");
        assert_eq!(p.read(i, "current/bin/hello"), hello_script("1.0.0"));
        assert_eq!(
            p.read(i, "current/config/hello.conf"),
            format!("host=h{i}\nversion=1.0.0\n")
        );
        let stored = std::fs::read(p.path(i, &format!(".convoy/artifacts/{sha}")))
            .unwrap_or_else(|e| panic!("h{i}: artifact not in the store: {e}"));
        assert_eq!(stored, bytes);
        let meta: Value = serde_json::from_str(&p.read(i, ".convoy/releases/1.0.0.json")).unwrap();
        assert_eq!(meta["sha256"], sha.as_str(), "{meta}");
        p.assert_no_leftovers(i);
    }
    drop(server);
}

#[test]
fn phase_prepare_stages_without_switching() {
    let p = Project::new(2);
    p.artifact("1.0.0", 0);
    p.artifact("2.0.0", 0);

    // From scratch: staged everywhere, nothing live.
    let r = p.deploy("1.0.0", &["--phase", "prepare"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in p.fleet.hosts() {
        assert_eq!(p.read(i, "releases/1.0.0/VERSION"), "1.0.0\n");
        assert_eq!(
            p.read(i, "releases/1.0.0/config/hello.conf"),
            format!("host=h{i}\nversion=1.0.0\n")
        );
        assert!(
            std::fs::symlink_metadata(p.path(i, "current")).is_err(),
            "h{i}: current exists after --phase prepare"
        );
        let hooks = p.hook_lines(i);
        assert!(
            hooks.iter().all(|l| l.starts_with("prepare ")),
            "h{i}: only prepare hooks may run: {hooks:?}"
        );
        assert_eq!(hooks.len(), 1, "h{i}: {hooks:?}");
    }
    let full = p.deploy("1.0.0", &["--output", "json"]);
    assert_eq!(full.code, 0, "{}", full.dump());
    for i in p.fleet.hosts() {
        assert_eq!(full.artifact_bytes(&p.fleet.name(i)), 0, "{}", full.dump());
        p.assert_current(i, "1.0.0");
    }

    // With a live release: staged next to it, current untouched.
    let r = p.deploy("2.0.0", &["--phase", "prepare"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in p.fleet.hosts() {
        assert_eq!(p.read(i, "releases/2.0.0/VERSION"), "2.0.0\n");
        p.assert_current(i, "1.0.0");
        assert!(
            !p.hook_lines(i)
                .iter()
                .any(|l| l.starts_with("switch 2.0.0")),
            "h{i}: switch hook ran in --phase prepare"
        );
    }
    let full = p.deploy("2.0.0", &["--output", "json"]);
    assert_eq!(full.code, 0, "{}", full.dump());
    for i in p.fleet.hosts() {
        assert_eq!(full.artifact_bytes(&p.fleet.name(i)), 0, "{}", full.dump());
        p.assert_current(i, "2.0.0");
        assert!(
            p.hook_lines(i)
                .iter()
                .any(|l| l.starts_with("switch 2.0.0")),
            "h{i}: no switch hook for 2.0.0"
        );
        p.assert_no_leftovers(i);
    }
}

#[test]
fn patch_makes_a_hard_linked_release_and_rollback_undoes_it() {
    let p = Project::new(2);
    p.artifact("1.0.0", 0);
    p.deploy_ok("1.0.0", &[]);

    let fix = write_file(p.dir(), "patch/VERSION", "1.0.0-hotfix\n");
    let spec = format!("{}:VERSION", fix.display());
    let r = p.convoy("patch", &["--file", &spec]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let patched = "releases/1.0.0+patch.1";
    for i in p.fleet.hosts() {
        assert_eq!(
            p.current(i).as_deref(),
            Some(patched),
            "h{i}: current after patch\n{}",
            r.dump()
        );
        assert_eq!(p.read(i, "current/VERSION"), "1.0.0-hotfix\n");
        // The original release is untouched (the patched file was replaced, not written through a link).
        assert_eq!(p.read(i, "releases/1.0.0/VERSION"), "1.0.0\n");
        assert_ne!(
            p.ino(i, &format!("{patched}/VERSION")),
            p.ino(i, "releases/1.0.0/VERSION")
        );
        for f in ["bin/hello", "config/hello.conf"] {
            assert_eq!(
                p.ino(i, &format!("{patched}/{f}")),
                p.ino(i, &format!("releases/1.0.0/{f}")),
                "h{i}: {f} is not a hard link of the original"
            );
        }
        assert_eq!(
            p.fleet
                .exec_ok(i, &format!("readlink -f {ROOT}/{patched}/log"))
                .trim(),
            format!("{ROOT}/shared/log")
        );
        let meta: Value =
            serde_json::from_str(&p.read(i, ".convoy/releases/1.0.0+patch.1.json")).unwrap();
        assert_eq!(meta["version"], "1.0.0+patch.1", "{meta}");
        p.assert_no_leftovers(i);
    }

    let back = p.convoy("rollback", &["--output", "json"]);
    assert_eq!(back.code, 0, "{}", back.dump());
    for i in p.fleet.hosts() {
        assert_eq!(back.artifact_bytes(&p.fleet.name(i)), 0, "{}", back.dump());
        p.assert_current(i, "1.0.0");
    }

    // The next patch gets the next number.
    let fix2 = write_file(p.dir(), "patch2/VERSION", "1.0.0-hotfix2\n");
    let spec2 = format!("{}:VERSION", fix2.display());
    let r = p.convoy("patch", &["--file", &spec2]);
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in p.fleet.hosts() {
        assert_eq!(
            p.current(i).as_deref(),
            Some("releases/1.0.0+patch.2"),
            "h{i}: current after the second patch\n{}",
            r.dump()
        );
        assert_eq!(p.read(i, "current/VERSION"), "1.0.0-hotfix2\n");
        assert_eq!(p.read(i, &format!("{patched}/VERSION")), "1.0.0-hotfix\n");
    }
}

#[test]
fn status_reports_versions_and_marks_the_odd_host() {
    let p = Project::new(3);
    p.artifact("1.0.0", 0);
    p.artifact("2.0.0", 0);
    p.deploy_ok("1.0.0", &[]);
    p.deploy_ok("2.0.0", &["-l", "h1:h2"]);
    p.assert_current(1, "2.0.0");
    p.assert_current(2, "2.0.0");
    p.assert_current(3, "1.0.0");

    let r = p.convoy("status", &["--output", "json"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    let status: Value = serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("status JSON: {e}\n{}", r.dump()));
    assert_eq!(status["majority"], "2.0.0", "{status}");
    for (host, current, releases, differs) in [
        ("h1", "2.0.0", vec!["1.0.0", "2.0.0"], false),
        ("h2", "2.0.0", vec!["1.0.0", "2.0.0"], false),
        ("h3", "1.0.0", vec!["1.0.0"], true),
    ] {
        let h = &status["hosts"][host];
        assert_eq!(h["current"], current, "{host}: {status}");
        assert_eq!(
            h["releases"],
            serde_json::json!(releases),
            "{host}: {status}"
        );
        assert_eq!(h["differs"], differs, "{host}: {status}");
        assert!(
            h["deployed_at"].as_str().is_some_and(|s| !s.is_empty()),
            "{host}: {status}"
        );
        assert!(
            h["deployed_by"]
                .as_str()
                .is_some_and(|s| s.starts_with("root@")),
            "{host}: {status}"
        );
    }

    let text = p.convoy("status", &[]);
    assert_eq!(text.code, 0, "{}", text.dump());
    let row = |host: &str| -> &str {
        text.stdout
            .lines()
            .find(|l| {
                l.split_whitespace()
                    .any(|w| w.trim_matches(|c: char| c == '*' || c == '|') == host)
            })
            .unwrap_or_else(|| panic!("no row for {host}:\n{}", text.dump()))
    };
    assert!(
        row("h3").contains('*'),
        "h3 is not marked:\n{}",
        text.stdout
    );
    assert!(row("h3").contains("1.0.0"), "{}", text.stdout);
    for host in ["h1", "h2"] {
        assert!(
            !row(host).contains('*'),
            "{host} is marked:\n{}",
            text.stdout
        );
        assert!(row(host).contains("2.0.0"), "{}", text.stdout);
    }
}

/// Regression: `status`, `unlock` and `plan` ignored the play's `become`,
/// so as an unprivileged user they read nothing under a root-only
/// distribution root (status said "no release", unlock "not locked", plan
/// showed no current version) while `run` worked. As user `convoy` with
/// `become: true` and /srv/hello readable by root only, all four agree.
#[test]
fn status_unlock_and_plan_use_the_plays_become() {
    let p = Project::new(2);
    std::fs::write(
        &p.inventory,
        std::fs::read_to_string(&p.inventory)
            .unwrap()
            .replace("  vars:\n", "  vars:\n    ansible_user: convoy\n"),
    )
    .unwrap();
    let text = std::fs::read_to_string(&p.playbook)
        .unwrap()
        .replace("  hosts: app\n", "  hosts: app\n  become: true\n");
    std::fs::write(&p.playbook, text).unwrap();
    p.artifact("1.0.0", 0);
    p.deploy_ok("1.0.0", &[]);
    for i in p.fleet.hosts() {
        p.fleet
            .exec_ok(i, "chmod 0700 /srv/hello && chown root:root /srv/hello");
        // Proof that the ssh user alone cannot see the release.
        let out = p.fleet.ssh_as(
            i,
            "convoy",
            "readlink /srv/hello/current || echo unreadable",
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "unreadable",
            "h{i}"
        );
    }

    let status = p.convoy("status", &["--output", "json"]);
    assert_eq!(status.code, 0, "{}", status.dump());
    let json: Value = serde_json::from_str(status.stdout.trim()).unwrap();
    for host in ["h1", "h2"] {
        assert_eq!(json["hosts"][host]["current"], "1.0.0", "{host}: {json}");
    }

    p.artifact("2.0.0", 0);
    let plan = p.convoy("plan", &["-e", "version=2.0.0"]);
    assert_eq!(plan.code, 0, "{}", plan.dump());
    assert!(
        plan.stdout.contains("1.0.0"),
        "plan does not see current:\n{}",
        plan.dump()
    );

    // A lock left behind, cleared through sudo.
    for i in p.fleet.hosts() {
        p.fleet.exec_ok(i, "mkdir -p /srv/hello/.convoy/lock && echo 'someone@else pid=1 run=x since=y' > /srv/hello/.convoy/lock/holder");
    }
    let unlock = p.convoy("unlock", &[]);
    assert_eq!(unlock.code, 0, "{}", unlock.dump());
    assert!(
        !unlock.stdout.contains("was not locked"),
        "{}",
        unlock.dump()
    );
    for i in p.fleet.hosts() {
        assert!(
            !p.path(i, ".convoy/lock").exists(),
            "h{i}: lock still there"
        );
    }
}

/// Regression: the release steps (lock, prepare, switch, prune) escalated
/// only by the play's `become:` keyword, while tasks honoured the
/// inventory's `ansible_become` (which, as in Ansible, overrides the
/// keyword). A deploy as user `convoy` with `ansible_become: true` in the
/// inventory could not write /srv. Now every step of the release, and
/// `status`, escalate the same way as the tasks.
#[test]
fn inventory_ansible_become_escalates_the_release_steps() {
    let p = Project::new(2);
    std::fs::write(
        &p.inventory,
        std::fs::read_to_string(&p.inventory).unwrap().replace(
            "  vars:\n",
            "  vars:\n    ansible_user: convoy\n    ansible_become: true\n",
        ),
    )
    .unwrap();
    p.artifact("1.0.0", 0);
    let r = p.deploy("1.0.0", &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in p.fleet.hosts() {
        p.assert_current(i, "1.0.0");
        let owner = p.fleet.exec_ok(i, "stat -c %U /srv/hello/releases/1.0.0");
        assert_eq!(
            owner.trim(),
            "root",
            "h{i}: the release was not made through sudo"
        );
    }
    let status = p.convoy("status", &["--output", "json"]);
    assert_eq!(status.code, 0, "{}", status.dump());
    let json: Value = serde_json::from_str(status.stdout.trim()).unwrap();
    assert_eq!(json["hosts"]["h1"]["current"], "1.0.0", "{json}");

    // A method convoy cannot honour is refused before any host is touched.
    std::fs::write(
        &p.inventory,
        std::fs::read_to_string(&p.inventory).unwrap().replace(
            "    ansible_become: true\n",
            "    ansible_become: true\n    ansible_become_method: su\n",
        ),
    )
    .unwrap();
    p.artifact("2.0.0", 0);
    let r = p.deploy("2.0.0", &[]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.all()
            .contains("ansible_become_method `su` is not supported"),
        "{}",
        r.dump()
    );
    for i in p.fleet.hosts() {
        p.assert_current(i, "1.0.0");
        assert!(!p.path(i, "releases/2.0.0").exists(), "h{i}");
    }
}
