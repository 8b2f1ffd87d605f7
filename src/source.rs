//! Where a piece of input came from, and how to point at it.
//!
//! Every bad-input error in convoy names `file:line:column` and shows the
//! offending line with a caret, so the operator fixes the right spot at once.

use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::yaml::{YamlError, parse_yaml};

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
            let (text, caret) = excerpt(&text, self.column);
            let gutter = self.line.to_string();
            let pad = " ".repeat(gutter.len());
            let caret_pad: String = text
                .chars()
                .take(caret)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!(
                "\n {pad} |\n {gutter} | {text}\n {pad} | {caret_pad}^"
            ));
        }
        out
    }
}

/// Source lines longer than this (in characters) are cut around the column:
/// an error must never echo a 200 KB line (minified JSON, a deep flow value).
const MAX_EXCERPT: usize = 100;

/// The part of `line` shown under a message, and the caret's offset in it
/// (in characters): the whole line when short, else a window around the
/// 1-based `column` with `…` where it was cut.
fn excerpt(line: &str, column: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    let at = column.saturating_sub(1).min(chars.len());
    if chars.len() <= MAX_EXCERPT {
        return (line.to_owned(), at);
    }
    let start = at
        .saturating_sub(MAX_EXCERPT / 2)
        .min(chars.len() - MAX_EXCERPT);
    let end = start + MAX_EXCERPT;
    let mut text = String::new();
    if start > 0 {
        text.push('…');
    }
    text.extend(&chars[start..end]);
    if end < chars.len() {
        text.push('…');
    }
    (text, at - start + usize::from(start > 0))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_is_cut_around_the_column() {
        let line = format!("{}X{}", "a".repeat(5000), "b".repeat(5000));
        let (text, caret) = excerpt(&line, 5001);
        assert!(text.chars().count() <= MAX_EXCERPT + 2, "{text}");
        assert_eq!(text.chars().nth(caret), Some('X'));
        assert!(text.starts_with('…') && text.ends_with('…'));
        let (text, caret) = excerpt(&line, 1);
        assert_eq!((text.chars().next(), caret), (Some('a'), 0));
        assert_eq!(excerpt("short", 3), ("short".to_owned(), 2));
    }
}
