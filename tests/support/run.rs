//! Running convoy to its end and reading what it printed: the exit code,
//! stdout/stderr, the text recap, `--output json` events, `NOTE` lines and
//! the run journal.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::convoy;

/// Waits up to `timeout` for a background convoy to end; past it, kills it
/// and answers `None` (the caller panics with what it printed).
pub fn wait_or_kill(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A finished convoy run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// convoy with `args` (see [`convoy`]), to its end.
pub fn run(args: &[&str]) -> Run {
    Run::from_output(convoy().args(args).output().unwrap())
}

/// convoy with `args`, run in `dir` (so messages name relative paths), to its end.
pub fn run_in(dir: &Path, args: &[&str]) -> Run {
    Run::from_output(convoy().current_dir(dir).args(args).output().unwrap())
}

impl Run {
    /// The recap line of a host (text output).
    pub fn recap(&self, host: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(host) && l.contains(" : ok="))
            .unwrap_or_else(|| panic!("no recap for {host} in:\n{}", self.dump()))
    }
    pub fn count(&self, host: &str, what: &str) -> u32 {
        self.recap_field(host, what).parse().unwrap()
    }
    /// The raw value of `what=` in a host's text recap (e.g. `artifact` -> `1.5MiB`).
    pub fn recap_field(&self, host: &str, what: &str) -> &str {
        let line = self.recap(host);
        let start = line
            .find(&format!(" {what}="))
            .unwrap_or_else(|| panic!("no {what}= in recap line {line:?}\n{}", self.dump()))
            + what.len()
            + 2;
        line[start..].split_whitespace().next().unwrap()
    }
    pub fn dump(&self) -> String {
        format!(
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
    /// stdout and stderr together (where a bad-input message may be).
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
    /// `--output json`: the recap event.
    pub fn json_recap(&self) -> Value {
        self.stdout
            .lines()
            .filter(|l| l.trim_start().starts_with('{'))
            .map(|l| {
                serde_json::from_str::<Value>(l)
                    .unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}\n{}", self.dump()))
            })
            .find(|e| e["event"] == "recap")
            .unwrap_or_else(|| panic!("no recap event:\n{}", self.dump()))
    }
    /// `--output json`: the recap's `artifact_bytes` of a host.
    pub fn artifact_bytes(&self, host: &str) -> u64 {
        let recap = self.json_recap();
        recap["hosts"][host]["artifact_bytes"]
            .as_u64()
            .unwrap_or_else(|| {
                panic!(
                    "no integer hosts.{host}.artifact_bytes in the recap {recap}\n{}",
                    self.dump()
                )
            })
    }
    /// Text output: the `failed: [host]: ...` result lines of a host.
    pub fn failed_lines(&self, host: &str) -> Vec<&str> {
        let tag = format!("failed: [{host}]");
        self.stdout.lines().filter(|l| l.contains(&tag)).collect()
    }

    pub fn batch_lines(&self) -> Vec<String> {
        self.stdout
            .lines()
            .filter_map(|l| l.find("BATCH ").map(|at| l[at..].trim_end().to_owned()))
            .collect()
    }

    /// Text output: the `NOTE ...` messages (what follows `NOTE `).
    pub fn notes(&self) -> Vec<String> {
        self.stdout
            .lines()
            .filter_map(|l| l.find("NOTE ").map(|at| l[at + 5..].trim_end().to_owned()))
            .collect()
    }

    /// Text output: lines with `status: [host]` (e.g. `failed: [h2]`).
    pub fn result_lines(&self, status: &str, host: &str) -> Vec<&str> {
        let tag = format!("{status}: [{host}]");
        self.stdout.lines().filter(|l| l.contains(&tag)).collect()
    }

    /// `--output json`: every event.
    pub fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| l.trim_start().starts_with('{'))
            .map(|l| {
                serde_json::from_str::<Value>(l)
                    .unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}\n{}", self.dump()))
            })
            .collect()
    }

    /// The journal named by `NOTE journal: <path>` (text) or the `note`
    /// event `journal: <path>` (JSON).
    pub fn journal(&self) -> Journal {
        let from_text = self
            .notes()
            .into_iter()
            .find_map(|n| n.strip_prefix("journal: ").map(|p| PathBuf::from(p.trim())));
        let from_json = || {
            self.stdout
                .lines()
                .filter(|l| l.trim_start().starts_with('{'))
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|e| e["event"] == "note")
                .find_map(|e| {
                    e["message"]
                        .as_str()
                        .and_then(|m| m.strip_prefix("journal: "))
                        .map(|p| PathBuf::from(p.trim()))
                })
        };
        let path = from_text
            .or_else(from_json)
            .unwrap_or_else(|| panic!("no `NOTE journal: <path>` in the output:\n{}", self.dump()));
        Journal::read(&path)
    }
}

