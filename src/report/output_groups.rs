//! `convoy exec`'s answer: hosts grouped by identical (exit code, output),
//! each group's output printed once, so 200 identical answers read as one.
//! A renderer like the others, fed the same events; it prints when the run
//! is over, after the recap.

use std::collections::BTreeMap;
use std::io::Write;

use super::{Event, Renderer};

/// What a host answered: its exit code (or why it has none) and its output.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Answer {
    /// `rc=0`, `rc=2`, `unreachable`, `skipped`.
    label: String,
    output: String,
}

/// Collects each host's last result and prints the groups at the end.
#[derive(Default)]
pub struct OutputGroups {
    /// By host name, so hosts within a group read in order.
    answers: BTreeMap<String, Answer>,
}

impl OutputGroups {
    pub fn new() -> Self {
        Self::default()
    }

    /// The summary's text: groups by size (largest first), then by first host.
    fn text(&self) -> String {
        let mut groups: Vec<(&Answer, Vec<&str>)> = Vec::new();
        for (host, answer) in &self.answers {
            match groups.iter_mut().find(|(a, _)| *a == answer) {
                Some((_, hosts)) => hosts.push(host),
                None => groups.push((answer, vec![host])),
            }
        }
        groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.1[0].cmp(b.1[0])));
        let mut text = String::new();
        for (answer, hosts) in groups {
            let n = hosts.len();
            text.push_str(&format!(
                "{} ({n} host{}) {}:\n",
                hosts.join(", "),
                if n == 1 { "" } else { "s" },
                answer.label
            ));
            for line in answer.output.lines() {
                text.push_str(&super::plain::strip_controls(line));
                text.push('\n');
            }
        }
        text
    }
}

impl Renderer for OutputGroups {
    fn event(&mut self, event: &Event) {
        let Event::HostResult(r) = event else {
            return;
        };
        let label = match (r.rc, r.status) {
            (Some(rc), _) => format!("rc={rc}"),
            (None, status) => status.as_str().to_owned(),
        };
        // An unreachable host or a failure without output says why instead.
        let output = match (&r.output, r.rc) {
            (Some(o), _) => o.clone(),
            (None, None) => r.msg.clone().unwrap_or_default(),
            (None, Some(_)) => String::new(),
        };
        self.answers
            .insert(r.host.clone(), Answer { label, output });
    }

    fn finish(&mut self) {
        if self.answers.is_empty() {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{}", self.text());
    }
}
