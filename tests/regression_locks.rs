//! Regressions of the deploy lock, each named after what broke, on a real
//! fleet: simultaneous starts where nobody won, locks left by runs that had
//! ended, partial uploads left forever, refusals that did not say what to
//! do, locks that were never renewed, and the mkdir/stat race. Each test
//! checks the hosts themselves (the lock directory, its holder and age,
//! the artifact store, where `current` points).

mod support;

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::project::{Project, ROOT};
use support::run::{Run, wait_or_kill};
use support::tarball::release_tar_gz;
use support::{Fleet, workdir, write_file};

/// PATH for convoy processes spawned here (as `support::convoy` sets it).
const CLEAN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A switch hook that sleeps for the seconds in /srv/slow (if present), so
/// that a run holds its locks long enough for the others to meet them.
const PLAYBOOK: &str = r#"- name: Deploy hello
  hosts: app
  vars: { version: "1.0.0" }
  distribution:
    name: hello
    version: "{{ version }}"
    source: "dist/hello-{{ version }}.tar.gz"
    strip_components: 0
    root: /srv/hello
    keep: 30
  rollout:
ROLLOUT  hooks:
    switch:
      - name: slow switch
        shell: |
          if [ -e /srv/slow ]; then touch /srv/in-switch; sleep "$(cat /srv/slow)"; fi
"#;

/// A convoy run in the background, its output going to files.
struct Background {
    child: Child,
    out: std::path::PathBuf,
    err: std::path::PathBuf,
}

impl Background {
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Background {
        let logs = dir.join(".logs");
        std::fs::create_dir_all(&logs).unwrap();
        let n = std::fs::read_dir(&logs).unwrap().count();
        let (out, err) = (logs.join(format!("{n}.out")), logs.join(format!("{n}.err")));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_convoy"));
        cmd.env_clear()
            .env("PATH", CLEAN_PATH)
            .env("HOME", support::fresh_home())
            .env("NO_COLOR", "1")
            .env("TERM", "dumb")
            .envs(env.iter().copied())
            .current_dir(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap());
        Background {
            child: cmd.spawn().expect("spawn convoy"),
            out,
            err,
        }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn finish(mut self, timeout: Duration) -> Run {
        let status = wait_or_kill(&mut self.child, timeout);
        let run = Run {
            code: status.and_then(|s| s.code()).unwrap_or(-1),
            stdout: self.stdout(),
            stderr: std::fs::read_to_string(&self.err).unwrap_or_default(),
        };
        assert!(
            status.is_some(),
            "convoy did not end within {timeout:?}:\n{}",
            run.dump()
        );
        run
    }
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out ({timeout:?}) waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The run id of a finished run (from `NOTE journal: <path>`).
fn run_id(run: &Run) -> String {
    run.journal().run_id
}

fn project(n: usize, rollout: &str) -> Project {
    let fleet = Fleet::start(n);
    let work = workdir();
    let inventory = support::inventory::app_inventory(&fleet, work.path(), "");
    let playbook = write_file(
        work.path(),
        "deploy.yml",
        &PLAYBOOK.replace("ROLLOUT", &indent(rollout)),
    );
    Project {
        fleet,
        work,
        playbook,
        inventory,
        in_dir: true,
    }
}

fn indent(lines: &str) -> String {
    lines.lines().map(|l| format!("    {l}\n")).collect()
}

fn artifact(p: &Project, version: &str, blob: usize) {
    write_file(p.dir(), &format!("dist/hello-{version}.tar.gz"), "");
    std::fs::write(
        p.dir().join(format!("dist/hello-{version}.tar.gz")),
        release_tar_gz(version, blob),
    )
    .unwrap();
}

fn spawn_deploy(p: &Project, version: &str, env: &[(&str, &str)]) -> Background {
    let v = format!("version={version}");
    Background::start(p.dir(), &p.args("run", &["-e", &v]), env)
}

fn slow(p: &Project, secs: u32) {
    for i in p.fleet.hosts() {
        std::fs::write(p.fleet.host_path(i, "/srv/slow"), secs.to_string()).unwrap();
    }
}

fn unslow(p: &Project) {
    for i in p.fleet.hosts() {
        let _ = std::fs::remove_file(p.fleet.host_path(i, "/srv/slow"));
    }
}

/// Writes a lock by hand on host i: `holder`, last renewed `age_secs` ago.
fn plant_lock(p: &Project, i: usize, holder: &str, age_secs: u64) {
    let lock = p.lock_dir(i);
    std::fs::create_dir_all(&lock).unwrap();
    std::fs::write(lock.join("holder"), format!("{holder}\n")).unwrap();
    p.fleet.exec_ok(
        i,
        &format!("touch -d @{} {ROOT}/.convoy/lock", now_secs() - age_secs),
    );
}

fn partial_uploads(p: &Project, i: usize) -> Vec<String> {
    match std::fs::read_dir(p.path(i, ".convoy/artifacts")) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".part"))
            .collect(),
        Err(_) => vec![],
    }
}

