//! `job:` — a play's one-off work over many targets, as written and checked.
//!
//! Everything that can be checked without a host is checked here, with the
//! file, line and column: an empty or duplicated target list (also in a
//! `targets_file`, pointed at its line), a concurrency of 0, converter
//! ranges that are not `>=A, <B` or that overlap (their order would be
//! ambiguous), groups naming targets that do not exist. A job's `name`
//! becomes a directory on the hosts, so it must be a plain name.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::converters::{Converter, VersionRange, loose_version};
use super::targets;
use crate::playbook::{Pause, PlaybookError, Size};
use crate::source::SourceSpan;
use crate::vars::Value;

/// A job, checked.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// Names the job's state directory on each host: a job is its name.
    pub name: String,
    pub targets: TargetSource,
    pub work: Work,
    /// Targets run at once on one host.
    pub per_host: usize,
    /// Targets run at once over all hosts.
    pub total: Option<usize>,
    /// Per target and attempt; enforced on the host (the controller may be gone).
    pub timeout: Option<Duration>,
    /// Further attempts of a failed target, `delay` before the first, doubling.
    pub retries: u32,
    pub delay: Duration,
    pub success: Success,
    /// Host-side directory holding every job's state (a template, `~` allowed).
    pub state_dir: String,
    pub groups: Groups,
    pub pause: Pause,
    pub span: SourceSpan,
    /// Where the work is written (`run:`; the job for converters): a
    /// template error points there.
    pub work_span: SourceSpan,
}

/// Where the targets come from.
#[derive(Debug, Clone)]
pub enum TargetSource {
    /// `targets:` or `targets_file:`, read at load: the same on every host.
    Names(Vec<String>),
    /// `targets_command:`, run on each host; its output lines are that host's targets.
    Command { command: String },
}

/// What runs per target.
#[derive(Debug, Clone)]
pub enum Work {
    /// `run:` — one shell command (a template; `{{ target }}` is the target).
    Command(String),
    /// `tasks:` — a task list, run by convoy's task engine with `target` in
    /// its variables; it succeeds when no task failed.
    Tasks(Vec<crate::playbook::Task>),
    /// Converters, for the targets' recorded data version.
    Convert(Conversion),
}

#[derive(Debug, Clone)]
pub struct Conversion {
    /// The data set whose versions are recorded per target (a host-side directory).
    pub data: String,
    /// A target's version when none is recorded.
    pub from: semver::Version,
    /// The version this job converts targets to.
    pub to: semver::Version,
    /// In range order; no two overlap.
    pub converters: Vec<Converter>,
}

/// What counts as success, decided on the host by the target's wrapper.
#[derive(Debug, Clone)]
pub struct Success {
    pub exit_codes: Vec<i32>,
    /// Exit codes meaning "nothing to do here": recorded as skipped.
    pub skip_codes: Vec<i32>,
    /// Text the output must contain for a success exit code to count.
    pub output_contains: Option<String>,
}

