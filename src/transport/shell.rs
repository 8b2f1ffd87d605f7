//! Shell scripts built so that no value can become code.
//!
//! convoy sends shell scripts to its hosts, often under sudo. A script's
//! *code* comes only from `&'static str`, text written in convoy's own
//! source; every *value* (a root, a version, a path, a host name, a holder
//! string, anything from a playbook, an inventory or the command line)
//! enters through [`ShellScript::var`] (a shell variable assigned one quoted
//! word), [`ShellScript::call`] (a call of a function the script defined,
//! each argument one quoted word) or [`ShellScript::args`] (the positional
//! parameters). Since a `String` is not a `&'static str`, a value formatted
//! into code does not compile: the unsafe form cannot be written.
//!
//! Messages the scripts print refer to shell variables (`"cannot create
//! $R"`), never to values spliced into the text.
//!
//! The one deliberate exception is the user's own shell code (a `shell:`
//! task, a health `command:`, `convoy exec`): [`ShellScript::user_code`]
//! takes it and says so at the call site.

use std::fmt;

/// A shell script under construction; see the module documentation.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ShellScript {
    text: String,
}

impl ShellScript {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends code written in convoy's source.
    pub fn code(mut self, code: &'static str) -> Self {
        self.push(code);
        self
    }

    /// Appends code written in convoy's source (in place, for loops and branches).
    pub fn push(&mut self, code: &'static str) -> &mut Self {
        self.text.push_str(code);
        if !code.ends_with('\n') {
            self.text.push('\n');
        }
        self
    }

    /// Appends code written in convoy's source without ending the line:
    /// for lines put together from a few constant pieces (`chown`, then
    /// `-R ` or not, then the target variable).
    pub fn fragment(mut self, code: &'static str) -> Self {
        self.text.push_str(code);
        self
    }

    /// Defines the shell function `convoy_sha256 FILE...`, which prints
    /// `HASH  FILE` for each file with whatever tool the host has
    /// (sha256sum, `shasum -a 256`, `openssl dgst`, busybox) and fails
    /// naming the missing tool when it has none: a host without
    /// `sha256sum` must not look like a checksum mismatch. Also defines
    /// `convoy_sha256_of FILE`, which prints the hash alone.
    pub fn sha256_function(self) -> Self {
        self.code(SHA256_FUNCTION)
    }

    /// Assigns a path to `name` as Ansible reads it: a leading `~` is the
    /// (target) user's home on the host, the rest is quoted.
    pub fn path_var(mut self, name: &'static str, path: &str) -> Self {
        assert!(is_name(name), "not a shell variable name: {name:?}");
        let rest = match path {
            "~" => Some(""),
            _ => path.strip_prefix("~/"),
        };
        match rest {
            Some(rest) => {
                self.text.push_str(name);
                self.text.push_str("=\"$HOME\"");
                if !rest.is_empty() {
                    self.text.push('/');
                    self.text.push_str(&quote(rest));
                }
                self.text.push('\n');
            }
            None => {
                self.set(name, path);
            }
        }
        self
    }

    /// Assigns `value`, quoted, to the shell variable `name`.
    pub fn var(mut self, name: &'static str, value: impl AsRef<str>) -> Self {
        self.set(name, value);
        self
    }

    /// Assigns `1` or `0` to the shell variable `name`: a yes/no the
    /// script tests with `[ "$NAME" = 1 ]`.
    pub fn flag(self, name: &'static str, yes: bool) -> Self {
        self.var(name, if yes { "1" } else { "0" })
    }

    /// Assigns `value`, quoted, to the shell variable `name` (in place).
    pub fn set(&mut self, name: &'static str, value: impl AsRef<str>) -> &mut Self {
        assert!(is_name(name), "not a shell variable name: {name:?}");
        self.text.push_str(name);
        self.text.push('=');
        self.text.push_str(&quote(value.as_ref()));
        self.text.push('\n');
        self
    }

