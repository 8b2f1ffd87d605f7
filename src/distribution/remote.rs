//! The host side of the release cycle: each step one shell script, one
//! round trip. Layout under the distribution's root:
//!
//! ```text
//! releases/<version>/             complete releases (built under .tmp-*, then renamed)
//! shared/<path>                   persistent paths, linked into every release
//! current -> releases/<version>   switched by rename(2) of a new symlink
//! .convoy/artifacts/<sha256>      content-addressed store (uploads land as *.part, verified, renamed)
//! .convoy/releases/<version>.json release metadata (one line of JSON)
//! .convoy/previous                the version current named before the last switch
//! ```

use base64::Engine;
use serde_json::json;

use super::{ReleasePlan, Source};
use crate::transport::{Become, Connection, Script, ShellScript, TransportError};

/// What a host holds for this distribution, read in one round trip.
#[derive(Debug, Clone, Default)]
pub struct HostRelease {
    pub artifact_present: bool,
    pub release_present: bool,
    /// The identity recorded in the release's metadata.
    pub release_identity: Option<String>,
    /// The version `current` names.
    pub current: Option<String>,
    pub previous: Option<String>,
}

/// How a host got its release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shipped {
    /// Already there, identical: nothing sent.
    InPlace,
    /// Built; `bytes` of artifact sent over the connection (0 when present or pulled).
    Built { bytes: u64, pulled: bool },
}

fn out_lines(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|l| l.split_once('='))
}

