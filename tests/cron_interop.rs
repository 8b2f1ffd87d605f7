//! A crontab written by one tool is managed by the other: the
//! `modules-cron` compat case run by ansible-core, then by convoy on the
//! same hosts (and the other way round), changes nothing the second time.
//! The jobs are found under the same `#Ansible: NAME` lines.

mod support;

use std::path::Path;

use support::compat::{Case, Oracle, Tool};
use support::{fresh_home, workdir};

/// Runs the case with `first` (it writes the crontabs), then with `second`:
/// what the second run changed, and the hosts' crontabs after each.
fn hand_over(oracle: &Oracle, case: &Case, first: Tool, second: Tool) -> (u32, String, String) {
    oracle.reset();
    let crontabs = || {
        oracle.fleet.exec_ok(
            1,
            "crontab -l; crontab -u convoy -l; cat /etc/cron.d/compat-sync",
        )
    };
    let dir = workdir();
    case.copy_into(dir.path());
    let run = oracle.run(first, case, dir.path(), &fresh_home());
    assert_eq!(run.code, 0, "{first}:\n{}", run.dump());
    let written = crontabs();
    let dir = workdir();
    case.copy_into(dir.path());
    let run = oracle.run(second, case, dir.path(), &fresh_home());
    assert_eq!(run.code, 0, "{second}:\n{}", run.dump());
    (run.changed(), written, crontabs())
}

#[test]
fn crontabs_written_by_either_tool_are_kept_by_the_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/cases/modules-cron");
    let case = Case::load(&root);
    let oracle = Oracle::start(2);
    for (first, second) in [(Tool::Ansible, Tool::Convoy), (Tool::Convoy, Tool::Ansible)] {
        let (changed, before, after) = hand_over(&oracle, &case, first, second);
        assert!(
            before.contains("#Ansible: report\n30 7 1 * * /usr/bin/report --monthly\n"),
            "{before}"
        );
        assert_eq!(changed, 0, "{second} changed what {first} wrote");
        assert_eq!(after, before, "{second} rewrote what {first} wrote");
    }
}
