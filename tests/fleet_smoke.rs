//! Tests of the test fleet itself (tests/fleet/fleet.sh + tests/support):
//! no convoy involved. They need root; each test has its own fleet, so they
//! run in parallel.

mod support;

use std::path::Path;
use std::process::Command;
use support::{Fleet, ok_stdout};

fn stdout(out: std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Processes inside a network namespace (`ip netns pids`).
fn netns_pids(ns: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .unwrap();
    stdout(out).split_whitespace().map(str::to_string).collect()
}

fn netns_list() -> String {
    stdout(Command::new("ip").args(["netns", "list"]).output().unwrap())
}

#[test]
fn ssh_works_as_root_and_as_convoy_with_sudo() {
    let fleet = Fleet::start(3);
    for i in fleet.hosts() {
        let out = ok_stdout(
            "ssh root",
            fleet.ssh(i, "id -un; hostname; echo $HOME; ls -A /root"),
        );
        assert_eq!(out, format!("root\nh{i}\n/root\n.ssh\n"), "host {i}");

        let out = ok_stdout(
            "ssh convoy",
            fleet.ssh_as(
                i,
                "convoy",
                "id -un; echo $HOME; test -d $HOME && sudo -n id -un",
            ),
        );
        assert_eq!(out, "convoy\n/home/convoy\nroot\n", "host {i}");
    }
    // The inventory names every host with its address and the ssh config.
    let inv = std::fs::read_to_string(fleet.inventory()).unwrap();
    for i in fleet.hosts() {
        assert!(inv.contains(&format!(
            "{}:\n      ansible_host: {}",
            fleet.name(i),
            fleet.addr(i)
        )));
    }
    assert!(inv.contains(&format!(
        "convoy_ssh_config: \"{}\"",
        fleet.ssh_config().display()
    )));
}

#[test]
fn hosts_have_private_directories() {
    let fleet = Fleet::start(3);
    let name = format!("smoke-{}", fleet.id());
    let file = format!("/srv/{name}/hello.txt");

    // Written inside host 1, seen on the control side behind its bind mount...
    fleet.exec_ok(1, &format!("mkdir -p /srv/{name} && printf hi > {file}"));
    assert_eq!(
        std::fs::read_to_string(fleet.host_path(1, &file)).unwrap(),
        "hi"
    );
    // ...and over ssh, but not on host 2 nor on the machine itself.
    assert_eq!(stdout(fleet.ssh(1, &format!("cat {file}"))), "hi");
    assert!(!fleet.exec(2, &format!("test -e {file}")).status.success());
    assert!(!fleet.host_path(2, &file).exists());
    assert!(!Path::new(&file).exists());

    // The other way round: a file put in host 3's /tmp from the control side.
    std::fs::write(fleet.host_path(3, "/tmp/from-control"), "x").unwrap();
    assert_eq!(stdout(fleet.ssh(3, "cat /tmp/from-control")), "x");
    assert!(!fleet.exec(1, "test -e /tmp/from-control").status.success());

    // Every private directory exists in each host; exec runs as root in the host.
    for dir in [
        "/srv",
        "/etc/app",
        "/root",
        "/home/convoy",
        "/tmp",
        "/var/www",
        "/etc/nginx",
        "/var/spool/cron",
    ] {
        assert!(fleet.host_path(2, dir).is_dir(), "{dir}");
        fleet.exec_ok(2, &format!("test -d {dir}"));
    }
    assert_eq!(fleet.exec_ok(2, "id -un; hostname"), "root\nh2\n");
}

#[test]
fn a_user_created_on_one_host_exists_on_no_other_nor_on_the_machine() {
    let fleet = Fleet::start(2);
    let user = format!("cvsmoke{}", fleet.id());
    // Over ssh, as a play would: useradd renames /etc/passwd+ over /etc/passwd.
    let out = fleet.ssh(
        1,
        &format!("groupadd {user}g && useradd -M -g {user}g -s /bin/sh {user} && id -gn {user}"),
    );
    assert_eq!(stdout(out), format!("{user}g"));
    for file in ["passwd", "shadow", "group", "gshadow"] {
        fleet.exec_ok(1, &format!("grep -q '^{user}' /etc/{file}"));
        assert!(
            !fleet
                .exec(2, &format!("grep -q '^{user}' /etc/{file}"))
                .status
                .success(),
            "/etc/{file} of h2 has h1's user"
        );
        let machine = std::fs::read_to_string(format!("/etc/{file}")).unwrap();
        assert!(
            !machine.lines().any(|l| l.starts_with(&user)),
            "the machine's /etc/{file} has h1's user"
        );
    }
    // The machine's users (fleet.sh's `convoy`) are there, sudo still works.
    assert_eq!(stdout(fleet.ssh_as(1, "convoy", "sudo -n id -un")), "root");
    fleet.exec_ok(2, "id convoy");
    // h1 removes its user again; h2 could create the same name on its own.
    fleet.exec_ok(1, &format!("userdel {user} && ! id {user} 2>/dev/null"));
    fleet.exec_ok(2, &format!("useradd -M {user} && id {user}"));
    assert!(!fleet.exec(1, &format!("id {user}")).status.success());
}

#[test]
fn a_crontab_set_on_one_host_is_on_no_other_nor_on_the_machine() {
    let fleet = Fleet::start(2);
    let job = format!("17 3 * * * echo cron-smoke-{}", fleet.id());
    // As root and as `convoy` (crontab(1) is setgid crontab: the spool's
    // crontabs directory must be root:crontab 1730 for a user's to be written).
    fleet.exec_ok(1, &format!("echo '{job}' | crontab -"));
    assert_eq!(
        stdout(fleet.ssh_as(
            1,
            "convoy",
            &format!("echo '{job}' | crontab - && crontab -l")
        )),
        job
    );
    assert_eq!(fleet.exec_ok(1, "crontab -l"), format!("{job}\n"));
    assert_eq!(
        fleet.exec_ok(1, "stat -c '%a %U:%G' /var/spool/cron/crontabs"),
        "1730 root:crontab\n"
    );
    for user in ["root", "convoy"] {
        let on_h2 = fleet.exec(2, &format!("crontab -u {user} -l"));
        assert!(!on_h2.status.success(), "h2 has h1's crontab for {user}");
        let machine = Path::new("/var/spool/cron/crontabs").join(user);
        let text = std::fs::read_to_string(&machine).unwrap_or_default();
        assert!(
            !text.contains(&job),
            "the machine's crontab for {user} has h1's job"
        );
        assert!(fleet.host_path(1, machine.to_str().unwrap()).is_file());
    }
}

#[test]
#[should_panic(expected = "not in a host-private directory")]
fn host_path_rejects_shared_paths() {
    let fleet = Fleet::start(1);
    let _ = fleet.host_path(1, "/usr/bin/env");
}

#[test]
fn stopped_sshd_refuses_and_comes_back() {
    let fleet = Fleet::start(2);
    fleet.stop_sshd(2);
    let out = fleet.ssh(2, "true");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Connection refused"),
        "{}",
        stderr(&out)
    );
    // The other host is unaffected, and host 2 still exists without sshd.
    assert_eq!(stdout(fleet.ssh(1, "hostname")), "h1");
    assert_eq!(fleet.exec_ok(2, "hostname"), "h2\n");

    fleet.start_sshd(2);
    assert_eq!(stdout(fleet.ssh(2, "hostname")), "h2");
}

