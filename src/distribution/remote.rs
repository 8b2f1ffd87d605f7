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
use crate::transport::{Become, Connection, Script, ShellScript, TransportError, quote};

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
pub fn probe_script(plan: &ReleasePlan) -> String {
    format!(
        "R={root}; V={v}; S={sha}\n\
         [ -f \"$R/.convoy/artifacts/$S\" ] && echo artifact=1\n\
         [ -d \"$R/releases/$V\" ] && echo release=1\n\
         [ -f \"$R/.convoy/releases/$V.json\" ] && sed -n 's/.*\"identity\":\"\\([^\"]*\\)\".*/identity=\\1/p' \"$R/.convoy/releases/$V.json\"\n\
         echo current=$(readlink \"$R/current\" 2>/dev/null)\n\
         echo previous=$(cat \"$R/.convoy/previous\" 2>/dev/null)\n\
         true",
        root = quote(&plan.root),
        v = quote(&plan.version),
        sha = quote(plan.sha256()),
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
pub async fn ship(
    conn: &Connection,
    plan: &ReleasePlan,
    state: &HostRelease,
    playbook: &str,
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
    let fetch = match (&plan.source, state.artifact_present) {
        (_, true) => String::new(),
        // Errors are kept in a variable, not a file: the disk may be the thing that is full.
        (Source::Push(_), false) => {
            "err=$( { cat > \"$PART\"; } 2>&1 ) || fail \"cannot write $PART: ${err#cat: }\"\n"
                .to_owned()
        }
        (Source::Pull { url, .. }, false) => format!(
            "if command -v curl >/dev/null 2>&1; then curl -fsSL --retry 2 -o \"$PART\" {u} || fail \"cannot download {url}\"; \
             else wget -q -O \"$PART\" {u} || fail \"cannot download {url}\"; fi\n",
            u = quote(url)
        ),
    };
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
    let mut script = format!(
        "set -u\n\
         R={root}; V={v}; S={sha}\n\
         TMP=\"$R/releases/.tmp-$V.$$\"; PART=\"$R/.convoy/artifacts/$S.$$.part\"; STORED=\"$R/.convoy/artifacts/$S\"\n\
         trap 'rm -rf \"$TMP\" \"$PART\" \"$R/.convoy/releases/.tmp-$V.$$\"' EXIT\n\
         fail() {{ echo \"$1\" >&2; exit 3; }}\n\
         mkdir -p \"$R/releases\" \"$R/shared\" \"$R/.convoy/artifacts\" \"$R/.convoy/releases\" || fail \"cannot create $R\"\n\
         {fetch}\
         if [ -f \"$PART\" ]; then\n\
           actual=$(sha256sum \"$PART\" | cut -d' ' -f1)\n\
           [ \"$actual\" = \"$S\" ] || fail \"sha256 mismatch for $PART: expected $S, got $actual\"\n\
           mv \"$PART\" \"$STORED\" || fail \"cannot store $STORED\"\n\
         else\n\
           # The store is trusted only after a check: a file altered on disk is found here, not after the switch.\n\
           actual=$(sha256sum \"$STORED\" | cut -d' ' -f1)\n\
           [ \"$actual\" = \"$S\" ] || {{ rm -f \"$STORED\"; fail \"sha256 mismatch for stored artifact $STORED: expected $S, got $actual (removed; the next run uploads it again)\"; }}\n\
         fi\n\
         mkdir \"$TMP\" || fail \"cannot create $TMP\"\n\
         err=$( {{ {extract}; }} 2>&1 ) || fail \"cannot unpack into $TMP: $(printf '%s' \"$err\" | tail -n 1)\"\n",
        root = quote(&plan.root),
        v = quote(&plan.version),
        sha = quote(plan.sha256()),
        extract = plan
            .format()
            .extract_command("$STORED", "$TMP", plan.strip, plan.file_name())
            .replace("'$STORED'", "\"$STORED\"")
            .replace("'$TMP'", "\"$TMP\"")
            .replace(
                &format!("'$TMP/{}'", plan.file_name()),
                &format!("\"$TMP\"/{}", quote(plan.file_name()))
            ),
    );
    if matches!(plan.source, Source::Pull { .. }) && plan.format().is_archive() {
        // Pulled artifacts were never seen locally: refuse links that leave the release.
        script.push_str(
            "find \"$TMP\" -type l | while read -r l; do t=$(realpath -m \"$l\"); case \"$t\" in \"$TMP\"|\"$TMP\"/*) ;; *) echo \"$l\";; esac; done > \"$TMP.bad\"\n\
             if [ -s \"$TMP.bad\" ]; then b=$(head -n 1 \"$TMP.bad\"); rm -f \"$TMP.bad\"; fail \"unsafe archive: link ${b#$TMP/} points outside the release\"; fi\n\
             rm -f \"$TMP.bad\"\n",
        );
    }
    for path in &plan.shared {
        let p = quote(path);
        script.push_str(&format!(
            "mkdir -p \"$R/shared/\"{p} && rm -rf \"$TMP/\"{p} && mkdir -p \"$(dirname \"$TMP/\"{p})\" && ln -s \"$R/shared/\"{p} \"$TMP/\"{p} || fail \"cannot link shared path {path}\"\n"
        ));
    }
    for file in &plan.files {
        let dest = quote(&file.dest);
        let data = base64::engine::general_purpose::STANDARD.encode(&file.content);
        script.push_str(&format!(
            "mkdir -p \"$(dirname \"$TMP/\"{dest})\" && printf '%s' {data} | base64 -d > \"$TMP/\"{dest}{chmod} || fail \"cannot write $TMP/{d}\"\n",
            data = quote(&data),
            d = file.dest,
            chmod = file.mode.as_ref().map(|m| format!(" && chmod {} \"$TMP/\"{dest}", quote(m))).unwrap_or_default(),
        ));
    }
    match (&plan.owner, &plan.group) {
        (Some(o), g) => script.push_str(&format!(
            "chown -R {}{} \"$TMP\" || fail \"cannot chown $TMP\"\n",
            quote(o),
            g.as_ref()
                .map(|g| format!(":{}", quote(g)))
                .unwrap_or_default()
        )),
        (None, Some(g)) => script.push_str(&format!(
            "chgrp -R {} \"$TMP\" || fail \"cannot chgrp $TMP\"\n",
            quote(g)
        )),
        (None, None) => {}
    }
    script.push_str(&format!(
        "M=\"$R/.convoy/releases/.tmp-$V.$$\"\n\
         printf '%s\\n' {meta} > \"$M\" || fail \"cannot write $M\"\n\
         rm -rf \"$R/releases/$V\"\n\
         mv \"$M\" \"$R/.convoy/releases/$V.json\" && mv \"$TMP\" \"$R/releases/$V\" || fail \"cannot rename $TMP to $R/releases/$V\"\n",
        meta = quote(&metadata),
    ));
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
}

/// Refuses a switch to a release that is not there; says what `current`
/// named; stops when it already names the version.
const SWITCH_CHECK: &str = r#"cd "$R" 2>/dev/null || { echo "$R does not exist" >&2; exit 3; }
[ -d "releases/$V" ] || { echo "release $V is not in $R/releases" >&2; exit 3; }
old=$(readlink current 2>/dev/null)
echo "previous=${old#releases/}"
if [ "$old" = "releases/$V" ]; then echo unchanged=1; exit 0; fi
"#;

/// Arms the magic-rollback timer (before the switch, in its round trip):
/// detached (setsid, no open descriptors) so that it outlives the session.
const ARM: &str = r#"if [ -n "$old" ]; then
  mkdir -p .convoy/magic || { echo "cannot create $R/.convoy/magic" >&2; exit 3; }
  printf '%s' "$HOOKS" > ".convoy/magic/$T.hooks" && printf '%s\n' "$TIMER" > ".convoy/magic/$T.sh" || { echo "cannot write the magic rollback timer in $R/.convoy/magic" >&2; exit 3; }
  nohup setsid sh ".convoy/magic/$T.sh" "$R" "$old" "$T" "$SECS" >/dev/null 2>&1 </dev/null &
fi
"#;

/// The timer itself (`sh TIMER ROOT OLD-LINK TOKEN SECONDS`): unless
/// `<token>.ok` appears in time, `current` goes back to the old link and the
/// switch hooks rendered for that release run, from it, logged beside.
const MAGIC_TIMER: &str = r#"R=$1; old=$2; T=$3; secs=$4; M="$R/.convoy/magic"
sleep "$secs"
if [ ! -e "$M/$T.ok" ]; then
  if ln -s "$old" "$R/.current.magic" && mv -T "$R/.current.magic" "$R/current"; then
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) magic rollback to ${old#releases/}: not confirmed within ${secs}s" >> "$R/.convoy/audit.log"
    if [ -s "$M/$T.hooks" ]; then
      ( cd "$R/current" && sh "$M/$T.hooks" ) >> "$M/$T.log" 2>&1
      echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) magic rollback: switch hooks exited $? (output in $M/$T.log)" >> "$R/.convoy/audit.log"
    fi
  fi
fi
rm -f "$M/$T.ok" "$M/$T.sh" "$M/$T.hooks""#;

/// Repoints `current` by rename(2) and records the switch.
const SWITCH: &str = r#"ln -s "releases/$V" ".current.tmp.$$" && mv -T ".current.tmp.$$" current || { rm -f ".current.tmp.$$"; echo "cannot switch $R/current" >&2; exit 3; }
if [ -n "$old" ]; then printf '%s\n' "${old#releases/}" > .convoy/previous.tmp && mv .convoy/previous.tmp .convoy/previous; fi
M=".convoy/releases/$V.json"
if [ -f "$M" ]; then sed -e 's/"deployed_at":"[^"]*"/"deployed_at":"'"$AT"'"/' -e 's/"deployed_by":"[^"]*"/"deployed_by":"'"$BY"'"/' "$M" > "$M.tmp" && mv "$M.tmp" "$M"; fi
printf '%s\t%s\t%s\n' "$AT" "$V" "$BY" >> .convoy/history
true
"#;

/// Points `current` at `releases/<version>`: a new symlink under a temporary
/// name, renamed over `current` (rename(2)), so `current` always names a
/// complete release. Records who deployed it and the previous version.
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
    /// The command that confirms (run over a fresh connection).
    pub fn confirm_command(&self, root: &str) -> String {
        format!(
            "touch {}/.convoy/magic/{}.ok",
            quote(root),
            quote(&self.token)
        )
    }
}

