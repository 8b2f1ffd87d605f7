//! No value ever becomes shell code. Each test is what broke, named:
//! hostile values in a distribution's root, shared paths, release file
//! destinations, patch paths and host addresses, sent through every step
//! (probe, lock, ship, switch, prune, status, rollback, patch, unlock), over
//! the local connection and on the fleet. Each value aims a `touch` at a
//! marker directory; afterwards the values are found exactly where the
//! playbook put them and no marker exists. What can never be valid is
//! refused at load, exit 3, before any host is contacted.

mod support;

use std::path::{Path, PathBuf};

use support::run::{Run, run_in};
use support::tarball::release_tar_gz;
use support::{Fleet, workdir, write_file};

const TEMPLATE: &str = "host={{ inventory_hostname }}\nversion={{ version }}\n";

/// A YAML scalar holding `s` exactly (JSON strings are YAML).
fn yaml(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// The values of one hostile deploy, each aiming `touch` at `markers`.
struct Hostile {
    root: String,
    shared: Vec<String>,
    dest: String,
    patch: String,
}

impl Hostile {
    fn new(root_parent: &str, markers: &str) -> Hostile {
        let m = markers;
        Hostile {
            root: format!(
                "{root_parent}/my app $(touch {m}/root) `touch {m}/root-bt` it's \"q\"; touch {m}/root-semi *"
            ),
            shared: vec![
                format!("logs $(touch {m}/shared)"),
                format!("it's \"here\" `touch {m}/shared-bt`; -rf"),
            ],
            dest: format!("conf/a \"b\" 'c' $(touch {m}/dest).conf"),
            patch: format!("p $(touch {m}/patch) \"x\""),
        }
    }

    fn playbook(&self) -> String {
        let shared: Vec<String> = self.shared.iter().map(|s| yaml(s)).collect();
        format!(
            r#"- name: Deploy hello
  hosts: app
  vars: {{ version: "1.0.0" }}
  distribution:
    name: hello
    version: "{{{{ version }}}}"
    source: "dist/hello-{{{{ version }}}}.tar.gz"
    root: {root}
    shared: [{shared}]
    keep: 1
    templates:
      - src: templates/hello.conf.j2
        dest: {dest}
  rollout:
    magic_rollback: 3s
"#,
            root = yaml(&self.root),
            shared = shared.join(", "),
            dest = yaml(&self.dest),
        )
    }
}

/// A project directory: the playbook, its template, two artifacts.
fn project(dir: &Path, playbook: &str) {
    write_file(dir, "deploy.yml", playbook);
    write_file(dir, "templates/hello.conf.j2", TEMPLATE);
    for v in ["1.0.0", "2.0.0"] {
        let path = dir.join(format!("dist/hello-{v}.tar.gz"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, release_tar_gz(v, 0)).unwrap();
    }
}

fn convoy(dir: &Path, args: &[&str]) -> Run {
    run_in(dir, args)
}

fn ok(run: Run, what: &str) -> Run {
    assert_eq!(run.code, 0, "{what}: {}", run.dump());
    run
}

/// Every file under `dir` (none may exist: each is a value run as code).
fn made(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            out.extend(made(&entry.path()));
        }
        out.push(entry.path());
    }
    out
}

/// Checks the release layout under `root` (a control-side path) for `v`.
fn assert_release(root: &Path, h: &Hostile, host: &str, v: &str) {
    let release = root.join("releases").join(v);
    assert_eq!(
        std::fs::read_to_string(release.join(&h.dest)).unwrap(),
        format!("host={host}\nversion={v}\n"),
        "template at its exact dest"
    );
    for shared in &h.shared {
        assert_eq!(
            std::fs::read_link(release.join(shared)).unwrap(),
            Path::new(&h.root).join("shared").join(shared),
            "shared path linked exactly"
        );
        assert!(root.join("shared").join(shared).is_dir());
    }
    assert_eq!(
        std::fs::read_to_string(release.join("VERSION")).unwrap(),
        format!("{v}\n")
    );
}