// ---------------------------------------------------------------- simultaneous starts

/// Issue "Trust": two operators starting the same deploy at the same
/// moment both gave up in 2 of 6 tries (each took some hosts' locks and met
/// the other's). Locks are now taken in one order, the first host alone:
/// in every try exactly one run wins, the others are refused naming it.
#[test]
fn simultaneous_starts_never_all_give_up() {
    let p = project(3, "batch: 100%\n");
    artifact(&p, "1.0.0", 0);
    p.deploy_ok("1.0.0", &[]);
    const TRIES: usize = 6;
    const RUNS: usize = 3;
    for t in 0..TRIES {
        let versions: Vec<String> = (0..RUNS).map(|r| format!("{}.{t}.0", r + 2)).collect();
        for v in &versions {
            artifact(&p, v, 0);
        }
        // The winner holds its locks for a while: the others meet them.
        slow(&p, 3);
        let started: Vec<Background> = versions.iter().map(|v| spawn_deploy(&p, v, &[])).collect();
        let runs: Vec<Run> = started
            .into_iter()
            .map(|b| b.finish(Duration::from_secs(90)))
            .collect();
        unslow(&p);
        let all = || {
            runs.iter()
                .map(Run::dump)
                .collect::<Vec<_>>()
                .join("\n---------\n")
        };
        let winners: Vec<usize> = (0..RUNS).filter(|&r| runs[r].code == 0).collect();
        assert_eq!(
            winners.len(),
            1,
            "try {t}: exactly one run must win:\n{}",
            all()
        );
        let w = winners[0];
        let winner_id = run_id(&runs[w]);
        for (r, run) in runs.iter().enumerate().filter(|(r, _)| *r != w) {
            assert_eq!(
                run.code,
                3,
                "try {t}, run {r}: refused with exit 3:\n{}",
                all()
            );
            let text = run.all();
            assert!(
                text.contains("locked by") && text.contains(&winner_id),
                "try {t}, run {r}: the refusal names the winner {winner_id}:\n{}",
                all()
            );
            assert!(
                text.contains("alive on this machine"),
                "try {t}, run {r}: the refusal says the holder is alive:\n{}",
                all()
            );
        }
        for i in p.fleet.hosts() {
            assert_eq!(
                p.current(i).as_deref(),
                Some(format!("releases/{}", versions[w]).as_str()),
                "try {t}, h{i}: on the winner's release:\n{}",
                all()
            );
            for (r, v) in versions.iter().enumerate().filter(|(r, _)| *r != w) {
                assert!(
                    !p.path(i, &format!("releases/{v}")).exists(),
                    "try {t}, h{i}: the refused run {r} prepared {v}"
                );
            }
            p.assert_unlocked(i, &format!("after try {t}"));
        }
    }
}