pub async fn switch(
    conn: &Connection,
    root: &str,
    version: &str,
    deployed_by: &str,
    arm: Option<&Arm>,
    sudo: Option<&Become>,
) -> Result<Result<Switched, String>, TransportError> {
    let mut script = ShellScript::new()
        .code("set -u")
        .var("R", root)
        .var("V", version)
        .var("AT", now())
        .var("BY", sed_safe(deployed_by))
        .code(SWITCH_CHECK);
    if let Some(a) = arm {
        // The timer's code is constant; what it needs (the old link, the
        // token, the delay, the hooks) reaches it as quoted data: as its
        // arguments and as a file written with printf.
        let hooks: String = a
            .rollback_hooks
            .iter()
            .map(|h| format!("( {h}\n) || exit $?\n"))
            .collect();
        script = script
            .var("T", &a.token)
            .var("SECS", a.seconds.to_string())
            .var("HOOKS", hooks)
            .var("TIMER", MAGIC_TIMER)
            .code(ARM);
    }
    let script = script.code(SWITCH);
    let script = script.text().to_owned();
    let out = conn.exec(Script::new(&script).sudo(sudo)).await?;
    if !out.success() {
        return Ok(Err(last_line(&out.stderr_str())));
    }
    let text = out.stdout_str();
    let mut switched = Switched {
        previous: None,
        changed: true,
    };
    for (k, v) in out_lines(&text) {
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
    let script = format!(
        "set -u\nR={root}; K={keep}; cd \"$R/releases\" 2>/dev/null || exit 0\n\
         cur=$(readlink ../current 2>/dev/null); cur=${{cur#releases/}}; prev=$(cat ../.convoy/previous 2>/dev/null)\n\
         # current and the one before it always stay; the newest others fill up to K.\n\
         n=0; kept=\" \"\n\
         for v in \"$cur\" \"$prev\"; do [ -n \"$v\" ] && [ -d \"$v\" ] || continue; case \"$kept\" in *\" $v \"*) ;; *) kept=\"$kept$v \"; n=$((n+1));; esac; done\n\
         for v in $(ls -1t); do\n\
           case \"$v\" in .tmp-*) continue;; esac\n\
           case \"$kept\" in *\" $v \"*) continue;; esac\n\
           if [ $n -lt $K ]; then kept=\"$kept$v \"; n=$((n+1)); else rm -rf \"$v\" \"../.convoy/releases/$v.json\" && echo \"removed=$v\"; fi\n\
         done\n\
         for a in ../.convoy/artifacts/*; do [ -f \"$a\" ] || continue; s=${{a##*/}}; case \"$s\" in *.part) continue;; esac\n\
           grep -qs \"\\\"sha256\\\":\\\"$s\\\"\" ../.convoy/releases/*.json || rm -f \"$a\"; done\n\
         true",
        root = quote(root),
    );
    let out = conn.exec(Script::new(&script).sudo(sudo)).await?;
    if !out.success() {
        return Ok(Err(last_line(&out.stderr_str())));
    }
    Ok(Ok(out_lines(&out.stdout_str())
        .filter(|(k, _)| *k == "removed")
        .map(|(_, v)| v.to_owned())
        .collect()))
}

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
}

