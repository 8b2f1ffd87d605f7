//! A client that keeps sending requests through a proxy while convoy runs
//! in the background, both on one clock (an `Instant` the test starts):
//! [`Client`] and the answers it got ([`Sample`]), [`Spawned`] (a convoy
//! whose stdout lines are stamped when they arrive), and [`timeline_lines`]
//! to show a run's steps on that clock.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::nginx::http_request;
use super::run::{Run, wait_or_kill};
use super::{CLEAN_PATH, fresh_home};

// ---------------------------------------------------------------- the client

/// One answer the client got, `at` since the test's clock started.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Duration,
    pub answer: Result<(u16, String), String>,
}

impl Sample {
    /// `Some(version)` for a 200 with a body that is a version the tests
    /// deploy (1.0.0 or 2.0.0).
    pub fn version(&self) -> Option<&str> {
        match &self.answer {
            Ok((200, body)) if matches!(body.trim(), "1.0.0" | "2.0.0") => Some(body.trim()),
            _ => None,
        }
    }

    /// The answer in one line, for messages: when, status and the body's
    /// start, or the error.
    pub fn short(&self) -> String {
        match &self.answer {
            Ok((status, body)) => {
                let body: String = body.trim().chars().take(60).collect();
                format!("{:.3}s {status} {body:?}", self.at.as_secs_f64())
            }
            Err(e) => format!("{:.3}s error {e}", self.at.as_secs_f64()),
        }
    }
}

/// A thread sending `GET path` with `Host: host` to `address` (a proxy's
/// `ip:port`) one after the other, with a short pause between requests,
/// until stopped, or `max` requests, or `max_time` since the clock started,
/// whichever comes first.
pub struct Client {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: JoinHandle<()>,
}

impl Client {
    pub fn start(
        address: String,
        host: &str,
        path: &str,
        clock: Instant,
        max: usize,
        max_time: Duration,
    ) -> Client {
        Client::start_with("GET", address, host, path, clock, max, max_time)
    }

    /// Like [`Client::start`], sending `POST` requests: a proxy never
    /// retries those on another upstream, so a host that drops one while it
    /// restarts shows as a failed request.
    pub fn start_posts(
        address: String,
        host: &str,
        path: &str,
        clock: Instant,
        max: usize,
        max_time: Duration,
    ) -> Client {
        Client::start_with("POST", address, host, path, clock, max, max_time)
    }

    fn start_with(
        method: &'static str,
        address: String,
        host: &str,
        path: &str,
        clock: Instant,
        max: usize,
        max_time: Duration,
    ) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, samples) = (stop.clone(), samples.clone());
            let (host, path) = (host.to_owned(), path.to_owned());
            std::thread::spawn(move || {
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) && sent < max && clock.elapsed() < max_time {
                    let answer = http_request(method, &address, &host, &path);
                    let at = clock.elapsed();
                    samples.lock().unwrap().push(Sample { at, answer });
                    sent += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        Client {
            stop,
            samples,
            thread,
        }
    }

    /// How many answers the client has got so far.
    pub fn count(&self) -> usize {
        self.samples.lock().unwrap().len()
    }

    /// Waits (bounded) until the client has `n` answers.
    pub fn wait_count(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.count() < n {
            assert!(
                Instant::now() < deadline,
                "the client got only {} answers in 30 s",
                self.count()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the client; every answer it got, in order.
    pub fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("client thread");
        Arc::try_unwrap(self.samples)
            .expect("client thread ended")
            .into_inner()
            .unwrap()
    }

    /// A little more traffic, then [`Client::finish`]: waits until the
    /// client has `more` answers more than now, or 5 s (not an error: the
    /// caller checks how many answers it got).
    pub fn finish_after(self, more: usize) -> Vec<Sample> {
        let target = self.count() + more;
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.count() < target && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.finish()
    }
}

// ---------------------------------------------------------------- convoy

/// A convoy running in the background (with a clean environment, as
/// `support::convoy` sets it); each stdout line is stamped with the test's
/// clock when it arrives. Killed if dropped before it ends.
pub struct Spawned {
    child: Child,
    lines: Arc<Mutex<Vec<(Duration, String)>>>,
    err: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Spawned {
    /// convoy with `args`, run in `dir`.
    pub fn start(
        dir: &Path,
        args: impl IntoIterator<Item = impl AsRef<OsStr>>,
        clock: Instant,
    ) -> Spawned {
        let mut child = Command::new(env!("CARGO_BIN_EXE_convoy"))
            .env_clear()
            .env("PATH", CLEAN_PATH)
            .env("HOME", fresh_home())
            .env("NO_COLOR", "1")
            .env("TERM", "dumb")
            .current_dir(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn convoy");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let readers = vec![
            {
                let lines = lines.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        lines.lock().unwrap().push((clock.elapsed(), line));
                    }
                })
            },
            {
                let err = err.clone();
                std::thread::spawn(move || {
                    let mut text = String::new();
                    let _ = BufReader::new(stderr).read_to_string(&mut text);
                    *err.lock().unwrap() = text;
                })
            },
        ];
        Spawned {
            child,
            lines,
            err,
            readers,
        }
    }

    /// Its stdout so far.
    pub fn stdout(&self) -> String {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| format!("{l}\n"))
            .collect()
    }

    /// Panics with the output so far if convoy has already ended.
    pub fn assert_running(&mut self, what: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "convoy ended ({status}) while waiting for {what}:\nstdout:\n{}\nstderr:\n{}",
                self.stdout(),
                self.err.lock().unwrap()
            );
        }
    }

    /// Waits for the end (SIGKILL and panic after `timeout`); the run and
    /// its stamped stdout lines.
    pub fn finish(mut self, timeout: Duration) -> (Run, Vec<(Duration, String)>) {
        let Some(status) = wait_or_kill(&mut self.child, timeout) else {
            panic!(
                "convoy did not end within {timeout:?}:\nstdout:\n{}",
                self.stdout()
            );
        };
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        let lines = self.lines.lock().unwrap().clone();
        let run = Run {
            code: status.code().unwrap_or(-1),
            stdout: self.stdout(),
            stderr: self.err.lock().unwrap().clone(),
        };
        (run, lines)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------- the timeline

/// `d` in seconds, to the millisecond: `1.234s`.
pub fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

/// The run's lines that make the switch timeline: batches, proxy steps,
/// switches, health gates, migrations, notes; each `  <secs>  <text>`, with
/// the stamp of [`Spawned`] instead of convoy's own (whole-second) one.
pub fn timeline_lines(lines: &[(Duration, String)]) -> Vec<String> {
    lines
        .iter()
        .filter(|(_, l)| {
            [
                "BATCH ",
                "TASK [proxy",
                "TASK [switch",
                "TASK [health",
                "TASK [migration",
                "TASK [confirm",
                "NOTE ",
            ]
            .iter()
            .any(|k| l.contains(k))
        })
        .map(|(at, l)| {
            let text = l.split_once(' ').map_or(l.as_str(), |(_, rest)| rest);
            format!("  {:>8}  {text}", secs(*at))
        })
        .collect()
}
