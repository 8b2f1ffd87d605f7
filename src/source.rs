//! Where a piece of input came from, and how to point at it.
//!
//! Every bad-input error in convoy names `file:line:column` and shows the
//! offending line with a caret, so the operator fixes the right spot at once.

use std::fmt;
use std::path::{Path, PathBuf};

/// A position inside one input file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpan {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl SourceSpan {
    pub fn new(file: impl Into<PathBuf>, line: usize, column: usize) -> Self {
        Self {
            file: file.into(),
            line,
            column,
        }
    }

    /// Builds a span from a serde-saphyr location, if it carries one.
    pub fn from_location(file: &Path, location: &serde_saphyr::Location) -> Option<Self> {
        (location.line() > 0)
            .then(|| Self::new(file, location.line() as usize, location.column() as usize))
    }

    /// The `--> file:line:col`, source line and caret block shown under a message.
    pub fn snippet(&self) -> String {
        let mut out = format!("  --> {self}");
        if let Some(text) = std::fs::read_to_string(&self.file).ok().and_then(|s| {
            s.lines()
                .nth(self.line.saturating_sub(1))
                .map(str::to_owned)
        }) {
            let gutter = self.line.to_string();
            let pad = " ".repeat(gutter.len());
            let caret_pad: String = text
                .chars()
                .take(self.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!(
                "\n {pad} |\n {gutter} | {text}\n {pad} | {caret_pad}^"
            ));
        }
        out
    }
}

impl fmt::Display for SourceSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Suggests the closest of `candidates` to a misspelt `word`, if one is close.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A YAML parse error turned into a located, caret-pointed message.
#[derive(Debug, thiserror::Error)]
#[error("{message}\n{}", span.as_ref().map(SourceSpan::snippet).unwrap_or_else(|| format!("  --> {}", file.display())))]
pub struct YamlError {
    pub file: PathBuf,
    pub message: String,
    pub span: Option<SourceSpan>,
}

/// YAML parsing options shared by every loader: Ansible users write
/// `mode: 0644` meaning octal, as YAML 1.1 did.
pub fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.legacy_octal_numbers = true;
    options
}

/// Parses YAML text into `T`, locating any error in `file`.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(file: &Path, text: &str) -> Result<T, YamlError> {
    serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| {
        let span = e
            .location()
            .and_then(|l| SourceSpan::from_location(file, &l));
        let raw = e.without_snippet().to_string();
        let first = raw.lines().next().unwrap_or_default();
        // serde-saphyr prefixes "error: line L column C: "; we print the location ourselves.
        let message = first
            .trim_start_matches("error: ")
            .split_once(": ")
            .filter(|(head, _)| head.starts_with("line "))
            .map(|(_, rest)| rest.to_owned())
            .unwrap_or_else(|| first.to_owned());
        let message = friendlier(message.split(" at line ").next().unwrap_or(&message));
        YamlError {
            file: file.to_owned(),
            message,
            span,
        }
    })
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
    message
        .replace("expected mapping start", "expected a mapping")
        .replace("expected sequence start", "expected a list")
        .replace("expected string scalar", "expected a string")
}
