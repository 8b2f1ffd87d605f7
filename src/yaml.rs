//! Every YAML file convoy reads (playbooks, inventories, group_vars,
//! host_vars, vars_files, `-e @file`) is parsed here, so that each one gets
//! the same located, bounded, human error messages, and the same decryption
//! of ansible-vault content (`crate::vault`).

use std::path::{Path, PathBuf};

use serde_saphyr::budget::BudgetBreach;

use crate::source::{SourceSpan, nearest};

/// A YAML parse error turned into a located, caret-pointed message.
#[derive(Debug, thiserror::Error)]
#[error("{message}\n{}", span.as_ref().map(SourceSpan::snippet).unwrap_or_else(|| format!("  --> {}", file.display())))]
pub struct YamlError {
    pub file: PathBuf,
    pub message: String,
    pub span: Option<SourceSpan>,
}

/// Messages longer than this (in characters) are cut: serde's messages may
/// quote a whole scalar, which can be huge (or a secret).
const MAX_MESSAGE: usize = 200;

/// YAML parsing options shared by every loader: Ansible users write
/// `mode: 0644` meaning octal, as YAML 1.1 did.
pub fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.legacy_octal_numbers = true;
    options
}

/// Parses YAML text into `T`, locating any error in `file`.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(file: &Path, text: &str) -> Result<T, YamlError> {
    let vault_error =
        |what: &str, e: crate::vault::VaultError, line: usize, column: usize| YamlError {
            file: file.to_owned(),
            message: format!("{what}: {e}"),
            span: Some(SourceSpan::new(file, line, column)),
        };
    // A file encrypted whole: its plaintext is the YAML.
    let decrypted;
    let text = if crate::vault::is_vaulted(text) {
        let line = text.lines().position(|l| !l.trim().is_empty()).unwrap_or(0) + 1;
        decrypted = crate::vault::decrypt(text)
            .map_err(|e| vault_error("this file is encrypted with ansible-vault", e, line, 1))?;
        decrypted.as_str()
    } else {
        text
    };
    let text = crate::vault::decrypt_inline_values(text)
        .map_err(|e| vault_error("a `!vault` value", e.error, e.line, e.column))?;
    let text = text.as_ref();
    let mut options = yaml_options();
    // serde-saphyr ignores tags it does not know: any `!vault` left (one
    // the event pass could not see) must not be read as a plain string.
    options.reject_unsupported_tags = text.contains("!vault");
    let typed = crate::yaml_scalars::as_ansible_reads(text);
    serde_saphyr::from_str_with_options(&typed, options).map_err(|e| yaml_error(file, &typed, &e))
}

fn yaml_error(file: &Path, text: &str, e: &serde_saphyr::Error) -> YamlError {
    let mut span = e
        .location()
        .and_then(|l| SourceSpan::from_location(file, &l));
    let message = match original(e) {
        serde_saphyr::Error::UnsupportedTag { tag, .. } if tag.contains("vault") => {
            span = span.map(|s| at_vault_tag(s, text));
            "a `!vault` value convoy could not read as one: write it as `key: !vault |` followed \
             by the ciphertext `ansible-vault encrypt_string` printed"
                .to_owned()
        }
        serde_saphyr::Error::Budget { breach, .. } => budget_message(breach).to_owned(),
        serde_saphyr::Error::AliasReplayLimitExceeded { .. }
        | serde_saphyr::Error::AliasExpansionLimitExceeded { .. }
        | serde_saphyr::Error::AliasReplayCounterOverflow { .. } => TOO_MANY_NODES.to_owned(),
        serde_saphyr::Error::AliasReplayStackDepthExceeded { .. } => {
            "YAML aliases nested too deeply".to_owned()
        }
        _ => serde_message(e),
    };
    YamlError {
        file: file.to_owned(),
        message: bounded(&message),
        span,
    }
}

/// The error itself, out of the wrappers serde-saphyr puts around it.
fn original(mut e: &serde_saphyr::Error) -> &serde_saphyr::Error {
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = e
    {
        e = error;
    }
    e
}

/// serde-saphyr locates a tagged block scalar at its first content line;
/// the operator looks for the `!vault` tag, on that line or just above.
fn at_vault_tag(span: SourceSpan, text: &str) -> SourceSpan {
    let lines: Vec<&str> = text.lines().collect();
    (1..=span.line.min(lines.len()))
        .rev()
        .take(3)
        .find_map(|line| {
            let column = lines[line - 1].find("!vault")?;
            Some(SourceSpan::new(&span.file, line, column + 1))
        })
        .unwrap_or(span)
}

/// An alias bomb (or a huge document): what the operator should look for.
const TOO_MANY_NODES: &str = "too many YAML nodes (aliases expanding?)";

