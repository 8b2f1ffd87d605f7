//! Helpers shared by the integration tests: `mod support;` in a test file.
//!
//! - [`Fleet`]: real SSH hosts on this machine (needs root), see `fleet.rs`.
//! - [`convoy`]: the built convoy binary with a clean environment.
//! - [`write_file`], [`workdir`]: making playbooks and other input files.
//! - `run.rs`: running convoy to its end, reading its output and journal.
//! - `inventory.rs`: inventories of a fleet for the example project.
//! - `project.rs`: a deploy project on a fleet and its hosts' state.
//! - `tarball.rs`: release archives (.tar.gz) built by the tests.
//! - `http_server.rs`: a static HTTP server inside a host.
//! - `nginx.rs`: nginx on a proxy host, app servers behind it, HTTP GETs.
//! - `haproxy.rs`: haproxy on a proxy host (master-worker, reloads).
//! - `postgres.rs`: a real PostgreSQL server inside a host (unix socket in /srv/pg).
//! - `apt.rs`: apt on hosts offline (a local repository), packages restored.
//! - `spawned.rs`: convoy in the background, its output collected (to
//!   interrupt, pause, kill it; `client.rs` has one stamped on a test clock).
//! - `client.rs`: a client through a proxy while convoy runs in the background.
//!
//! Only convoy's binary is used, never its internals.

// Each test file uses a different subset of these helpers.
#![allow(dead_code, unused_imports)]

pub mod apt;
pub mod client;
pub mod compat;
pub mod fleet;
pub mod haproxy;
pub mod http_server;
pub mod inventory;
pub mod nginx;
pub mod postgres;
pub mod project;
pub mod run;
pub mod spawned;
pub mod tarball;

pub use fleet::{Fleet, ok_stdout};

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// PATH for convoy: the system's directories only (no pyenv shims, no cargo).
pub const CLEAN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The convoy binary built by cargo for these tests, with a clean environment:
/// only `PATH` (system dirs), `HOME` (a fresh empty dir, so the machine's
/// ~/.ssh and config are not used), `NO_COLOR=1` and `TERM=dumb`.
pub fn convoy() -> assert_cmd::Command {
    convoy_with_home(&fresh_home())
}

/// Like [`convoy`], with `HOME` set to `home` (to share or inspect it).
pub fn convoy_with_home(home: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_convoy"));
    cmd.env_clear()
        .env("PATH", CLEAN_PATH)
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env("TERM", "dumb");
    cmd
}

/// A new empty directory to use as HOME: `/tmp/cvh-<pid>/<n>` (short, for
/// ssh control socket paths). Directories of test processes that have exited
/// are removed the first time this is called in a process.
pub fn fresh_home() -> PathBuf {
    static PARENT: OnceLock<PathBuf> = OnceLock::new();
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let parent = PARENT.get_or_init(|| {
        sweep_stale_homes();
        let p = PathBuf::from(format!("/tmp/cvh-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create /tmp/cvh-<pid>");
        p
    });
    let home = parent.join(NEXT.fetch_add(1, Ordering::Relaxed).to_string());
    std::fs::create_dir(&home).expect("create fresh HOME");
    home
}

fn sweep_stale_homes() {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("cvh-")) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A fresh temporary directory under /tmp (short path), removed on drop.
pub fn workdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cvw-")
        .tempdir_in("/tmp")
        .expect("create work dir")
}

/// Writes `content` to `dir/rel`, creating parent directories; returns the path.
pub fn write_file(dir: impl AsRef<Path>, rel: &str, content: &str) -> PathBuf {
    let path = dir.as_ref().join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent dirs");
    }
    std::fs::write(&path, content).expect("write file");
    path
}
