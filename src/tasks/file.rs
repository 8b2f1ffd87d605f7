//! `file`: make a path a directory, a symlink or an (existing) file, remove
//! it or touch it, and set its mode and ownership, as Ansible's `file` does.
//!
//! One query script reports everything the decision needs (the path's
//! `lstat`, where a symlink points, the link source, and for `recurse` a
//! de-duplicated summary of the tree); what must change is computed here, and
//! a second script applies it only when something differs and not in check
//! mode. Symbolic modes (`u+x,go-w`) are evaluated locally with chmod's own
//! rules, so they are as idempotent as octal ones.
//!
//! `state: hard` is not supported.

use serde::Deserialize;

use super::attributes::{Attributes, Current, Delta};
use super::{ActionContext, FileDiff, ModuleSpec, Outcome, parse_args};
use crate::transport::{Script, ShellScript, TransportError};
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "file",
    args: &[
        "path", "dest", "name", "state", "mode", "owner", "group", "src", "recurse", "force",
        "follow",
    ],
    free_form: false,
    any_name: false,
    build: |args| Ok(Box::new(FileAction::new(parse_args(args)?)?)),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(alias = "dest", alias = "name")]
    path: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    state: Option<String>,
    mode: Option<Value>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    group: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    src: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    recurse: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    force: bool,
    #[serde(default = "lenient::yes", deserialize_with = "lenient::boolean")]
    follow: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Absent,
    File,
    Directory,
    Link,
    Touch,
}

impl State {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "absent" => State::Absent,
            "file" => State::File,
            "directory" => State::Directory,
            "link" => State::Link,
            "touch" => State::Touch,
            "hard" => return Err("state=hard is not supported by convoy".into()),
            other => {
                return Err(format!(
                    "value of state must be one of: absent, directory, file, hard, link, touch, got: {other}"
                ));
            }
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            State::Absent => "absent",
            State::File => "file",
            State::Directory => "directory",
            State::Link => "link",
            State::Touch => "touch",
        }
    }
}

/// What a path is now (Ansible's `get_state`, without `hard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Absent,
    File,
    Directory,
    Link,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Absent => "absent",
            Kind::File => "file",
            Kind::Directory => "directory",
            Kind::Link => "link",
        }
    }
}

struct FileAction {
    path: String,
    state: Option<State>,
    attrs: Attributes,
    src: Option<String>,
    recurse: bool,
    force: bool,
    follow: bool,
}

impl FileAction {
    fn new(a: Args) -> Result<Self, String> {
        let state = a.state.as_deref().map(State::parse).transpose()?;
        let attrs = Attributes::from_args(a.mode.as_ref(), a.owner, a.group)?;
        if a.recurse && state.is_some_and(|s| s != State::Directory) {
            return Err("recurse option requires state to be 'directory'".into());
        }
        if a.src.is_some() && state.is_some_and(|s| s != State::Link) {
            return Err("src option requires state to be 'link' or 'hard'".into());
        }
        if a.path.is_empty() {
            return Err("path must not be empty".into());
        }
        let trimmed = a.path.trim_end_matches('/');
        let path = if trimmed.is_empty() {
            "/".to_owned()
        } else {
            trimmed.to_owned()
        };
        Ok(Self {
            path,
            state,
            attrs,
            src: a.src,
            recurse: a.recurse,
            force: a.force,
            follow: a.follow,
        })
    }

    /// Shell functions and `p`, shared by the query and the apply script.
    fn prelude(&self) -> ShellScript {
        ShellScript::new()
            .path_var("p", &self.path)
            .var("F", FMT)
            .code(
                r#"st() { LC_ALL=C stat -c "$F" -- "$1"; }
sl() { LC_ALL=C stat -L -c "$F" -- "$1"; }"#,
            )
    }

