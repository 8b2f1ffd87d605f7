//! The differential suite: every case of `tests/compat/cases/` run by
//! ansible-core (the pinned one `.ci/run` installs in a virtualenv) and by
//! convoy on the same fleet, the hosts compared (see `support/compat.rs`).
//!
//! Prints the score per area: same / different (known differences, each
//! with its reason in its `case.yml` and in the README) / unsupported
//! (convoy refuses the case, saying why). Fails on any difference not
//! marked known, on a known difference that has gone (so that the marks
//! stay true), and on a second run that changed something under either tool.
//!
//! `COMPAT_CASE=name[,name]` runs only those cases.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use support::compat::{Case, Oracle, Tool, ToolRun, snapshot_diff};
use support::{fresh_home, workdir};

/// How a case came out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Same,
    Different,
    Unsupported,
}

#[test]
fn convoy_matches_ansible_core_on_every_case() {
    let started = Instant::now();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/cases");
    let only: Option<Vec<String>> = std::env::var("COMPAT_CASE")
        .ok()
        .map(|v| v.split(',').map(str::to_owned).collect());
    let cases: Vec<Case> = Case::all(&root)
        .into_iter()
        .filter(|c| only.as_ref().is_none_or(|o| o.contains(&c.name)))
        .collect();
    assert!(!cases.is_empty(), "no compat case selected");

    let oracle = Oracle::start(2);
    let version = oracle.ansible_version();
    let mut failures: Vec<String> = Vec::new();
    let mut score: BTreeMap<String, [u32; 3]> = BTreeMap::new();
    let mut known: Vec<String> = Vec::new();

    for case in &cases {
        let case_started = Instant::now();
        let (verdict, problems) = run_case(&oracle, case);
        let slot = score.entry(case.spec.area.clone()).or_default();
        match verdict {
            Verdict::Same => slot[0] += 1,
            Verdict::Different => slot[1] += 1,
            Verdict::Unsupported => slot[2] += 1,
        }
        let word = match verdict {
            Verdict::Same => "same",
            Verdict::Different => "different",
            Verdict::Unsupported => "unsupported",
        };
        eprintln!(
            "compat {:<32} {:<12} {:>5.1}s{}",
            case.name,
            word,
            case_started.elapsed().as_secs_f64(),
            if problems.is_empty() { "" } else { "  FAILED" }
        );
        if let Some(reason) = case
            .spec
            .known_difference
            .as_ref()
            .or(case.spec.unsupported.as_ref())
        {
            known.push(format!("{} ({}): {reason}", case.name, word));
        }
        for p in problems {
            failures.push(format!("case {}: {p}", case.name));
        }
    }

    let mut table = format!(
        "\ncompat score against {version} ({} cases, {:.0}s)\n{:<14} {:>5} {:>10} {:>12}\n",
        cases.len(),
        started.elapsed().as_secs_f64(),
        "area",
        "same",
        "different",
        "unsupported"
    );
    let mut total = [0u32; 3];
    for (area, [s, d, u]) in &score {
        table.push_str(&format!("{area:<14} {s:>5} {d:>10} {u:>12}\n"));
        total = [total[0] + s, total[1] + d, total[2] + u];
    }
    table.push_str(&format!(
        "{:<14} {:>5} {:>10} {:>12}\n",
        "total", total[0], total[1], total[2]
    ));
    if !known.is_empty() {
        table.push_str("marked cases (known differences, unsupported):\n");
        for k in &known {
            table.push_str(&format!("  {k}\n"));
        }
    }
    // On stderr (shown with --nocapture, and when the test fails), and in
    // target/compat-score.txt, which .ci/run prints after the suite.
    eprintln!("{table}");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let _ = std::fs::write(target.join("compat-score.txt"), &table);
    assert!(
        failures.is_empty(),
        "{} problem(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Runs one case under both tools; the verdict and what is wrong with it
/// (an unmarked difference, a stale mark, a second run that changed).
fn run_case(oracle: &Oracle, case: &Case) -> (Verdict, Vec<String>) {
    let mut problems = Vec::new();

    // ansible-core first: it is the judge, so a broken case shows here.
    oracle.reset();
    let ansible_dir = workdir();
    case.copy_into(ansible_dir.path());
    let home = fresh_home();
    let a1 = oracle.run(Tool::Ansible, case, ansible_dir.path(), &home);
    let a2 = oracle.run(Tool::Ansible, case, ansible_dir.path(), &home);
    if a1.recap.is_empty() {
        problems.push(format!(
            "ansible-playbook printed no recap (a broken case?):\n{}",
            a1.dump()
        ));
        return (Verdict::Different, problems);
    }
    if a2.changed() != 0 {
        problems.push(format!(
            "ansible-playbook's second run changed something (the case is not idempotent):\n{}",
            a2.dump()
        ));
    }
    let ansible_hosts = oracle.snapshot();
    if ansible_hosts.is_empty() {
        problems.push(format!(
            "ansible-playbook left nothing under /srv/compat: the case compares nothing\n{}",
            a1.dump()
        ));
    }
    if std::env::var_os("COMPAT_SHOW").is_some() {
        for (k, v) in &ansible_hosts {
            eprintln!("  {k} {v:?}");
        }
    }

    oracle.reset();
    let convoy_dir = workdir();
    case.copy_into(convoy_dir.path());
    let home = fresh_home();
    let c1 = oracle.run(Tool::Convoy, case, convoy_dir.path(), &home);

    if let Some(reason) = &case.spec.unsupported {
        if c1.code == 3 {
            return (Verdict::Unsupported, problems);
        }
        problems.push(format!(
            "marked unsupported ({reason}) but convoy did not refuse it (exit {}): \
             remove the mark\n{}",
            c1.code,
            c1.dump()
        ));
        return (Verdict::Unsupported, problems);
    }
    let c2 = oracle.run(Tool::Convoy, case, convoy_dir.path(), &home);
    if c1.recap.is_empty() {
        problems.push(format!("convoy printed no recap:\n{}", c1.dump()));
    } else if c2.changed() != 0 {
        problems.push(format!(
            "convoy's second run changed something:\n{}",
            c2.dump()
        ));
    }
    let convoy_hosts = oracle.snapshot();

    let mut differences = snapshot_diff(&ansible_hosts, &convoy_hosts);
    differences.extend(recap_diff(&a1, &c1));
    let verdict = if differences.is_empty() {
        Verdict::Same
    } else {
        Verdict::Different
    };
    match (&case.spec.known_difference, differences.is_empty()) {
        (None, false) => problems.push(format!(
            "convoy differs from ansible-core (- ansible, + convoy):\n{}\n\
             ansible-playbook:\n{}\nconvoy:\n{}",
            differences.join("\n"),
            a1.dump(),
            c1.dump()
        )),
        (Some(reason), true) => problems.push(format!(
            "marked as a known difference ({reason}) but convoy now matches: remove the mark \
             (and its line in the README)"
        )),
        _ => {}
    }
    (verdict, problems)
}

/// The recaps' and exit codes' differences, as snapshot lines.
fn recap_diff(ansible: &ToolRun, convoy: &ToolRun) -> Vec<String> {
    let mut lines = Vec::new();
    if ansible.code != convoy.code {
        lines.push(format!("- exit code {}", ansible.code));
        lines.push(format!("+ exit code {}", convoy.code));
    }
    if ansible.recap != convoy.recap {
        let show = |r: &support::compat::Recap| {
            r.iter()
                .map(|(h, [ok, ch, f, s])| {
                    format!("{h}: ok={ok} changed={ch} failed={f} skipped={s}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        lines.push(format!("- recap {}", show(&ansible.recap)));
        lines.push(format!("+ recap {}", show(&convoy.recap)));
    }
    lines
}
