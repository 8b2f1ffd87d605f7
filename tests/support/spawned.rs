//! A convoy process running in the background (a rollout to interrupt,
//! pause or watch), its output collected line by line.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::CLEAN_PATH;
use super::run::{Run, wait_or_kill};

/// A convoy process running in the background, its output collected.
pub struct Spawned {
    child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Spawned {
    pub fn start(dir: Option<&Path>, args: &[&str]) -> Spawned {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_convoy"));
        cmd.env_clear()
            .env("PATH", CLEAN_PATH)
            .env("HOME", super::fresh_home())
            .env("NO_COLOR", "1")
            .env("TERM", "dumb")
            .args(args);
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        Spawned::command(cmd)
    }

    /// Starts `cmd` (convoy behind a wrapper: another user, another
    /// hostname), its output collected.
    pub fn command(mut cmd: Command) -> Spawned {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn convoy");
        let out = Arc::new(Mutex::new(String::new()));
        let err = Arc::new(Mutex::new(String::new()));
        let pump = |stream: Box<dyn std::io::Read + Send>, buf: Arc<Mutex<String>>| {
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let mut b = buf.lock().unwrap();
                    b.push_str(&line);
                    b.push('\n');
                }
            })
        };
        let readers = vec![
            pump(Box::new(child.stdout.take().unwrap()), out.clone()),
            pump(Box::new(child.stderr.take().unwrap()), err.clone()),
        ];
        Spawned {
            child,
            out,
            err,
            readers,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// Waits until a stderr line satisfies `pred`; returns that line.
    pub fn wait_for_stderr_line(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.stderr().lines().find(|l| pred(l)) {
                return l.to_owned();
            }
            if Instant::now() > deadline || !self.running() {
                panic!(
                    "convoy never said {what} on stderr:\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits until a stdout line satisfies `pred`; returns that line.
    pub fn wait_for_line(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.stdout().lines().find(|l| pred(l)) {
                return l.to_owned();
            }
            if Instant::now() > deadline || !self.running() {
                let out = self.stdout();
                let err = self.err.lock().unwrap().clone();
                panic!("convoy never printed {what}:\nstdout:\n{out}\nstderr:\n{err}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The run id of this run's journal (from `NOTE journal: <path>`).
    pub fn run_id(&mut self) -> String {
        let line = self.wait_for_line("NOTE journal: <path>", Duration::from_secs(30), |l| {
            l.contains("NOTE journal: ")
        });
        let path = line.split("NOTE journal: ").nth(1).unwrap().trim();
        Path::new(path)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -INT failed");
    }

    /// Waits for the process to end (SIGKILL and panic after `timeout`).
    pub fn finish(mut self, timeout: Duration) -> Run {
        let Some(status) = wait_or_kill(&mut self.child, timeout) else {
            panic!(
                "convoy did not end within {timeout:?}:\nstdout:\n{}\nstderr:\n{}",
                self.stdout(),
                self.err.lock().unwrap()
            );
        };
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        Run {
            code: status.code().unwrap_or(-1),
            stdout: self.stdout(),
            stderr: self.err.lock().unwrap().clone(),
        }
    }

    /// SIGKILL (a convoy that dies without cleaning up).
    pub fn kill_hard(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
    }
}

/// Polls `cond` every 50 ms until it holds; panics after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out ({timeout:?}) waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