/// Reads current, previous and every release's metadata (one round trip).
pub async fn status(
    conn: &Connection,
    root: &str,
    sudo: Option<&Become>,
) -> Result<HostStatus, TransportError> {
    let script = format!(
        "R={root}\necho current=$(readlink \"$R/current\" 2>/dev/null)\necho previous=$(cat \"$R/.convoy/previous\" 2>/dev/null)\n\
         for m in \"$R\"/.convoy/releases/*.json; do [ -f \"$m\" ] && echo \"meta=$(head -n 1 \"$m\")\"; done; true",
        root = quote(root)
    );
    let out = conn.exec(Script::new(&script).sudo(sudo)).await?;
    let mut status = HostStatus::default();
    for (k, v) in out_lines(&out.stdout_str()) {
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
    status.releases.sort_by(|a, b| {
        a.prepared_at
            .cmp(&b.prepared_at)
            .then_with(|| a.version.cmp(&b.version))
    });
    Ok(status)
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
    let mut script = format!(
        "set -u\nR={root}; cd \"$R\" 2>/dev/null || {{ echo \"$R does not exist\" >&2; exit 3; }}\n\
         fail() {{ echo \"$1\" >&2; exit 3; }}\n\
         cur=$(readlink current 2>/dev/null) || fail \"$R/current does not exist: deploy before patching\"\n\
         cur=${{cur#releases/}}; base=${{cur%%+patch.*}}; n=1\n\
         while [ -e \"releases/$base+patch.$n\" ]; do n=$((n+1)); done\n\
         P=\"$base+patch.$n\"; TMP=\"releases/.tmp-$P.$$\"\n\
         trap 'rm -rf \"$TMP\"' EXIT\n\
         cp -al \"releases/$cur\" \"$TMP\" || fail \"cannot copy releases/$cur\"\n",
        root = quote(root)
    );
    for (path, content) in files {
        let p = quote(path);
        let data = base64::engine::general_purpose::STANDARD.encode(content);
        script.push_str(&format!(
            "mkdir -p \"$(dirname \"$TMP/\"{p})\" && printf '%s' {data} | base64 -d > \"$TMP/.patch.$$\" && \
             {{ [ ! -e \"$TMP/\"{p} ] || chmod --reference=\"$TMP/\"{p} \"$TMP/.patch.$$\"; }} && mv -f \"$TMP/.patch.$$\" \"$TMP/\"{p} || fail \"cannot write {path} in $TMP\"\n",
            data = quote(&data),
        ));
    }
    script.push_str(
        "if [ -f \".convoy/releases/$cur.json\" ]; then sed -e \"s/\\\"version\\\":\\\"[^\\\"]*\\\"/\\\"version\\\":\\\"$P\\\",\\\"patched_from\\\":\\\"$cur\\\"/\" \".convoy/releases/$cur.json\" > \".convoy/releases/$P.json\"; fi\n\
         mv \"$TMP\" \"releases/$P\" || fail \"cannot rename $TMP\"\n\
         echo \"version=$P\"\n",
    );
    let out = conn.exec(Script::new(&script).sudo(sudo)).await?;
    if !out.success() {
        return Ok(Err(last_line(&out.stderr_str())));
    }
    Ok(out_lines(&out.stdout_str())
        .find(|(k, _)| *k == "version")
        .map(|(_, v)| v.to_owned())
        .ok_or_else(|| "the host did not report the patched version".to_owned()))
}

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
