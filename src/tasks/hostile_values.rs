//! The modules that send scripts (file, copy, lineinfile, stat, command,
//! wait_for, script, git), run on this machine with hostile values in each path and
//! argument: each value lands exactly where it was meant to, as data, and
//! no marker file exists afterwards.

use std::path::Path;

use serde_json::json;

use super::file::testing::run_local;
use super::{command, copy, file, lineinfile, script, stat, wait_for};
use crate::transport::hostile::Markers;

#[test]
fn module_scripts_take_hostile_values_as_data() {
    let markers = Markers::new();
    let work = tempfile::tempdir().unwrap();
    for (i, v) in markers.values().iter().enumerate() {
        let base = work.path().join(i.to_string());
        std::fs::create_dir(&base).unwrap();
        // A value holding `/` names a deeper path: its directories exist.
        let at = |name: &str| {
            let path = base.join(format!("{name} {v}"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            path.display().to_string()
        };
        let must = |what: &str, o: &super::Outcome| {
            assert!(!o.failed, "{what} with {v:?}: {:?}", o.msg);
        };

        let dir = at("dir");
        let o = run_local(
            &file::SPEC,
            json!({"path": dir, "state": "directory", "mode": "0750"}),
            false,
        );
        must("file directory", &o);
        assert!(Path::new(&dir).is_dir(), "{dir:?}");

        let link = at("link");
        let o = run_local(
            &file::SPEC,
            json!({"path": link, "state": "link", "src": format!("target {v}"), "force": true}),
            false,
        );
        must("file link", &o);
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            Path::new(&format!("target {v}"))
        );

        // Attributes through a link land on its target (`follow`).
        let target = at("target");
        std::fs::write(&target, "x").unwrap();
        let follows = at("follows");
        std::os::unix::fs::symlink(&target, &follows).unwrap();
        let o = run_local(
            &file::SPEC,
            json!({"path": follows, "state": "file", "follow": true, "mode": "0604"}),
            false,
        );
        must("file follow", &o);
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&target).unwrap().permissions()
            ) & 0o7777,
            0o604,
            "{target:?}"
        );

        let touched = at("touched");
        must(
            "file touch",
            &run_local(
                &file::SPEC,
                json!({"path": touched, "state": "touch"}),
                false,
            ),
        );
        must(
            "file absent",
            &run_local(
                &file::SPEC,
                json!({"path": touched, "state": "absent"}),
                false,
            ),
        );
        assert!(!Path::new(&touched).exists());

        let copied = at("copied");
        let o = run_local(
            &copy::SPEC,
            json!({"content": v, "dest": copied, "mode": "0640"}),
            false,
        );
        must("copy", &o);
        assert_eq!(std::fs::read_to_string(&copied).unwrap(), *v);
        let again = run_local(&copy::SPEC, json!({"content": v, "dest": copied}), false);
        assert!(
            !again.changed && !again.failed,
            "copy again: {:?}",
            again.msg
        );

        let o = run_local(&stat::SPEC, json!({"path": copied}), false);
        must("stat", &o);
        assert_eq!(o.result["stat"]["exists"], true, "{v:?}");

        let lines = at("lines");
        let o = run_local(
            &lineinfile::SPEC,
            json!({"path": lines, "line": "a line", "create": true}),
            false,
        );
        must("lineinfile", &o);
        assert_eq!(
            std::fs::read_to_string(&lines)
                .unwrap_or_else(|e| panic!("{lines:?}: {e} {:?}", o.msg)),
            "a line\n"
        );

        let o = run_local(
            &command::COMMAND,
            json!({"argv": ["printf", "%s", v], "chdir": dir, "removes": copied}),
            false,
        );
        must("command", &o);
        assert_eq!(o.result["stdout"], v.trim_end_matches('\n'));

        let o = run_local(
            &wait_for::SPEC,
            json!({"path": copied, "timeout": 2}),
            false,
        );
        must("wait_for", &o);

        // script: the script's own name, its directory, `chdir` and `creates`.
        let local = at("script");
        std::fs::write(&local, "pwd\n").unwrap();
        let o = run_local(
            &script::SPEC,
            json!({
                "_raw_params": crate::transport::quote(&local),
                "chdir": dir,
                "creates": at("never"),
            }),
            false,
        );
        must("script", &o);
        assert_eq!(o.result["stdout"], format!("{dir}\n"));
    }
    markers.assert_untouched();
}

/// `service` and `systemd` with a hostile name, arguments and pattern on
/// this machine, where no such service exists: each is looked for as
/// data (the module's own message names it back) and nothing runs.
#[test]
fn service_names_are_data() {
    let markers = Markers::new();
    for v in markers.values() {
        let name = format!("cvnone {v}");
        let o = run_local(
            &super::service::SPEC,
            json!({"name": name, "state": "started", "use": "service", "args": "a b", "pattern": v}),
            false,
        );
        assert!(o.failed, "service {v:?}: {o:?}");
        let msg = o.msg.clone().unwrap_or_default();
        assert_eq!(
            msg,
            format!("Could not find the requested service {name}: host")
        );

        if ["*", "?", "["].iter().any(|g| name.contains(g)) {
            continue;
        }
        let o = run_local(
            &super::systemd::SPEC,
            json!({"name": name, "enabled": true}),
            true,
        );
        assert!(o.failed, "systemd {v:?}: {o:?}");
    }
    markers.assert_untouched();
}

/// `git` with a hostile repository path, `dest` and `version`, from a
/// repository made here: the clone lands at the path spelled, check mode
/// makes nothing, and a version that names nothing fails naming it back.
#[test]
fn git_values_are_data() {
    let markers = Markers::new();
    let work = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.org")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.org")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    let source = work.path().join("source");
    let source = source.to_str().unwrap();
    git(&["init", "-q", "-b", "main", source]);
    std::fs::write(work.path().join("source/README"), "data\n").unwrap();
    git(&["-C", source, "add", "README"]);
    git(&["-C", source, "commit", "-qm", "one"]);
    for (i, v) in markers.values().iter().enumerate() {
        let base = work.path().join(i.to_string());
        let repo = base.join(format!("repo {v}.git"));
        let dest = base.join(format!("clone {v}"));
        std::fs::create_dir_all(repo.parent().unwrap()).unwrap();
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        let (repo, dest) = (repo.display().to_string(), dest.display().to_string());
        git(&["init", "-q", "--bare", "-b", "main", &repo]);
        git(&["-C", source, "push", "-q", &repo, "main"]);

        let o = run_local(&super::git::SPEC, json!({"repo": repo, "dest": dest}), true);
        assert!(o.changed && !o.failed, "git check mode with {v:?}: {o:?}");
        assert!(!Path::new(&dest).exists(), "check mode cloned {dest:?}");

        let o = run_local(
            &super::git::SPEC,
            json!({"repo": repo, "dest": dest}),
            false,
        );
        assert!(o.changed && !o.failed, "git with {v:?}: {o:?}");
        let readme = Path::new(&dest).join("README");
        assert_eq!(std::fs::read_to_string(readme).unwrap(), "data\n");

        if v.starts_with('-') {
            continue;
        }
        let o = run_local(
            &super::git::SPEC,
            json!({"repo": repo, "dest": dest, "version": v}),
            false,
        );
        // A pathspec-like version (`*`) is checked out as git takes it.
        if o.failed {
            assert_eq!(
                o.msg.as_deref(),
                Some(format!("Failed to checkout {v}").as_str())
            );
        }
    }
    markers.assert_untouched();
}
