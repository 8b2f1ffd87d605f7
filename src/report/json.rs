//! One JSON object per line, for machines. The events are documented in the README.

use std::io::Write;

use serde_json::json;

use super::{Event, Renderer};

/// Writes events as JSON lines: to stdout (`--output json`) or to the run journal.
pub struct JsonRenderer {
    out: Box<dyn Write + Send>,
}

impl JsonRenderer {
    pub fn stdout() -> Self {
        Self {
            out: Box::new(std::io::stdout()),
        }
    }

    pub fn to(out: Box<dyn Write + Send>) -> Self {
        Self { out }
    }
}

impl Renderer for JsonRenderer {
    fn event(&mut self, event: &Event) {
        if let Some(value) = to_json(event) {
            // One write per line: the journal is an unbuffered file, and
            // `writeln!` would write each token of the JSON on its own. Flushed
            // line by line: a run killed midway still leaves its journal.
            let line = format!("{value}\n");
            let _ = self.out.write_all(line.as_bytes());
            let _ = self.out.flush();
        }
    }
}

/// The JSON form of an event (documented in the README); `None` for events
/// that only drive live progress.
pub fn to_json(event: &Event) -> Option<serde_json::Value> {
    Some(match event {
        Event::PlayStart { play, hosts } => {
            json!({"event": "play_start", "play": play, "hosts": hosts})
        }
        Event::TaskStart {
            task,
            hosts,
            handler,
        } => {
            json!({"event": "task_start", "task": task, "hosts": hosts, "handler": handler})
        }
        Event::HostStart { .. } => return None,
        Event::RunStart {
            run_id,
            playbook,
            argv,
        } => {
            json!({"event": "run_start", "run_id": run_id, "playbook": playbook, "argv": argv})
        }
        Event::RolloutPlanned { play, plan } => {
            json!({"event": "rollout_plan", "play": play, "plan": plan})
        }
        Event::BatchEnd {
            play,
            index,
            failed,
        } => {
            json!({"event": "batch_end", "play": play, "batch": index, "failed": failed})
        }
        Event::RunEnd { outcome, exit_code } => {
            json!({"event": "run_end", "outcome": outcome, "exit_code": exit_code})
        }
        Event::BatchStart {
            index,
            total,
            hosts,
            canary,
        } => {
            json!({"event": "batch_start", "batch": index, "batches": total, "hosts": hosts, "canary": canary})
        }
        Event::Rollback { play, hosts } => {
            json!({"event": "rollback", "play": play, "hosts": hosts})
        }
        Event::Note { message } => json!({"event": "note", "message": message}),
        Event::Control {
            command,
            uid,
            done,
            answer,
        } => {
            json!({"event": "control", "command": command, "uid": uid, "done": done, "answer": answer})
        }
        Event::HostResult(r) => json!({
            "event": "host_result",
            "host": r.host,
            "delegated_to": r.delegated_to,
            "task": r.task,
            "status": r.status,
            "changed": r.status == super::Status::Changed,
            "failed": r.status == super::Status::Failed,
            "ignored": r.ignored,
            "item": r.item,
            "msg": r.msg,
            "duration": (r.duration.as_secs_f64() * 1000.0).round() / 1000.0,
            "output": r.output,
            "diff": r.diffs.iter().map(|d| json!({"path": d.path, "before": d.before, "after": d.after})).collect::<Vec<_>>(),
        }),
        Event::Recap(recap) => {
            json!({"event": "recap", "hosts": recap.hosts, "elapsed": recap.elapsed.as_secs_f64(), "interrupted": recap.interrupted})
        }
    })
}
