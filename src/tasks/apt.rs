//! `apt`: Debian packages present, at a version, at their latest, or
//! removed (purged), the apt cache updated when asked or when older than
//! `cache_valid_time`, `upgrade`, `autoremove`/`autoclean`/`clean`, and a
//! `.deb` file on the host installed with what it depends on. It follows
//! ansible-core's modules/apt.py step for step: the same package status
//! (installed, version matched, the candidate apt would pick, with an
//! exact version pinned), the same apt-get command lines and options
//! (`DEBIAN_FRONTEND=noninteractive`, `--force-confdef,--force-confold`),
//! the same change reporting (an installed package is ok under `present`,
//! changed under `latest` when the cache has a newer one), check mode
//! through `apt-get --simulate`, the same registered keys
//! (`cache_updated`, `cache_update_time`, `stdout`, `stderr`, `diff`).
//! Where ansible-core asks python-apt, the script asks dpkg-query and
//! apt-cache, so the host needs no Python. One round trip (`apt.sh`).
//!
//! Not supported (refused when the playbook is loaded): `state: build-dep`
//! and `fixed`, a `deb` URL. convoy always drives apt-get (ansible-core
//! uses aptitude for `upgrade: safe|full` when it is installed).

use serde::Deserialize;

use super::file::lenient;
use super::{ActionContext, ModuleSpec, Outcome, parse_args};
use crate::transport::{ExecOutput, ShellScript, TransportError};
use crate::vars::{Value, VarMap};

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "apt",
    args: ARGS,
    free_form: false,
    any_name: false,
    build: |args| Ok(Box::new(Apt::new(parse_args(args)?)?)),
};

/// The arguments (and aliases) of ansible-core's apt module.
pub(super) const ARGS: &[&str] = &[
    "name",
    "package",
    "pkg",
    "state",
    "update_cache",
    "update-cache",
    "update_cache_retries",
    "update_cache_retry_max_delay",
    "cache_valid_time",
    "purge",
    "deb",
    "default_release",
    "default-release",
    "install_recommends",
    "install-recommends",
    "force",
    "upgrade",
    "dpkg_options",
    "autoremove",
    "autoclean",
    "fail_on_autoremove",
    "policy_rc_d",
    "only_upgrade",
    "force_apt_get",
    "clean",
    "allow_unauthenticated",
    "allow-unauthenticated",
    "allow_downgrade",
    "allow-downgrade",
    "allow_downgrades",
    "allow-downgrades",
    "allow_change_held_packages",
    "lock_timeout",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Args {
    #[serde(default, alias = "package", alias = "pkg")]
    name: Option<Value>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    state: Option<String>,
    #[serde(default, alias = "update-cache", deserialize_with = "opt_bool")]
    update_cache: Option<bool>,
    #[serde(default = "five", deserialize_with = "lenient::number")]
    update_cache_retries: u64,
    #[serde(default = "twelve", deserialize_with = "lenient::number")]
    update_cache_retry_max_delay: u64,
    #[serde(default, deserialize_with = "lenient::number")]
    cache_valid_time: u64,
    #[serde(default, deserialize_with = "lenient::boolean")]
    purge: bool,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    deb: Option<String>,
    #[serde(
        default,
        alias = "default-release",
        deserialize_with = "lenient::opt_string"
    )]
    default_release: Option<String>,
    #[serde(default, alias = "install-recommends", deserialize_with = "opt_bool")]
    install_recommends: Option<bool>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    force: bool,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    upgrade: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    dpkg_options: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    autoremove: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    autoclean: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    fail_on_autoremove: bool,
    #[serde(default, deserialize_with = "lenient::opt_number")]
    policy_rc_d: Option<u64>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    only_upgrade: bool,
    /// apt-get is what convoy always runs: accepted, nothing to force.
    #[serde(default, deserialize_with = "lenient::boolean")]
    #[allow(dead_code)]
    force_apt_get: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    clean: bool,
    #[serde(
        default,
        alias = "allow-unauthenticated",
        deserialize_with = "lenient::boolean"
    )]
    allow_unauthenticated: bool,
    #[serde(
        default,
        alias = "allow-downgrade",
        alias = "allow_downgrades",
        alias = "allow-downgrades",
        deserialize_with = "lenient::boolean"
    )]
    allow_downgrade: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    allow_change_held_packages: bool,
    #[serde(default = "sixty", deserialize_with = "lenient::number")]
    lock_timeout: u64,
}