/// run, again (in place), 2.0.0, status, rollback, patch, unlock: every
/// script convoy sends for a distribution. `root` is where the hosts'
/// root is seen from here.
fn every_step(dir: &Path, inventory: &str, h: &Hostile, roots: &[(String, PathBuf)]) {
    let args = |sub: &'static str| vec![sub, "deploy.yml", "-i", inventory];
    ok(convoy(dir, &args("run")), "first deploy");
    for (host, root) in roots {
        assert_eq!(
            std::fs::read_link(root.join("current")).unwrap(),
            Path::new("releases/1.0.0")
        );
        assert_release(root, h, host, "1.0.0");
    }
    ok(convoy(dir, &args("run")), "deploy again, in place");
    let mut two = args("run");
    two.extend(["-e", "version=2.0.0"]);
    ok(convoy(dir, &two), "deploy 2.0.0");
    for (host, root) in roots {
        assert_release(root, h, host, "2.0.0");
    }
    let status = ok(convoy(dir, &args("status")), "status");
    assert!(status.stdout.contains("2.0.0"), "{}", status.dump());
    ok(convoy(dir, &args("rollback")), "rollback");
    for (_, root) in roots {
        assert_eq!(
            std::fs::read_link(root.join("current")).unwrap(),
            Path::new("releases/1.0.0")
        );
    }
    let local = write_file(dir, "patch.txt", "patched\n");
    let file_arg = format!("{}:{}", local.display(), h.patch);
    let mut patch = args("patch");
    patch.extend(["--file", &file_arg]);
    ok(convoy(dir, &patch), "patch");
    for (_, root) in roots {
        assert_eq!(
            std::fs::read_to_string(root.join("releases/1.0.0+patch.1").join(&h.patch)).unwrap(),
            "patched\n"
        );
    }
    ok(convoy(dir, &args("unlock")), "unlock");
    // The magic rollback timers (confirmed, so they only tidy up) run out.
    std::thread::sleep(std::time::Duration::from_secs(4));
}

/// The timers of [`every_step`] have run and tidied up; no host rolled back.
fn assert_timers_done(roots: &[(String, PathBuf)]) {
    for (_, root) in roots {
        assert!(root.join(".convoy/magic").is_dir(), "no timer was armed");
        let magic = made(&root.join(".convoy/magic"));
        assert_eq!(magic, Vec::<PathBuf>::new(), "timers left behind");
        assert_eq!(
            std::fs::read_link(root.join("current")).unwrap(),
            Path::new("releases/1.0.0+patch.1")
        );
    }
}

const LOCAL_INVENTORY: &str = "all:\n  children:\n    app:\n      hosts:\n        local1:\n          ansible_connection: local\n";

#[test]
fn a_root_shared_path_and_template_dest_with_shell_code_deploy_as_data_locally() {
    let work = workdir();
    let dir = work.path();
    let markers = dir.join("markers");
    std::fs::create_dir(&markers).unwrap();
    let h = Hostile::new(
        &dir.join("hosts").display().to_string(),
        &markers.display().to_string(),
    );
    project(dir, &h.playbook());
    write_file(dir, "inv.yml", LOCAL_INVENTORY);
    let roots = [("local1".to_owned(), PathBuf::from(&h.root))];
    every_step(dir, "inv.yml", &h, &roots);
    assert_eq!(made(&markers), Vec::<PathBuf>::new(), "a value ran as code");
    assert_timers_done(&roots);
}

