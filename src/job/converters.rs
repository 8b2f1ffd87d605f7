//! Versioned converters: per-target data conversions written for a range of
//! data versions, as a release's migrations are.
//!
//! A converter's range is a half-open semver interval `>=A, <B` (the
//! form migrations use). Only that form is accepted: with it, "does a
//! target going from version F to version T pass through this range?" has
//! one answer, and two ranges either overlap or not, so an order that
//! depends on how overlapping ranges were written is refused at load.

use semver::{Comparator, Op, Version, VersionReq};

/// `[lower, upper)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRange {
    pub lower: Version,
    pub upper: Version,
    /// As written, for messages and records.
    pub text: String,
}

/// A version as operators write it: `2`, `2.0` and `2.0.0` are the same.
pub fn loose_version(text: &str) -> Result<Version, String> {
    let t = text.trim();
    let padded = match t.split(['-', '+']).next().unwrap_or(t).matches('.').count() {
        0 => format!("{t}.0.0"),
        1 => format!("{t}.0"),
        _ => t.to_owned(),
    };
    Version::parse(&padded).map_err(|e| format!("{text:?} is not a version (like \"2.0.0\"): {e}"))
}

impl VersionRange {
    pub fn parse(text: &str) -> Result<VersionRange, String> {
        let req = VersionReq::parse(text).map_err(|e| {
            format!("{text:?} is not a semver range (like \">=1.5.0, <2.0.0\"): {e}")
        })?;
        let bound =
            |c: &Comparator| Version::new(c.major, c.minor.unwrap_or(0), c.patch.unwrap_or(0));
        let (mut lower, mut upper) = (None, None);
        for c in &req.comparators {
            let slot = match c.op {
                Op::GreaterEq => &mut lower,
                Op::Less => &mut upper,
                op => {
                    return Err(format!(
                        "{text:?}: a converter's range is written `>=A, <B` (the versions it was written for), not with `{}`",
                        op_text(op)
                    ));
                }
            };
            if slot.replace(bound(c)).is_some() {
                return Err(format!(
                    "{text:?}: a converter's range has one `>=` and one `<`"
                ));
            }
        }
        match (lower, upper) {
            (Some(lower), Some(upper)) if lower < upper => Ok(VersionRange {
                lower,
                upper,
                text: text.to_owned(),
            }),
            (Some(_), Some(_)) => Err(format!("{text:?} is an empty range")),
            _ => Err(format!(
                "{text:?}: a converter's range is written `>=A, <B`, with both bounds"
            )),
        }
    }

    pub fn contains(&self, v: &Version) -> bool {
        self.lower <= *v && *v < self.upper
    }

    /// Data going from `from` to `to` enters this range: some version of
    /// it lies in `(from, to]` and `from` is not already in it.
    pub fn crossed(&self, from: &Version, to: &Version) -> bool {
        from < to && !self.contains(from) && self.lower <= *to && self.upper > *from
    }

    pub fn overlaps(&self, other: &VersionRange) -> bool {
        self.lower < other.upper && other.lower < self.upper
    }
}

fn op_text(op: Op) -> &'static str {
    match op {
        Op::Exact => "=",
        Op::Greater => ">",
        Op::GreaterEq => ">=",
        Op::Less => "<",
        Op::LessEq => "<=",
        Op::Tilde => "~",
        Op::Caret => "^",
        Op::Wildcard => "*",
        _ => "this operator",
    }
}

/// One converter of a job.
#[derive(Debug, Clone)]
pub struct Converter {
    /// Names it in output and in the target's step records.
    pub name: String,
    pub versions: VersionRange,
    /// A shell command (a template; `{{ target }}` is the target).
    pub run: String,
}

/// The converters (in range order) a target at `from` runs to reach `to`.
pub fn due<'a>(converters: &'a [Converter], from: &Version, to: &Version) -> Vec<&'a Converter> {
    converters
        .iter()
        .filter(|c| c.versions.crossed(from, to))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        loose_version(s).unwrap()
    }

    #[test]
    fn ranges_are_half_open_intervals() {
        let r = VersionRange::parse(">=1.5, <2.0").unwrap();
        assert_eq!((r.lower.clone(), r.upper.clone()), (v("1.5"), v("2.0")));
        for bad in [
            "^1.5",
            ">=1.5",
            "<2.0",
            ">1.5, <2",
            ">=2.0, <1.0",
            "1.x.y",
            "=1.5",
        ] {
            assert!(VersionRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn converters_run_for_the_ranges_a_target_crosses() {
        let conv = |r: &str| Converter {
            name: r.into(),
            versions: VersionRange::parse(r).unwrap(),
            run: String::new(),
        };
        let all = [
            conv(">=1.5, <2.0"),
            conv(">=2.0, <2.1"),
            conv(">=3.0, <4.0"),
        ];
        let names = |from: &str, to: &str| -> Vec<String> {
            due(&all, &v(from), &v(to))
                .iter()
                .map(|c| c.name.clone())
                .collect()
        };
        assert_eq!(names("1.0", "2.0"), [">=1.5, <2.0", ">=2.0, <2.1"]);
        assert_eq!(names("1.6", "2.0"), [">=2.0, <2.1"]);
        assert!(names("2.0", "2.0").is_empty());
        assert_eq!(names("1.0", "1.5"), [">=1.5, <2.0"]);
        assert!(names("1.0", "1.4").is_empty());
    }

    #[test]
    fn overlap() {
        let a = VersionRange::parse(">=1.5, <2.0").unwrap();
        let b = VersionRange::parse(">=2.0, <2.1").unwrap();
        let c = VersionRange::parse(">=1.9, <2.5").unwrap();
        assert!(!a.overlaps(&b));
        assert!(a.overlaps(&c) && c.overlaps(&b));
    }
}
