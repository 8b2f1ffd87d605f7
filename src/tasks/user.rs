//! `user`: a local account present or absent through useradd/usermod/
//! userdel, as ansible-core's Linux implementation builds their command
//! lines: created with `-u` (`-o`), `-g` (the group must exist; `-N` when
//! a group of the user's name exists), `-G`, `-c`, `-d`, `-s`, `-p` (a
//! hash), `-m`/`-M` (`create_home`, default yes), `-r` (`system`);
//! modified only in what differs (uid, primary group, supplementary groups
//! with `append`, comment, home with `move_home`, shell, password hash);
//! removed with `-f` (`force`) and `-r` (`remove`). A home that does not
//! exist is made from /etc/skel when `create_home` holds, as ansible-core
//! does. One round trip; in check mode nothing runs. The registered
//! result has ansible-core's keys (`name`, `state`, `uid`, `group`,
//! `comment`, `home`, `shell`, `groups`, `system`/`create_home` or
//! `append`/`move_home`, `password: NOT_LOGGING_PASSWORD`).
//!
//! Not supported: ssh keys, `expires`, `password_lock`, `update_password`
//! (always), `local`, SELinux users, `skeleton`, `umask`, `uid_min`/`uid_max`.

use serde::Deserialize;

use super::file::lenient;
use super::{ActionContext, ModuleSpec, Outcome, parse_args};
use crate::transport::{ExecOutput, ShellScript, TransportError};
use crate::vars::Value;

pub static SPEC: ModuleSpec = ModuleSpec {
    name: "user",
    args: &[
        "name",
        "state",
        "uid",
        "group",
        "groups",
        "append",
        "shell",
        "home",
        "create_home",
        "createhome",
        "system",
        "comment",
        "password",
        "remove",
        "force",
        "non_unique",
        "move_home",
    ],
    free_form: false,
    any_name: false,
    build: |args| Ok(Box::new(User::new(parse_args(args)?)?)),
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    state: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_number")]
    uid: Option<u64>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    group: Option<String>,
    groups: Option<Value>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    append: bool,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    shell: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    home: Option<String>,
    #[serde(
        default = "lenient::yes",
        alias = "createhome",
        deserialize_with = "lenient::boolean"
    )]
    create_home: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    system: bool,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    comment: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    password: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    remove: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    force: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    non_unique: bool,
    #[serde(default, deserialize_with = "lenient::boolean")]
    move_home: bool,
}

struct User {
    a: Args,
    name: String,
    present: bool,
    /// `groups` as ansible-core keeps it: the list joined with commas.
    groups: Option<String>,
}

impl User {
    fn new(a: Args) -> Result<Self, String> {
        let Some(name) = a.name.clone().filter(|n| !n.is_empty()) else {
            return Err("missing required arguments: name".into());
        };
        let present = match a.state.as_deref().unwrap_or("present") {
            "present" => true,
            "absent" => false,
            other => {
                return Err(format!(
                    "value of state must be one of: absent, present, got: {other}"
                ));
            }
        };
        let groups = match &a.groups {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(crate::python_text::str)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Some(v) => Some(crate::python_text::str(v)),
        };
        Ok(Self {
            a,
            name,
            present,
            groups,
        })
    }

    fn script(&self, check: bool) -> ShellScript {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let a = &self.a;
        ShellScript::new()
            .var("N", &self.name)
            .flag("PRESENT", self.present)
            .flag("CHECK", check)
            .var("U", a.uid.map(|u| u.to_string()).unwrap_or_default())
            .var("GRP", opt(&a.group))
            .flag("HAS_GS", self.groups.is_some())
            .var("GS", opt(&self.groups))
            .flag("APPEND", a.append)
            .flag("HAS_SH", a.shell.is_some())
            .var("SH", opt(&a.shell))
            .flag("HAS_HOME", a.home.is_some())
            .var("HOMEDIR", opt(&a.home))
            .flag("MKHOME", a.create_home)
            .flag("SYS", a.system)
            .flag("HAS_C", a.comment.is_some())
            .var("C", opt(&a.comment))
            .flag("HAS_PW", a.password.is_some())
            .var("PW", opt(&a.password))
            .flag("REMOVE", a.remove)
            .flag("FORCE", a.force)
            .flag("NONU", a.non_unique)
            .flag("MOVE", a.move_home)
            .code(USER_SCRIPT)
    }