#[test]
fn rekeyed_host_fails_verification() {
    let fleet = Fleet::start(3);
    assert!(fleet.ssh(3, "true").status.success());
    fleet.rekey(3);
    let out = fleet.ssh(3, "true");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Host key verification failed"),
        "{}",
        stderr(&out)
    );
    assert!(fleet.ssh(1, "true").status.success());
}

#[test]
fn link_down_makes_host_unreachable() {
    let fleet = Fleet::start(2);
    fleet.link_down(1);
    let out = fleet.ssh_with(1, &["-o", "ConnectTimeout=1"], "true");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    assert!(fleet.ssh(2, "true").status.success());
    fleet.link_up(1);
    assert_eq!(stdout(fleet.ssh(1, "hostname")), "h1");
}

#[test]
fn kill_sessions_drops_established_connections() {
    let fleet = Fleet::start(1);
    let mut session = Command::new("ssh")
        .arg("-F")
        .arg(fleet.ssh_config())
        .args([&fleet.addr(1), "sleep 3601"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the session to be up (a sleep with a number unique to this test:
    // pids are shared with the other tests running in parallel).
    wait_for(|| fleet.exec(1, "pgrep -f '^sleep 3601'").status.success());
    fleet.kill_sessions(1);
    let status = session.wait().unwrap();
    assert!(!status.success());
    // The listener is still there.
    assert!(fleet.ssh(1, "true").status.success());
}

#[test]
fn drop_tears_everything_down() {
    let fleet = Fleet::start(2);
    let dir = fleet.dir().to_path_buf();
    let run = Path::new("/run/convoy-fleets").join(fleet.id().to_string());
    let bridge = format!("/sys/class/net/cvb{}", fleet.id());
    let names: Vec<String> = fleet.hosts().map(|i| fleet.netns(i)).collect();
    // A live session, so that sshd has a per-connection child too.
    let mut session = Command::new("ssh")
        .arg("-F")
        .arg(fleet.ssh_config())
        .args([&fleet.addr(1), "sleep 3602"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(|| fleet.exec(1, "pgrep -f '^sleep 3602'").status.success());
    let pids: Vec<String> = names.iter().flat_map(|ns| netns_pids(ns)).collect();
    assert!(
        pids.len() >= 6,
        "holder + sshd + session per host: {pids:?}"
    );
    assert!(Path::new(&bridge).exists() && run.exists());

    drop(fleet);

    let _ = session.wait();
    let list = netns_list();
    for ns in &names {
        assert!(
            !list
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns)),
            "{ns} left"
        );
    }
    for pid in &pids {
        assert!(
            !is_alive(pid),
            "process {pid} of the fleet is still running"
        );
    }
    assert!(!dir.exists(), "{} left", dir.display());
    // Fleet numbers are reused at once: a test running beside this one may
    // already hold number K again, with its own run dir and bridge. What
    // must be gone is *this* fleet's: a run dir still naming our DIR.
    let ours = std::fs::read_to_string(run.join("dir"))
        .is_ok_and(|d| Path::new(d.trim()) == dir.as_path());
    assert!(!ours, "{} left", run.display());
    if !run.exists() {
        assert!(!Path::new(&bridge).exists(), "bridge left");
    }
}

#[test]
fn panicking_test_still_tears_down() {
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let fleet = Fleet::start(1);
        tx.send((fleet.dir().to_path_buf(), fleet.netns(1)))
            .unwrap();
        panic!("test failure with a fleet up");
    });
    assert!(result.is_err());
    let (dir, ns) = rx.recv().unwrap();
    assert!(!dir.exists());
    assert!(
        !netns_list()
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&ns))
    );
}

