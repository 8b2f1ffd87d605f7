//! Every release script run on this machine with hostile values in each
//! field (root, shared paths, release file paths, patch paths, the magic
//! rollback token, the deployer): afterwards each value is found exactly
//! where it was meant to be, as data, and no marker file exists.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::remote::{self, Arm, Shipped};
use super::{ArchiveFormat, LocalArtifact, ReleasePlan, Source};
use crate::transport::hostile::Markers;
use crate::transport::{Connection, LocalConnection};

fn plan(root: &str, version: &str, artifact: &Arc<LocalArtifact>, value: &str) -> ReleasePlan {
    ReleasePlan {
        name: "hello".into(),
        version: version.into(),
        root: root.into(),
        source: Source::Push(artifact.clone()),
        strip: 0,
        shared: vec![format!("s {value}")],
        keep: 1,
        files: vec![super::plan::ReleaseFile {
            dest: format!("conf/d {value}"),
            content: format!("content {value}"),
            mode: Some("0640".into()),
        }],
        owner: None,
        group: None,
        identity: format!("id-{version}"),
    }
}

fn artifact(dir: &Path) -> Arc<LocalArtifact> {
    let path = dir.join("app");
    std::fs::write(&path, b"#!/bin/sh\necho hello\n").unwrap();
    Arc::new(LocalArtifact {
        path,
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            b"#!/bin/sh\necho hello\n",
        )),
        size: 21,
        format: ArchiveFormat::File,
        file_name: "app".into(),
    })
}

#[tokio::test]
async fn release_scripts_take_hostile_values_as_data() {
    let markers = Markers::new();
    let work = tempfile::tempdir().unwrap();
    let artifact = artifact(work.path());
    let conn = Connection::Local(LocalConnection::default());
    let mut roots = Vec::new();
    for (i, value) in markers.values().iter().enumerate() {
        let root = format!("{}/r{i} {value}", work.path().display());
        for version in ["1.0.0", "2.0.0"] {
            let plan = plan(&root, version, &artifact, value);
            let state = remote::probe(&conn, &plan, None).await.unwrap();
            assert!(!state.release_present, "{value:?}");
            let shipped = remote::ship(&conn, &plan, &state, value, None, None)
                .await
                .unwrap();
            assert_eq!(
                shipped,
                Ok(Shipped::Built {
                    bytes: if state.artifact_present { 0 } else { 21 },
                    pulled: false
                }),
                "{value:?}"
            );
            let release = Path::new(&root).join("releases").join(version);
            assert_eq!(
                std::fs::read_to_string(release.join(format!("conf/d {value}"))).unwrap(),
                format!("content {value}")
            );
            assert_eq!(
                std::fs::read_link(release.join(format!("s {value}"))).unwrap(),
                Path::new(&root).join(format!("shared/s {value}"))
            );
            // The second switch arms a timer that nobody confirms.
            let arm = Arm {
                seconds: 1,
                token: format!("t {value}"),
                // Rendered hooks are the user's own code; they run as written.
                rollback_hooks: vec!["true".into()],
            };
            let switched = remote::switch(
                &conn,
                &root,
                version,
                value,
                Some(&arm),
                Default::default(),
                None,
            )
            .await
            .unwrap()
            .unwrap();
            assert!(switched.changed);
        }
        let status = remote::status(&conn, &root, None).await.unwrap();
        assert_eq!(status.current.as_deref(), Some("2.0.0"), "{value:?}");
        let patched = remote::make_patch(
            &conn,
            &root,
            &[(format!("p {value}"), b"patched".to_vec())],
            None,
        )
        .await
        .unwrap();
        assert_eq!(patched.as_deref(), Ok("2.0.0+patch.1"), "{value:?}");
        assert_eq!(
            std::fs::read(Path::new(&root).join(format!("releases/2.0.0+patch.1/p {value}")))
                .unwrap(),
            b"patched"
        );
        roots.push(root);
    }
    // The timers fire: each host goes back to 1.0.0 by itself.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for root in &roots {
        assert_eq!(
            std::fs::read_link(Path::new(root).join("current")).unwrap(),
            Path::new("releases/1.0.0"),
            "{root:?}"
        );
        let audit = std::fs::read_to_string(Path::new(root).join(".convoy/audit.log")).unwrap();
        assert!(
            audit.contains("magic rollback to 1.0.0: not confirmed within 1s"),
            "{audit}"
        );
        let removed = remote::prune(&conn, root, 1, None).await.unwrap().unwrap();
        assert!(!removed.is_empty(), "{root:?}");
    }
    markers.assert_untouched();
}