    /// Whether `name` can name a shell variable (one a task's
    /// `environment:` may set, see `Script::env`).
    pub fn is_variable_name(name: &str) -> bool {
        is_name(name)
    }

    /// Calls `function` (defined by the script's own code) with each of
    /// `args` as one quoted word.
    pub fn call<I, S>(mut self, function: &'static str, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.push_call(function, args);
        self
    }

    /// [`ShellScript::call`], in place.
    pub fn push_call<I, S>(&mut self, function: &'static str, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        assert!(is_name(function), "not a shell function name: {function:?}");
        self.text.push_str(function);
        for arg in args {
            self.text.push(' ');
            self.text.push_str(&quote(arg.as_ref()));
        }
        self.text.push('\n');
        self
    }

    /// Sets the positional parameters (`"$@"`, `$1`…) to `values`, each one quoted word.
    pub fn args<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.text.push_str("set --");
        for v in values {
            self.text.push(' ');
            self.text.push_str(&quote(v.as_ref()));
        }
        self.text.push('\n');
        self
    }

    /// Appends the user's own shell code, as the user wrote it: a `shell:`
    /// task, a hook's command, a health `command:`, `convoy exec`. This is
    /// the only way text that is not convoy's enters a script as code.
    pub fn user_code(mut self, code: &str) -> Self {
        self.text.push_str(code);
        self.text.push('\n');
        self
    }

    /// Appends another script built the same way.
    pub fn then(mut self, other: &ShellScript) -> Self {
        self.text.push_str(&other.text);
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

impl fmt::Debug for ShellScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// See [`ShellScript::sha256_function`]. `convoy_sha256_of` (one file:
/// artifacts, tens of MB) prefers `openssl dgst`: OpenSSL's SHA-256 uses
/// the CPU's SHA instructions, coreutils' does not (about 5x the CPU for
/// a 20 MB artifact). Names are read from the
/// arguments, contents from stdin for the fallbacks (no tool there takes
/// `--` reliably). GNU sha256sum marks a name holding a backslash or a
/// newline with a leading `\\`, which callers strip.
const SHA256_FUNCTION: &str = r#"convoy_sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum -- "$@"; return; fi
  if command -v shasum >/dev/null 2>&1; then convoy_tool='shasum -a 256'
  elif command -v openssl >/dev/null 2>&1; then convoy_tool='openssl dgst -sha256 -r'
  elif command -v busybox >/dev/null 2>&1 && busybox sha256sum </dev/null >/dev/null 2>&1; then convoy_tool='busybox sha256sum'
  else echo "no sha256 tool on this host (looked for sha256sum, shasum, openssl, busybox)" >&2; return 127
  fi
  for convoy_f in "$@"; do
    convoy_h=$($convoy_tool < "$convoy_f") || return 1
    printf '%s  %s\n' "${convoy_h%% *}" "$convoy_f"
  done
}
convoy_sha256_of() {
  if command -v openssl >/dev/null 2>&1; then
    convoy_h=$(openssl dgst -sha256 -r < "$1") && [ -n "$convoy_h" ] || return 1
    printf '%s\n' "${convoy_h%% *}"; return
  fi
  convoy_line=$(convoy_sha256 "$1") || return
  convoy_line=${convoy_line#\\}
  printf '%s\n' "${convoy_line%% *}"
}
"#;

/// POSIX shell quoting for one word. A NUL cannot be passed to a shell at
/// all; it is dropped rather than cutting the word short.
pub fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b))
    {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\0', "").replace('\'', "'\\''"))
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `script` in `sh` and returns its stdout.
    fn run(script: &ShellScript) -> String {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script.text())
            .output()
            .expect("sh runs");
        String::from_utf8(out.stdout).expect("utf-8")
    }

    #[test]
    fn a_flag_is_one_or_zero() {
        let s = ShellScript::new()
            .flag("A", true)
            .flag("B", false)
            .code("printf '%s%s' \"$A\" \"$B\"");
        assert_eq!(run(&s), "10");
    }

    const HOSTILE: &[&str] = &[
        "$(touch /tmp/convoy-pwned)",
        "`touch /tmp/convoy-pwned`",
        "a; touch /tmp/convoy-pwned",
        "it's",
        "say \"hi\"",
        "two\nlines",
        "-n",
        "with space",
        "*",
        "",
        "back\\slash",
        "${HOME}",
    ];

    #[test]
    fn a_variable_holds_the_value_exactly() {
        for value in HOSTILE {
            let script = ShellScript::new()
                .var("X", value)
                .code("printf '%s' \"$X\"");
            assert_eq!(run(&script), *value, "script: {script:?}");
        }
    }

    #[test]
    fn call_arguments_are_one_word_each() {
        let script = ShellScript::new()
            .code("show() { printf '%s|' \"$#\" \"$@\"; }")
            .call("show", HOSTILE.iter());
        let expected: String = std::iter::once(HOSTILE.len().to_string())
            .chain(HOSTILE.iter().map(|s| s.to_string()))
            .map(|s| format!("{s}|"))
            .collect();
        assert_eq!(run(&script), expected);
    }

    #[test]
    fn positional_parameters_are_one_word_each() {
        let script = ShellScript::new()
            .args(HOSTILE.iter())
            .code("for a in \"$@\"; do printf '<%s>' \"$a\"; done");
        let expected: String = HOSTILE.iter().map(|s| format!("<{s}>")).collect();
        assert_eq!(run(&script), expected);
    }

    #[test]
    fn a_tilde_path_is_the_home_on_the_host() {
        let home = std::env::var("HOME").unwrap_or_default();
        for (path, want) in [
            ("~/.ssh", format!("{home}/.ssh")),
            ("~", home.clone()),
            ("~/$(x) y", format!("{home}/$(x) y")),
            ("/a b", "/a b".to_owned()),
            ("~user", "~user".to_owned()),
        ] {
            let script = ShellScript::new()
                .path_var("p", path)
                .code("printf '%s' \"$p\"");
            assert_eq!(run(&script), want, "path {path:?}");
        }
    }

    /// The hash of `file` by `convoy_sha256_of` on a host whose PATH
    /// holds only `tools`: (status, stdout, stderr).
    fn hash_with(tools: &[&str], file: &std::path::Path) -> (i32, String, String) {
        let bin = tempfile::tempdir().unwrap();
        for tool in tools {
            let real = ["/usr/bin", "/bin"]
                .iter()
                .map(|d| std::path::Path::new(d).join(tool))
                .find(|p| p.exists())
                .unwrap_or_else(|| panic!("{tool} is not installed"));
            std::os::unix::fs::symlink(real, bin.path().join(tool)).unwrap();
        }
        let script = ShellScript::new()
            .sha256_function()
            .var("F", file.display().to_string())
            .code("convoy_sha256_of \"$F\"");
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script.text())
            .env("PATH", bin.path())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        )
    }

    #[test]
    fn hashing_falls_back_and_says_when_no_tool_exists() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("-a file with\na newline");
        std::fs::write(&file, "hello\n").unwrap();
        let want = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        for tools in [&["sha256sum"][..], &["shasum", "perl"], &["openssl"]] {
            assert_eq!(
                hash_with(tools, &file),
                (0, want.to_owned(), String::new()),
                "with {tools:?}"
            );
        }
        let (status, stdout, stderr) = hash_with(&[], &file);
        assert_ne!(status, 0);
        assert_eq!(stdout, "");
        assert_eq!(
            stderr,
            "no sha256 tool on this host (looked for sha256sum, shasum, openssl, busybox)"
        );
    }

    #[test]
    fn a_nul_is_dropped_not_a_cut() {
        let script = ShellScript::new()
            .var("X", "a\0b")
            .code("printf '%s' \"$X\"");
        assert_eq!(run(&script), "ab");
    }

    #[test]
    #[should_panic(expected = "not a shell variable name")]
    fn a_variable_name_is_checked() {
        let _ = ShellScript::new().var("X; rm", "v");
    }
}
