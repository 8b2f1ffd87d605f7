//! The traffic state as each proxy host records it, beside the play's
//! manifest (`<manifest>.traffic` in `convoy_proxy_state_dir`). It is
//! installed as one more proxy file, so it changes in the same install as
//! the config it describes: a config the proxy rejects leaves the old
//! record with the old files.
//!
//! ```text
//! # traffic of play "Deploy hello", kept by convoy; do not edit
//! live green
//! pool blue 0 1.0.0
//! pool green 100 2.0.0
//! ```
//!
//! and during a targeted step a `target POOL clients|routes ITEM...` or
//! `target POOL header|cookie NAME VALUE...` line; with tenant routing, one
//! `tenant NAME done|in_progress|pending` line per tenant the map names.

use super::TrafficState;
use super::target::Target;
use super::tenants::{TenantState, invalid_name};

/// Where the record of the play whose manifest is `manifest` lives.
pub fn path(manifest: &str) -> String {
    let stem = manifest.strip_suffix(".manifest").unwrap_or(manifest);
    format!("{stem}.traffic")
}

pub fn format(play: &str, state: &TrafficState) -> String {
    let mut text = format!(
        "# traffic of play {play:?}, kept by convoy; do not edit\nlive {}\n",
        state.live
    );
    for (name, p) in &state.pools {
        text.push_str(&format!(
            "pool {name} {}{}\n",
            p.share,
            p.version
                .as_ref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default()
        ));
    }
    if let Some((pool, t)) = &state.target {
        text.push_str(&format!("target {pool} {t}\n"));
    }
    for (name, s) in state.tenants.iter().flat_map(|t| &t.states) {
        text.push_str(&format!("tenant {name} {}\n", s.key()));
    }
    text
}

/// Reads a record onto `state` (the declared one, which gives the pools'
/// hosts): the live pool, each known pool's share and version. Pools the
/// record names and the playbook no longer declares are ignored; a record
/// whose live pool is not declared any more is refused.
pub fn apply(text: &str, state: &mut TrafficState) -> Result<(), String> {
    let mut live = None;
    let mut shares = Vec::new();
    let mut target = None;
    let mut tenants = Vec::new();
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match words.next() {
            None => {}
            Some(w) if w.starts_with('#') => {}
            Some("live") => live = words.next().map(str::to_owned),
            Some("pool") => {
                let (Some(name), Some(share)) = (words.next(), words.next()) else {
                    return Err(format!("unreadable line {line:?}"));
                };
                let share: u8 = share
                    .parse()
                    .ok()
                    .filter(|s| *s <= 100)
                    .ok_or_else(|| format!("unreadable share in {line:?}"))?;
                shares.push((name.to_owned(), share, words.next().map(str::to_owned)));
            }
            Some("target") => {
                let (Some(pool), Some(kind)) = (words.next(), words.next()) else {
                    return Err(format!("unreadable line {line:?}"));
                };
                let items: Vec<String> = words.map(str::to_owned).collect();
                let Some(t) = Target::from_items(kind, items) else {
                    return Err(format!("unreadable line {line:?}"));
                };
                target = Some((pool.to_owned(), t));
            }
            Some("tenant") => {
                // The name goes back into the proxy config: checked as at load.
                let name = words.next().filter(|n| invalid_name(n).is_none());
                let state = words.next().and_then(TenantState::from_key);
                let (Some(name), Some(state)) = (name, state) else {
                    return Err(format!("unreadable line {line:?}"));
                };
                tenants.push((name.to_owned(), state));
            }
            Some(_) => return Err(format!("unreadable line {line:?}")),
        }
    }
    let live = live.ok_or("no `live` line")?;
    if !state.pools.contains_key(&live) {
        return Err(format!(
            "its live pool `{live}` is not one of the playbook's pools"
        ));
    }
    state.live = live;
    state.target = target.filter(|(pool, _)| state.pools.contains_key(pool));
    // Tenants follow the record (a job published them); a section that
    // routes no tenants any more ignores them.
    if let Some(map) = &mut state.tenants {
        for (name, s) in tenants {
            map.states.insert(name, s);
        }
    }
    for (name, share, version) in shares {
        if let Some(p) = state.pools.get_mut(&name) {
            p.share = share;
            p.version = version;
        }
    }
    let total: u32 = state.pools.values().map(|p| u32::from(p.share)).sum();
    if total != 100 {
        return Err(format!("its shares add up to {total}%, not 100%"));
    }
    Ok(())
}

/// Where traffic goes, from each proxy host's record (`None`: none yet,
/// then `declared` holds for it): what they all agree on, else an error
/// naming two hosts that differ.
pub fn agreed(
    declared: &TrafficState,
    records: Vec<(String, Option<String>)>,
) -> Result<TrafficState, String> {
    let mut found: Option<(String, TrafficState)> = None;
    for (host, text) in records {
        let mut state = declared.clone();
        if let Some(text) = text {
            apply(&text, &mut state).map_err(|why| {
                format!("the traffic record on proxy host {host} cannot be used: {why}")
            })?;
        }
        match &found {
            Some((first, s)) if *s != state => {
                return Err(format!(
                    "the proxy hosts disagree on where traffic goes: {first} has {}, {host} has {}",
                    s.summary(),
                    state.summary()
                ));
            }
            Some(_) => {}
            None => found = Some((host, state)),
        }
    }
    Ok(found.map_or_else(|| declared.clone(), |(_, s)| s))
}

#[cfg(test)]
mod tests {
    use super::super::state::PoolState;
    use super::*;

    fn state() -> TrafficState {
        let mut pools = indexmap::IndexMap::new();
        pools.insert(
            "blue".into(),
            PoolState {
                share: 100,
                ..PoolState::default()
            },
        );
        pools.insert("green".into(), PoolState::default());
        TrafficState {
            live: "blue".into(),
            pools,
            target: None,
            tenants: None,
        }
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let mut s = state();
        s.pools["blue"].version = Some("1.0.0".into());
        s.pools["green"].version = Some("2.0.0".into());
        s.set_share("green", 10);
        let text = format("p", &s);
        let mut back = state();
        apply(&text, &mut back).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.live, "blue");
        s.set_target("green", Target::Routes(vec!["^/api".into(), "^/p".into()]));
        let mut back = state();
        apply(&format("p", &s), &mut back).unwrap();
        assert_eq!(back, s);
        for t in [
            Target::Header {
                name: "X-Canary".into(),
                values: vec!["1".into(), "yes".into()],
            },
            Target::Cookie {
                name: "canary".into(),
                values: vec!["beta".into()],
            },
        ] {
            s.set_target("green", t);
            let mut back = state();
            apply(&format("p", &s), &mut back).unwrap();
            assert_eq!(back, s);
        }
        s.set_share("green", 100);
        apply(&format("p", &s), &mut back).unwrap();
        assert_eq!(back.live, "green");
        assert_eq!(back.pools["blue"].share, 0);
    }

    #[test]
    fn a_record_naming_an_undeclared_live_pool_is_refused() {
        let mut s = state();
        let err = apply("live red\npool red 100\n", &mut s).unwrap_err();
        assert!(err.contains("`red`"), "{err}");
        let err = apply("live blue\npool blue 50\n", &mut s).unwrap_err();
        assert!(err.contains("50%"), "{err}");
    }
}
