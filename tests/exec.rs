//! `convoy exec` on a real fleet: every host's answer grouped by (exit code,
//! output) at the end, each group's output printed once; `--batch` runs the
//! command batch by batch and `--max-fail` stops it, as a play's `rollout:`
//! does. Each test checks the hosts themselves, not only what convoy prints.

mod support;

use support::inventory::app_inventory;
use support::run::run_in;
use support::{Fleet, workdir};

#[test]
fn identical_answers_print_once_per_group() {
    let fleet = Fleet::start(4);
    let work = workdir();
    let inventory = app_inventory(&fleet, work.path(), "");
    // The outputs (`same-answer`, `odd-one`) are not in the command's text,
    // so only the hosts' answers can show them.
    let r = run_in(
        work.path(),
        &[
            "exec",
            "app",
            "-i",
            inventory.to_str().unwrap(),
            "--",
            "if [ \"$(hostname)\" = h3 ]; then printf 'odd-%s\\n' one; else printf 'same-%s\\n' answer; fi",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    let at = r
        .stdout
        .find("h1, h2, h4 (3 hosts) rc=0:\n")
        .unwrap_or_else(|| panic!("no group of 3:\n{}", r.dump()));
    assert_eq!(
        &r.stdout[at..],
        "h1, h2, h4 (3 hosts) rc=0:\nsame-answer\nh3 (1 host) rc=0:\nodd-one\n",
        "{}",
        r.dump()
    );
    // Host by host (`-v` lines, timestamped) the output is still shown; the
    // summary has each answer exactly once.
    for answer in ["same-answer", "odd-one"] {
        assert_eq!(
            r.stdout.lines().filter(|l| *l == answer).count(),
            1,
            "{answer}:\n{}",
            r.dump()
        );
    }
    assert_eq!(r.journal().outcome(), "completed");
}

/// Nanoseconds since the epoch at which the command started and ended on host i.
fn span(fleet: &Fleet, i: usize) -> (u128, u128) {
    let text = std::fs::read_to_string(fleet.host_path(i, "/tmp/exec-span"))
        .unwrap_or_else(|e| panic!("h{i} has no /tmp/exec-span: {e}"));
    let field = |word: &str| -> u128 {
        text.lines()
            .find_map(|l| l.strip_prefix(word))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("h{i}: no {word:?} in {text:?}"))
    };
    (field("start "), field("end "))
}

#[test]
fn batch_runs_batches_one_after_another_and_max_fail_stops() {
    let fleet = Fleet::start(4);
    let work = workdir();
    let inventory = app_inventory(&fleet, work.path(), "");
    let inv = inventory.to_str().unwrap();

    let r = run_in(
        work.path(),
        &[
            "exec",
            "app",
            "-i",
            inv,
            "--batch",
            "2",
            "--",
            "echo start $(date +%s%N) > /tmp/exec-span; sleep 1; echo end $(date +%s%N) >> /tmp/exec-span",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.dump());
    let spans: Vec<(u128, u128)> = fleet.hosts().map(|i| span(&fleet, i)).collect();
    // Inventory order: h1, h2 then h3, h4.
    let first_end = spans[0].1.max(spans[1].1);
    let second_start = spans[2].0.min(spans[3].0);
    assert!(
        first_end < second_start,
        "batches overlap: {spans:?}\n{}",
        r.dump()
    );
    assert_eq!(r.journal().outcome(), "completed");

    // Failing on h1 of the first batch, no failure tolerated: the second
    // batch never runs.
    let r = run_in(
        work.path(),
        &[
            "exec",
            "app",
            "-i",
            inv,
            "--batch",
            "2",
            "--max-fail",
            "0",
            "--",
            "touch /tmp/exec-ran; test \"$(hostname)\" != h1",
        ],
    );
    assert_eq!(r.code, 2, "{}", r.dump());
    for i in fleet.hosts() {
        assert_eq!(
            fleet.host_path(i, "/tmp/exec-ran").exists(),
            i <= 2,
            "h{i}:\n{}",
            r.dump()
        );
    }
    assert!(
        r.stdout.contains(
            "failure budget exceeded: 1 host(s) failed (h1), 0 allowed; 1 batch(es) not started; not run: h3, h4"
        ),
        "{}",
        r.dump()
    );
    assert_eq!(r.journal().outcome(), "failed");
}
