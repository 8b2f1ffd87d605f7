//! `wait_for_connection` against a host whose sshd goes away while the
//! run holds a connection to it: the task waits for a new connection
//! (the old master is of no use) and the run goes on once sshd is back;
//! without sshd it gives up at its timeout, naming ssh's reason.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::inventory::app_inventory;
use support::run::{Run, run};
use support::{Fleet, workdir, write_file};

/// Task 1 holds the run until the test has stopped sshd (the run's master
/// stays up, as after `systemctl stop ssh`); task 2 waits; task 3 records
/// when the run went on.
const PLAY: &str = r#"- hosts: app
  gather_facts: false
  tasks:
    - name: hold until sshd is down
      shell: touch /srv/holding; while [ ! -e /srv/release ]; do sleep 0.05; done
    - name: wait for sshd
      wait_for_connection: {timeout: TIMEOUT, sleep: 1, connect_timeout: 2}
      register: waited
    - name: went on
      copy:
        dest: /srv/went-on
        content: "{{ waited.elapsed }}\n"
"#;

/// Starts the play in a thread; answers once task 1 holds on the host.
fn start(fleet: &Fleet, dir: &Path, timeout: u64) -> std::thread::JoinHandle<Run> {
    let inventory = app_inventory(fleet, dir, "");
    let play = PLAY.replace("TIMEOUT", &timeout.to_string());
    let playbook = write_file(dir, "play.yml", &play);
    let args: Vec<String> = vec![
        "run".into(),
        playbook.display().to_string(),
        "-i".into(),
        inventory.display().to_string(),
    ];
    let handle = std::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !fleet.host_path(1, "/srv/holding").exists() {
        assert!(Instant::now() < deadline, "task 1 never started on h1");
        std::thread::sleep(Duration::from_millis(20));
    }
    handle
}

/// sshd stopped, the run released, its sessions (the master) killed.
fn take_sshd_away(fleet: &Fleet) {
    fleet.stop_sshd(1);
    std::fs::write(fleet.host_path(1, "/srv/release"), "").unwrap();
    // Task 1's command ends over the master before the master is killed.
    let deadline = Instant::now() + Duration::from_secs(10);
    // (`[r]`: the pattern does not match pgrep's own command line.)
    while fleet
        .exec(1, "pgrep -f 'srv/[r]elease' >/dev/null")
        .status
        .success()
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    fleet.kill_sessions(1);
}

#[test]
fn wait_for_connection_waits_for_sshd_killed_and_restarted_after_2s() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let handle = start(&fleet, work.path(), 30);
    let stopped = Instant::now();
    take_sshd_away(&fleet);
    std::thread::sleep(Duration::from_secs(2).saturating_sub(stopped.elapsed()));
    assert!(
        !fleet.host_path(1, "/srv/went-on").exists(),
        "the run went on while sshd was down"
    );
    fleet.start_sshd(1);
    let back = stopped.elapsed();
    let r = handle.join().unwrap();
    assert_eq!(r.code, 0, "{}", r.dump());
    assert_eq!(r.count("h1", "failed"), 0, "{}", r.dump());
    assert_eq!(r.count("h1", "ok"), 3, "{}", r.dump());
    let elapsed: u64 = std::fs::read_to_string(fleet.host_path(1, "/srv/went-on"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // It waited about as long as sshd was away (whole seconds, as Ansible).
    assert!(
        (1..=back.as_secs() + 3).contains(&elapsed),
        "waited {elapsed}s for an sshd away {back:?}"
    );
}

#[test]
fn wait_for_connection_gives_up_at_its_timeout_without_sshd() {
    let fleet = Fleet::start(1);
    let work = workdir();
    let handle = start(&fleet, work.path(), 3);
    let stopped = Instant::now();
    take_sshd_away(&fleet);
    let r = handle.join().unwrap();
    let took = stopped.elapsed();
    fleet.start_sshd(1);
    assert_eq!(r.code, 2, "{}", r.dump());
    assert_eq!(r.count("h1", "failed"), 1, "{}", r.dump());
    assert!(
        r.all()
            .contains("failed: [h1]: timed out waiting for ping module test: ssh: connect to host")
            && r.all().contains("port 22: Connection refused"),
        "{}",
        r.dump()
    );
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(15),
        "gave up after {took:?} (timeout 3s)"
    );
    assert!(!fleet.host_path(1, "/srv/went-on").exists());
}