#[test]
fn several_fleets_coexist() {
    let handles: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(|| Fleet::start(2)))
        .collect();
    let fleets: Vec<Fleet> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut ids: Vec<u32> = fleets.iter().map(Fleet::id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    for f in &fleets {
        for i in f.hosts() {
            let out = ok_stdout("ssh", f.ssh(i, "hostname; cat /etc/hostname"));
            assert_eq!(out, format!("h{i}\nh{i}\n"));
        }
    }
}

fn is_alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie waiting for pid 1 to reap it is gone for our purposes.
        Ok(stat) => !matches!(
            stat.rsplit(") ").next().and_then(|s| s.chars().next()),
            Some('Z' | 'X')
        ),
        Err(_) => false,
    }
}

fn wait_for(mut cond: impl FnMut() -> bool) {
    for _ in 0..100 {
        if cond() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("condition not met within 5 s");
}

#[test]
fn helpers_make_fresh_homes_and_files() {
    let a = support::fresh_home();
    let b = support::fresh_home();
    assert_ne!(a, b);
    assert!(a.is_dir() && std::fs::read_dir(&a).unwrap().next().is_none());
    assert!(
        a.as_os_str().len() < 40,
        "HOME must be short: {}",
        a.display()
    );

    let dir = support::workdir();
    let p = support::write_file(&dir, "playbooks/site.yml", "- hosts: all\n");
    assert_eq!(p, dir.path().join("playbooks/site.yml"));
    assert_eq!(std::fs::read_to_string(p).unwrap(), "- hosts: all\n");
}

#[test]
fn a_package_installed_on_one_host_is_installed_on_no_other_nor_on_the_machine() {
    let fleet = Fleet::start(2);
    let name = format!("convoy-demo-smoke{}", fleet.id());
    let build = support::workdir();
    let deb = support::apt::build_deb(build.path(), &name, "1.0", None);
    for i in fleet.hosts() {
        support::apt::offline(&fleet, i, "/srv/apt-repo");
    }
    support::apt::publish(&fleet, 1, "/srv/apt-repo", &[deb]);
    // As the apt module does it: the cache updated (from the file
    // repository only), then apt-get install, with dpkg writing /usr,
    // /var/lib/dpkg, /var/cache/apt and /var/log.
    let out = fleet.exec_ok(
        1,
        &format!(
            "DEBIAN_FRONTEND=noninteractive apt-get update -q && \
             DEBIAN_FRONTEND=noninteractive apt-get -y install {name}"
        ),
    );
    assert!(out.contains(&format!("Setting up {name} (1.0)")), "{out}");
    let shipped = format!("/usr/share/convoy-demo/{name}");
    assert_eq!(
        fleet.exec_ok(
            1,
            &format!("dpkg-query -W -f '${{Status}} ${{Version}}' {name} && cat {shipped}")
        ),
        format!("install ok installed 1.0{name} 1.0\n")
    );
    assert!(
        fleet
            .exec_ok(1, "cat /var/log/apt/history.log /var/log/dpkg.log")
            .contains(&name),
        "h1's apt and dpkg logs name the package"
    );
    // Nowhere else: not in h2's dpkg database nor its /usr, not on the machine.
    assert!(!fleet.exec(2, &format!("dpkg -s {name}")).status.success());
    assert!(
        !fleet
            .exec(2, &format!("test -e {shipped}"))
            .status
            .success()
    );
    assert!(
        !fleet
            .exec(
                2,
                &format!("grep -qs {name} /var/log/apt/history.log /var/log/dpkg.log")
            )
            .status
            .success()
    );
    let machine = Command::new("dpkg").args(["-s", &name]).output().unwrap();
    assert!(!machine.status.success(), "the machine's dpkg knows {name}");
    assert!(!Path::new(&shipped).exists(), "{shipped} is on the machine");
    for log in ["/var/log/apt/history.log", "/var/log/dpkg.log"] {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        assert!(!text.contains(&name), "the machine's {log} names {name}");
    }
    // With /usr overlaid, sshd still takes new logins, sudo still works.
    assert_eq!(
        stdout(fleet.ssh_as(1, "convoy", "sudo -n cat /usr/share/convoy-demo/*")),
        format!("{name} 1.0")
    );
    assert_eq!(stdout(fleet.ssh(2, "hostname")), "h2");
}
