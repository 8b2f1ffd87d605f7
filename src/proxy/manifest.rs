//! The manifest: on each proxy host, the list of files a play's proxy
//! section installed there. It is what makes pruning safe: a file is removed
//! because convoy installed it for this play and no longer renders it, never
//! because of where it lives (a conf.d holds files from packages, people and
//! other plays).
//!
//! Location: `$convoy_proxy_state_dir/<play-slug>-<hash>.manifest`, the
//! state dir defaulting to `/var/lib/convoy/proxy`; the hash (of the play's
//! name) keeps two plays with similar names apart, the slug keeps the file
//! recognisable. One absolute path per line, sorted; `#` lines are comments.

use sha2::{Digest, Sha256};

use crate::vars::{Value, VarMap};

/// Where manifests live unless `convoy_proxy_state_dir` says otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/convoy/proxy";

/// The manifest path of `play` on a proxy host with variables `vars`.
pub fn path(vars: &VarMap, play: &str) -> String {
    let dir = match vars.get("convoy_proxy_state_dir") {
        Some(Value::String(dir)) if !dir.is_empty() => dir.trim_end_matches('/'),
        _ => DEFAULT_STATE_DIR,
    };
    let mut slug = String::new();
    for c in play.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(40).collect();
    let hash = hex::encode(&Sha256::digest(play.as_bytes())[..6]);
    format!(
        "{dir}/{}{hash}.manifest",
        if slug.is_empty() {
            String::new()
        } else {
            format!("{slug}-")
        }
    )
}

/// The manifest's text for `dests`.
pub fn format<'a>(play: &str, dests: impl IntoIterator<Item = &'a str>) -> String {
    let mut dests: Vec<&str> = dests.into_iter().collect();
    dests.sort_unstable();
    dests.dedup();
    let mut text = format!("# proxy files installed by convoy for play {play:?}; do not edit\n");
    for dest in dests {
        text.push_str(dest);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_named_after_the_play_in_the_state_dir() {
        let mut vars = VarMap::new();
        let path = path(&vars, "Deploy shop (EU)!");
        assert!(
            path.starts_with("/var/lib/convoy/proxy/deploy-shop-eu-"),
            "{path}"
        );
        assert!(path.ends_with(".manifest"), "{path}");
        vars.insert("convoy_proxy_state_dir".into(), "/srv/state/".into());
        let other = super::path(&vars, "Deploy shop (EU)?");
        assert!(other.starts_with("/srv/state/deploy-shop-eu-"), "{other}");
        // Same slug, different names: different manifests.
        assert_ne!(path.rsplit('/').next(), other.rsplit('/').next());
    }

    #[test]
    fn manifests_list_each_path_once_sorted() {
        assert_eq!(
            format("p", ["/b", "/a", "/b"]),
            "# proxy files installed by convoy for play \"p\"; do not edit\n/a\n/b\n"
        );
    }
}