/// A run's journal: `<project>/.convoy/runs/<run-id>.jsonl`.
pub struct Journal {
    pub path: PathBuf,
    pub run_id: String,
    pub events: Vec<Value>,
}

impl Journal {
    pub fn read(path: &Path) -> Journal {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("read the journal {}: {e}", path.display()));
        let events: Vec<Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("journal {}: bad JSON line {l:?}: {e}", path.display())
                })
            })
            .collect();
        assert_eq!(
            path.extension().and_then(|e| e.to_str()),
            Some("jsonl"),
            "journal name: {}",
            path.display()
        );
        let run_id = path.file_stem().unwrap().to_string_lossy().into_owned();
        Journal {
            path: path.to_owned(),
            run_id,
            events,
        }
    }

    /// The journal lives in `<project>/.convoy/runs/`.
    pub fn assert_in_project(&self, project: &Path) {
        let runs = project
            .join(".convoy/runs")
            .canonicalize()
            .unwrap_or_else(|e| panic!("{}/.convoy/runs: {e}", project.display()));
        let dir = self.path.parent().unwrap().canonicalize().unwrap();
        assert_eq!(
            dir,
            runs,
            "journal {} not in the project",
            self.path.display()
        );
    }

    pub fn of(&self, event: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == event).collect()
    }

    pub fn dump(&self) -> String {
        self.events
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The batches of the rollout's plan, as host lists (a batch may be a
    /// list of names or an object with `hosts`). The journal opens with
    /// `run_start` and records each play's plan, once decided, in
    /// `rollout_plan` (README: Output).
    pub fn planned_batches(&self) -> Vec<Vec<String>> {
        let starts = self.of("run_start");
        assert_eq!(starts.len(), 1, "one run_start:\n{}", self.dump());
        let start = starts[0];
        assert_eq!(
            start["run_id"].as_str(),
            Some(self.run_id.as_str()),
            "run_start.run_id is the journal's name:\n{}",
            self.dump()
        );
        let plans = self.of("rollout_plan");
        assert_eq!(plans.len(), 1, "one rollout_plan:\n{}", self.dump());
        let batches = plans[0]["plan"]["batches"]
            .as_array()
            .unwrap_or_else(|| panic!("rollout_plan has no plan.batches:\n{}", self.dump()));
        batches
            .iter()
            .map(|b| {
                let hosts = b.get("hosts").unwrap_or(b);
                hosts
                    .as_array()
                    .unwrap_or_else(|| panic!("a batch without hosts: {b}"))
                    .iter()
                    .map(|h| h.as_str().unwrap().to_owned())
                    .collect()
            })
            .collect()
    }

    pub fn outcome(&self) -> String {
        let last = self
            .events
            .last()
            .unwrap_or_else(|| panic!("empty journal"));
        assert_eq!(last["event"], "run_end", "the last event:\n{}", self.dump());
        last["outcome"].as_str().unwrap_or_default().to_owned()
    }
}
