//! A fleet of fake SSH hosts on this machine (network + mount namespaces, each
//! with its own sshd), built by `tests/fleet/fleet.sh`. Needs root.
//!
//! ```ignore
//! let fleet = Fleet::start(3);
//! convoy().arg("-i").arg(fleet.inventory()).arg("site.yml").assert().success();
//! assert_eq!(fs::read_to_string(fleet.host_path(1, "/srv/app/x"))?, "...");
//! ```
//!
//! Hosts are numbered from 1, named `h1`, `h2`, ... The fleet is torn down when
//! the `Fleet` is dropped, also when the test panics; fleets left behind by a
//! killed test process are collected by the next `Fleet::start`.

use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The fleet script, run with bash (works even if its executable bit is lost).
pub fn fleet_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fleet/fleet.sh")
}

/// Paths inside a host that are private to it, and where they live on the
/// control side (relative to `DIR/h<i>/fs`).
const MOUNTS: &[(&str, &str)] = &[
    ("/srv", "srv"),
    ("/etc/app", "etc-app"),
    ("/root", "root"),
    ("/home", "home"),
    ("/tmp", "tmp"),
    ("/var/www", "var-www"),
    ("/etc/nginx", "etc-nginx"),
    ("/var/spool/cron", "var-spool-cron"),
];

pub struct Fleet {
    dir: PathBuf,
    id: u32,
    n: usize,
}

