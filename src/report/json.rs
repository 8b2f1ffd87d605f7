//! One JSON object per line, for machines. The events are documented in the README.

use std::io::Write;

use serde_json::json;

use super::{Event, Renderer};

pub struct JsonRenderer;

impl JsonRenderer {
    pub fn new() -> Self {
        Self
    }
}

impl Renderer for JsonRenderer {
    fn event(&mut self, event: &Event) {
        let value = match event {
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
            Event::HostStart { .. } => return,
            Event::HostResult(r) => json!({
                "event": "host_result",
                "host": r.host,
                "task": r.task,
                "status": r.status,
                "changed": r.status == super::Status::Changed,
                "failed": r.status == super::Status::Failed,
                "ignored": r.ignored,
                "item": r.item,
                "msg": r.msg,
                "duration": (r.duration.as_secs_f64() * 1000.0).round() / 1000.0,
                "diff": r.diffs.iter().map(|d| json!({"path": d.path, "before": d.before, "after": d.after})).collect::<Vec<_>>(),
            }),
            Event::Recap(recap) => {
                json!({"event": "recap", "hosts": recap.hosts, "elapsed": recap.elapsed.as_secs_f64(), "interrupted": recap.interrupted})
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{value}");
    }
}