/// Runs on different but overlapping hosts, whose first hosts differ
/// (h1+h3+h4 and h2+h3+h4): each takes its own first host, then they race
/// for h3 and h4. Taking the first host alone does not decide that; the
/// older run's priority does: in every try exactly one wins.
#[test]
fn simultaneous_starts_on_overlapping_hosts_never_all_give_up() {
    let p = project(4, "batch: 100%\n");
    artifact(&p, "1.0.0", 0);
    p.deploy_ok("1.0.0", &[]);
    let limits = ["h1:h3:h4", "h2:h3:h4"];
    const TRIES: usize = 6;
    for t in 0..TRIES {
        let before: Vec<Option<String>> = p.fleet.hosts().map(|i| p.current(i)).collect();
        let versions: Vec<String> = (0..2).map(|r| format!("{}.{t}.0", r + 2)).collect();
        for v in &versions {
            artifact(&p, v, 0);
        }
        slow(&p, 2);
        let started: Vec<Background> = versions
            .iter()
            .zip(limits)
            .map(|(v, limit)| {
                let v = format!("version={v}");
                Background::start(p.dir(), &p.args("run", &["-e", &v, "-l", limit]), &[])
            })
            .collect();
        let runs: Vec<Run> = started
            .into_iter()
            .map(|b| b.finish(Duration::from_secs(120)))
            .collect();
        unslow(&p);
        let all = || {
            runs.iter()
                .map(Run::dump)
                .collect::<Vec<_>>()
                .join("\n---------\n")
        };
        let winners: Vec<usize> = (0..2).filter(|&r| runs[r].code == 0).collect();
        assert_eq!(
            winners.len(),
            1,
            "try {t}: exactly one run must win:\n{}",
            all()
        );
        let (w, l) = (winners[0], 1 - winners[0]);
        assert_eq!(runs[l].code, 3, "try {t}: the other is refused:\n{}", all());
        assert!(
            runs[l].all().contains(&run_id(&runs[w])),
            "try {t}: the refusal names the winner:\n{}",
            all()
        );
        // The winner's hosts are on its release; the loser's own host is untouched.
        let (winner_own, loser_own) = if w == 0 { (1, 2) } else { (2, 1) };
        for i in [winner_own, 3, 4] {
            let want = format!("releases/{}", versions[w]);
            assert_eq!(
                p.current(i).as_deref(),
                Some(want.as_str()),
                "try {t}, h{i}:\n{}",
                all()
            );
        }
        assert_eq!(
            p.current(loser_own),
            before[loser_own - 1],
            "try {t}, h{loser_own}"
        );
        for i in p.fleet.hosts() {
            assert!(
                !p.path(i, &format!("releases/{}", versions[l])).exists(),
                "try {t}, h{i}: the refused run prepared its release"
            );
            p.assert_unlocked(i, &format!("after try {t}"));
        }
    }
}

// ---------------------------------------------------------------- ended holders

/// Issue "Trust": a run that lost a host mid-upload (link cut) left its
/// lock there, and the next run was refused although the holder had ended;
/// the partial upload stayed in the store forever. Now the next run takes
/// the lock over (the holder's journal records its end, its process is
/// gone), says so, and removes partial uploads under the lock.
#[test]
fn a_lock_left_by_a_run_cut_off_mid_upload_is_taken_over() {
    let p = project(2, "batch: 100%\n");
    artifact(&p, "1.0.0", 0);
    p.deploy_ok("1.0.0", &[]);
    // 4 MB of random bytes over a 16 Mbit/s link to h2: a couple of seconds of upload.
    artifact(&p, "2.0.0", 4_000_000);
    let veth = format!("cv{}h2", p.fleet.id());
    let tc = |args: &str| {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("tc qdisc {args}"))
            .status()
            .unwrap();
        assert!(status.success(), "tc qdisc {args}");
    };
    tc(&format!(
        "add dev {veth} root tbf rate 16mbit burst 32kbit latency 400ms"
    ));
    let cut = spawn_deploy(&p, "2.0.0", &[]);
    wait_until("a partial upload on h2", Duration::from_secs(60), || {
        !partial_uploads(&p, 2).is_empty()
    });
    p.fleet.link_down(2);
    let cut = cut.finish(Duration::from_secs(180));
    p.fleet.link_up(2);
    tc(&format!("del dev {veth} root"));
    assert_ne!(cut.code, 0, "{}", cut.dump());
    let cut_id = run_id(&cut);
    assert!(
        p.holder(2).is_some_and(|h| h.contains(&cut_id)),
        "h2 keeps the cut-off run's lock: {:?}\n{}",
        p.holder(2),
        cut.dump()
    );
    // Whatever the cut-off shell does once the link is back, this one was
    // left by a run that no longer exists: only the next run can clean it.
    let planted = "0000000000000000000000000000000000000000000000000000000000000000.4242.part";
    std::fs::write(p.path(2, &format!(".convoy/artifacts/{planted}")), "half").unwrap();

    let next = p.deploy("2.0.0", &[]);
    assert_eq!(next.code, 0, "{}", next.dump());
    assert!(
        next.notes()
            .iter()
            .any(|n| n.starts_with("h2: took over the deploy lock")
                && n.contains(&cut_id)
                && n.contains("journal records its end")),
        "the take-over is reported with its reason:\n{}",
        next.dump()
    );
    assert!(
        next.notes()
            .iter()
            .any(|n| n.starts_with("h2: removed") && n.contains("partial upload")),
        "{}",
        next.dump()
    );
    for i in p.fleet.hosts() {
        assert_eq!(p.current(i).as_deref(), Some("releases/2.0.0"), "h{i}");
        assert_eq!(
            partial_uploads(&p, i),
            Vec::<String>::new(),
            "h{i}: partial uploads left"
        );
        p.assert_unlocked(i, "after the run that took over");
    }
}