    async fn run(&self, ctx: &ActionContext<'_>) -> Result<Outcome, TransportError> {
        let script = self.script(ctx.check);
        let out = ctx.conn.exec(ctx.script(&script)).await?;
        let field = |key: &str| out.field(key);
        let Some(had) = field("had").map(|h| h == "1") else {
            return Ok(Outcome::failed(format!(
                "cannot look the user up: {}",
                out.stderr_str().trim()
            )));
        };
        if let Some(msg) = field("fail") {
            return Ok(Outcome::failed(msg));
        }
        if let Some(failed) = command_failed(&out, &self.name) {
            return Ok(failed);
        }
        let ran = field("ran").is_some();
        // ansible-core's check mode ends early, with `changed` alone, when
        // the user would be created or removed.
        if ctx.check && ran && had != self.present {
            return Ok(Outcome::changed(true));
        }
        let mut o = Outcome::changed(ran || field("homemade").is_some())
            .with("name", self.name.clone())
            .with("state", if self.present { "present" } else { "absent" });
        o = with_stderr(o, &out.stderr_str());
        if !self.present {
            if had {
                o = o.with("force", self.a.force).with("remove", self.a.remove);
            }
            return Ok(o);
        }
        o = if had {
            o.with("append", self.a.append)
                .with("move_home", self.a.move_home)
        } else {
            o.with("system", self.a.system)
                .with("create_home", self.a.create_home)
        };
        if self.a.password.is_some() {
            o = o.with("password", "NOT_LOGGING_PASSWORD");
        }
        if let Some(pw) = field("pw") {
            let f: Vec<&str> = pw.split(':').collect();
            if f.len() >= 7 {
                let num = |s: &str| s.parse::<u64>().unwrap_or_default();
                o = o
                    .with("uid", num(f[2]))
                    .with("group", num(f[3]))
                    .with("comment", f[4])
                    .with("home", f[5])
                    .with("shell", f[6]);
            }
            if let Some(groups) = &self.groups {
                o = o.with("groups", groups.clone());
            }
        }
        Ok(o)
    }
}

