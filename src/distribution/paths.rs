//! What a distribution's names and paths may be, checked per host once
//! they are rendered and before the first connection.
//!
//! Quoting makes any value safe to hand to a host's shell; these rules
//! refuse what could never be a valid layout: a root that is not one clean
//! absolute path, a version or name that is not one path component, shared
//! paths and release files that would leave the release. No rule allows a
//! control character: the host scripts speak in lines.

/// Characters a version may hold (it names a directory and appears in
/// `current`'s link, the history and the journal).
fn version_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._+-".contains(c)
}

/// `root`: absolute, normalized (no `.`, `..` or empty components; one
/// trailing `/` is dropped), not `/` itself, no component starting with
/// `-`, no control characters. Returns the root without the trailing `/`.
pub fn root(root: &str) -> Result<String, String> {
    let trimmed = root.strip_suffix('/').unwrap_or(root);
    let refuse = |why: &str| Err(format!("root {root:?} {why}"));
    if !trimmed.starts_with('/') || trimmed.is_empty() {
        return refuse("must be an absolute path other than /");
    }
    if root.chars().any(char::is_control) {
        return refuse("must not hold control characters (a newline, a tab)");
    }
    for part in trimmed[1..].split('/') {
        match part {
            "" => return refuse("must be a clean path (no `//`)"),
            "." | ".." => return refuse("must be a clean path (no `.` or `..` components)"),
            p if p.starts_with('-') => {
                return refuse("must not have a component starting with `-`");
            }
            _ => {}
        }
    }
    Ok(trimmed.to_owned())
}

/// `version`: one path component of letters, digits and `. _ + -`, not
/// starting with `.` or `-`.
pub fn version(version: &str) -> Result<(), String> {
    if version.is_empty()
        || version.starts_with('.')
        || version.starts_with('-')
        || !version.chars().all(version_char)
    {
        return Err(format!(
            "version {version:?} may only hold letters, digits and . _ + - (and not start with . or -)"
        ));
    }
    Ok(())
}

/// `name`: one path component (no `/`, not `.` or `..`, not starting with
/// `-`), no control characters.
pub fn name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.starts_with('-')
        || name.contains('/')
        || name.chars().any(char::is_control)
    {
        return Err(format!(
            "distribution name {name:?} must be one path component (no `/`, not `.` or `..`, not starting with `-`, no control characters)"
        ));
    }
    Ok(())
}

/// A path inside the release (`what` is `shared path` or `template dest`):
/// relative, normalized (no `.`, `..` or empty components), no control
/// characters. Quotes, `$` and spaces are data like any other.
pub fn inside_release(what: &str, path: &str) -> Result<(), String> {
    let refuse = |why: &str| Err(format!("{what} {path:?} {why}"));
    if path.is_empty() || path.starts_with('/') {
        return refuse("must be a relative path inside the release");
    }
    if path.chars().any(char::is_control) {
        return refuse("must not hold control characters (a newline, a tab)");
    }
    for part in path.split('/') {
        match part {
            ".." => return refuse("must stay inside the release (no `..`)"),
            "" | "." => return refuse("must be a clean path (no `//`, `.` or trailing `/`)"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_is_one_clean_absolute_path() {
        assert_eq!(root("/srv/shop/").as_deref(), Ok("/srv/shop"));
        assert_eq!(root("/srv/my shop").as_deref(), Ok("/srv/my shop"));
        assert_eq!(root("/srv/$(x)").as_deref(), Ok("/srv/$(x)"));
        for bad in [
            "",
            "/",
            "srv",
            "/srv//shop",
            "/srv/../etc",
            "/srv/./x",
            "/srv/x\n/y",
            "/srv/-x",
            "/srv/x//",
        ] {
            assert!(root(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_version_is_one_plain_component() {
        assert!(version("2.4.1+patch.1").is_ok());
        for bad in ["", ".x", "-rf", "1/2", "..", "$(touch x)", "a b", "1\n2"] {
            assert!(version(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_name_is_one_component() {
        assert!(name("shop").is_ok());
        assert!(name("my shop").is_ok());
        for bad in ["", ".", "..", "a/b", "-x", "a\nb"] {
            assert!(name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn release_paths_stay_inside() {
        assert!(inside_release("shared path", "log").is_ok());
        assert!(inside_release("shared path", "var/it's \"here\"").is_ok());
        for bad in ["", "/etc", "../x", "a/../../x", "a//b", "a/", "./a", "a\nb"] {
            assert!(
                inside_release("shared path", bad).is_err(),
                "{bad:?} accepted"
            );
        }
    }
}