/// A run killed hard (its process gone, no `run_end`) left a lock that
/// needed --force-unlock; now the next run on this machine takes it over.
#[test]
fn a_lock_of_a_killed_run_is_taken_over_without_force() {
    let p = project(2, "batch: 100%\n");
    artifact(&p, "1.0.0", 0);
    artifact(&p, "2.0.0", 0);
    p.deploy_ok("1.0.0", &[]);
    slow(&p, 30);
    let mut dead = spawn_deploy(&p, "2.0.0", &[]);
    wait_until(
        "the switch hook on every host",
        Duration::from_secs(30),
        || {
            p.fleet
                .hosts()
                .all(|i| p.fleet.host_path(i, "/srv/in-switch").exists())
        },
    );
    let pid = dead.child.id();
    dead.child.kill().unwrap();
    dead.child.wait().unwrap();
    unslow(&p);
    for i in p.fleet.hosts() {
        assert!(
            p.holder(i)
                .is_some_and(|h| h.contains(&format!("pid={pid} "))),
            "h{i}: the killed run's lock stays: {:?}",
            p.holder(i)
        );
    }
    let r = p.deploy("2.0.0", &[]);
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in p.fleet.hosts() {
        let host = format!("h{i}: took over the deploy lock");
        assert!(
            r.notes().iter().any(|n| n.starts_with(&host)
                && n.contains(&format!("process (pid {pid}) on this machine is gone"))),
            "h{i}: {}",
            r.dump()
        );
        assert_eq!(p.current(i).as_deref(), Some("releases/2.0.0"), "h{i}");
        p.assert_unlocked(i, "after the take-over");
    }
}

// ---------------------------------------------------------------- refusals and staleness

/// Issue "Trust": a refusal did not say whether the holder is alive or
/// what to do; and --force-unlock took any lock older than an hour. A lock
/// held from another machine is refused with what to do while it is being
/// renewed, even with --force-unlock; once it has gone unrenewed past the
/// stale bound, the refusal says so, and --force-unlock takes it.
#[test]
fn a_refusal_says_whether_the_holder_is_alive_and_force_takes_only_stale_locks() {
    let p = project(2, "batch: 100%\n");
    artifact(&p, "1.0.0", 0);
    artifact(&p, "2.0.0", 0);
    p.deploy_ok("1.0.0", &[]);
    let other = "ops@elsewhere pid=77 run=20261201T090000Z-beef since=2026-12-01T09:00:00Z";
    // An hour and more since it was taken, renewed 10 s ago: a live run elsewhere.
    plant_lock(&p, 1, other, 10);

    for extra in [&[][..], &["--force-unlock"][..]] {
        let r = p.deploy("2.0.0", extra);
        assert_eq!(r.code, 3, "{extra:?}: {}", r.dump());
        let text = r.all();
        for needle in [
            "h1: locked by ops@elsewhere pid=77 run=20261201T090000Z-beef",
            "cannot tell from this machine whether that run is alive",
            "convoy unlock",
            "nothing was changed",
        ] {
            assert!(
                text.contains(needle),
                "{extra:?}: no {needle:?} in:\n{}",
                r.dump()
            );
        }
        for i in p.fleet.hosts() {
            assert!(
                !p.path(i, "releases/2.0.0").exists(),
                "h{i}: 2.0.0 prepared"
            );
        }
        assert!(
            p.holder(1).is_some_and(|h| h.contains("beef")),
            "h1: the lock was touched"
        );
        p.assert_unlocked(2, "after a refusal");
    }

    // Ten minutes without renewal: stale (the bound is five).
    plant_lock(&p, 1, other, 600);
    let r = p.deploy("2.0.0", &[]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.all().contains("not renewed for 10m") && r.all().contains("--force-unlock"),
        "{}",
        r.dump()
    );
    let r = p.deploy("2.0.0", &["--force-unlock"]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        r.notes().iter().any(
            |n| n.starts_with("h1: took over the deploy lock of ops@elsewhere")
                && n.contains("--force-unlock")
        ),
        "{}",
        r.dump()
    );
    for i in p.fleet.hosts() {
        assert_eq!(p.current(i).as_deref(), Some("releases/2.0.0"), "h{i}");
        p.assert_unlocked(i, "after --force-unlock");
    }
}