fn five() -> u64 {
    5
}
fn twelve() -> u64 {
    12
}
fn sixty() -> u64 {
    60
}

/// A boolean that may be left unset (`install_recommends`: unset keeps
/// the OS's default).
fn opt_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    use serde::de::Error as _;
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => lenient::as_bool(&v)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected a boolean, got {v}"))),
    }
}

pub(super) struct Apt {
    a: Args,
    /// The package specs as ansible-core keeps them: stripped, `*` apart.
    specs: Vec<String>,
    /// `*` was among them (with `latest`: upgrade everything).
    all: bool,
    state: &'static str,
}

impl Apt {
    pub(super) fn new(a: Args) -> Result<Self, String> {
        let state = match a.state.as_deref().unwrap_or("present") {
            "present" => "present",
            "latest" => "latest",
            "absent" => "absent",
            s @ ("build-dep" | "fixed") => {
                return Err(format!("state={s} is not supported by convoy"));
            }
            other => {
                return Err(format!(
                    "value of state must be one of: absent, build-dep, fixed, latest, present, got: {other}"
                ));
            }
        };
        let upgrade = match a.upgrade.as_deref() {
            None | Some("no") => None,
            Some(u @ ("dist" | "full" | "safe" | "yes")) => Some(u),
            Some(other) => {
                return Err(format!(
                    "value of upgrade must be one of: dist, full, no, safe, yes, got: {other}"
                ));
            }
        };
        let given = [
            a.name.as_ref().is_some_and(|v| !v.is_null()),
            a.deb.is_some(),
            a.upgrade.is_some(),
        ];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err("parameters are mutually exclusive: deb|package|upgrade".into());
        }
        if !given[0] && !given[1] && upgrade.is_none() && !a.autoremove && a.update_cache.is_none()
        {
            return Err(
                "one of the following is required: autoremove, deb, package, update_cache, upgrade"
                    .into(),
            );
        }
        if a.deb.as_deref().is_some_and(|d| d.contains("://")) {
            return Err(
                "deb from a URL is not supported by convoy: fetch it with get_url, then give its path"
                    .into(),
            );
        }
        if a.deb.is_some() && state != "present" {
            return Err("deb only supports state=present".into());
        }
        let names = list(a.name.as_ref());
        let all = names.iter().any(|n| n == "*");
        let specs: Vec<String> = names
            .iter()
            .filter(|n| *n != "*")
            .map(|n| n.trim().to_owned())
            .collect();
        if all && state == "latest" && !specs.is_empty() {
            return Err(
                "unable to install additional packages when upgrading all installed packages"
                    .into(),
            );
        }
        if let Some(bad) = specs.iter().find(|s| s.matches('=').count() > 1) {
            return Err(format!("invalid package spec: {bad}"));
        }
        Ok(Self {
            a,
            specs,
            all,
            state,
        })
    }

    fn script(&self, check: bool) -> ShellScript {
        let a = &self.a;
        // `name: "*"` with `latest` is an upgrade (apt-get's, `yes`).
        let upgrade = match a.upgrade.as_deref() {
            None | Some("no") if self.all && self.state == "latest" => "yes",
            None | Some("no") => "",
            Some(u) => u,
        };
        ShellScript::new()
            .flag("CHECK", check)
            .var("STATE", self.state)
            .var("SPECS", self.specs.join("\n"))
            .flag("UPDATE", a.update_cache == Some(true))
            .var("VALID", a.cache_valid_time.to_string())
            .var("RETRIES", a.update_cache_retries.max(1).to_string())
            .var("MAX_DELAY", a.update_cache_retry_max_delay.to_string())
            .flag("PURGE", a.purge)
            .var("DEB", a.deb.clone().unwrap_or_default())
            .var(
                "DEFAULT_RELEASE",
                a.default_release.clone().unwrap_or_default(),
            )
            .var(
                "INSTALL_RECOMMENDS",
                match a.install_recommends {
                    None => "",
                    Some(true) => "yes",
                    Some(false) => "no",
                },
            )
            .flag("FORCE", a.force)
            .var("UPGRADE", upgrade)
            .var(
                "DPKG_OPTIONS",
                a.dpkg_options
                    .as_deref()
                    .unwrap_or("force-confdef,force-confold"),
            )
            .flag("AUTOREMOVE", a.autoremove)
            .flag("AUTOCLEAN", a.autoclean)
            .flag("FAIL_ON_AUTOREMOVE", a.fail_on_autoremove)
            .var(
                "POLICY_RC_D",
                a.policy_rc_d.map(|p| p.to_string()).unwrap_or_default(),
            )
            .flag("ONLY_UPGRADE", a.only_upgrade)
            .flag("CLEAN", a.clean)
            .flag("ALLOW_UNAUTH", a.allow_unauthenticated || a.force)
            .flag("ALLOW_DOWNGRADE", a.allow_downgrade || a.force)
            .flag("ALLOW_HELD", a.allow_change_held_packages)
            .var("LOCK_TIMEOUT", a.lock_timeout.to_string())
            .code(APT_SCRIPT)
    }

    pub(super) async fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, TransportError> {
        let script = self.script(ctx.check);
        let out = ctx.conn.exec(ctx.script(&script)).await?;
        Ok(outcome(&Report::parse(&out), ctx.diff))
    }
}