fn version_of(link: &str) -> Option<String> {
    link.strip_prefix("releases/")
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Reads the host's state for `plan` (one round trip).
pub async fn probe(
    conn: &Connection,
    plan: &ReleasePlan,
    sudo: Option<&Become>,
) -> Result<HostRelease, TransportError> {
    let out = conn
        .exec(Script::new(&probe_script(plan)).sudo(sudo))
        .await?;
    Ok(parse_probe(&out.stdout_str()))
}

/// The probe as a script of its own, so that it can also follow the taking
/// of the deploy lock in the same round trip; it prints `key=value` lines
/// that [`parse_probe`] reads, and always succeeds.
pub fn probe_script(plan: &ReleasePlan) -> ShellScript {
    ShellScript::new()
        .var("R", &plan.root)
        .var("V", &plan.version)
        .var("S", plan.sha256())
        .code(
            r#"[ -f "$R/.convoy/artifacts/$S" ] && echo artifact=1
[ -d "$R/releases/$V" ] && echo release=1
m=; if [ -f "$R/.convoy/releases/$V.json" ] && { IFS= read -r m < "$R/.convoy/releases/$V.json" || [ -n "$m" ]; }; then
  case $m in *'"identity":"'*) m=${m##*'"identity":"'}; printf 'identity=%s\n' "${m%%'"'*}" ;; esac
fi
printf 'current=%s\n' "$(readlink -- "$R/current" 2>/dev/null)"
p=; [ -f "$R/.convoy/previous" ] && { IFS= read -r p < "$R/.convoy/previous" || :; }
printf 'previous=%s\n' "$p"
true"#,
        )
}

/// What [`probe_script`] printed.
pub fn parse_probe(stdout: &str) -> HostRelease {
    let mut state = HostRelease::default();
    for (k, v) in out_lines(stdout) {
        match k {
            "artifact" => state.artifact_present = true,
            "release" => state.release_present = true,
            "identity" => state.release_identity = Some(v.to_owned()),
            "current" => state.current = version_of(v),
            "previous" => state.previous = Some(v.to_owned()).filter(|v| !v.is_empty()),
            _ => {}
        }
    }
    state
}

/// Makes `releases/<version>` on the host: the artifact (from the store,
/// uploaded, or pulled) verified by sha256, unpacked into a temporary
/// directory, shared paths linked, release files written, then renamed into
/// place. On any failure nothing half-made is left. `Err(message)` is the
/// host's reason, with the path.
///
/// `before` runs first (in a subshell, whatever it does) when the host is
/// sent a script at all: the lock's `complete` mark rides along.
pub async fn ship(
    conn: &Connection,
    plan: &ReleasePlan,
    state: &HostRelease,
    playbook: &str,
    before: Option<&ShellScript>,
    sudo: Option<&Become>,
) -> Result<Result<Shipped, String>, TransportError> {
    let in_place =
        state.release_present && state.release_identity.as_deref() == Some(plan.identity.as_str());
    if in_place {
        return Ok(Ok(Shipped::InPlace));
    }
    if state.release_present && state.current.as_deref() == Some(plan.version.as_str()) {
        return Ok(Err(format!(
            "release {} is live in {} but differs from this run's (artifact or release files changed); give it a new version",
            plan.version, plan.root
        )));
    }
    let upload = !state.artifact_present && matches!(plan.source, Source::Push(_));
    let metadata = json!({
        "name": plan.name,
        "version": plan.version,
        "sha256": plan.sha256(),
        "identity": plan.identity,
        "prepared_at": now(),
        "deployed_at": "",
        "deployed_by": "",
        "playbook": playbook,
    })
    .to_string();
    let mut script = ShellScript::new();
    if let Some(before) = before {
        script = script.code("(").then(before).code(")");
    }
    let mut script = script
        .code("set -u")
        .var("R", &plan.root)
        .var("V", &plan.version)
        .var("S", plan.sha256())
        .var("FILE", plan.file_name())
        .var("STRIP", plan.strip.to_string())
        .code(SHIP_PRELUDE)
        .sha256_function();
    script = match (&plan.source, state.artifact_present) {
        (_, true) => script,
        // Errors are kept in a variable, not a file: the disk may be the thing that is full.
        (Source::Push(_), false) => script.code(
            r#"err=$( { cat > "$PART"; } 2>&1 ) || fail "cannot write $PART: ${err#cat: }""#,
        ),
        (Source::Pull { url, .. }, false) => script.var("URL", url).code(
            r#"if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 2 -o "$PART" -- "$URL" || fail "cannot download $URL"
else wget -q -O "$PART" -- "$URL" || fail "cannot download $URL"; fi"#,
        ),
    };
    script = script
        .code(SHIP_VERIFY)
        .code("err=$( {")
        .code(plan.format().extract_code())
        .code(SHIP_UNPACKED);
    if matches!(plan.source, Source::Pull { .. }) && plan.format().is_archive() {
        // Pulled artifacts were never seen locally: refuse links that leave the release.
        script = script.code(SHIP_LINKS_STAY_INSIDE);
    }
    for path in &plan.shared {
        script = script.call("share", [path]);
    }
    for file in &plan.files {
        let mode = file.mode.as_deref().unwrap_or_default();
        script = if file.content.contains('\0') {
            let data = base64::engine::general_purpose::STANDARD.encode(&file.content);
            script.call("put64", [file.dest.as_str(), &data, mode])
        } else {
            script.call("put", [file.dest.as_str(), &file.content, mode])
        };
    }
    script = match (&plan.owner, &plan.group) {
        (Some(o), g) => script
            .var(
                "OWN",
                match g {
                    Some(g) => format!("{o}:{g}"),
                    None => o.clone(),
                },
            )
            .code(r#"chown -R -- "$OWN" "$TMP" || fail "cannot chown $TMP""#),
        (None, Some(g)) => script
            .var("GRP", g)
            .code(r#"chgrp -R -- "$GRP" "$TMP" || fail "cannot chgrp $TMP""#),
        (None, None) => script,
    };
    let script = script.var("META", &metadata).code(SHIP_RENAME);
    let mut call = Script::new(&script).sudo(sudo);
    if upload {
        let Source::Push(artifact) = &plan.source else {
            unreachable!("upload implies push")
        };
        call = call.stdin_file(&artifact.path, artifact.size);
    }
    let out = conn.exec(call).await?;
    if !out.success() {
        return Ok(Err(last_line(&out.stderr_str())));
    }
    let bytes = if upload { plan_size(plan) } else { 0 };
    Ok(Ok(Shipped::Built {
        bytes,
        pulled: !state.artifact_present && matches!(plan.source, Source::Pull { .. }),
    }))
}

/// [`ship`]'s names and helpers. `R`, `V`, `S`, `FILE` and `STRIP` are set
/// in front of it. `share PATH` links a shared path into the release;
/// `put DEST BASE64 [MODE]` writes a release file.
///
/// Every command a host runs is a process started (fork, exec, dynamic
/// linking: about a millisecond of the host's CPU each), so the helpers
/// use the shell's builtins where one does the job: a directory is made
/// only when missing, a parent found by `${1%/*}` rather than `dirname`,
/// an entry removed only when present, a release file written by `printf`.
/// `put64 DEST BASE64 [MODE]` is for a file holding a NUL byte, which a
/// shell word cannot carry.
const SHIP_PRELUDE: &str = r#"TMP="$R/releases/.tmp-$V.$$"; PART="$R/.convoy/artifacts/$S.$$.part"; STORED="$R/.convoy/artifacts/$S"
trap 'rm -rf -- "$TMP" "$PART" "$R/.convoy/releases/.tmp-$V.$$"' EXIT
fail() { printf '%s\n' "$1" >&2; exit 3; }
dir() { [ -d "$1" ] || mkdir -p -- "$1"; }
parent() { case $1 in */*) dir "$TMP/${1%/*}" ;; esac; }
share() {
  dir "$R/shared/$1" && { { [ ! -e "$TMP/$1" ] && [ ! -h "$TMP/$1" ]; } || rm -rf -- "$TMP/$1"; } && parent "$1" &&
    ln -s -- "$R/shared/$1" "$TMP/$1" || fail "cannot link shared path $1"
}
put() {
  parent "$1" && printf '%s' "$2" > "$TMP/$1" &&
    { [ -z "$3" ] || chmod -- "$3" "$TMP/$1"; } || fail "cannot write $TMP/$1"
}
put64() {
  parent "$1" && printf '%s' "$2" | base64 -d > "$TMP/$1" &&
    { [ -z "$3" ] || chmod -- "$3" "$TMP/$1"; } || fail "cannot write $TMP/$1"
}
{ [ -d "$R/releases" ] && [ -d "$R/shared" ] && [ -d "$R/.convoy/artifacts" ] && [ -d "$R/.convoy/releases" ]; } ||
  mkdir -p -- "$R/releases" "$R/shared" "$R/.convoy/artifacts" "$R/.convoy/releases" || fail "cannot create $R"
"#;

/// The artifact, fetched or stored, must hash to `S`; a host that cannot
/// hash says so (never a mismatch "got" nothing). An upload is hashed as
/// the file it was written to, not as the stream on its way there (which
/// would spare a read): what is checked is what the release is unpacked
/// from and what the store keeps, so bytes altered on the host's disk are
/// caught too (tests/distribution.rs, corrupted_transfer_...).
const SHIP_VERIFY: &str = r#"if [ -f "$PART" ]; then
  actual=$(convoy_sha256_of "$PART" 2>&1) || fail "cannot check $PART: $actual"
  [ "$actual" = "$S" ] || fail "sha256 mismatch for $PART: expected $S, got $actual"
  mv -- "$PART" "$STORED" || fail "cannot store $STORED"
else
  # The store is trusted only after a check: a file altered on disk is found here, not after the switch.
  actual=$(convoy_sha256_of "$STORED" 2>&1) || fail "cannot check stored artifact $STORED: $actual"
  [ "$actual" = "$S" ] || { rm -f -- "$STORED"; fail "sha256 mismatch for stored artifact $STORED: expected $S, got $actual (removed; the next run uploads it again)"; }
fi
mkdir -- "$TMP" || fail "cannot create $TMP"
"#;

/// Follows the unpack command (`err=$( { COMMAND`). tar ends with "Exiting
/// with failure status due to previous errors", which names nothing: the
/// message keeps the lines that say which entry failed and why.
const SHIP_UNPACKED: &str = r#"} 2>&1 ) || {
  why=$(printf '%s\n' "$err" | awk 'NF && !/Exiting with failure status due to previous errors/ && !/Error is not recoverable: exiting now/ { if (n++ < 3) printf "%s%s", (n > 1 ? "; " : ""), $0 }')
  [ -n "$why" ] || why=$(printf '%s\n' "$err" | tail -n 1)
  fail "cannot unpack into $TMP: $why"
}
"#;

const SHIP_LINKS_STAY_INSIDE: &str = r#"find "$TMP" -type l | while read -r l; do t=$(realpath -m -- "$l"); case "$t" in "$TMP"|"$TMP"/*) ;; *) printf '%s\n' "$l";; esac; done > "$TMP.bad"
if [ -s "$TMP.bad" ]; then b=$(head -n 1 -- "$TMP.bad"); rm -f -- "$TMP.bad"; fail "unsafe archive: link ${b#"$TMP"/} points outside the release"; fi
rm -f -- "$TMP.bad"
"#;

/// The metadata (`META`) beside the release, then the release into place.
/// Once everything is in place nothing is left to clean up: the trap goes.
const SHIP_RENAME: &str = r#"M="$R/.convoy/releases/.tmp-$V.$$"
printf '%s\n' "$META" > "$M" || fail "cannot write $M"
if [ -e "$R/releases/$V" ] || [ -h "$R/releases/$V" ]; then rm -rf -- "$R/releases/$V"; fi
mv -- "$M" "$R/.convoy/releases/$V.json" && mv -- "$TMP" "$R/releases/$V" || fail "cannot rename $TMP to $R/releases/$V"
trap - EXIT
"#;

fn plan_size(plan: &ReleasePlan) -> u64 {
    match &plan.source {
        Source::Push(a) => a.size,
        Source::Pull { .. } => 0,
    }
}

/// The result of switching one host.
#[derive(Debug, Clone)]
pub struct Switched {
    /// The version current named before (None on a first deploy).
    pub previous: Option<String>,
    /// False when current already named the version.
    pub changed: bool,
    /// The switch hooks run in the same round trip ([`Along::hooks`]), in
    /// order, up to the first that failed.
    pub hooks: Vec<HookRan>,
    /// [`Along::after`] ran and exited 0.
    pub released: bool,
}

/// One switch hook run by the switch's script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRan {
    /// Its exit status; `None` when the script ended before the hook did.
    pub rc: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// What rides along with a switch in its round trip, so that a host is
/// switched, has its switch hooks run and its lock marked in one remote
/// command instead of three.
#[derive(Debug, Clone, Copy, Default)]
pub struct Along<'a> {
    /// Run first, whatever it does (the lock's `complete` mark).
    pub before: Option<&'a ShellScript>,
    /// The switch hooks as shell lines: run in order, each in `sh` from the
    /// login directory as a task would be, after a switch that changed
    /// `current`, until one fails.
    pub hooks: &'a [String],
    /// A line the hooks' output cannot hold by chance: it separates their
    /// stdout and stderr from the switch's own lines and from each other.
    pub marker: &'a str,
    /// Run last, in a subshell, only when `current` moved and every hook
    /// exited 0: the release of the lock when the switch is the host's last
    /// step in the run ([`Switched::released`] says it ran and succeeded).
    pub after: Option<&'a ShellScript>,
}

/// Runs each positional parameter as a hook; `B` is the marker, `W` the
/// login directory. The markers go on lines of their own, so a hook's
/// output that lacks a final newline is not glued to them.
const SWITCH_HOOKS: &str = r#"for convoy_hook in "$@"; do
  printf '%s\n' "$B"; printf '%s\n' "$B" >&2
  ( cd -- "$W" && exec sh -c "$convoy_hook" ) </dev/null
  convoy_rc=$?
  printf '\n%s rc=%s\n' "$B" "$convoy_rc"; printf '\n%s\n' "$B" >&2
  [ "$convoy_rc" -eq 0 ] || break
done
true
"#;

/// Splits what the switch script printed on one stream into the switch's
/// own text and each hook's part (`end` is the marker that closes a part,
/// followed by the hook's status on stdout). `None` for a part whose end
/// never came.
fn hook_parts<'t>(
    text: &'t str,
    marker: &str,
    stdout: bool,
) -> (&'t str, Vec<(Option<i32>, &'t str)>) {
    let start = format!("{marker}\n");
    let Some(first) = text
        .find(&start)
        .filter(|&i| i == 0 || text[..i].ends_with('\n'))
    else {
        return (text, vec![]);
    };
    let own = &text[..first];
    let mut rest = &text[first..];
    let mut parts = Vec::new();
    let end = format!("\n{marker}");
    while let Some(body) = rest.strip_prefix(start.as_str()) {
        let Some(at) = body.find(&end) else {
            parts.push((None, body));
            break;
        };
        let after = &body[at + end.len()..];
        let (rc, next) = if stdout {
            let line = after.strip_prefix(" rc=").unwrap_or_default();
            let (n, next) = line.split_once('\n').unwrap_or((line, ""));
            (n.trim().parse().ok(), next)
        } else {
            (Some(0), after.strip_prefix('\n').unwrap_or(after))
        };
        parts.push((rc, &body[..at]));
        rest = next;
    }
    (own, parts)
}

/// A timer armed on the host before a switch (magic rollback): unless
/// `<root>/.convoy/magic/<token>.ok` appears within `seconds`, the host
/// switches itself back to the release it ran before.
#[derive(Debug, Clone)]
pub struct Arm {
    pub seconds: u64,
    pub token: String,
    /// The switch hooks as shell lines rendered for the release the host
    /// goes back to: the timer runs them after repointing `current`, so
    /// that what the switch restarted runs the old release again.
    pub rollback_hooks: Vec<String>,
}

impl Arm {
    /// The script that confirms (run over a fresh connection).
    pub fn confirm_script(&self, root: &str) -> ShellScript {
        ShellScript::new()
            .var("R", root)
            .var("T", &self.token)
            .code(MAGIC_NAME)
            .code(r#"touch -- "$R/.convoy/magic/$N.ok""#)
    }
}

/// The timer's file name from the token `T` (a run id and a host name,
/// which may hold anything): one path component.
const MAGIC_NAME: &str = r#"N=$(printf '%s' "$T" | tr -c 'A-Za-z0-9._-' '_')"#;

/// The magic rollback timer, written to `<root>/.convoy/magic/<token>.sh`
/// as it is (constant text) and started with its values as arguments
/// (root, the timer's name, the link `current` held, seconds): nothing in it is
/// expanded when it is written, so no value becomes code when it fires.
const MAGIC_TIMER: &str = r#"R=$1; T=$2; old=$3; secs=$4; M="$R/.convoy/magic"
sleep "$secs"
if [ ! -e "$M/$T.ok" ]; then
  if ln -s -- "$old" "$R/.current.magic" && mv -T -- "$R/.current.magic" "$R/current"; then
    printf '%s magic rollback to %s: not confirmed within %ss\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${old#releases/}" "$secs" >> "$R/.convoy/audit.log"
    # What the switch restarted goes back too: the switch hooks, rendered
    # for the release returned to, run from it.
    if [ -s "$M/$T.hooks" ]; then
      ( cd -- "$R/current" && sh "$M/$T.hooks" ) >> "$M/$T.log" 2>&1
      printf '%s magic rollback: switch hooks exited %s (output in %s)\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$?" "$M/$T.log" >> "$R/.convoy/audit.log"
    fi
  fi
fi
rm -f -- "$M/$T.ok" "$M/$T.sh" "$M/$T.hooks"
"#;

/// [`switch`]'s script; `R`, `V`, `AT` and `BY` are set in front of it, and
/// with a timer `TIMER`, `N` (its name) and `SECS`.
const SWITCH: &str = r#"cd -- "$R" 2>/dev/null || { printf '%s does not exist\n' "$R" >&2; exit 3; }
[ -d "releases/$V" ] || { printf 'release %s is not in %s/releases\n' "$V" "$R" >&2; exit 3; }
old=$(readlink current 2>/dev/null)
printf 'previous=%s\n' "${old#releases/}"
if [ "$old" = "releases/$V" ]; then echo unchanged=1; exit 0; fi
if [ -n "${TIMER:-}" ] && [ -n "$old" ]; then
  # Detached (setsid, no open descriptors) so that it outlives this session.
  mkdir -p .convoy/magic && printf '%s' "$TIMER" > ".convoy/magic/$N.sh" &&
    printf '%s' "$HOOKS" > ".convoy/magic/$N.hooks" &&
    { nohup setsid sh ".convoy/magic/$N.sh" "$R" "$N" "$old" "$SECS" >/dev/null 2>&1 </dev/null & }
fi
ln -s -- "releases/$V" ".current.tmp.$$" && mv -T -- ".current.tmp.$$" current || { rm -f -- ".current.tmp.$$"; printf 'cannot switch %s/current\n' "$R" >&2; exit 3; }
if [ -n "$old" ]; then printf '%s\n' "${old#releases/}" > .convoy/previous.tmp && mv -- .convoy/previous.tmp .convoy/previous; fi
M=".convoy/releases/$V.json"; m=
if [ -f "$M" ] && { IFS= read -r m < "$M" || [ -n "$m" ]; }; then
  # The first "deployed_at" and "deployed_by" values replaced, with the shell's own expansions.
  for k in deployed_at deployed_by; do
    if [ "$k" = deployed_at ]; then val=$AT; else val=$BY; fi
    case $m in *"\"$k\":\""*)
      a=${m%%"\"$k\":\""*}; b=${m#*"\"$k\":\""}; b=${b#*'"'}
      m="$a\"$k\":\"$val\"$b" ;;
    esac
  done
  printf '%s\n' "$m" > "$M.tmp" && mv -- "$M.tmp" "$M"
fi
printf '%s\t%s\t%s\n' "$AT" "$V" "$BY" >> .convoy/history
true
"#;

/// Points `current` at `releases/<version>`: a new symlink under a temporary
/// name, renamed over `current` (rename(2)), so `current` always names a
/// complete release. Records who deployed it and the previous version.
/// `along` adds what rides in the same round trip.
pub async fn switch(
    conn: &Connection,
    root: &str,
    version: &str,
    deployed_by: &str,
    arm: Option<&Arm>,
    along: Along<'_>,
    sudo: Option<&Become>,
) -> Result<Result<Switched, String>, TransportError> {
    let mut script = ShellScript::new();
    if let Some(before) = along.before {
        script = script.code("(").then(before).code(")");
    }
    let hooks = !along.hooks.is_empty();
    if hooks {
        script = script
            .code(r#"W=$PWD"#)
            .var("B", along.marker)
            .args(along.hooks);
    }
    let mut script = script
        .code("set -u")
        .var("R", root)
        .var("V", version)
        // Both go into a sed replacement too: only characters that mean nothing there.
        .var("AT", now())
        .var("BY", sed_safe(deployed_by));
    if let Some(a) = arm {
        // The switch hooks as the timer runs them: the user's own lines,
        // each in a subshell, stopping at the first that fails.
        let hooks: String = a
            .rollback_hooks
            .iter()
            .map(|h| format!("( {h}\n) || exit $?\n"))
            .collect();
        script = script
            .var("TIMER", MAGIC_TIMER)
            .var("HOOKS", hooks)
            .var("T", &a.token)
            .var("SECS", a.seconds.to_string())
            .code(MAGIC_NAME);
    }
    let mut script = script.code(SWITCH);
    if hooks {
        script = script.code(SWITCH_HOOKS);
    }
    if let Some(after) = along.after {
        script = script
            .code(r#"if [ "${convoy_rc:-0}" -eq 0 ]; then ("#)
            .then(after)
            .code(") && echo convoy_released=1; fi");
    }
    let out = conn.exec(Script::new(&script).sudo(sudo)).await?;
    if !out.success() {
        return Ok(Err(last_line(&out.stderr_str())));
    }
    let text = out.stdout_str();
    // Its own last line: hooks' output is always followed by a marker line.
    let released = along.after.is_some() && text.lines().last() == Some("convoy_released=1");
    let errors = out.stderr_str();
    let (text, outs) = if hooks {
        hook_parts(&text, along.marker, true)
    } else {
        (text.as_str(), vec![])
    };
    let (_, errs) = if hooks {
        hook_parts(&errors, along.marker, false)
    } else {
        ("", vec![])
    };
    let mut switched = Switched {
        previous: None,
        changed: true,
        released,
        hooks: outs
            .iter()
            .enumerate()
            .map(|(i, (rc, stdout))| HookRan {
                rc: *rc,
                stdout: (*stdout).to_owned(),
                stderr: errs
                    .get(i)
                    .map(|(_, e)| (*e).to_owned())
                    .unwrap_or_default(),
            })
            .collect(),
    };
    for (k, v) in out_lines(text) {
        match k {
            "previous" => switched.previous = Some(v.to_owned()).filter(|v| !v.is_empty()),
            "unchanged" => switched.changed = false,
            _ => {}
        }
    }
    Ok(Ok(switched))
}

/// Removes releases beyond `keep` (oldest first by their metadata's
/// preparation order), never the current one nor `previous`, and artifacts
/// no remaining release uses. Returns the versions removed.
pub async fn prune(
    conn: &Connection,
    root: &str,
    keep: u32,
    sudo: Option<&Become>,
) -> Result<Result<Vec<String>, String>, TransportError> {
    let out = conn
        .exec(Script::new(&prune_script(root, keep)).sudo(sudo))
        .await?;
    if !out.success() {
        return Ok(Err(last_line(&out.stderr_str())));
    }
    Ok(Ok(pruned(&out.stdout_str())))
}

/// [`prune`] as a script of its own, so that it can also go in front of
/// the lock's release in one round trip (see `lock::release_after`).
pub fn prune_script(root: &str, keep: u32) -> ShellScript {
    ShellScript::new()
        .code("set -u")
        .var("R", root)
        .var("K", keep.to_string())
        .code(PRUNE)
}

/// The versions [`prune_script`] says it removed.
pub fn pruned(stdout: &str) -> Vec<String> {
    out_lines(stdout)
        .filter(|(k, _)| *k == "removed")
        .map(|(_, v)| v.to_owned())
        .collect()
}

/// The message of a failed script: its last line on stderr.
pub fn failure_message(stderr: &str) -> String {
    last_line(stderr)
}

/// [`prune`]'s script; `R` and `K` are set in front of it.
const PRUNE: &str = r#"cd -- "$R/releases" 2>/dev/null || exit 0
cur=$(readlink ../current 2>/dev/null); cur=${cur#releases/}; prev=; [ -f ../.convoy/previous ] && { IFS= read -r prev < ../.convoy/previous || :; }
# current and the one before it always stay; the newest others fill up to K.
n=0; kept=" "
for v in "$cur" "$prev"; do [ -n "$v" ] && [ -d "$v" ] || continue; case "$kept" in *" $v "*) ;; *) kept="$kept$v "; n=$((n+1));; esac; done
for v in $(ls -1t); do
  case "$v" in .tmp-*) continue;; esac
  case "$kept" in *" $v "*) continue;; esac
  if [ $n -lt "$K" ]; then kept="$kept$v "; n=$((n+1)); else rm -rf -- "$v" "../.convoy/releases/$v.json" && echo "removed=$v"; fi
done
# The artifacts the remaining releases use, read with the shell's own `read`.
used=" "
for m in ../.convoy/releases/*.json; do [ -f "$m" ] || continue; l=; { IFS= read -r l < "$m" || [ -n "$l" ]; }
  case $l in *'"sha256":"'*) l=${l#*'"sha256":"'}; used="$used${l%%'"'*} " ;; esac; done
for a in ../.convoy/artifacts/*; do [ -f "$a" ] || continue; s=${a##*/}; case "$s" in *.part) continue;; esac
  case "$used" in *" $s "*) ;; *) rm -f -- "$a" ;; esac; done