#[test]
fn a_root_shared_path_and_template_dest_with_shell_code_deploy_as_data_on_the_fleet() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let dir = work.path();
    // The markers are aimed at root's home on the hosts, where the fleet saw them appear.
    let h = Hostile::new("/srv/hostile", "/root/markers");
    project(dir, &h.playbook());
    let inventory = support::inventory::app_inventory(&fleet, dir, "");
    for i in fleet.hosts() {
        fleet.exec_ok(i, "mkdir -p /root/markers");
    }
    let roots: Vec<(String, PathBuf)> = fleet
        .hosts()
        .map(|i| (fleet.name(i), fleet.host_path(i, &h.root)))
        .collect();
    every_step(dir, inventory.to_str().unwrap(), &h, &roots);
    for i in fleet.hosts() {
        let home = fleet.host_path(i, "/root");
        assert_eq!(
            made(&home.join("markers")),
            Vec::<PathBuf>::new(),
            "h{i}: a value ran as code"
        );
    }
    assert_timers_done(&roots);
}

/// A playbook whose distribution has `fields` (root, version, shared) added.
fn playbook_with(fields: &str) -> String {
    format!(
        r#"- name: Deploy hello
  hosts: app
  vars: {{ version: "1.0.0" }}
  distribution:
    name: hello
    source: "dist/hello-1.0.0.tar.gz"
{fields}
    templates:
      - src: templates/hello.conf.j2
        dest: conf/hello.conf
"#
    )
}

#[test]
fn values_that_can_never_be_valid_are_refused_at_load_before_any_host() {
    let work = workdir();
    let dir = work.path();
    let m = dir.join("markers");
    std::fs::create_dir(&m).unwrap();
    let m = m.display();
    let root = dir.join("srv").display().to_string();
    // A port nobody listens on (loopback, so no traffic leaves this machine):
    // contacting it would be exit 4, not 3.
    write_file(
        dir,
        "inv.yml",
        "all:\n  children:\n    app:\n      hosts:\n        far:\n          ansible_host: 127.0.0.1\n          ansible_port: 1\n",
    );
    let cases = [
        (
            format!("    root: {}\n    version: \"$(touch {m}/v)\"", yaml(&root)),
            "version \"$(touch",
        ),
        (
            format!("    root: {}\n    version: \"-rf\"", yaml(&root)),
            "version \"-rf\" may only hold",
        ),
        (
            "    root: srv/relative".to_owned(),
            "must be an absolute path",
        ),
        (
            format!("    root: {}", yaml(&format!("{root}/../etc"))),
            "no `.` or `..`",
        ),
        (
            format!("    root: {}", yaml(&format!("{root}//x"))),
            "no `//`",
        ),
        (
            format!("    root: {}", yaml(&format!("{root}/a\ntouch {m}/nl"))),
            "must not hold control characters",
        ),
        (
            format!("    root: {}", yaml(&format!("{root}/-x"))),
            "starting with `-`",
        ),
        (
            format!("    root: {}\n    shared: [\"../escape\"]", yaml(&root)),
            "shared path `../escape` must be relative, without `..`",
        ),
        (
            format!("    root: {}\n    shared: [\"/etc\"]", yaml(&root)),
            "shared path `/etc` must be relative, without `..`",
        ),
    ];
    for (field, message) in cases {
        let field = if field.contains("version:") {
            field
        } else {
            format!("{field}\n    version: \"1.0.0\"")
        };
        project(dir, &playbook_with(&field));
        let run = convoy(dir, &["run", "deploy.yml", "-i", "inv.yml"]);
        assert_eq!(run.code, 3, "{field}: {}", run.dump());
        assert!(run.stderr.contains(message), "{field}: {}", run.dump());
        assert!(
            run.stderr.contains("deploy.yml:"),
            "{field}: located: {}",
            run.dump()
        );
        assert!(!Path::new(&root).exists(), "{field}: the root was made");
    }
    // Release file destinations are checked as rendered, per host.
    let playbook = playbook_with(&format!(
        "    root: {}\n    version: \"1.0.0\"",
        yaml(&root)
    ))
    .replace(
        "dest: conf/hello.conf",
        "dest: \"../../{{ inventory_hostname }}\"",
    );
    project(dir, &playbook);
    let run = convoy(dir, &["run", "deploy.yml", "-i", "inv.yml"]);
    assert_eq!(run.code, 3, "{}", run.dump());
    assert!(
        run.stderr
            .contains("template dest \"../../far\" must stay inside the release"),
        "{}",
        run.dump()
    );
    assert_eq!(made(&dir.join("markers")), Vec::<PathBuf>::new());
}