/// A `list` argument as ansible-core takes it: a string is split on commas.
fn list(v: Option<&Value>) -> Vec<String> {
    match v {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(items)) => items.iter().map(crate::python_text::str).collect(),
        Some(Value::String(s)) => s.split(',').map(str::to_owned).collect(),
        Some(other) => vec![crate::python_text::str(other)],
    }
}

/// What `apt.sh` printed: its `key=value` lines and its sections.
struct Report {
    fields: Vec<(String, String)>,
    stdout: String,
    stderr: String,
    msg: String,
    /// The script's own trouble (it did not get to its end).
    broken: Option<String>,
}

impl Report {
    fn parse(out: &ExecOutput) -> Report {
        let text = out.stdout_str();
        let (head, rest) = text.split_once("@@convoy:stdout\n").unwrap_or((&text, ""));
        let (stdout, rest) = rest.split_once("\n@@convoy:stderr\n").unwrap_or((rest, ""));
        let (stderr, msg) = rest.split_once("\n@@convoy:msg\n").unwrap_or((rest, ""));
        let fields = head
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let broken = (!text.contains("@@convoy:msg\n")).then(|| {
            format!(
                "the apt script ended early (exit {}): {}",
                out.status,
                out.stderr_str().trim()
            )
        });
        Report {
            fields,
            stdout: stdout.to_owned(),
            stderr: stderr.to_owned(),
            msg: msg.strip_suffix('\n').unwrap_or(msg).to_owned(),
            broken,
        }
    }