/// See [`User::script`]. Prints `had=0|1`; `ran=1` when a command ran (or
/// would have); `rc=N` after it (its stderr on stderr); `fail=MSG` for
/// ansible-core's own refusals; `homemade=1`; `pw=` the passwd line after.
const USER_SCRIPT: &str = r#"PATH=$PATH:/usr/sbin:/sbin
if getent passwd "$N" >/dev/null 2>&1; then had=1; else had=0; fi
echo "had=$had"
convoy_field() { getent passwd "$N" | cut -d: -f"$1"; }
convoy_gname() { getent group "$1" | cut -d: -f1; }
convoy_members() {
  getent group | awk -F: -v u="$N" '{ n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) print $1 }' | sort -u
}
convoy_want() {
  printf '%s\n' "$GS" | tr ',' '\n' | while IFS= read -r g; do
    g=$(printf '%s' "$g" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
    [ -n "$g" ] || continue
    if [ "$1" = names ]; then convoy_gname "$g"; else printf '%s\n' "$g"; fi
  done | sort -u
}
convoy_joined() { paste -sd, -; }
convoy_mkhome() {
  if [ -d /etc/skel ]; then mkdir -p "$(dirname -- "$1")" && cp -RP /etc/skel "$1"; else mkdir -p "$1"; fi
  chmod 0755 "$1"
}
parents=0
# ansible-core's refusals, where it makes them: not for a removal, nor
# for a creation in check mode (which ends before looking at groups).
convoy_groups_exist() {
  if [ "$HAS_GS" = 1 ]; then
    missing=$(convoy_want given | while IFS= read -r g; do
      getent group "$g" >/dev/null 2>&1 || { printf '%s\n' "$g"; break; }
    done)
    [ -n "$missing" ] && { echo "fail=Group $missing does not exist"; exit 0; }
  fi
  if [ -n "$GRP" ] && ! getent group "$GRP" >/dev/null 2>&1; then
    echo "fail=Group $GRP does not exist"; exit 0
  fi
}
[ "$PRESENT" = 1 ] && ! { [ "$had" = 0 ] && [ "$CHECK" = 1 ]; } && convoy_groups_exist
set --
if [ "$PRESENT" = 0 ]; then
  if [ "$had" = 1 ]; then
    set -- userdel
    [ "$FORCE" = 1 ] && set -- "$@" -f
    [ "$REMOVE" = 1 ] && set -- "$@" -r
  fi
elif [ "$had" = 0 ]; then
  set -- useradd
  if [ -n "$U" ]; then set -- "$@" -u "$U"; [ "$NONU" = 1 ] && set -- "$@" -o; fi
  if [ -n "$GRP" ]; then set -- "$@" -g "$GRP"
  elif getent group "$N" >/dev/null 2>&1; then set -- "$@" -N
  fi
  if [ "$HAS_GS" = 1 ] && [ -n "$(convoy_want given)" ]; then set -- "$@" -G "$(convoy_want given | convoy_joined)"; fi
  [ "$HAS_C" = 1 ] && set -- "$@" -c "$C"
  if [ "$HAS_HOME" = 1 ]; then
    # ansible-core makes a home whose parent is missing itself (from
    # /etc/skel, owned by the user once it exists), before useradd.
    if [ "$MKHOME" = 1 ] && [ "$CHECK" = 0 ] && [ ! -d "$(dirname -- "$HOMEDIR")" ]; then
      convoy_mkhome "$HOMEDIR"; parents=1
    fi
    set -- "$@" -d "$HOMEDIR"
  fi
  [ "$HAS_SH" = 1 ] && set -- "$@" -s "$SH"
  [ "$HAS_PW" = 1 ] && set -- "$@" -p "$PW"
  if [ "$MKHOME" = 1 ]; then set -- "$@" -m; else set -- "$@" -M; fi
  [ "$SYS" = 1 ] && set -- "$@" -r
else
  set -- usermod
  if [ -n "$U" ] && [ "$(convoy_field 3)" != "$U" ]; then
    set -- "$@" -u "$U"; [ "$NONU" = 1 ] && set -- "$@" -o
  fi
  if [ -n "$GRP" ]; then
    gid=$(getent group "$GRP" | cut -d: -f3)
    [ "$(convoy_field 4)" != "$gid" ] && set -- "$@" -g "$gid"
  fi
  if [ "$HAS_GS" = 1 ]; then
    current=$(convoy_members)
    want=$(convoy_want names)
    need=0
    if [ -z "$want" ]; then
      [ -n "$current" ] && [ "$APPEND" = 0 ] && need=1
    elif [ "$current" != "$want" ]; then
      if [ "$APPEND" = 1 ]; then
        [ -n "$(printf '%s\n' "$want" | grep -vxF -e "$current")" ] && need=1 && set -- "$@" -a
        [ -z "$current" ] && need=1 && set -- "$@" -a
      else
        need=1
      fi
    fi
    [ "$need" = 1 ] && set -- "$@" -G "$(printf '%s\n' "$want" | convoy_joined)"
  fi
  [ "$HAS_C" = 1 ] && [ "$(convoy_field 5)" != "$C" ] && set -- "$@" -c "$C"
  if [ "$HAS_HOME" = 1 ] && [ "$(convoy_field 6)" != "$HOMEDIR" ]; then
    set -- "$@" -d "$HOMEDIR"; [ "$MOVE" = 1 ] && set -- "$@" -m
  fi
  [ "$HAS_SH" = 1 ] && [ "$(convoy_field 7)" != "$SH" ] && set -- "$@" -s "$SH"
  if [ "$HAS_PW" = 1 ]; then
    cur=$(getent shadow "$N" | cut -d: -f2)
    [ "${cur#!}" != "${PW#!}" ] && set -- "$@" -p "$PW"
  fi
  [ "$#" -eq 1 ] && set --
fi
if [ "$#" -gt 0 ]; then
  echo "ran=1"
  if [ "$CHECK" = 0 ]; then
    "$@" "$N" >&2
    echo "rc=$?"
    [ "$parents" = 1 ] && chown -R "$(convoy_field 3):$(convoy_field 4)" "$HOMEDIR"
  fi
fi
if [ "$PRESENT" = 1 ] && getent passwd "$N" >/dev/null 2>&1; then
  h=$HOMEDIR; [ "$HAS_HOME" = 1 ] || h=$(convoy_field 6)
  if [ "$MKHOME" = 1 ] && [ ! -e "$h" ]; then
    echo "homemade=1"
    if [ "$CHECK" = 0 ]; then
      convoy_mkhome "$h"
      chown -R "$(convoy_field 3):$(convoy_field 4)" "$h"
    fi
  fi
  echo "pw=$(getent passwd "$N")"
fi
"#;

/// The account command (useradd, groupmod, …) that the script reported
/// with a non-zero `rc=N`, as ansible-core fails it: its stderr the
/// message, `name` and `rc` registered.
pub(super) fn command_failed(out: &ExecOutput, name: &str) -> Option<Outcome> {
    let rc = out.field("rc").filter(|rc| rc != "0")?;
    Some(
        Outcome::failed(out.stderr_str())
            .with("name", name.to_owned())
            .with("rc", rc.parse::<i64>().unwrap_or(1)),
    )
}

/// A command's warnings, as ansible-core registers them (`stderr` and
/// `stderr_lines` when there are any).
pub(super) fn with_stderr(outcome: Outcome, stderr: &str) -> Outcome {
    if stderr.is_empty() {
        return outcome;
    }
    let lines: Vec<Value> = stderr.lines().map(|l| Value::from(l.to_owned())).collect();
    outcome
        .with("stderr", stderr.to_owned())
        .with("stderr_lines", Value::Array(lines))
}

super::action_by_async_run!(User);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let build = |v| User::new(parse_args(v)?);
        let u =
            build(serde_json::json!({"name": "a", "groups": ["x", "y"], "uid": "1200"})).unwrap();
        assert_eq!(u.groups.as_deref(), Some("x,y"));
        assert!(u.a.create_home, "create_home defaults to yes");
        assert!(
            !build(serde_json::json!({"name": "a", "createhome": "no"}))
                .unwrap()
                .a
                .create_home
        );
        assert!(build(serde_json::json!({"uid": 1})).is_err());
        assert!(build(serde_json::json!({"name": "a", "state": "gone"})).is_err());
        assert!(build(serde_json::json!({"name": "a", "generate_ssh_key": true})).is_err());
    }
}