// ---------------------------------------------------------------- renewal

/// Issue "Trust": the deploy lock was never renewed, so after an hour
/// --force-unlock could take the lock of a live run. A live run now keeps
/// its lock fresh on every host, and stops renewing once it released it.
#[test]
fn a_live_run_renews_its_locks_until_it_releases_them() {
    // Two batches with a pause between them: the run lives on, idle.
    let p = project(2, "batch: 1\npause: 8s\n");
    artifact(&p, "1.0.0", 0);
    artifact(&p, "2.0.0", 0);
    p.deploy_ok("1.0.0", &[]);
    let env = [("CONVOY_LOCK_RENEW_SECS", "1")];
    let run = spawn_deploy(&p, "2.0.0", &env);
    wait_until("the lock on every host", Duration::from_secs(30), || {
        p.fleet.hosts().all(|i| p.holder(i).is_some())
    });
    let taken = now_secs();
    let age = |i: usize| -> u64 {
        let mtime: u64 = p
            .fleet
            .exec_ok(i, &format!("stat -c %Y {ROOT}/.convoy/lock"))
            .trim()
            .parse()
            .unwrap();
        now_secs().saturating_sub(mtime)
    };
    let mut checks = 0;
    while now_secs() < taken + 7 {
        std::thread::sleep(Duration::from_millis(500));
        for i in p.fleet.hosts() {
            if p.holder(i).is_none() {
                continue;
            }
            let a = age(i);
            assert!(
                a <= 3,
                "h{i}: lock last renewed {a} s ago, {} s after it was taken",
                now_secs() - taken
            );
            checks += 1;
        }
    }
    assert!(
        now_secs() >= taken + 6 && checks >= 10,
        "too few checks ({checks}) to judge renewal"
    );
    let r = run.finish(Duration::from_secs(90));
    assert_eq!(r.code, 0, "{}", r.dump());
    // Released for good: no renewal in flight recreates it.
    std::thread::sleep(Duration::from_millis(2500));
    for i in p.fleet.hosts() {
        assert_eq!(p.current(i).as_deref(), Some("releases/2.0.0"), "h{i}");
        p.assert_unlocked(i, "2.5 s after the run ended");
    }
}

// ---------------------------------------------------------------- the mkdir/stat race

/// Issue "Trust": a lock released between the `mkdir` and the `stat` gave
/// "cannot statx ... arithmetic expression: expecting primary" although
/// the lock was free. Another locker (one that does not take convoy's
/// guard) takes and releases the lock in a tight loop on h1; every run
/// either gets the lock or is refused naming a holder, never that error.
#[test]
fn a_lock_released_between_mkdir_and_stat_is_looked_at_again() {
    let p = project(1, "batch: 100%\n");
    artifact(&p, "1.0.0", 0);
    p.deploy_ok("1.0.0", &[]);
    let l = format!("{ROOT}/.convoy/lock");
    p.fleet.exec_ok(
        1,
        &format!(
            "nohup sh -c 'while [ ! -e /srv/stop ]; do if mkdir {l} 2>/dev/null; then echo \"ops@elsewhere pid=1 run=flicker since=x\" > {l}/holder; rm -rf {l}; fi; done' >/dev/null 2>&1 &"
        ),
    );
    let mut outcomes = std::collections::BTreeMap::new();
    for _ in 0..15 {
        let r = p.deploy("1.0.0", &[]);
        let text = r.all();
        assert!(
            !text.contains("cannot stat")
                && !text.contains("arithmetic")
                && !text.contains("cannot lock"),
            "{}",
            r.dump()
        );
        match r.code {
            0 => {}
            3 => assert!(text.contains("locked by"), "{}", r.dump()),
            _ => panic!("{}", r.dump()),
        }
        *outcomes.entry(r.code).or_insert(0) += 1;
    }
    std::fs::write(p.fleet.host_path(1, "/srv/stop"), "").unwrap();
    eprintln!("exit codes: {outcomes:?}");
}