/// The failure paths, where the old scripts spliced values into their
/// messages: each fails with the value in its message, as text.
#[tokio::test]
async fn failure_messages_name_hostile_values_as_text() {
    let markers = Markers::new();
    let work = tempfile::tempdir().unwrap();
    let artifact = artifact(work.path());
    let conn = Connection::Local(LocalConnection::default());
    // The last line of the message (a value may hold a newline).
    let said = |result: Result<String, String>| result.err().unwrap_or_default();
    // What the host's last line of `text` is.
    let tail = |text: String| text.rsplit('\n').next().unwrap_or_default().to_owned();
    for (i, value) in markers.values().iter().enumerate() {
        let root = format!("{}/r{i} {value}", work.path().display());
        // A shared path whose directory cannot be made (a file is in the way).
        let mut plan = plan(&root, "1.0.0", &artifact, value);
        std::fs::create_dir_all(format!("{root}/shared")).unwrap();
        std::fs::write(format!("{root}/shared/s {value}"), "in the way").unwrap_or_else(|_| {
            // The value names a deeper path: block its first directory instead.
            let first = format!("s {value}");
            let first = first.split('/').next().unwrap();
            std::fs::write(format!("{root}/shared/{first}"), "in the way").unwrap();
        });
        let state = remote::probe(&conn, &plan, None).await.unwrap();
        let out = remote::ship(&conn, &plan, &state, value, None, None)
            .await
            .unwrap();
        let message = said(out.map(|_| String::new()));
        assert_eq!(message, tail(format!("cannot link shared path s {value}")));
        // A release file below a file.
        plan.shared.clear();
        plan.files.insert(
            0,
            super::plan::ReleaseFile {
                dest: "conf".into(),
                content: "a file".into(),
                mode: None,
            },
        );
        let out = remote::ship(&conn, &plan, &state, value, None, None)
            .await
            .unwrap();
        let message = said(out.map(|_| String::new()));
        assert!(
            message.ends_with(&tail(format!("/conf/d {value}"))),
            "{message:?}"
        );
        // A download that fails.
        plan.files.clear();
        plan.source = Source::Pull {
            url: format!("http://127.0.0.1:9/{value}"),
            sha256: "0".repeat(64),
            format: ArchiveFormat::File,
            file_name: "app".into(),
        };
        let state = remote::probe(&conn, &plan, None).await.unwrap();
        let out = remote::ship(&conn, &plan, &state, value, None, None)
            .await
            .unwrap();
        let message = said(out.map(|_| String::new()));
        assert_eq!(
            message,
            tail(format!("cannot download http://127.0.0.1:9/{value}"))
        );
        // A patch below a file, and a switch to a release that is not there.
        let patched = remote::make_patch(&conn, &root, &[], None).await.unwrap();
        assert!(
            patched
                .unwrap_err()
                .ends_with("current does not exist: deploy before patching")
        );
        let switched = remote::switch(
            &conn,
            &root,
            &format!("v{i}"),
            value,
            None,
            Default::default(),
            None,
        )
        .await
        .unwrap();
        assert!(switched.unwrap_err().ends_with("/releases"));
    }
    markers.assert_untouched();
}
