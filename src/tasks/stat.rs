//! `stat`: report what a path is (type, mode, owner, size, times, link
//! target, sha256) under the registered key `stat`, as Ansible's `stat` does.
//! It never changes anything.
//!
//! One round trip: a script runs `stat` once (`stat -L` with `follow`), the
//! access tests, `readlink` for links and `sha256sum` for regular files, and
//! prints tagged lines. The checksum is sha256 only (Ansible's default is
//! sha1; convoy uses sha256 everywhere, as `copy` does); `get_mime` and
//! `get_attributes` are accepted and ignored.

use serde::Deserialize;

use super::file::{last_line, lenient};
use super::{Action, ActionContext, BoxFuture, ModuleSpec, Outcome, boxed, parse_args};
use crate::transport::{Script, ShellScript, TransportError};
use crate::vars::{Value, VarMap};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "stat",
    args: &[
        "path",
        "dest",
        "name",
        "follow",
        "get_checksum",
        "checksum_algorithm",
        "checksum",
        "checksum_algo",
        "get_mime",
        "mime",
        "mime_type",
        "mime-type",
        "get_attributes",
        "attr",
        "attributes",
    ],
    free_form: false,
    any_name: false,
    build: |args| {
        let a: Args = parse_args(args)?;
        if let Some(algo) = &a.checksum_algorithm
            && algo != "sha256"
        {
            return Err(format!(
                "checksum_algorithm {algo} is not supported by convoy: only sha256 is"
            ));
        }
        if a.path.is_empty() {
            return Err("path must not be empty".into());
        }
        Ok(Box::new(a))
    },
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "dest", alias = "name")]
    path: String,
    #[serde(default, deserialize_with = "lenient::boolean")]
    follow: bool,
    #[serde(default = "lenient::yes", deserialize_with = "lenient::boolean")]
    get_checksum: bool,
    #[serde(default, alias = "checksum", alias = "checksum_algo")]
    checksum_algorithm: Option<String>,
    #[serde(default, alias = "mime", alias = "mime_type", alias = "mime-type")]
    #[allow(dead_code)]
    get_mime: Option<Value>,
    #[serde(default, alias = "attr", alias = "attributes")]
    #[allow(dead_code)]
    get_attributes: Option<Value>,
}

/// `stat -c` format: raw mode (hex), owner, group, uid, gid, size, inode,
/// links, device, atime, mtime, ctime.
const FMT: &str = "%f|%U|%G|%u|%g|%s|%i|%h|%d|%X|%Y|%Z";

impl Args {
    fn script(&self) -> ShellScript {
        let mut s = ShellScript::new();
        if self.get_checksum {
            s = s.sha256_function();
        }
        s = s.path_var("p", &self.path).var("F", FMT).code(if self.follow {
            "if ! s=$(LC_ALL=C stat -L -c \"$F\" -- \"$p\" 2>&1); then printf 'e=%s\\n' \"$s\"; exit 0; fi"
        } else {
            "if ! s=$(LC_ALL=C stat -c \"$F\" -- \"$p\" 2>&1); then printf 'e=%s\\n' \"$s\"; exit 0; fi"
        });
        s = s.code(
            "printf 's=%s\\n' \"$s\"\n\
             if [ -r \"$p\" ]; then echo r=1; fi\n\
             if [ -w \"$p\" ]; then echo w=1; fi\n\
             if [ -x \"$p\" ]; then echo x=1; fi",
        );
        if self.get_checksum {
            // Ansible hashes regular files only; without `follow` a link is not one.
            // A host with no hashing tool gives no checksum rather than a wrong one.
            s = s
                .code(if self.follow {
                    "if [ -f \"$p\" ] && [ -r \"$p\" ]; then"
                } else {
                    "if [ -f \"$p\" ] && [ ! -L \"$p\" ] && [ -r \"$p\" ]; then"
                })
                .code("  if c=$(convoy_sha256_of \"$p\"); then printf 'c=%s\\n' \"$c\"; fi\nfi");
        }
        if !self.follow {
            s = s.code("if [ -L \"$p\" ]; then printf 'k=%s\\n' \"$(readlink -- \"$p\")\"; printf 'K=%s\\n' \"$(readlink -f -- \"$p\")\"; fi");
        }
        s
    }
}