/// A run whose lock is removed under it (`convoy unlock` while it runs)
/// says so at its next renewal instead of carrying on unaware.
#[test]
fn a_run_whose_lock_is_cleared_under_it_says_so() {
    let p = project(2, "batch: 1\npause: 5s\n");
    artifact(&p, "1.0.0", 0);
    artifact(&p, "2.0.0", 0);
    p.deploy_ok("1.0.0", &[]);
    let run = spawn_deploy(&p, "2.0.0", &[("CONVOY_LOCK_RENEW_SECS", "1")]);
    wait_until("the lock on every host", Duration::from_secs(30), || {
        p.fleet.hosts().all(|i| p.holder(i).is_some())
    });
    let unlock = p.convoy("unlock", &[]);
    assert_eq!(unlock.code, 0, "{}", unlock.dump());
    let r = run.finish(Duration::from_secs(90));
    assert_eq!(r.code, 0, "{}", r.dump());
    for i in p.fleet.hosts() {
        let note = format!("h{i}: this run lost its deploy lock (it was removed)");
        assert!(
            r.notes().iter().any(|n| n.starts_with(&note)),
            "no {note:?}:\n{}",
            r.dump()
        );
        p.assert_unlocked(i, "after the run");
    }
}

// ---------------------------------------------------------------- bounded connections