true
"#;

/// A release as `convoy status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReleaseInfo {
    pub version: String,
    pub sha256: String,
    pub prepared_at: String,
    pub deployed_at: String,
    pub deployed_by: String,
}

#[derive(Debug, Clone, Default)]
pub struct HostStatus {
    pub current: Option<String>,
    pub previous: Option<String>,
    /// Oldest first (by preparation time).
    pub releases: Vec<ReleaseInfo>,
    /// The deploy lock's holder line, when a lock is in place.
    pub lock: Option<String>,
    /// The last line of the root's audit log: the last run that ended there.
    pub last_run: Option<String>,
}

impl HostStatus {
    /// The last run's `outcome=` field, from its audit line.
    pub fn outcome(&self) -> Option<&str> {
        self.last_run
            .as_deref()?
            .split_whitespace()
            .find_map(|w| w.strip_prefix("outcome="))
    }
}

/// Every root given as a positional argument: a `root=` line, then its
/// state, so many distributions cost one round trip. First lines are read
/// with the shell's `read`, not a `cat` or `head` per file.
const STATUS_ROOTS: &str = r#"for R in "$@"; do
printf 'root=%s\n' "$R"
printf 'current=%s\n' "$(readlink -- "$R/current" 2>/dev/null)"
p=; [ -f "$R/.convoy/previous" ] && { { IFS= read -r p < "$R/.convoy/previous" || :; } 2>/dev/null; }
printf 'previous=%s\n' "$p"
for m in "$R"/.convoy/releases/*.json; do [ -f "$m" ] || continue; l=; { { IFS= read -r l < "$m" || [ -n "$l" ]; } 2>/dev/null; } && printf 'meta=%s\n' "$l"; done
l=; [ -f "$R/.convoy/lock/holder" ] && { { IFS= read -r l < "$R/.convoy/lock/holder" || :; } 2>/dev/null; printf 'lock=%s\n' "$l"; }
[ -f "$R/.convoy/audit.log" ] && printf 'last=%s\n' "$(tail -n 1 -- "$R/.convoy/audit.log")"
done; true"#;

/// [`status`] for several roots of one host, in one round trip; the
/// answers in `roots` order.
pub async fn status_of_roots(
    conn: &Connection,
    roots: &[String],
    sudo: Option<&Become>,
) -> Result<Vec<HostStatus>, TransportError> {
    let script = ShellScript::new().args(roots).code(STATUS_ROOTS);
    let out = conn.exec(Script::new(&script).sudo(sudo)).await?;
    let text = out.stdout_str();
    let mut all: Vec<HostStatus> = Vec::new();
    for (k, v) in out_lines(&text) {
        match (k, all.last_mut()) {
            ("root", _) => all.push(HostStatus::default()),
            ("lock", Some(s)) => s.lock = Some(v.to_owned()),
            ("last", Some(s)) => s.last_run = Some(v.to_owned()),
            (_, Some(s)) => status_line(s, k, v),
            (_, None) => {}
        }
    }
    for s in &mut all {
        sort_releases(s);
    }
    all.resize_with(roots.len(), HostStatus::default);
    Ok(all)
}

fn sort_releases(status: &mut HostStatus) {
    status.releases.sort_by(|a, b| {
        a.prepared_at
            .cmp(&b.prepared_at)
            .then_with(|| a.version.cmp(&b.version))
    });
}

/// Reads current, previous and every release's metadata (one round trip).
pub async fn status(
    conn: &Connection,
    root: &str,
    sudo: Option<&Become>,
) -> Result<HostStatus, TransportError> {
    let out = conn
        .exec(Script::new(&status_script(root)).sudo(sudo))
        .await?;
    Ok(parse_status(&out.stdout_str()))
}

/// [`status`] as a script of its own, so that it can also follow the
/// taking of the deploy lock in the same round trip (a rollback reads it
/// there).
pub fn status_script(root: &str) -> ShellScript {
    ShellScript::new().var("R", root).code(
        r#"printf 'current=%s\n' "$(readlink -- "$R/current" 2>/dev/null)"
p=; [ -f "$R/.convoy/previous" ] && { { IFS= read -r p < "$R/.convoy/previous" || :; } 2>/dev/null; }
printf 'previous=%s\n' "$p"
for m in "$R"/.convoy/releases/*.json; do [ -f "$m" ] || continue; l=; { { IFS= read -r l < "$m" || [ -n "$l" ]; } 2>/dev/null; } && printf 'meta=%s\n' "$l"; done; true"#,
    )
}

/// What [`status_script`] printed.
pub fn parse_status(stdout: &str) -> HostStatus {
    let mut status = HostStatus::default();
    for (k, v) in out_lines(stdout) {
        status_line(&mut status, k, v);
    }
    sort_releases(&mut status);
    status
}

/// One `key=value` line of a status answer.
fn status_line(status: &mut HostStatus, k: &str, v: &str) {
    match k {
        "current" => status.current = version_of(v),
        "previous" => status.previous = Some(v.to_owned()).filter(|v| !v.is_empty()),
        "meta" => {
            if let Ok(m) = serde_json::from_str::<serde_json::Value>(v) {
                let field = |f: &str| {
                    m.get(f)
                        .and_then(|x| x.as_str())
                        .unwrap_or_default()
                        .to_owned()
                };
                status.releases.push(ReleaseInfo {
                    version: field("version"),
                    sha256: field("sha256"),
                    prepared_at: field("prepared_at"),
                    deployed_at: field("deployed_at"),
                    deployed_by: field("deployed_by"),
                });
            }
        }
        _ => {}
    }
}

/// Makes `<current>+patch.N` from the current release: a hard-linked copy
/// (`cp -al`) with `files` replaced (written to new inodes, so the original
/// release is untouched). Returns the new version.
pub async fn make_patch(
    conn: &Connection,
    root: &str,
    files: &[(String, Vec<u8>)],
    sudo: Option<&Become>,
) -> Result<Result<String, String>, TransportError> {
    let mut script = ShellScript::new()
        .code("set -u")
        .var("R", root)
        .code(PATCH_PRELUDE);
    for (path, content) in files {
        let data = base64::engine::general_purpose::STANDARD.encode(content);
        script = script.call("patch", [path.as_str(), &data]);
    }
    let script = script.code(PATCH_DONE);
    let out = conn.exec(Script::new(&script).sudo(sudo)).await?;
    if !out.success() {
        return Ok(Err(last_line(&out.stderr_str())));
    }
    Ok(out_lines(&out.stdout_str())
        .find(|(k, _)| *k == "version")
        .map(|(_, v)| v.to_owned())
        .ok_or_else(|| "the host did not report the patched version".to_owned()))
}

/// [`make_patch`]'s script, `R` set in front of it. `patch PATH BASE64`
/// replaces one file of the copy (a new inode, keeping the old mode).
const PATCH_PRELUDE: &str = r#"cd -- "$R" 2>/dev/null || { printf '%s does not exist\n' "$R" >&2; exit 3; }
fail() { printf '%s\n' "$1" >&2; exit 3; }
cur=$(readlink current 2>/dev/null) || fail "$R/current does not exist: deploy before patching"
cur=${cur#releases/}; base=${cur%%+patch.*}; n=1
while [ -e "releases/$base+patch.$n" ]; do n=$((n+1)); done
P="$base+patch.$n"; TMP="releases/.tmp-$P.$$"
trap 'rm -rf -- "$TMP"' EXIT
cp -al -- "releases/$cur" "$TMP" || fail "cannot copy releases/$cur"
patch() {
  mkdir -p -- "$(dirname -- "$TMP/$1")" && printf '%s' "$2" | base64 -d > "$TMP/.patch.$$" &&
    { [ ! -e "$TMP/$1" ] || chmod --reference="$TMP/$1" -- "$TMP/.patch.$$"; } &&
    mv -f -- "$TMP/.patch.$$" "$TMP/$1" || fail "cannot write $1 in $TMP"
}
"#;

const PATCH_DONE: &str = r#"if [ -f ".convoy/releases/$cur.json" ]; then sed -e "s/\"version\":\"[^\"]*\"/\"version\":\"$P\",\"patched_from\":\"$cur\"/" -- ".convoy/releases/$cur.json" > ".convoy/releases/$P.json"; fi
mv -- "$TMP" "releases/$P" || fail "cannot rename $TMP"
echo "version=$P"
"#;

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Keeps a value usable inside a sed replacement between single quotes.
fn sed_safe(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "@._-".contains(*c))
        .collect()
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("failed without a message")
        .trim()
        .to_owned()
}