#[test]
fn a_host_address_or_user_starting_with_a_dash_is_refused_at_load() {
    let work = workdir();
    let dir = work.path();
    let m = dir.join("markers");
    std::fs::create_dir(&m).unwrap();
    let root = dir.join("srv").display().to_string();
    project(
        dir,
        &playbook_with(&format!(
            "    root: {}\n    version: \"1.0.0\"",
            yaml(&root)
        )),
    );
    let command = format!("-oProxyCommand=touch {}/ssh", m.display());
    let cases = [
        (
            format!(
                "        web1:\n          ansible_host: {}\n",
                yaml(&command)
            ),
            "host web1: ansible_host",
        ),
        (
            format!(
                "        web1:\n          ansible_host: 127.0.0.1\n          ansible_port: 1\n          ansible_user: {}\n",
                yaml(&command)
            ),
            "host web1: ansible_user",
        ),
        (format!("        {}:\n", yaml(&command)), "its name"),
    ];
    for (host, message) in cases {
        write_file(
            dir,
            "inv.yml",
            &format!("all:\n  children:\n    app:\n      hosts:\n{host}"),
        );
        let run = convoy(dir, &["run", "deploy.yml", "-i", "inv.yml"]);
        assert_eq!(run.code, 3, "{host}: {}", run.dump());
        assert!(
            run.stderr.contains(message) && run.stderr.contains("starts with `-`"),
            "{host}: {}",
            run.dump()
        );
    }
    assert_eq!(made(&m), Vec::<PathBuf>::new(), "ssh ran the option");
}

/// Hides `tools` on host `i` (a character device over each: `command -v`
/// no longer finds it), inside the host's own mount namespace.
fn hide(fleet: &Fleet, i: usize, tools: &[&str]) {
    for tool in tools {
        fleet.exec_ok(
            i,
            &format!("p=$(command -v {tool}) && mount --bind /dev/null \"$p\""),
        );
    }
}

const COPY_PLAY: &str = "- name: a file\n  hosts: app\n  tasks:\n    - name: a file\n      copy: { content: \"x\\n\", dest: /srv/copied }\n";