    /// The last value printed for `key` (a failure's `kind=fail` comes
    /// after the step's own `kind`).
    fn last(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    fn first(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The result ansible-core's module returns for what the script did.
fn outcome(r: &Report, diff_mode: bool) -> Outcome {
    if let Some(broken) = &r.broken {
        return Outcome::failed(broken.clone());
    }
    let changed = r.last("changed") == Some("1");
    let cache = |o: Outcome| {
        let updated = r.first("cache_updated") == Some("1");
        let time = r
            .first("cache_update_time")
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(0);
        o.with("cache_updated", updated)
            .with("cache_update_time", time)
    };
    let diff = || {
        if diff_mode {
            Value::Object(VarMap::from_iter([(
                "prepared".to_owned(),
                Value::from(prepared(&r.stdout)),
            )]))
        } else {
            Value::Object(VarMap::new())
        }
    };
    let output = |o: Outcome| {
        o.with("stdout", r.stdout.clone())
            .with("stdout_lines", lines(&r.stdout))
            .with("stderr", r.stderr.clone())
            .with("stderr_lines", lines(&r.stderr))
    };
    match r.last("kind").unwrap_or("fail") {
        "fail" => {
            let mut o = Outcome::failed(r.msg.clone());
            if let Some(rc) = r.last("rc").and_then(|rc| rc.parse::<i64>().ok()) {
                o = output(o).with("rc", rc);
            }
            o
        }
        "cache" => cache(Outcome::changed(r.first("cache_updated") == Some("1"))),
        "install" if !changed => cache(Outcome::changed(false)),
        "install" => cache(output(Outcome::changed(true)).with("diff", diff())),
        "remove" if !changed => Outcome::changed(false),
        // ansible-core's install_deb with nothing to install: a `diff` of "".
        "deb" if !changed => output(Outcome::changed(false)).with("diff", ""),
        "upgrade" if !changed => output(Outcome::changed(false)).with("msg", r.stdout.clone()),
        "upgrade" => output(Outcome::changed(true))
            .with("msg", r.stdout.clone())
            .with("diff", diff()),
        "clean" => output(Outcome::changed(true))
            .with("msg", r.stdout.clone())
            .with("diff", diff()),
        // remove, cleanup, deb
        _ => output(Outcome::changed(changed)).with("diff", diff()),
    }
}

/// `stdout_lines` as Python's `splitlines()` makes them: dpkg's progress
/// (`\r` between its steps) is one line per step.
fn lines(s: &str) -> Value {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        out.push(Value::from(rest[..end].to_owned()));
        rest = &rest[end..];
        rest = rest
            .strip_prefix("\r\n")
            .or_else(|| rest.strip_prefix('\n'))
            .or_else(|| rest.strip_prefix('\r'))
            .unwrap_or(rest);
    }
    Value::Array(out)
}

/// ansible-core's parse_diff: apt's report between "Reading state
/// information..." and the "N upgraded" line, that line included.
fn prepared(stdout: &str) -> String {
    let lines: Vec<&str> = stdout.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == "Resolving dependencies...")
        .or_else(|| {
            lines
                .iter()
                .position(|l| *l == "Reading state information...")
        })
        .map_or(0, |i| i + 1);
    let end = lines
        .iter()
        .position(|l| {
            let digits = l.bytes().take_while(u8::is_ascii_digit).count();
            digits > 0
                && (l[digits..].starts_with(" upgraded")
                    || l[digits..].starts_with(" packages upgraded"))
        })
        .map_or(lines.len(), |i| i + 1);
    lines
        .get(start..end.max(start))
        .unwrap_or_default()
        .join("\n")
}

/// See `apt.sh`.
const APT_SCRIPT: &str = include_str!("apt.sh");

super::action_by_async_run!(Apt);

#[cfg(test)]
mod tests {
    use super::*;

    fn build(v: serde_json::Value) -> Result<Apt, String> {
        Apt::new(parse_args(v)?)
    }

    #[test]
    fn arguments() {
        let a = build(serde_json::json!({"pkg": "a, b=1.0", "update-cache": "yes"})).unwrap();
        assert_eq!(a.specs, ["a", "b=1.0"]);
        assert_eq!(a.a.update_cache, Some(true));
        assert!(build(serde_json::json!({"name": "a", "state": "build-dep"})).is_err());
        assert!(build(serde_json::json!({"name": "a", "state": "gone"})).is_err());
        assert!(build(serde_json::json!({"name": "a", "deb": "/x.deb"})).is_err());
        assert!(build(serde_json::json!({"deb": "https://example.com/x.deb"})).is_err());
        assert!(build(serde_json::json!({"state": "present"})).is_err());
        assert!(build(serde_json::json!({"name": "a==1"})).is_err());
        assert!(build(serde_json::json!({"name": ["*", "a"], "state": "latest"})).is_err());
        assert!(build(serde_json::json!({"autoremove": true})).is_ok());
        assert!(build(serde_json::json!({"name": "a", "frobnicate": true})).is_err());
    }

    #[test]
    fn output_lines_split_as_python_splits_them() {
        assert_eq!(
            lines("a\r\nb\rc\n\nd"),
            serde_json::json!(["a", "b", "c", "", "d"])
        );
    }

    #[test]
    fn the_prepared_diff_is_apts_plan() {
        let out = "Reading package lists...\nBuilding dependency tree...\nReading state information...\n\
                   The following NEW packages will be installed:\n  x\n\
                   0 upgraded, 1 newly installed, 0 to remove and 0 not upgraded.\nInst x (1.0)\n";
        assert_eq!(
            prepared(out),
            "The following NEW packages will be installed:\n  x\n0 upgraded, 1 newly installed, 0 to remove and 0 not upgraded."
        );
    }
}
