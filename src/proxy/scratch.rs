// TEMPORARY scratch check of ProxyTier on a real fleet; removed after use.
use std::path::Path;

use super::*;
use crate::inventory::Inventory;
use crate::playbook::Playbook;
use crate::proxy::FleetState;
use crate::run::{Mode, Phase, RunOptions, TagFilter};
use crate::template::Templates;
use crate::vars::{VarMap, merge};

#[tokio::test]
#[ignore]
async fn scratch_tier() {
    let dir = std::fs::read_to_string("/tmp/scratch_fleet").unwrap();
    let dir = dir.trim();
    let inventory = Inventory::load(&[Path::new(dir).join("inventory.yml")]).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let playbook = Playbook::load(&root.join("playbooks/proxy-domains.yml")).unwrap();
    let play = &playbook.plays[0];
    let templates = Templates::new(&playbook.base_dir);
    let options = RunOptions {
        limit: None,
        extra_vars: VarMap::new(),
        check: false,
        diff: false,
        forks: 10,
        tags: TagFilter::default(),
        ssh_config: None,
        accept_new_host_keys: false,
        connect_timeout: std::time::Duration::from_secs(5),
        mode: Mode::Deploy { phase: Phase::All },
        yes: true,
        force_unlock: false,
        run_id: "x".into(),
        resume: None,
        playbook_name: "p".into(),
    };
    let spec0 = play.proxy.clone().unwrap();
    let mut spec = spec0.clone();
    spec.hosts = "all".into();
    let domains = std::sync::Mutex::new(serde_json::json!(["a.example", "b.example"]));
    let vars_for = |h: &str| {
        let mut v = inventory.host_vars(h);
        merge(&mut v, &play.vars);
        let names: Vec<serde_json::Value> = domains
            .lock()
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|n| serde_json::json!({"name": n}))
            .collect();
        v.insert("parked_domains".into(), names.into());
        v.insert("ansible_play_name".into(), play.name.clone().into());
        v.insert("convoy_proxy_state_dir".into(), "/srv/convoy-proxy".into());
        v
    };
    let state = FleetState::default();
    ProxyTier::check(&spec, &inventory, &templates, &vars_for, &state).unwrap();
    let control = tempfile::Builder::new()
        .prefix("cvy.")
        .tempdir_in("/tmp")
        .unwrap();
    let mut tier = ProxyTier::connect(&spec, &inventory, &options, control.path(), &vars_for)
        .await
        .unwrap();
    let t = std::time::Instant::now();
    let r = tier.apply(&templates, &vars_for, &state).await.unwrap();
    println!("apply1 {:?} {}", t.elapsed(), r.hosts["h1"]);
    let t = std::time::Instant::now();
    let r = tier.apply(&templates, &vars_for, &state).await.unwrap();
    println!("apply2 {:?} {}", t.elapsed(), r.hosts["h1"]);
    *domains.lock().unwrap() = serde_json::json!(["a.example", "c.example"]);
    let r = tier.apply(&templates, &vars_for, &state).await.unwrap();
    println!("apply3 {}", r.hosts["h1"]);
    // many domains
    let many: Vec<String> = (0..400).map(|i| format!("d{i}.example")).collect();
    *domains.lock().unwrap() = serde_json::json!(many);
    let t = std::time::Instant::now();
    let r = tier.apply(&templates, &vars_for, &state).await.unwrap();
    println!(
        "apply400 {:?} written {} removed {}",
        t.elapsed(),
        r.hosts["h1"].written.len(),
        r.hosts["h1"].removed.len()
    );
    let t = std::time::Instant::now();
    for h in ["h1"] { let _ = crate::proxy::ProxyConfig::render(&spec, &templates, h, vars_for(h), &state).unwrap(); }
    println!("render400 {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let r = tier.apply(&templates, &vars_for, &state).await.unwrap();
    println!("apply400 again {:?} {}", t.elapsed(), r.hosts["h1"]);
    // invalid: a domain with a space in redirect
    let mut bad: Vec<serde_json::Value> = (0..400)
        .map(|i| serde_json::json!(format!("d{i}.example")))
        .collect();
    bad[5] = serde_json::json!("d5.example");
    *domains.lock().unwrap() = serde_json::json!(["a.example"]);
    let r = tier.apply(&templates, &vars_for, &state).await.unwrap();
    println!("back to 1: removed {}", r.hosts["h1"].removed.len());
    // validate failure: use the `title` with a quote? -> use an own spec with a broken validate
    let mut broken = spec.clone();
    broken.validate = Some("nginx -t && false".into());
    let mut tier2 = ProxyTier {
        spec: broken,
        hosts: std::mem::take(&mut tier.hosts),
    };
    *domains.lock().unwrap() = serde_json::json!(["a.example", "z.example"]);
    let e = tier2
        .apply(&templates, &vars_for, &state)
        .await
        .unwrap_err();
    println!("validate error ({}):\n{e}", e.exit_code());
    let mut broken = spec.clone();
    broken.reload = Some("echo nope >&2; false".into());
    let mut tier3 = ProxyTier {
        spec: broken,
        hosts: std::mem::take(&mut tier2.hosts),
    };
    let e = tier3
        .apply(&templates, &vars_for, &state)
        .await
        .unwrap_err();
    println!("reload error ({}):\n{e}", e.exit_code());
    tier3.close().await;
    let _ = spec0;
}