/// Targets in groups, a group at a time with `pause` between.
#[derive(Debug, Clone)]
pub enum Groups {
    /// One group: every target.
    All,
    /// Groups of this size (the last may be smaller), in target order.
    Size(Size),
    /// The groups as listed (targets named in no group form no group: refused).
    Lists(Vec<Vec<String>>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJob {
    name: Spanned<String>,
    targets: Option<Spanned<Vec<Spanned<String>>>>,
    targets_file: Option<Spanned<String>>,
    targets_command: Option<Spanned<String>>,
    run: Option<Spanned<String>>,
    /// Converted by the playbook loader (the task loader lives there) and
    /// handed to [`convert`]: see [`RawJob::take_tasks`].
    tasks: Option<Spanned<Vec<crate::playbook::RawTask>>>,
    concurrency: Option<Spanned<Value>>,
    timeout: Option<Spanned<Value>>,
    retries: Option<u32>,
    delay: Option<Spanned<Value>>,
    success: Option<Spanned<RawSuccess>>,
    state_dir: Option<String>,
    data: Option<Spanned<String>>,
    from: Option<Spanned<Value>>,
    version: Option<Spanned<Value>>,
    #[serde(default)]
    converters: Vec<Spanned<RawConverter>>,
    groups: Option<Spanned<Value>>,
    pause: Option<Spanned<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuccess {
    exit_codes: Option<Vec<i32>>,
    #[serde(default)]
    skip_codes: Vec<i32>,
    output_contains: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConverter {
    name: Option<String>,
    versions: Spanned<String>,
    run: String,
}

impl RawJob {
    /// The `tasks:` list as written, for the task loader.
    pub fn take_tasks(&mut self) -> Option<Spanned<Vec<crate::playbook::RawTask>>> {
        self.tasks.take()
    }
}

/// A job's `tasks:`, loaded, and where the key was.
pub struct JobTasks {
    pub tasks: Vec<crate::playbook::Task>,
    pub span: SourceSpan,
}

pub const DEFAULT_STATE_DIR: &str = "~/.convoy/jobs";

/// sshd's default `MaxSessions`: sessions at once over one connection.
pub const MAX_PER_HOST: usize = 10;

/// `job:` of a play in `file` (the playbook), relative files against `base_dir`.
pub fn convert(
    file: &Path,
    base_dir: &Path,
    raw: Spanned<RawJob>,
    tasks: Option<JobTasks>,
) -> Result<JobSpec, PlaybookError> {
    let at = |l: &serde_saphyr::Location| {
        SourceSpan::from_location(file, l).unwrap_or_else(|| SourceSpan::new(file, 1, 1))
    };
    let invalid = |message: String, l: &serde_saphyr::Location| PlaybookError::Invalid {
        message,
        span: at(l),
    };
    let span = at(&raw.referenced);
    let j = raw.value;
    if !plain_name(&j.name.value) {
        return Err(invalid(
            format!(
                "`job.name` {:?} must be a plain name (letters, digits, `.`, `-`, `_`; not starting with `.`): it names the job's state directory on the hosts",
                j.name.value
            ),
            &j.name.referenced,
        ));
    }
    let targets = match (j.targets, j.targets_file, j.targets_command) {
        (Some(list), None, None) => {
            if list.value.is_empty() {
                return Err(invalid(
                    "`job.targets` is empty: a job needs at least one target".into(),
                    &list.referenced,
                ));
            }
            for t in &list.value {
                if let Some(why) = targets::invalid(&t.value) {
                    return Err(invalid(
                        format!("target {:?} {why}", t.value),
                        &t.referenced,
                    ));
                }
            }
            if let Some((first, i)) =
                targets::duplicate(list.value.iter().map(|t| t.value.as_str()))
            {
                let first = at(&list.value[first].referenced);
                return Err(invalid(
                    format!(
                        "target {:?} is listed twice (first at {first})",
                        list.value[i].value
                    ),
                    &list.value[i].referenced,
                ));
            }
            TargetSource::Names(list.value.into_iter().map(|t| t.value).collect())
        }
        (None, Some(path), None) => {
            // Named as the operator would (`tenants.txt`, not `./tenants.txt`).
            let file = match base_dir == Path::new(".") {
                true => Path::new(&path.value).to_path_buf(),
                false => base_dir.join(&path.value),
            };
            TargetSource::Names(read_targets_file(&file, at(&path.referenced))?)
        }
        (None, None, Some(command)) => TargetSource::Command {
            command: command.value,
        },
        (None, None, None) => {
            return Err(PlaybookError::Invalid {
                message: "a job needs its targets: `targets` (a list), `targets_file` (a file, one per line) or `targets_command` (run on each host, one per output line)".into(),
                span,
            });
        }
        _ => {
            return Err(PlaybookError::Invalid {
                message: "a job takes one of `targets`, `targets_file` and `targets_command`"
                    .into(),
                span,
            });
        }
    };
    let (per_host, total) = match &j.concurrency {
        None => (1, None),
        Some(c) => {
            let (per_host, total) = concurrency(&c.value).ok_or_else(|| invalid(
                "`job.concurrency` is a number of targets at once per host (at least 1), or `{ per_host: N, total: M }`".into(),
                &c.referenced,
            ))?;
            if per_host > MAX_PER_HOST {
                return Err(invalid(
                    format!(
                        "`job.concurrency`: at most {MAX_PER_HOST} targets at once per host: each running target is one ssh session on the host's one connection, and sshd allows {MAX_PER_HOST} per connection (MaxSessions)"
                    ),
                    &c.referenced,
                ));
            }
            (per_host, total)
        }
    };
    let duration =
        |v: &Option<Spanned<Value>>, key: &str| -> Result<Option<Duration>, PlaybookError> {
            v.as_ref()
                .map(|d| {
                    crate::playbook::duration(&d.value).ok_or_else(|| {
                        invalid(
                            format!("`job.{key}` must be a duration (`30s`, `5m`, or seconds)"),
                            &d.referenced,
                        )
                    })
                })
                .transpose()
        };
    let timeout = duration(&j.timeout, "timeout")?.filter(|d| !d.is_zero());
    let delay = duration(&j.delay, "delay")?.unwrap_or(Duration::from_secs(1));
    if let (Some(_), Some(s)) = (&tasks, &j.success) {
        return Err(invalid(
            "`job.success` is for `run` (it judges a command's exit code and output); a task list succeeds when none of its tasks failed (use `failed_when` on a task)".into(),
            &s.referenced,
        ));
    }
    let success = match j.success {
        None => Success {
            exit_codes: vec![0],
            skip_codes: vec![],
            output_contains: None,
        },
        Some(s) => {
            let exit_codes = s.value.exit_codes.unwrap_or_else(|| vec![0]);
            if exit_codes.is_empty() || exit_codes.iter().any(|c| s.value.skip_codes.contains(c)) {
                return Err(invalid(
                    "`job.success`: `exit_codes` must name at least one code, and none of `skip_codes`".into(),
                    &s.referenced,
                ));
            }
            Success {
                exit_codes,
                skip_codes: s.value.skip_codes,
                output_contains: s.value.output_contains.filter(|t| !t.is_empty()),
            }
        }
    };
    let work_span = match (&j.run, &tasks) {
        (Some(r), _) => at(&r.referenced),
        (None, Some(t)) => t.span.clone(),
        (None, None) => span.clone(),
    };
    if let Some(t) = &tasks {
        let clash = if j.run.is_some() {
            Some("`run` (one command per target)")
        } else if !j.converters.is_empty() {
            Some("`converters`")
        } else {
            None
        };
        if let Some(other) = clash {
            return Err(PlaybookError::Invalid {
                message: format!(
                    "a job has either `tasks` (a task list per target) or {other}, not both"
                ),
                span: t.span.clone(),
            });
        }
        if t.tasks.is_empty() {
            return Err(PlaybookError::Invalid {
                message: "`job.tasks` is empty: a task list needs at least one task".into(),
                span: t.span.clone(),
            });
        }
    }
    let work = match (j.run, j.converters.is_empty(), tasks) {
        (None, true, Some(t)) => {
            for (key, present) in [
                ("data", j.data.is_some()),
                ("from", j.from.is_some()),
                ("version", j.version.is_some()),
            ] {
                if present {
                    return Err(PlaybookError::Invalid {
                        message: format!(
                            "`job.{key}` is for converters; a job with `tasks` has none"
                        ),
                        span: t.span.clone(),
                    });
                }
            }
            Work::Tasks(t.tasks)
        }
        (Some(run), true, _) => {
            for (key, present) in [
                ("data", j.data.is_some()),
                ("from", j.from.is_some()),
                ("version", j.version.is_some()),
            ] {
                if present {
                    return Err(invalid(
                        format!("`job.{key}` is for converters; a job with `run` has none"),
                        &run.referenced,
                    ));
                }
            }
            Work::Command(run.value)
        }
        (None, false, _) => Work::Convert(conversion(
            file,
            span.clone(),
            j.data,
            j.from,
            j.version,
            j.converters,
        )?),
        (Some(run), false, _) => {
            return Err(invalid(
                "a job has either `run` (one command per target) or `converters`".into(),
                &run.referenced,
            ));
        }
        (None, true, None) => {
            return Err(PlaybookError::Invalid {
                message: "a job needs `run` (a command per target, `{{ target }}` is the target), `tasks` (a task list per target) or `converters`".into(),
                span,
            });
        }
    };
    let groups = match &j.groups {
        None => Groups::All,
        Some(g) => groups(&g.value, &targets).map_err(|m| invalid(m, &g.referenced))?,
    };
    let pause = match &j.pause {
        None => Pause::None,
        Some(p) if p.value.as_str() == Some("confirm") => Pause::Confirm,
        Some(p) => match crate::playbook::duration(&p.value) {
            Some(d) if d.is_zero() => Pause::None,
            Some(d) => Pause::For(d),
            None => {
                return Err(invalid(
                    "`job.pause` is `confirm` (ask before the next group) or a duration".into(),
                    &p.referenced,
                ));
            }
        },
    };
    Ok(JobSpec {
        name: j.name.value,
        targets,
        work,
        per_host,
        total,
        timeout,
        retries: j.retries.unwrap_or(0),
        delay,
        success,
        state_dir: j.state_dir.unwrap_or_else(|| DEFAULT_STATE_DIR.to_owned()),
        groups,
        pause,
        span,
        work_span,
    })
}

fn conversion(
    file: &Path,
    span: SourceSpan,
    data: Option<Spanned<String>>,
    from: Option<Spanned<Value>>,
    version: Option<Spanned<Value>>,
    raw: Vec<Spanned<RawConverter>>,
) -> Result<Conversion, PlaybookError> {
    let at = |l: &serde_saphyr::Location| {
        SourceSpan::from_location(file, l).unwrap_or_else(|| SourceSpan::new(file, 1, 1))
    };
    let missing = |key: &str, what: &str| PlaybookError::Invalid {
        message: format!("a job with `converters` needs `{key}` ({what})"),
        span: span.clone(),
    };
    let data = data.ok_or_else(|| {
        missing(
            "data",
            "the data set whose version is recorded per target, e.g. `tenants`",
        )
    })?;
    if !plain_name(&data.value) {
        return Err(PlaybookError::Invalid {
            message: format!(
                "`job.data` {:?} must be a plain name (it names a directory on the hosts)",
                data.value
            ),
            span: at(&data.referenced),
        });
    }
    let version_of = |v: Spanned<Value>, key: &str| {
        let text = match &v.value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        loose_version(&text).map_err(|e| PlaybookError::Invalid {
            message: format!("`job.{key}`: {e}"),
            span: at(&v.referenced),
        })
    };
    let to = version_of(
        version.ok_or_else(|| missing("version", "the data version the job converts to"))?,
        "version",
    )?;
    let from = version_of(
        from.ok_or_else(|| missing("from", "a target's version when none is recorded"))?,
        "from",
    )?;
    let mut converters: Vec<(Converter, SourceSpan)> = Vec::new();
    for c in raw {
        let versions =
            VersionRange::parse(&c.value.versions.value).map_err(|m| PlaybookError::Invalid {
                message: format!("`versions`: {m}"),
                span: at(&c.value.versions.referenced),
            })?;
        let here = at(&c.value.versions.referenced);
        if let Some((other, there)) = converters
            .iter()
            .find(|(o, _)| o.versions.overlaps(&versions))
        {
            return Err(PlaybookError::Invalid {
                message: format!(
                    "converter range {:?} overlaps {:?} (at {there}): which runs first would be ambiguous; make the ranges adjacent (`>=1.5, <2.0` then `>=2.0, <2.1`)",
                    versions.text, other.versions.text
                ),
                span: here,
            });
        }
        converters.push((
            Converter {
                name: c.value.name.unwrap_or_else(|| versions.text.clone()),
                versions,
                run: c.value.run,
            },
            here,
        ));
    }
    let mut converters: Vec<Converter> = converters.into_iter().map(|(c, _)| c).collect();
    converters.sort_by(|a, b| a.versions.lower.cmp(&b.versions.lower));
    Ok(Conversion {
        data: data.value,
        from,
        to,
        converters,
    })
}

/// `N` or `{ per_host: N, total: M }`, every number at least 1.
fn concurrency(v: &Value) -> Option<(usize, Option<usize>)> {
    let n = |v: &Value| v.as_u64().filter(|n| *n >= 1).map(|n| n as usize);
    match v {
        Value::Number(_) => Some((n(v)?, None)),
        Value::Object(map) => {
            let mut per_host = 1;
            let mut total = None;
            for (k, v) in map {
                match k.as_str() {
                    "per_host" => per_host = n(v)?,
                    "total" => total = Some(n(v)?),
                    _ => return None,
                }
            }
            Some((per_host, total))
        }
        _ => None,
    }
}

fn groups(v: &Value, targets: &TargetSource) -> Result<Groups, String> {
    match v {
        Value::Array(lists) => {
            let mut groups = Vec::new();
            for list in lists {
                let Value::Array(names) = list else {
                    return Err(
                        "`job.groups` is a list of lists of targets, or a size (`10`, `25%`)"
                            .into(),
                    );
                };
                let names: Vec<String> = names
                    .iter()
                    .map(|n| n.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or("`job.groups`: a group is a list of target names")?;
                if names.is_empty() {
                    return Err("`job.groups`: a group is empty".into());
                }
                groups.push(names);
            }
            let all: Vec<&str> = groups.iter().flatten().map(String::as_str).collect();
            if let Some((_, i)) = targets::duplicate(all.iter().copied()) {
                return Err(format!(
                    "`job.groups`: target {:?} is in two groups",
                    all[i]
                ));
            }
            if let TargetSource::Names(names) = targets {
                if let Some(unknown) = all.iter().find(|g| !names.iter().any(|n| n == *g)) {
                    return Err(format!(
                        "`job.groups`: {unknown:?} is not a target of this job"
                    ));
                }
                if let Some(left) = names.iter().find(|n| !all.contains(&n.as_str())) {
                    return Err(format!(
                        "`job.groups`: target {left:?} is in no group (every target must be in one)"
                    ));
                }
            }
            Ok(Groups::Lists(groups))
        }
        other => {
            let size: Option<Size> = match other {
                Value::Number(n) => n
                    .as_u64()
                    .filter(|n| *n >= 1)
                    .map(|n| Size::Count(n as usize)),
                Value::String(s) => s.parse().ok(),
                _ => None,
            };
            size.map(Groups::Size).ok_or_else(|| {
                "`job.groups` is a list of lists of targets, or a group size (`10`, `25%`)".into()
            })
        }
    }
}

/// Splits `targets` (in order) into the spec's groups; targets named in no
/// listed group come last, as a group of their own (for `targets_command`,
/// whose targets are known only on the host).
pub fn partition(groups: &Groups, targets: &[String]) -> Vec<Vec<String>> {
    match groups {
        Groups::All => vec![targets.to_vec()],
        Groups::Size(size) => {
            let n = size.of(targets.len()).max(1);
            targets.chunks(n).map(<[String]>::to_vec).collect()
        }
        Groups::Lists(lists) => {
            let mut out: Vec<Vec<String>> = lists
                .iter()
                .map(|g| g.iter().filter(|t| targets.contains(t)).cloned().collect())
                .collect();
            let rest: Vec<String> = targets
                .iter()
                .filter(|t| !lists.iter().flatten().any(|g| g == *t))
                .cloned()
                .collect();
            if !rest.is_empty() {
                out.push(rest);
            }
            out.retain(|g| !g.is_empty());
            out
        }
    }
}

/// The targets of a `targets_file`: one per line; blank lines and `#`
/// comments skipped; a bad or duplicated name is pointed at in the file.
fn read_targets_file(path: &Path, span: SourceSpan) -> Result<Vec<String>, PlaybookError> {
    let text = std::fs::read_to_string(path).map_err(|e| PlaybookError::Invalid {
        message: format!("cannot read `targets_file` {}: {e}", path.display()),
        span: span.clone(),
    })?;
    let mut names: Vec<(String, SourceSpan)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let name = line.trim();
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        let col = line.find(name).unwrap_or(0) + 1;
        let here = SourceSpan::new(path, i + 1, col);
        if let Some(why) = targets::invalid(name) {
            return Err(PlaybookError::Invalid {
                message: format!("target {name:?} {why}"),
                span: here,
            });
        }
        if let Some((_, first)) = names.iter().find(|(n, _)| n == name) {
            return Err(PlaybookError::Invalid {
                message: format!("target {name:?} is listed twice (first at {first})"),
                span: here,
            });
        }
        names.push((name.to_owned(), here));
    }
    if names.is_empty() {
        return Err(PlaybookError::Invalid {
            message: format!(
                "`targets_file` {} lists no target: a job needs at least one",
                path.display()
            ),
            span,
        });
    }
    Ok(names.into_iter().map(|(n, _)| n).collect())
}

/// One path component and nothing else.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// `target` in a template of a play that has no `job:` (or in a job play's
/// other sections): it is defined only in a job's commands, so it would
/// fail on the hosts; refused at load instead.
pub fn check_target_use(play: &crate::playbook::Play) -> Result<(), PlaybookError> {
    if play.vars.contains_key("target") {
        return Ok(());
    }
    let mut found = None;
    for task in play
        .tasks
        .iter()
        .chain(&play.handlers)
        .chain(&play.hooks.prepare)
        .chain(&play.hooks.switch)
        .chain(&play.hooks.confirm)
    {
        walk_task(task, &mut found);
        if found.is_some() {
            break;
        }
    }
    match found {
        Some(span) => Err(PlaybookError::Invalid {
            message: "`target` is used here, but it is defined only in a job's `run`, `tasks` and converters (`job:`); this play has no targets".into(),
            span,
        }),
        None => Ok(()),
    }
}

fn walk_task(task: &crate::playbook::Task, found: &mut Option<SourceSpan>) {
    use crate::playbook::TaskKind;
    match &task.kind {
        TaskKind::Module {
            args, args_span, ..
        } => {
            if value_uses_target(args) || task.when.iter().any(|w| expression_uses_target(w)) {
                *found = Some(args_span.clone());
            }
        }
        TaskKind::Block {
            block,
            rescue,
            always,
        } => {
            for t in block.iter().chain(rescue).chain(always) {
                walk_task(t, found);
                if found.is_some() {
                    return;
                }
            }
        }
    }
}

fn value_uses_target(v: &Value) -> bool {
    match v {
        Value::String(s) => template_uses_target(s),
        Value::Array(a) => a.iter().any(value_uses_target),
        Value::Object(m) => m.values().any(value_uses_target),
        _ => false,
    }
}

/// Does a template string read the variable `target` (inside `{{ }}` or `{% %}`)?
pub fn template_uses_target(s: &str) -> bool {
    let mut rest = s;
    while let Some(start) = rest.find("{{").or_else(|| rest.find("{%")) {
        let inner = &rest[start + 2..];
        let end = inner
            .find("}}")
            .or_else(|| inner.find("%}"))
            .unwrap_or(inner.len());
        if expression_uses_target(&inner[..end]) {
            return true;
        }
        rest = &inner[end..];
    }
    false
}

/// Does an expression name `target` as a variable (not `x.target`, not in quotes)?
fn expression_uses_target(expr: &str) -> bool {
    let bytes = expr.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if expr[i..].starts_with("target") => {
                let before = i.checked_sub(1).map(|j| bytes[j]);
                let after = bytes.get(i + 6).copied();
                let ident =
                    |c: Option<u8>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_');
                if !ident(before) && before != Some(b'.') && !ident(after) {
                    return true;
                }
            }
            None => {}
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_use_is_found_in_templates_only_as_a_variable() {
        assert!(template_uses_target("echo {{ target }}"));
        assert!(template_uses_target("{{ target | upper }}"));
        assert!(!template_uses_target("echo target"));
        assert!(!template_uses_target("{{ item.target }}"));
        assert!(!template_uses_target("{{ 'target' }}"));
        assert!(!template_uses_target("{{ targets }}"));
    }

    #[test]
    fn groups_partition_targets_in_order() {
        let t: Vec<String> = (1..=5).map(|i| format!("t{i}")).collect();
        assert_eq!(partition(&Groups::Size(Size::Count(2)), &t).len(), 3);
        assert_eq!(
            partition(&Groups::Size(Size::Percent(50.0)), &t)[0].len(),
            3
        );
        let lists = Groups::Lists(vec![vec!["t5".into()], vec!["t1".into()]]);
        assert_eq!(
            partition(&lists, &t),
            vec![
                vec!["t5".to_owned()],
                vec!["t1".to_owned()],
                t[1..4].to_vec()
            ]
        );
    }
}