/// The ssh masters (`ssh -M`) alive now that carry `marker` in their
/// environment (so only this test's convoy counts, not another test's),
/// as (pid, address). A master's parent before it forks itself into the
/// background (`-f`) has the same command line: it is the same master.
fn masters(marker: &str) -> Vec<(u32, String)> {
    let mut found: Vec<(u32, u32, String)> = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in procs.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let dir = entry.path();
        let (Ok(comm), Ok(environ), Ok(cmdline), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read(dir.join("environ")),
            std::fs::read(dir.join("cmdline")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue;
        };
        if comm.trim() != "ssh" || !environ.split(|b| *b == 0).any(|v| v == marker.as_bytes()) {
            continue;
        }
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let after = stat
            .rsplit_once(')')
            .map(|(_, r)| r.split_whitespace().collect::<Vec<_>>());
        let zombie = after.as_ref().is_some_and(|f| f.first() == Some(&"Z"));
        let ppid: u32 = after
            .as_ref()
            .and_then(|f| f.get(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if args.iter().any(|a| a == "-M") && !zombie {
            found.push((pid, ppid, args.last().cloned().unwrap_or_default()));
        }
    }
    let pids: Vec<u32> = found.iter().map(|(pid, ..)| *pid).collect();
    found
        .into_iter()
        .filter(|(_, ppid, _)| !pids.contains(ppid))
        .map(|(pid, _, addr)| (pid, addr))
        .collect()
}

/// Issue 14: a run kept one ssh master per host for its whole length, lock
/// renewals holding them open: 5,000 hosts meant 5,000 masters on the
/// controller. Now at most `--max-connections` are alive at once, the
/// least recently used idle one closed for a host that needs one. Over
/// 12 hosts with a bound of 4, the masters alive on the controller
/// (counted in /proc all along) never pass 4, hosts do lose their master
/// and get a new one, every lock stays fresh through a pause longer than
/// the lock's staleness (renewed over new connections), and every host
/// ends on the new release, complete.
#[test]
fn a_run_over_more_hosts_than_max_connections_never_holds_more_masters_and_keeps_every_lock() {
    const BOUND: usize = 4;
    const STALE: u64 = 6;
    let p = project(12, "batch: [2, \"100%\"]\npause: 10s\n");
    artifact(&p, "1.0.0", 4096);
    artifact(&p, "2.0.0", 4096);
    let marker = format!("CVY_MASTERS_OF={}", std::process::id());
    let (key, value) = marker.split_once('=').unwrap();
    let stale = STALE.to_string();
    let env = [
        (key, value),
        ("CONVOY_LOCK_RENEW_SECS", "1"),
        ("CONVOY_LOCK_STALE_SECS", stale.as_str()),
    ];
    let bounded = ["--forks", "2", "--max-connections", "4"];
    let sample = |run: &mut Background, seen: &mut Vec<(u32, String)>, peak: &mut usize| {
        let now = masters(&marker);
        *peak = (*peak).max(now.len());
        for m in now {
            if !seen.contains(&m) {
                seen.push(m);
            }
        }
        run.child.try_wait().unwrap().is_none()
    };

    // First deploy, bounded too.
    let (mut seen, mut peak) = (Vec::new(), 0);
    let mut args = p.args("run", &["-e", "version=1.0.0"]);
    args.extend_from_slice(&bounded);
    let mut first = Background::start(p.dir(), &args, &env);
    while sample(&mut first, &mut seen, &mut peak) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = first.finish(Duration::from_secs(5));
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(
        peak <= BOUND,
        "first deploy: {peak} masters alive at once (bound {BOUND})"
    );
    assert!(
        seen.len() > 12,
        "first deploy: {} masters over 12 hosts: none was closed and opened again",
        seen.len()
    );

    // The upgrade, sampled, with the lock ages read during the pause.
    let (mut seen, mut peak) = (Vec::new(), 0);
    let mut args = p.args("run", &["-e", "version=2.0.0"]);
    args.extend_from_slice(&bounded);
    let mut run = Background::start(p.dir(), &args, &env);
    wait_until("the first batch switched", Duration::from_secs(60), || {
        sample(&mut run, &mut seen, &mut peak);
        p.current(1).as_deref() == Some("releases/2.0.0")
            && p.current(2).as_deref() == Some("releases/2.0.0")
    });
    let in_pause = Instant::now();
    let seen_before_pause = seen.clone();
    let mut checks = 0;
    let mut worst = 0;
    // Past the staleness; the pause is 10 s.
    while in_pause.elapsed() < Duration::from_secs(STALE + 2) {
        for i in p.fleet.hosts() {
            sample(&mut run, &mut seen, &mut peak);
            let mtime: u64 = p
                .fleet
                .exec_ok(i, &format!("stat -c %Y {ROOT}/.convoy/lock"))
                .trim()
                .parse()
                .unwrap();
            let age = now_secs().saturating_sub(mtime);
            worst = worst.max(age);
            assert!(
                age < STALE,
                "h{i}: its lock was last renewed {age} s ago, {:?} into the pause (stale after {STALE} s)",
                in_pause.elapsed()
            );
            checks += 1;
        }
    }
    // Hosts of the second batch, idle in the pause, lost their master and
    // were renewed over a new one.
    let reopened: Vec<usize> = (3..=12)
        .filter(|&i| {
            let addr = p.fleet.addr(i);
            let before = seen_before_pause.iter().filter(|(_, a)| *a == addr).count();
            let all = seen.iter().filter(|(_, a)| *a == addr).count();
            all > before && before > 0
        })
        .collect();
    while sample(&mut run, &mut seen, &mut peak) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = run.finish(Duration::from_secs(5));
    assert_eq!(r.code, 0, "{}", r.dump());
    eprintln!(
        "upgrade: {} masters opened over 12 hosts, at most {peak} alive at once; {checks} lock ages read in the pause, the oldest {worst} s; hosts given a new master in the pause: {reopened:?}",
        seen.len()
    );
    assert!(
        peak <= BOUND,
        "upgrade: {peak} masters alive at once (bound {BOUND})"
    );
    assert!(
        peak >= 2,
        "upgrade: the sampler saw at most {peak} masters: it measured nothing"
    );
    assert!(
        !reopened.is_empty(),
        "no idle host got a new master during the pause: eviction was not exercised"
    );
    for i in p.fleet.hosts() {
        assert_eq!(p.current(i).as_deref(), Some("releases/2.0.0"), "h{i}");
        assert_eq!(p.read(i, "current/VERSION"), "2.0.0\n", "h{i}");
        assert_eq!(
            p.read(i, "current/bin/hello"),
            support::tarball::hello_script("2.0.0"),
            "h{i}"
        );
        p.assert_store_consistent(i);
        p.assert_no_leftovers(i);
        p.assert_unlocked(i, "after the run");
    }
}