#[test]
fn a_host_without_sha256sum_says_so_and_falls_back_instead_of_a_mismatch() {
    let fleet = Fleet::start(2);
    let work = workdir();
    let dir = work.path();
    let root = "/srv/hello";
    project(
        dir,
        &playbook_with(&format!("    root: {root}\n    version: \"1.0.0\"")),
    );
    write_file(dir, "copy.yml", COPY_PLAY);
    let inventory = support::inventory::app_inventory(&fleet, dir, "");
    let inventory = inventory.to_str().unwrap();
    // h1 has no tool at all; h2 only `shasum`.
    hide(&fleet, 1, &["sha256sum", "shasum", "openssl"]);
    hide(&fleet, 2, &["sha256sum"]);
    assert!(!fleet.exec(1, "command -v sha256sum").status.success());
    let (h1, h2) = (fleet.name(1), fleet.name(2));

    let run = convoy(dir, &["run", "deploy.yml", "-i", inventory, "-l", &h1]);
    assert_eq!(run.code, 2, "{}", run.dump());
    let all = run.all();
    assert!(
        all.contains(
            "no sha256 tool on this host (looked for sha256sum, shasum, openssl, busybox)"
        ),
        "{all}"
    );
    assert!(!all.contains("mismatch"), "{all}");
    assert!(
        fleet
            .host_path(1, &format!("{root}/current"))
            .symlink_metadata()
            .is_err()
    );
    assert_eq!(run.count(&h1, "failed"), 1, "{}", run.dump());
    // The fallback: h2 deploys.
    let run = convoy(dir, &["run", "deploy.yml", "-i", inventory, "-l", &h2]);
    assert_eq!(run.code, 0, "{}", run.dump());
    assert_eq!(
        std::fs::read_link(fleet.host_path(2, &format!("{root}/current"))).unwrap(),
        Path::new("releases/1.0.0")
    );

    // copy: the file is new on both; then h1 cannot say whether it
    // differs (it fails with the reason, not "changed" on every run) and
    // h2 (shasum) knows it does not.
    let first = convoy(dir, &["run", "copy.yml", "-i", inventory]);
    assert_eq!(first.code, 0, "{}", first.dump());
    let again = convoy(dir, &["run", "copy.yml", "-i", inventory]);
    assert_eq!(again.code, 2, "{}", again.dump());
    assert!(
        again
            .all()
            .contains("cannot check /srv/copied: no sha256 tool on this host"),
        "{}",
        again.dump()
    );
    assert_eq!(again.count(&h1, "failed"), 1, "{}", again.dump());
    assert_eq!(again.count(&h2, "changed"), 0, "{}", again.dump());
}

/// A local project whose 1.0.0 artifact is `archive`.
fn local_project(archive: Vec<u8>) -> (tempfile::TempDir, String) {
    let work = workdir();
    let root = work.path().join("srv").display().to_string();
    project(
        work.path(),
        &playbook_with(&format!(
            "    root: {}\n    version: \"1.0.0\"",
            yaml(&root)
        )),
    );
    std::fs::write(work.path().join("dist/hello-1.0.0.tar.gz"), archive).unwrap();
    write_file(work.path(), "inv.yml", LOCAL_INVENTORY);
    (work, root)
}

#[test]
fn a_chain_of_links_that_together_leave_the_release_is_refused_before_any_host() {
    use support::tarball::{Entry, tar_gz};
    // As text each link stays inside; walked, `x` is the release's parent.
    let (work, root) = local_project(tar_gz(&[
        Entry::File("VERSION", b"1.0.0\n", 0o644),
        Entry::Dir("a/"),
        Entry::Dir("a/b/"),
        Entry::Symlink("a/b/up", ".."),
        Entry::Symlink("a/up2", "b/up/.."),
        Entry::Symlink("x", "a/up2/.."),
    ]));
    let run = convoy(work.path(), &["run", "deploy.yml", "-i", "inv.yml"]);
    assert_eq!(run.code, 3, "{}", run.dump());
    assert!(
        run.stderr.contains("unsafe")
            && run.stderr.contains("x")
            && run.stderr.contains("link points outside the release"),
        "{}",
        run.dump()
    );
    assert!(!Path::new(&root).exists(), "the host was touched");
}

#[test]
fn a_failed_unpack_names_the_entry_that_failed_not_only_tars_last_line() {
    use support::tarball::{Entry, tar_gz};
    // `a` is a file, so `a/b` cannot be written: GNU tar says so, then
    // ends with "Exiting with failure status due to previous errors".
    let (work, _root) = local_project(tar_gz(&[
        Entry::File("VERSION", b"1.0.0\n", 0o644),
        Entry::File("a", b"a file\n", 0o644),
        Entry::File("a/b", b"below a file\n", 0o644),
    ]));
    let run = convoy(work.path(), &["run", "deploy.yml", "-i", "inv.yml"]);
    assert_eq!(run.code, 2, "{}", run.dump());
    let all = run.all();
    assert!(all.contains("cannot unpack into"), "{all}");
    assert!(all.contains("a/b: Cannot open: Not a directory"), "{all}");
    assert!(!all.contains("Exiting with failure status"), "{all}");
}