impl Action for Args {
    fn run<'a>(
        &'a self,
        ctx: &'a ActionContext<'a>,
    ) -> BoxFuture<'a, Result<Outcome, TransportError>> {
        boxed(async move {
            let script = self.script();
            let out = ctx.conn.exec(Script::new(&script).sudo(ctx.sudo)).await?;
            if !out.success() {
                let reason = last_line(&out.stderr_str());
                return Ok(Outcome::failed(format!(
                    "cannot stat {}: {reason}",
                    self.path
                )));
            }
            Ok(match parse(&self.path, &out.stdout_str()) {
                Ok(stat) => Outcome::ok().with("stat", Value::Object(stat)),
                Err(msg) => Outcome::failed(msg),
            })
        })
    }
}

/// Builds Ansible's `stat` dictionary from the script's output.
fn parse(path: &str, text: &str) -> Result<VarMap, String> {
    let mut map = VarMap::new();
    let mut fields: Option<Vec<String>> = None;
    let mut flags = (false, false, false);
    let mut checksum = None;
    let mut link = (None, None);
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "e" => {
                if value.contains("No such file or directory") {
                    map.insert("exists".into(), false.into());
                    return Ok(map);
                }
                let reason = value.rsplit(": ").next().unwrap_or(value);
                return Err(format!("cannot stat {path}: {reason}"));
            }
            "s" => fields = Some(value.split('|').map(str::to_owned).collect()),
            "r" => flags.0 = true,
            "w" => flags.1 = true,
            "x" => flags.2 = true,
            "c" => checksum = Some(value.to_owned()).filter(|c| c.len() == 64),
            "k" => link.0 = Some(value.to_owned()),
            "K" => link.1 = Some(value.to_owned()),
            _ => {}
        }
    }
    let f = fields.ok_or_else(|| format!("cannot stat {path}: no output"))?;
    let bad = || format!("cannot stat {path}: unexpected stat output");
    if f.len() != 12 {
        return Err(bad());
    }
    let raw = u32::from_str_radix(&f[0], 16).map_err(|_| bad())?;
    let num = |i: usize| f[i].parse::<u64>().map_err(|_| bad());
    let kind = raw & 0o170_000;
    let bit = |b: u32| raw & b != 0;
    map.insert("exists".into(), true.into());
    map.insert("path".into(), path.into());
    map.insert("mode".into(), format!("{:04o}", raw & 0o7777).into());
    map.insert("isdir".into(), (kind == 0o040_000).into());
    map.insert("ischr".into(), (kind == 0o020_000).into());
    map.insert("isblk".into(), (kind == 0o060_000).into());
    map.insert("isreg".into(), (kind == 0o100_000).into());
    map.insert("isfifo".into(), (kind == 0o010_000).into());
    map.insert("islnk".into(), (kind == 0o120_000).into());
    map.insert("issock".into(), (kind == 0o140_000).into());
    map.insert("uid".into(), num(3)?.into());
    map.insert("gid".into(), num(4)?.into());
    map.insert("size".into(), num(5)?.into());
    map.insert("inode".into(), num(6)?.into());
    map.insert("nlink".into(), num(7)?.into());
    map.insert("dev".into(), num(8)?.into());
    // Ansible's times are floats; `stat` gives whole seconds.
    map.insert("atime".into(), (num(9)? as f64).into());
    map.insert("mtime".into(), (num(10)? as f64).into());
    map.insert("ctime".into(), (num(11)? as f64).into());
    for (key, b) in [
        ("rusr", 0o400),
        ("wusr", 0o200),
        ("xusr", 0o100),
        ("rgrp", 0o040),
        ("wgrp", 0o020),
        ("xgrp", 0o010),
        ("roth", 0o004),
        ("woth", 0o002),
        ("xoth", 0o001),
        ("isuid", 0o4000),
        ("isgid", 0o2000),
    ] {
        map.insert(key.into(), bit(b).into());
    }
    map.insert("readable".into(), flags.0.into());
    map.insert("writeable".into(), flags.1.into());
    map.insert("executable".into(), flags.2.into());
    // Unknown ids print as UNKNOWN; Ansible then leaves the names out.
    if f[1] != "UNKNOWN" {
        map.insert("pw_name".into(), f[1].clone().into());
    }
    if f[2] != "UNKNOWN" {
        map.insert("gr_name".into(), f[2].clone().into());
    }
    if kind == 0o120_000 {
        if let Some(source) = link.1 {
            map.insert("lnk_source".into(), source.into());
        }
        if let Some(target) = link.0 {
            map.insert("lnk_target".into(), target.into());
        }
    }
    if let Some(sum) = checksum {
        map.insert("checksum".into(), sum.into());
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file() {
        let sum = "a".repeat(64);
        let text = format!(
            "s=81a4|root|adm|0|4|12|42|1|2049|1700000000|1700000001|1700000002\nr=1\nw=1\nc={sum}\n"
        );
        let s = parse("/etc/x", &text).unwrap();
        assert_eq!(s["exists"], true);
        assert_eq!(s["isreg"], true);
        assert_eq!(s["isdir"], false);
        assert_eq!(s["mode"], "0644");
        assert_eq!(s["pw_name"], "root");
        assert_eq!(s["gr_name"], "adm");
        assert_eq!(s["gid"], 4);
        assert_eq!(s["size"], 12);
        assert_eq!(s["readable"], true);
        assert_eq!(s["executable"], false);
        assert_eq!(s["roth"], true);
        assert_eq!(s["woth"], false);
        assert_eq!(s["checksum"], sum.as_str());
        assert_eq!(s["mtime"], 1_700_000_001.0);
    }

    #[test]
    fn a_link_a_missing_path_and_an_error() {
        let text = "s=a1ff|root|root|0|0|7|1|1|2049|0|0|0\nk=../x\nK=/srv/x\n";
        let s = parse("/srv/l", text).unwrap();
        assert_eq!(s["islnk"], true);
        assert_eq!(s["lnk_target"], "../x");
        assert_eq!(s["lnk_source"], "/srv/x");
        assert_eq!(s["mode"], "0777");
        let s = parse(
            "/nope",
            "e=stat: cannot statx '/nope': No such file or directory\n",
        )
        .unwrap();
        assert_eq!(Value::Object(s), serde_json::json!({"exists": false}));
        let err = parse(
            "/root/x",
            "e=stat: cannot statx '/root/x': Permission denied\n",
        )
        .unwrap_err();
        assert_eq!(err, "cannot stat /root/x: Permission denied");
    }

    #[test]
    fn only_sha256() {
        let build = |v| (SPEC.build)(v).map(|_| ());
        assert!(build(serde_json::json!({"path": "/x", "checksum_algorithm": "sha1"})).is_err());
        assert!(build(serde_json::json!({"path": "/x", "get_checksum": "no"})).is_ok());
        assert!(build(serde_json::json!({"path": "/x", "bogus": 1})).is_err());
    }

    #[test]
    fn script_follows_only_when_asked() {
        let a: Args = parse_args(serde_json::json!({"path": "~/x", "follow": true})).unwrap();
        let s = a.script();
        let s = s.text();
        assert!(s.contains("\np=\"$HOME\"/x\n"));
        assert!(s.contains("stat -L -c"));
        assert!(!s.contains("readlink"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn stats_files_on_this_machine() {
        use sha2::{Digest, Sha256};

        use super::super::file::testing::run_local;
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        std::fs::write(&f, "hello\n").unwrap();
        let link = tmp.path().join("l");
        std::os::unix::fs::symlink("f", &link).unwrap();
        let o = run_local(&SPEC, serde_json::json!({"path": f}), false);
        assert!(!o.changed && !o.failed, "{:?}", o.msg);
        let s = &o.result["stat"];
        assert_eq!(s["isreg"], true);
        assert_eq!(s["size"], 6);
        assert_eq!(s["checksum"], hex::encode(Sha256::digest(b"hello\n")));
        let s = &run_local(&SPEC, serde_json::json!({"path": link}), false).result["stat"];
        assert_eq!(
            (s["islnk"].clone(), s["lnk_target"].clone()),
            (true.into(), "f".into())
        );
        assert_eq!(s["lnk_source"], f.display().to_string());
        assert!(s.get("checksum").is_none());
        let s = &run_local(
            &SPEC,
            serde_json::json!({"path": link, "follow": true}),
            false,
        )
        .result["stat"];
        assert_eq!(s["isreg"], true);
        assert!(s.get("checksum").is_some());
        let s = &run_local(
            &SPEC,
            serde_json::json!({"path": tmp.path().join("nope")}),
            false,
        )
        .result["stat"];
        assert_eq!(s, &serde_json::json!({"exists": false}));
    }
}