    /// One round trip: prints `key=value` lines that [`Query::parse`] reads.
    fn query_script(&self) -> ShellScript {
        let mut s = self.prelude();
        s.push(
            r#"printf 'u=%s\n' "$(umask)"
if [ -L "$p" ]; then
  printf 'l=%s\n' "$(st "$p")"
  printf 'k=%s\n' "$(readlink -- "$p")"
  r=$(readlink -f -- "$p")
  printf 'r=%s\n' "$r"
  if [ -e "$p" ]; then printf 't=%s\n' "$(sl "$p")"; fi
elif [ -e "$p" ]; then
  printf 'l=%s\n' "$(st "$p")"
  r=$p
fi
"#,
        );
        if let Some(src) = &self.src {
            s.set("s", src);
            s.push(
                r#"if [ -d "$p" ] && [ ! -L "$p" ] && [ -z "$(ls -A -- "$p")" ]; then echo e=1; fi
case $s in /*) a=$s ;; *) a=$(dirname -- "$p")/$s ;; esac
if [ -e "$a" ]; then printf 's=%s\n' "$(sl "$a")"; fi
"#,
            );
        }
        if self.recurse {
            s.push(
                r#"if [ -n "${r:-}" ] && [ -d "$r" ]; then
  find "$r" -mindepth 1 -printf 'c=%y|%m|%u|%g|%U|%G\n' | sort -u
fi
"#,
            );
        }
        s
    }

    /// Decides what to do from the query; `Err` is the failure message.
    fn plan(&self, q: &Query) -> Result<Plan, String> {
        let prev = q.lstat.as_ref().map_or(Kind::Absent, Meta::kind);
        let state = self.state.unwrap_or(match prev {
            Kind::Absent if self.recurse => State::Directory,
            Kind::Absent | Kind::File => State::File,
            Kind::Directory => State::Directory,
            Kind::Link => State::Link,
        });
        if self.recurse && state != State::Directory {
            return Err(format!(
                "recurse option requires state to be 'directory' ({})",
                self.path
            ));
        }
        if self.src.is_some() && state != State::Link {
            return Err(format!(
                "src option requires state to be 'link' or 'hard' ({})",
                self.path
            ));
        }
        // With `follow`, attributes and state checks apply to a link's target.
        let follows = self.follow && prev == Kind::Link;
        let (meta, word, shown) = if follows {
            let real = q.real.clone().unwrap_or_else(|| self.path.clone());
            (q.target.as_ref(), "\"$r\"", real)
        } else {
            (q.lstat.as_ref(), "\"$p\"", self.path.clone())
        };
        let kind = meta.map_or(Kind::Absent, Meta::kind);
        let mut plan = Plan::new(&self.path, prev, state);
        let attrs = &self.attrs;
        match state {
            State::Absent => {
                if prev != Kind::Absent {
                    plan.change(ShellScript::new().code("rm -rf -- \"$p\" || exit 1"));
                }
            }
            State::Directory => match kind {
                Kind::Absent => {
                    if follows && q.real.is_none() {
                        return Err(format!("cannot resolve the symlink {}", self.path));
                    }
                    plan.change(mkdir_script(word, attrs));
                    plan.wanted(attrs);
                }
                Kind::Directory => {
                    let meta = meta.expect("not absent");
                    let delta = attrs.delta(&meta.current(), q.umask);
                    let below = self.recurse && tree_differs(attrs, &q.tree, q.umask);
                    if !delta.is_empty() || below {
                        plan.change(attrs.commands(word, self.recurse, false));
                        plan.delta(&delta);
                        if below {
                            plan.after.push("recurse: attributes changed below".into());
                        }
                    }
                }
                other => return Err(format!("{shown} already exists as a {}", other.as_str())),
            },
            State::File => match kind {
                Kind::File => {
                    let delta = attrs.delta(&meta.expect("not absent").current(), q.umask);
                    if !delta.is_empty() {
                        plan.change(attrs.commands(word, false, false));
                        plan.delta(&delta);
                    }
                }
                other => {
                    return Err(format!(
                        "file ({shown}) is {}, cannot continue",
                        other.as_str()
                    ));
                }
            },
            State::Touch => {
                // Touching always updates the times, so it is always a change (as in Ansible).
                let no_deref = !self.follow && prev == Kind::Link;
                let script = ShellScript::new().code(if no_deref {
                    "touch -h -- \"$p\" || exit 1"
                } else {
                    "touch -- \"$p\" || exit 1"
                });
                let target = if follows && q.real.is_some() {
                    "\"$r\""
                } else {
                    "\"$p\""
                };
                plan.change(script.then(&attrs.commands(target, false, no_deref)));
                match meta {
                    // A link's own attributes have no mode.
                    Some(m) if no_deref => {
                        plan.delta(&attrs.without_mode().delta(&m.current(), q.umask))
                    }
                    Some(m) => plan.delta(&attrs.delta(&m.current(), q.umask)),
                    None => plan.wanted(attrs),
                }
            }
            State::Link => self.plan_link(q, prev, &mut plan)?,
        }
        Ok(plan)
    }

    fn plan_link(&self, q: &Query, prev: Kind, plan: &mut Plan) -> Result<(), String> {
        let path = &self.path;
        let src = match (&self.src, &q.link) {
            (Some(s), _) => s.clone(),
            (None, Some(current)) if prev == Kind::Link => current.clone(),
            _ => {
                return Err(format!(
                    "src is required for creating new symlinks ({path})"
                ));
            }
        };
        if self.src.is_some() && !self.force && q.src.is_none() {
            let absrc = if src.starts_with('/') {
                src.clone()
            } else {
                format!("{}/{src}", parent(path))
            };
            return Err(format!(
                "src file does not exist, use \"force=yes\" if you really want to create the link: {absrc}"
            ));
        }
        match prev {
            Kind::Directory if !self.force => {
                return Err(format!(
                    "refusing to convert from directory to symlink for {path}"
                ));
            }
            Kind::Directory if !q.empty_dir => {
                return Err(format!(
                    "the directory {path} is not empty, refusing to convert it"
                ));
            }
            Kind::File if !self.force => {
                return Err(format!(
                    "refusing to convert from file to symlink for {path}"
                ));
            }
            _ => {}
        }
        let relink = prev != Kind::Link || q.link.as_deref() != Some(src.as_str());
        if relink {
            let script = ShellScript::new().var("S", &src);
            let script = if prev == Kind::Absent {
                script.code("ln -s -- \"$S\" \"$p\" || exit 1")
            } else {
                // Replace atomically: a new link beside it, renamed over the old path.
                let script =
                    script.code("t=\"$(dirname -- \"$p\")/.convoy-link.$$\"\nrm -f -- \"$t\"");
                let script = if prev == Kind::Directory {
                    script.code("rmdir -- \"$p\" || exit 1")
                } else {
                    script
                };
                script.code(
                    "ln -s -- \"$S\" \"$t\" || exit 1\n\
                     mv -Tf -- \"$t\" \"$p\" || { rm -f -- \"$t\"; exit 1; }",
                )
            };
            plan.change(script);
            if let Some(old) = &q.link {
                plan.before.push(format!("src: {old}"));
            }
            plan.after.push(format!("src: {src}"));
        }
        let attrs = &self.attrs;
        if attrs.is_empty() {
            return Ok(());
        }
        if self.follow {
            // Attributes go to the link's target; a missing target has none to set (Ansible warns).
            let target = if relink {
                q.src.as_ref()
            } else {
                q.target.as_ref()
            };
            if let Some(meta) = target {
                let delta = attrs.delta(&meta.current(), q.umask);
                if !delta.is_empty() {
                    plan.change(attrs.commands("\"$p\"", false, false));
                    plan.delta(&delta);
                }
            }
        } else {
            // The link itself: only ownership applies.
            let owner_only = attrs.without_mode();
            let delta = match (relink, &q.lstat) {
                (false, Some(meta)) => owner_only.delta(&meta.current(), q.umask),
                _ => Delta::default(),
            };
            if (relink && !owner_only.is_empty()) || !delta.is_empty() {
                plan.change(owner_only.commands("\"$p\"", false, true));
                plan.delta(&delta);
            }
        }
        Ok(())
    }

    async fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, TransportError> {
        let path = &self.path;
        let script = self.query_script();
        let out = ctx.conn.exec(Script::new(&script).sudo(ctx.sudo)).await?;
        if !out.success() {
            let reason = last_line(&out.stderr_str());
            return Ok(Outcome::failed(format!("cannot inspect {path}: {reason}"))
                .with("path", path.clone()));
        }
        let q = Query::parse(&out.stdout_str());
        let plan = match self.plan(&q) {
            Ok(plan) => plan,
            Err(msg) => return Ok(Outcome::failed(msg).with("path", path.clone())),
        };
        let mut outcome = Outcome::changed(plan.changed);
        if ctx.diff && plan.changed {
            outcome.diffs.push(FileDiff {
                path: path.clone(),
                before: plan.before.join("\n") + "\n",
                after: plan.after.join("\n") + "\n",
            });
        }
        // What the path is afterwards, for the registered result.
        let mut after = if plan.changed { None } else { q.lstat.clone() };
        if plan.changed && !ctx.check {
            let mut script = self.prelude();
            if q.real.is_some() {
                // Resolved again here, as the query did, rather than sent
                // back: the query's answer is lines, and a path may hold a newline.
                script.push(r#"if [ -L "$p" ]; then r=$(readlink -f -- "$p"); else r=$p; fi"#);
            }
            let script = script
                .then(&plan.script)
                .code("printf 'l=%s\\n' \"$(st \"$p\" 2>/dev/null)\"");
            let out = ctx.conn.exec(Script::new(&script).sudo(ctx.sudo)).await?;
            if !out.success() {
                let reason = last_line(&out.stderr_str());
                let reason = if reason.is_empty() {
                    format!("exit status {}", out.status)
                } else {
                    reason
                };
                return Ok(Outcome::failed(format!("{path}: {reason}")).with("path", path.clone()));
            }
            after = Query::parse(&out.stdout_str()).lstat;
        }
        outcome = outcome.with("path", path.clone());
        if matches!(plan.state, State::Link | State::Touch) {
            outcome = outcome.with("dest", path.clone());
        }
        if plan.state == State::Link
            && let Some(src) = self.src.clone().or(q.link.clone())
        {
            outcome = outcome.with("src", src);
        }
        match after {
            Some(m) => {
                outcome = outcome
                    .with("state", m.kind().as_str())
                    .with("mode", format!("0{:03o}", m.perms()))
                    .with("owner", m.owner.clone())
                    .with("group", m.group.clone())
                    .with("uid", m.uid)
                    .with("gid", m.gid)
                    .with("size", m.size);
            }
            None if plan.changed && ctx.check => {
                let state = if plan.state == State::Touch {
                    State::File
                } else {
                    plan.state
                };
                outcome = outcome.with("state", state.as_str());
            }
            None => outcome = outcome.with("state", "absent"),
        }
        Ok(outcome)
    }
}

super::action_by_async_run!(FileAction);

/// What the query script's `stat` prints: raw mode (hex), owner, group, uid, gid, size.
const FMT: &str = "%f|%U|%G|%u|%g|%s";

/// One path's metadata, from [`FMT`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Meta {
    /// `st_mode`, file type included.
    raw: u32,
    owner: String,
    group: String,
    uid: u32,
    gid: u32,
    size: u64,
}

impl Meta {
    fn parse(text: &str) -> Option<Self> {
        let f: Vec<&str> = text.trim_end().split('|').collect();
        let [raw, owner, group, uid, gid, size] = f.as_slice() else {
            return None;
        };
        Some(Self {
            raw: u32::from_str_radix(raw, 16).ok()?,
            owner: (*owner).to_owned(),
            group: (*group).to_owned(),
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
            size: size.parse().ok()?,
        })
    }

    fn kind(&self) -> Kind {
        match self.raw & 0o170_000 {
            0o040_000 => Kind::Directory,
            0o120_000 => Kind::Link,
            _ => Kind::File,
        }
    }

    fn perms(&self) -> u32 {
        self.raw & 0o7777
    }

    fn current(&self) -> Current<'_> {
        Current {
            perms: self.perms(),
            is_dir: self.kind() == Kind::Directory,
            owner: &self.owner,
            group: &self.group,
            uid: self.uid,
            gid: self.gid,
        }
    }
}

/// One distinct (type, mode, owner, group) below a recursed directory.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: char,
    perms: u32,
    owner: String,
    group: String,
    uid: u32,
    gid: u32,
}

impl Entry {
    fn parse(text: &str) -> Option<Self> {
        let f: Vec<&str> = text.trim_end().split('|').collect();
        let [kind, perms, owner, group, uid, gid] = f.as_slice() else {
            return None;
        };
        Some(Self {
            kind: kind.chars().next()?,
            perms: u32::from_str_radix(perms, 8).ok()?,
            owner: (*owner).to_owned(),
            group: (*group).to_owned(),
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
        })
    }
}

/// Whether anything below a directory has other attributes than wanted.
fn tree_differs(attrs: &Attributes, tree: &[Entry], umask: u32) -> bool {
    tree.iter().any(|e| {
        let current = Current {
            perms: e.perms,
            is_dir: e.kind == 'd',
            owner: &e.owner,
            group: &e.group,
            uid: e.uid,
            gid: e.gid,
        };
        // chmod -R leaves symlinks alone; chown -R changes the links themselves.
        let wanted = if e.kind == 'l' {
            attrs.without_mode()
        } else {
            attrs.clone()
        };
        !wanted.delta(&current, umask).is_empty()
    })
}

/// What the query script reported.
#[derive(Debug, Default)]
struct Query {
    umask: u32,
    /// The path itself, not following a final symlink.
    lstat: Option<Meta>,
    /// A symlink's target as written (`readlink`).
    link: Option<String>,
    /// A symlink's resolved path (`readlink -f`).
    real: Option<String>,
    /// What a symlink points at, when that exists.
    target: Option<Meta>,
    /// The `src` of a link, followed, when it exists.
    src: Option<Meta>,
    empty_dir: bool,
    tree: Vec<Entry>,
}

impl Query {
    fn parse(text: &str) -> Self {
        let mut q = Query {
            umask: 0o022,
            ..Query::default()
        };
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "u" => q.umask = u32::from_str_radix(value.trim(), 8).unwrap_or(0o022),
                "l" => q.lstat = Meta::parse(value),
                "k" => q.link = Some(value.to_owned()),
                "r" => q.real = Some(value.to_owned()).filter(|r| !r.is_empty()),
                "t" => q.target = Meta::parse(value),
                "s" => q.src = Meta::parse(value),
                "e" => q.empty_dir = true,
                "c" => q.tree.extend(Entry::parse(value)),
                _ => {}
            }
        }
        q
    }
}

/// `mkdir -p`, then the attributes on every directory it created (as Ansible does).
fn mkdir_script(word: &'static str, attrs: &Attributes) -> ShellScript {
    let mut s = ShellScript::new().fragment("d=").code(word).code(
        r#"top=$d
while :; do
  up=$(dirname -- "$top")
  if [ "$up" = "$top" ] || [ -e "$up" ] || [ -L "$up" ]; then break; fi
  top=$up
done
mkdir -p -- "$d" || exit 1
"#,
    );
    if !attrs.is_empty() {
        s = s
            .code("c=$d\nwhile :; do")
            .then(&attrs.commands("\"$c\"", false, false))
            .code("  [ \"$c\" = \"$top\" ] && break\n  c=$(dirname -- \"$c\")\ndone");
    }
    s
}

/// The decision for one call.
struct Plan {
    state: State,
    changed: bool,
    /// Shell commands that make the change.
    script: ShellScript,
    /// `--diff` lines.
    before: Vec<String>,
    after: Vec<String>,
}

impl Plan {
    fn new(path: &str, prev: Kind, state: State) -> Self {
        Plan {
            state,
            changed: false,
            script: ShellScript::new(),
            before: vec![format!("path: {path}"), format!("state: {}", prev.as_str())],
            after: vec![
                format!("path: {path}"),
                format!("state: {}", state.as_str()),
            ],
        }
    }

    fn change(&mut self, script: ShellScript) {
        self.changed = true;
        self.script = std::mem::take(&mut self.script).then(&script);
    }

    fn delta(&mut self, d: &Delta) {
        if let Some((old, new)) = d.mode {
            self.before.push(format!("mode: {old:04o}"));
            self.after.push(format!("mode: {new:04o}"));
        }
        for (key, pair) in [("owner", &d.owner), ("group", &d.group)] {
            if let Some((old, new)) = pair {
                self.before.push(format!("{key}: {old}"));
                self.after.push(format!("{key}: {new}"));
            }
        }
    }

    fn wanted(&mut self, attrs: &Attributes) {
        for (key, value) in [
            ("mode", &attrs.mode),
            ("owner", &attrs.owner),
            ("group", &attrs.group),
        ] {
            if let Some(v) = value {
                self.after.push(format!("{key}: {v}"));
            }
        }
    }
}

/// The directory part of a path, as `dirname` gives it.
fn parent(path: &str) -> &str {
    match path.trim_end_matches('/').rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

/// The last non-empty line of a command's error output.
pub(super) fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Arguments as rendered templates give them: `"yes"`, `"8080"` and `8080`
/// all mean what Ansible takes them to mean.
pub(super) mod lenient {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};

    use crate::vars::Value;

    pub fn yes() -> bool {
        true
    }

    pub fn as_bool(v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "yes" | "true" | "on" | "1" | "y" => Some(true),
                "no" | "false" | "off" | "0" | "n" | "" => Some(false),
                _ => None,
            },
            Value::Number(n) => n.as_f64().map(|n| n != 0.0),
            _ => None,
        }
    }

    pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        let v = Value::deserialize(d)?;
        as_bool(&v).ok_or_else(|| D::Error::custom(format!("expected a boolean, got {v}")))
    }

    /// A boolean that may be left unset (`enabled` of `service`: unset
    /// leaves the boot state alone).
    pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            v => as_bool(&v)
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("expected a boolean, got {v}"))),
        }
    }

    /// A string argument; another value is converted as Ansible's `str`
    /// type converts it, with Python's `str()` (`True`, `['a', 'b']`).
    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            v => Ok(Some(crate::python_text::str(&v))),
        }
    }

    pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let v = Value::deserialize(d)?;
        let n = match &v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        n.ok_or_else(|| D::Error::custom(format!("expected a non-negative integer, got {v}")))
    }

    pub fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let v = Value::deserialize(d)?;
        match &v {
            Value::Null => Ok(None),
            Value::Number(n) if n.as_u64().is_some() => Ok(n.as_u64()),
            Value::String(s) if s.trim().parse::<u64>().is_ok() => Ok(s.trim().parse().ok()),
            _ => Err(D::Error::custom(format!(
                "expected a non-negative integer, got {v}"
            ))),
        }
    }
}

/// Runs modules end to end on this machine (`connection: local`), for tests.
#[cfg(test)]
pub(super) mod testing {
    use std::path::Path;

    use super::super::{ActionContext, ModuleSpec, Outcome};
    use crate::template::Templates;
    use crate::transport::{Connection, LocalConnection};
    use crate::vars::Value;

    pub fn run_local(spec: &ModuleSpec, args: Value, check: bool) -> Outcome {
        let action = (spec.build)(args).expect("valid arguments");
        let conn = Connection::Local(LocalConnection::default());
        let templates = Templates::new(Path::new("."));
        let vars = Value::Object(Default::default());
        let ctx = ActionContext {
            conn: &conn,
            templates: &templates,
            vars: &vars,
            check,
            diff: true,
            sudo: None,
            base_dir: Path::new("."),
            environment: &Default::default(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(action.run(&ctx)).expect("no transport error")
    }
}

#[cfg(test)]
mod tests {
    use super::super::attributes::mode_after;
    use super::*;

    fn action(args: Value) -> Result<FileAction, String> {
        FileAction::new(parse_args(args)?)
    }

    fn meta(raw: u32) -> Meta {
        Meta {
            raw,
            owner: "root".into(),
            group: "root".into(),
            uid: 0,
            gid: 0,
            size: 0,
        }
    }

    fn query(lstat: Option<Meta>) -> Query {
        Query {
            umask: 0o022,
            lstat,
            ..Query::default()
        }
    }

    #[test]
    fn octal_and_symbolic_modes() {
        assert_eq!(mode_after("0644", 0o755, false, 0o022), Some(0o644));
        assert_eq!(mode_after("0755", 0o2700, true, 0o022), Some(0o2755));
        assert_eq!(mode_after("u+x", 0o644, false, 0o022), Some(0o744));
        assert_eq!(mode_after("go-rwx", 0o755, false, 0o022), Some(0o700));
        assert_eq!(mode_after("u=rwX,g=rX,o=", 0o644, true, 0o022), Some(0o750));
        assert_eq!(
            mode_after("u=rwX,g=rX,o=", 0o644, false, 0o022),
            Some(0o640)
        );
        assert_eq!(mode_after("+x", 0o644, false, 0o022), Some(0o755));
        assert_eq!(mode_after("=r", 0o666, false, 0o022), Some(0o444));
        assert_eq!(mode_after("g=u", 0o640, false, 0o022), Some(0o660));
        assert_eq!(mode_after("u+s", 0o755, false, 0o022), Some(0o4755));
        assert_eq!(mode_after("a+t", 0o777, true, 0o022), Some(0o1777));
        assert_eq!(mode_after("u+q", 0o644, false, 0o022), None);
        assert_eq!(mode_after("u", 0o644, false, 0o022), None);
        assert_eq!(mode_after("99", 0o644, false, 0o022), None);
    }

    /// The evaluator agrees with the system's chmod (GNU coreutils on Linux).
    #[cfg(target_os = "linux")]
    #[test]
    fn symbolic_modes_agree_with_chmod() {
        let dir = tempfile::tempdir().unwrap();
        let specs = [
            "u+x",
            "g-w",
            "o=",
            "a+rX",
            "u=rwx,g=rx,o=",
            "+x",
            "-w",
            "=rw",
            "g=u",
            "o=g",
            "u+s",
            "g+s",
            "ug+s,o-rwx",
            "a=X",
            "u-x+w",
            "0750",
            "4755",
            "go=u-w",
        ];
        for (is_dir, start) in [
            (false, 0o644),
            (false, 0o751),
            (true, 0o2755),
            (true, 0o700),
        ] {
            for spec in specs {
                let target = dir.path().join(if is_dir { "d" } else { "f" });
                let _ = std::fs::remove_dir(&target);
                let _ = std::fs::remove_file(&target);
                let t = target.display();
                let make = if is_dir {
                    format!("mkdir {t}")
                } else {
                    format!("touch {t}")
                };
                let out = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(format!(
                        "umask 022 && {make} && chmod {start:o} {t} && chmod {spec} {t} && stat -c %a {t}"
                    ))
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{spec}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let real =
                    u32::from_str_radix(String::from_utf8_lossy(&out.stdout).trim(), 8).unwrap();
                assert_eq!(
                    mode_after(spec, start, is_dir, 0o022),
                    Some(real),
                    "chmod {spec} on {start:o} (dir: {is_dir})"
                );
            }
        }
    }

    #[test]
    fn parses_the_query() {
        let q = Query::parse(
            "u=0002\nl=a1ff|root|root|0|0|4\nk=../x\nr=/srv/x\nt=41ed|app|app|1000|1000|4096\n\
             c=f|644|app|app|1000|1000\nc=d|755|app|app|1000|1000\n",
        );
        assert_eq!(q.umask, 0o002);
        assert_eq!(q.lstat.as_ref().unwrap().kind(), Kind::Link);
        assert_eq!(q.link.as_deref(), Some("../x"));
        assert_eq!(q.real.as_deref(), Some("/srv/x"));
        assert_eq!(q.target.as_ref().unwrap().kind(), Kind::Directory);
        assert_eq!(q.target.as_ref().unwrap().perms(), 0o755);
        assert_eq!(q.tree.len(), 2);
        assert!(Query::parse("u=0022\n").lstat.is_none());
    }

    #[test]
    fn default_state_needs_an_existing_path() {
        let a = action(serde_json::json!({"path": "/x", "mode": "0644"})).unwrap();
        assert_eq!(
            a.plan(&query(None)).err().unwrap(),
            "file (/x) is absent, cannot continue"
        );
        let plan = a.plan(&query(Some(meta(0o100_600)))).unwrap();
        assert!(plan.changed);
        assert!(
            plan.script
                .text()
                .contains("MODE=0644\nchmod -- \"$MODE\" \"$p\"")
        );
        let plan = a.plan(&query(Some(meta(0o100_644)))).unwrap();
        assert!(!plan.changed);
        // An existing directory keeps being one.
        let plan = a.plan(&query(Some(meta(0o040_644)))).unwrap();
        assert_eq!(plan.state, State::Directory);
    }

    #[test]
    fn directory_is_created_or_left_alone() {
        let a =
            action(serde_json::json!({"dest": "/srv/app/", "state": "directory", "owner": "app"}))
                .unwrap();
        assert_eq!(a.path, "/srv/app");
        let plan = a.plan(&query(None)).unwrap();
        assert!(plan.changed && plan.script.text().contains("mkdir -p"));
        assert!(
            plan.script
                .text()
                .contains("ID=app\nchown -- \"$ID\" \"$c\"")
        );
        let mut m = meta(0o040_755);
        m.owner = "app".into();
        assert!(!a.plan(&query(Some(m.clone()))).unwrap().changed);
        m.uid = 1000;
        m.owner = "1000".into();
        assert!(a.plan(&query(Some(m))).unwrap().changed);
        let err = a.plan(&query(Some(meta(0o100_644)))).err().unwrap();
        assert_eq!(err, "/srv/app already exists as a file");
    }

    #[test]
    fn recurse_looks_below() {
        let a = action(serde_json::json!({"path": "/d", "state": "directory", "mode": "u=rwX,go=rX", "recurse": "yes"}))
            .unwrap();
        let mut q = query(Some(meta(0o040_755)));
        q.tree = vec![Entry::parse("f|644|root|root|0|0").unwrap()];
        assert!(!a.plan(&q).unwrap().changed);
        q.tree.push(Entry::parse("f|600|root|root|0|0").unwrap());
        let plan = a.plan(&q).unwrap();
        assert!(plan.changed && plan.script.text().contains("chmod -R"));
        assert!(
            action(serde_json::json!({"path": "/d", "state": "file", "recurse": true})).is_err()
        );
    }

    #[test]
    fn absent_and_touch() {
        let a = action(serde_json::json!({"path": "/x", "state": "absent"})).unwrap();
        assert!(!a.plan(&query(None)).unwrap().changed);
        let plan = a.plan(&query(Some(meta(0o040_755)))).unwrap();
        assert!(plan.changed && plan.script.text().contains("rm -rf"));
        assert_eq!(plan.before[1], "state: directory");
        let t = action(serde_json::json!({"path": "/x", "state": "touch"})).unwrap();
        assert!(t.plan(&query(Some(meta(0o100_644)))).unwrap().changed);
    }

    #[test]
    fn links() {
        let a = action(serde_json::json!({"path": "/etc/app", "src": "/opt/app", "state": "link"}))
            .unwrap();
        // Missing source without force.
        let err = a.plan(&query(None)).err().unwrap();
        assert!(err.starts_with("src file does not exist"), "{err}");
        let mut q = query(None);
        q.src = Some(meta(0o040_755));
        let plan = a.plan(&q).unwrap();
        assert!(
            plan.changed
                && plan
                    .script
                    .text()
                    .contains("S=/opt/app\nln -s -- \"$S\" \"$p\"")
        );
        // Already pointing there.
        let mut q = query(Some(meta(0o120_777)));
        q.link = Some("/opt/app".into());
        q.src = Some(meta(0o040_755));
        q.target = Some(meta(0o040_755));
        assert!(!a.plan(&q).unwrap().changed);
        // Pointing elsewhere: replaced atomically.
        q.link = Some("/opt/old".into());
        let plan = a.plan(&q).unwrap();
        assert!(plan.changed && plan.script.text().contains("mv -Tf"));
        // A file in the way needs force.
        let mut q = query(Some(meta(0o100_644)));
        q.src = Some(meta(0o040_755));
        assert_eq!(
            a.plan(&q).err().unwrap(),
            "refusing to convert from file to symlink for /etc/app"
        );
    }

    #[test]
    fn bad_arguments_fail_early() {
        assert!(action(serde_json::json!({"path": "/x", "state": "hard", "src": "/y"})).is_err());
        assert!(action(serde_json::json!({"path": "/x", "state": "bogus"})).is_err());
        assert!(action(serde_json::json!({"path": "/x", "mode": "u+q"})).is_err());
        assert!(action(serde_json::json!({"path": "/x", "src": "/y", "state": "file"})).is_err());
        assert!(action(serde_json::json!({"path": "/x", "colour": "red"})).is_err());
        assert!(action(serde_json::json!({"path": "/x", "mode": 420})).is_ok());
    }

    #[test]
    fn parents_as_dirname_gives_them() {
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("a"), ".");
    }

    #[cfg(target_os = "linux")]
    mod local {
        use std::os::unix::fs::PermissionsExt;

        use super::super::SPEC;
        use super::super::testing::run_local;

        fn perms(p: &std::path::Path) -> u32 {
            std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
        }

        #[test]
        fn directories_links_touch_absent() {
            let tmp = tempfile::tempdir().unwrap();
            let d = tmp.path().join("a/b/c");
            let args = serde_json::json!({"path": d, "state": "directory", "mode": "0750"});
            let o = run_local(&SPEC, args.clone(), true);
            assert!(o.changed && !o.failed, "{:?}", o.msg);
            assert!(!d.exists(), "check mode changed nothing");
            assert_eq!(
                o.diffs[0].after,
                format!("path: {}\nstate: directory\nmode: 0750\n", d.display())
            );
            let o = run_local(&SPEC, args.clone(), false);
            assert!(o.changed && !o.failed, "{:?}", o.msg);
            assert_eq!(o.result["state"], "directory");
            assert_eq!(o.result["mode"], "0750");
            assert_eq!(perms(&d), 0o750);
            assert_eq!(
                perms(&tmp.path().join("a")),
                0o750,
                "created parents get the mode too"
            );
            assert!(!run_local(&SPEC, args, false).changed);

            let sub = d.join("f");
            std::fs::write(&sub, "x").unwrap();
            std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o600)).unwrap();
            let args = serde_json::json!({"path": tmp.path().join("a"), "state": "directory", "mode": "u=rwX,go=rX", "recurse": true});
            assert!(run_local(&SPEC, args.clone(), false).changed);
            assert_eq!(perms(&sub), 0o644);
            assert_eq!(perms(&d), 0o755);
            assert!(!run_local(&SPEC, args, false).changed);

            let link = tmp.path().join("link");
            let args = serde_json::json!({"path": link, "src": d, "state": "link"});
            let o = run_local(&SPEC, args.clone(), false);
            assert!(o.changed && !o.failed, "{:?}", o.msg);
            assert_eq!(std::fs::read_link(&link).unwrap(), d);
            assert_eq!(o.result["state"], "link");
            assert!(!run_local(&SPEC, args, false).changed);
            let o = run_local(
                &SPEC,
                serde_json::json!({"path": link, "src": "a", "state": "link"}),
                false,
            );
            assert!(o.changed && !o.failed, "{:?}", o.msg);
            assert_eq!(std::fs::read_link(&link).unwrap().to_str(), Some("a"));
            let o = run_local(
                &SPEC,
                serde_json::json!({"path": link, "src": "nope", "state": "link"}),
                false,
            );
            assert!(o.failed);
            let o = run_local(
                &SPEC,
                serde_json::json!({"path": link, "src": "nope", "state": "link", "force": true}),
                false,
            );
            assert!(o.changed && !o.failed, "{:?}", o.msg);

            let t = tmp.path().join("t");
            let o = run_local(
                &SPEC,
                serde_json::json!({"path": t, "state": "touch", "mode": "0600"}),
                false,
            );
            assert!(o.changed && !o.failed, "{:?}", o.msg);
            assert_eq!(perms(&t), 0o600);
            assert_eq!(o.result["state"], "file");
            let o = run_local(&SPEC, serde_json::json!({"path": t}), false);
            assert!(!o.changed && !o.failed);
            let o = run_local(
                &SPEC,
                serde_json::json!({"path": t, "state": "directory"}),
                false,
            );
            assert_eq!(
                o.msg,
                Some(format!("{} already exists as a file", t.display()))
            );

            let args = serde_json::json!({"path": tmp.path().join("a"), "state": "absent"});
            assert!(run_local(&SPEC, args.clone(), true).changed);
            assert!(d.exists());
            assert!(run_local(&SPEC, args.clone(), false).changed);
            assert!(!d.exists());
            assert!(!run_local(&SPEC, args, false).changed);
            let o = run_local(&SPEC, serde_json::json!({"path": d}), false);
            assert_eq!(
                o.msg,
                Some(format!("file ({}) is absent, cannot continue", d.display()))
            );
        }
    }
}