/// What a breached YAML budget means, in the operator's words: the limits
/// are there to stop alias bombs and runaway nesting, so say which.
fn budget_message(breach: &BudgetBreach) -> &'static str {
    match breach {
        BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. } => TOO_MANY_NODES,
        BudgetBreach::Aliases { .. } | BudgetBreach::Anchors { .. } => {
            "too many YAML aliases or anchors"
        }
        BudgetBreach::Depth { .. } => "YAML nested too deeply",
        BudgetBreach::ScalarBytes { .. } => "too much YAML text in values",
        BudgetBreach::Documents { .. } => "too many YAML documents",
        _ => "this YAML is too large or too complex to read safely",
    }
}

/// serde-saphyr's own message, first line only, without its location prefix
/// (we print the location ourselves), in convoy's wording.
fn serde_message(e: &serde_saphyr::Error) -> String {
    let raw = e.without_snippet().to_string();
    let first = raw.lines().next().unwrap_or_default();
    // serde-saphyr prefixes "error: line L column C: ".
    let message = first
        .trim_start_matches("error: ")
        .split_once(": ")
        .filter(|(head, _)| head.starts_with("line "))
        .map(|(_, rest)| rest.to_owned())
        .unwrap_or_else(|| first.to_owned());
    friendlier(message.split(" at line ").next().unwrap_or(&message))
}

/// Cuts a message to [`MAX_MESSAGE`] characters.
fn bounded(message: &str) -> String {
    if message.chars().count() <= MAX_MESSAGE {
        return message.to_owned();
    }
    let mut cut: String = message.chars().take(MAX_MESSAGE).collect();
    cut.push('…');
    cut
}

/// Rewrites serde's wording into convoy's: "unknown key" with the nearest
/// valid key instead of the whole list, "a mapping" instead of parser events.
fn friendlier(message: &str) -> String {
    let unknown =
        regex::Regex::new(r"^unknown (?:field|variant) `([^`]*)`, expected (?:one of )?(.*)$")
            .expect("valid regex");
    if let Some(c) = unknown.captures(message) {
        let key = &c[1];
        let valid: Vec<&str> = c[2].split(", ").map(|k| k.trim_matches('`')).collect();
        return match nearest(key, valid.iter().copied()) {
            Some(near) => format!("unknown key `{key}` (did you mean `{near}`?)"),
            None => format!("unknown key `{key}` (valid keys: {})", valid.join(", ")),
        };
    }
    if message == "recursion limit exceeded" {
        return "YAML nested too deeply (recursion limit exceeded)".into();
    }
    message
        .replace("expected mapping start", "expected a mapping")
        .replace("expected sequence start", "expected a list")
        .replace("expected string scalar", "expected a string")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> YamlError {
        parse_yaml::<serde_json::Value>(Path::new("f.yml"), text).unwrap_err()
    }

    #[test]
    fn a_vault_value_that_cannot_be_decrypted_is_refused_at_its_tag() {
        // No password in unit tests: the error names the tag's line and column.
        let e = error("a: 1\npw: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6237\n");
        assert!(e.message.contains("vault"), "{}", e.message);
        assert_eq!(e.span.map(|s| (s.line, s.column)), Some((2, 5)));
    }

    #[test]
    fn a_vault_file_that_cannot_be_decrypted_is_refused_at_its_header() {
        let e = error("$ANSIBLE_VAULT;1.1;AES256\n62373130\n");
        assert!(e.message.contains("vault"), "{}", e.message);
        assert_eq!(e.span.map(|s| (s.line, s.column)), Some((1, 1)));
    }

    #[test]
    fn other_tags_are_still_accepted() {
        let v: serde_json::Value =
            parse_yaml(Path::new("f.yml"), "a: !!str 1\nb: !custom x\n").unwrap();
        assert_eq!((&v["a"], &v["b"]), (&"1".into(), &"x".into()));
    }

    /// `!unsafe` was refused at its tag until it was honoured: its value
    /// is now read as the marked text (`crate::template::unsafe_text`), its
    /// lines where they were.
    #[test]
    fn an_unsafe_value_is_read_marked() {
        let v: serde_json::Value = parse_yaml(
            Path::new("f.yml"),
            "a: 1\nb: !unsafe '{{ x }}'\nc: !unsafe |\n  {{ y }}\nd: 2\n",
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": 1, "b": {"__ansible_unsafe": "{{ x }}"},
                "c": {"__ansible_unsafe": "{{ y }}\n"}, "d": 2})
        );
        // An error below it is on the line it is without the tag.
        let tagged = error("a: !unsafe |\n  x\n  y\nb: [1, }\n");
        let untagged = error("a: |\n  x\n  y\nb: [1, }\n");
        assert_eq!(tagged.span.map(|s| s.line), Some(4));
        assert_eq!(untagged.span.map(|s| s.line), Some(4));
    }

    #[test]
    fn an_alias_bomb_says_so() {
        let mut text = "a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n".to_owned();
        for i in 1..9 {
            let refs = vec![format!("*a{}", i - 1); 10].join(",");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let e = error(&text);
        assert_eq!(e.message, "too many YAML nodes (aliases expanding?)");
        assert!(e.span.is_some());
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let text = format!("x: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let e = error(&text);
        assert!(e.message.contains("nested too deeply"), "{}", e.message);
        assert!(e.message.chars().count() <= MAX_MESSAGE + 1);
    }
}