impl Fleet {
    /// Creates a fleet of `n` hosts (panics with fleet.sh's message if it can't).
    pub fn start(n: usize) -> Fleet {
        assert!(n >= 1, "a fleet needs at least one host");
        // A short path under /tmp: ssh control sockets have a ~108 byte limit.
        let dir = tempfile::Builder::new()
            .prefix("cvf-")
            .tempdir_in("/tmp")
            .expect("create fleet dir under /tmp")
            .keep();
        let out = fleet_command()
            .arg("up")
            .arg(&dir)
            .arg(n.to_string())
            .output()
            .expect("run tests/fleet/fleet.sh");
        if !out.status.success() {
            // fleet.sh tore down what it had built; the dir may remain.
            let _ = std::fs::remove_dir_all(&dir);
            panic!(
                "fleet.sh up {} {n} failed ({}):\n{}{}",
                dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let id = std::fs::read_to_string(dir.join("id"))
            .expect("fleet id")
            .trim()
            .parse()
            .expect("numeric fleet id");
        Fleet { dir, id, n }
    }

    /// Number of hosts.
    pub fn count(&self) -> usize {
        self.n
    }

    /// Host numbers, `1..=count()`, for iterating over hosts.
    pub fn hosts(&self) -> std::ops::RangeInclusive<usize> {
        1..=self.n
    }

    /// The fleet number K (addresses 10.213.K.x, netns `cvf<K>h<i>`).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The fleet's state directory (keys, ssh_config, inventory, hosts' dirs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Ansible YAML inventory of all hosts, with `convoy_ssh_config` set.
    pub fn inventory(&self) -> PathBuf {
        self.dir.join("inventory.yml")
    }

    /// ssh client config to use with `ssh -F`.
    pub fn ssh_config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }

    /// known_hosts file with every host's key (by address).
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// Host name in the inventory: "h1", "h2", ...
    pub fn name(&self, i: usize) -> String {
        self.check(i);
        format!("h{i}")
    }

    /// Host address: "10.213.K.(10+i)".
    pub fn addr(&self, i: usize) -> String {
        self.check(i);
        format!("10.213.{}.{}", self.id, 10 + i)
    }

    /// Host i's network namespace name (`ip netns`).
    pub fn netns(&self, i: usize) -> String {
        self.check(i);
        format!("cvf{}h{i}", self.id)
    }

    /// The control-side path behind `path` inside host i, e.g. `/srv/app/x` ->
    /// `DIR/h<i>/fs/srv/app/x`. Panics for paths that are not private to the
    /// host (only /srv, /etc/app, /root, /home, /tmp, /var/www, /etc/nginx are).
    pub fn host_path(&self, i: usize, path: &str) -> PathBuf {
        self.check(i);
        let p = Path::new(path);
        assert!(
            p.is_absolute() && !p.components().any(|c| c == Component::ParentDir),
            "host_path needs an absolute path without '..', got {path:?}"
        );
        for (inside, outside) in MOUNTS {
            if let Ok(rest) = p.strip_prefix(inside) {
                return self.dir.join(format!("h{i}/fs/{outside}")).join(rest);
            }
        }
        panic!(
            "host_path: {path:?} is not in a host-private directory ({})",
            MOUNTS.iter().map(|m| m.0).collect::<Vec<_>>().join(", ")
        )
    }

    /// Runs `sh -c cmd` as root inside host i (its namespaces, no ssh).
    pub fn exec(&self, i: usize, cmd: &str) -> Output {
        self.check(i);
        fleet_command()
            .arg("exec")
            .arg(&self.dir)
            .arg(i.to_string())
            .args(["--", "sh", "-c", cmd])
            .output()
            .expect("run fleet.sh exec")
    }

    /// Like `exec`, but panics unless the command succeeds; returns its stdout.
    pub fn exec_ok(&self, i: usize, cmd: &str) -> String {
        ok_stdout(&format!("exec on h{i}: {cmd}"), self.exec(i, cmd))
    }

    /// Runs `cmd` on host i as root through the real ssh (`ssh -F ssh_config`).
    pub fn ssh(&self, i: usize, cmd: &str) -> Output {
        self.ssh_with(i, &[], cmd)
    }

    /// Runs `cmd` on host i as `user` through the real ssh.
    pub fn ssh_as(&self, i: usize, user: &str, cmd: &str) -> Output {
        self.ssh_with(i, &["-l", user], cmd)
    }

    /// Runs `cmd` on host i through the real ssh with extra ssh options
    /// (e.g. `&["-o", "ConnectTimeout=1"]`).
    pub fn ssh_with(&self, i: usize, opts: &[&str], cmd: &str) -> Output {
        let addr = self.addr(i);
        Command::new("ssh")
            .arg("-F")
            .arg(self.ssh_config())
            .args(opts)
            .arg(addr)
            .arg(cmd)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh")
    }

    /// Stops host i's sshd listener (established sessions survive, as with
    /// `systemctl stop ssh`): new connections get "Connection refused".
    pub fn stop_sshd(&self, i: usize) {
        self.script(&["stop-sshd", &i.to_string()]);
    }

    /// Starts host i's sshd again (waits until it accepts connections).
    pub fn start_sshd(&self, i: usize) {
        self.script(&["start-sshd", &i.to_string()]);
    }

    /// Kills host i's established ssh sessions (the listener stays).
    pub fn kill_sessions(&self, i: usize) {
        self.script(&["kill-sessions", &i.to_string()]);
    }

    /// Gives host i a new host key (sshd restarted), without updating
    /// known_hosts: ssh then fails with "Host key verification failed".
    pub fn rekey(&self, i: usize) {
        self.script(&["rekey", &i.to_string()]);
    }

    /// Takes host i's link down: packets to it are dropped (connections time out).
    pub fn link_down(&self, i: usize) {
        self.script(&["link-down", &i.to_string()]);
    }

    /// Brings host i's link back up.
    pub fn link_up(&self, i: usize) {
        self.script(&["link-up", &i.to_string()]);
    }

    fn script(&self, args: &[&str]) {
        let out = fleet_command()
            .arg(args[0])
            .arg(&self.dir)
            .args(&args[1..])
            .output()
            .expect("run fleet.sh");
        ok_stdout(&format!("fleet.sh {}", args.join(" ")), out);
    }

    fn check(&self, i: usize) {
        assert!(
            (1..=self.n).contains(&i),
            "no host {i} in this fleet (hosts are 1..={})",
            self.n
        );
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let out = fleet_command().arg("down").arg(&self.dir).output();
        match out {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "warning: fleet.sh down {} failed ({}): {}",
                self.dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("warning: cannot run fleet.sh down: {e}"),
        }
    }
}

fn fleet_command() -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(fleet_sh())
        // Marks our fleets as ours: if this process dies without dropping a
        // Fleet, the next `fleet.sh up` collects it.
        .env("CONVOY_FLEET_OWNER", std::process::id().to_string())
        .env("FLEET_QUIET", "1")
        .stdin(Stdio::null());
    cmd
}

/// Panics with the command's output unless it succeeded; returns its stdout.
pub fn ok_stdout(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
