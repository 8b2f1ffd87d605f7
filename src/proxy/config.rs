//! A proxy section rendered for one proxy host: the files it should hold,
//! and the commands that validate and reload them. Rendering is pure, so
//! the same code serves the pre-flight check, `convoy render` and each
//! step of a rollout.

use std::collections::HashMap;
#[cfg(test)]
use std::path::Path;

use crate::inventory::Inventory;
use crate::playbook::{ProxyFile, ProxySpec};
use crate::source::SourceSpan;
use crate::template::{TemplateError, Templates};
use crate::vars::{Value, VarMap, merge};

use super::manifest;
use super::{FleetState, ProxyError};

/// One file rendered for a proxy host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Absolute path on the proxy host.
    pub dest: String,
    pub content: String,
    /// Four octal digits; `None` keeps the mode of the file it replaces.
    pub mode: Option<String>,
    /// The template as the playbook names it.
    pub template: String,
}

/// What one proxy host should hold for a proxy section.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// In section order (loop items in list order); no two share a `dest`.
    pub files: Vec<RenderedFile>,
    pub validate: Option<String>,
    pub reload: Option<String>,
    /// Where the host records the files this section installed.
    pub manifest: String,
    /// The play the section belongs to, named in the manifest.
    pub play: String,
}

/// The section's proxy hosts, in inventory order.
pub fn proxy_hosts(spec: &ProxySpec, inventory: &Inventory) -> Result<Vec<String>, ProxyError> {
    inventory
        .select(&spec.hosts)
        .map(|hosts| hosts.into_iter().map(|h| h.name.clone()).collect())
        .map_err(|source| ProxyError::Pattern {
            source,
            span: spec.hosts_span.clone(),
        })
}

impl ProxyConfig {
    /// Renders the section for proxy host `host`, whose own variables are
    /// `base`, at the fleet state `state`.
    pub fn render(
        spec: &ProxySpec,
        templates: &Templates,
        host: &str,
        base: VarMap,
        state: &FleetState,
    ) -> Result<ProxyConfig, ProxyError> {
        let mut vars = base;
        vars.insert("inventory_hostname".into(), Value::String(host.to_owned()));
        merge(&mut vars, &state.template_vars());
        let play = match vars.get("ansible_play_name") {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            _ => {
                return Err(ProxyError::Invalid {
                    message: "no `ansible_play_name`: the proxy manifest is kept per play".into(),
                    what: "proxy section".into(),
                    host: host.to_owned(),
                    span: spec.span.clone(),
                });
            }
        };
        let manifest = manifest::path(&vars, &play);
        crate::traffic::gate::add_template_vars(spec.traffic.as_ref(), &manifest, &mut vars);
        let mut vars = Value::Object(vars);
        let command = |command: &Option<String>, name: &str| {
            command
                .as_ref()
                .map(|c| {
                    templates
                        .render_str_deep(c, &vars, &spec.span.to_string())
                        .map_err(|error| ProxyError::Template {
                            error,
                            what: format!("proxy {name} command"),
                            host: host.to_owned(),
                            span: spec.span.clone(),
                        })
                })
                .transpose()
        };
        let validate = command(&spec.validate, "validate")?;
        let reload = command(&spec.reload, "reload")?;
        // Each file with the entry that rendered it, to point at on a clash.
        let mut files: Vec<(RenderedFile, &SourceSpan)> = Vec::new();
        for file in &spec.files {
            let at = FileAt { file, host };
            match &file.loop_items {
                None => files.push((at.render(templates, &vars, None)?, &file.span)),
                Some(items) => {
                    let items = templates
                        .render_deep(items, &vars, &file.span.to_string())
                        .map_err(|error| at.template_error(error, None))?;
                    let Value::Array(items) = items else {
                        return Err(at.invalid(
                            format!("`loop` must give a list, not {}", kind(&items)),
                            None,
                        ));
                    };
                    for item in items {
                        vars["item"] = item;
                        let rendered = at.render(templates, &vars, Some(&vars["item"]))?;
                        files.push((rendered, &file.span));
                    }
                    if let Value::Object(map) = &mut vars {
                        map.remove("item");
                    }
                }
            }
        }
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for (f, span) in &files {
            if let Some(first) = seen.insert(&f.dest, &f.template) {
                return Err(ProxyError::Invalid {
                    message: format!(
                        "{} is rendered twice (by {first} and by {}); every proxy file needs its own dest",
                        f.dest, f.template
                    ),
                    what: format!("proxy file {}", f.template),
                    host: host.to_owned(),
                    span: (*span).clone(),
                });
            }
        }
        let mut files: Vec<RenderedFile> = files.into_iter().map(|(f, _)| f).collect();
        // The traffic record travels with the files it describes.
        if let Some(traffic) = &state.traffic {
            files.push(RenderedFile {
                dest: crate::traffic::record::path(&manifest),
                content: crate::traffic::record::format(&play, traffic),
                mode: Some("0644".into()),
                template: "(traffic record)".into(),
            });
        }
        Ok(ProxyConfig {
            files,
            validate,
            reload,
            manifest,
            play,
        })
    }
}

/// One entry of `files:` being rendered for one host.
struct FileAt<'a> {
    file: &'a ProxyFile,
    host: &'a str,
}

impl FileAt<'_> {
    fn render(
        &self,
        templates: &Templates,
        vars: &Value,
        item: Option<&Value>,
    ) -> Result<RenderedFile, ProxyError> {
        let origin = self.file.span.to_string();
        let template = templates
            .render_str_deep(&self.file.template, vars, &origin)
            .map_err(|e| self.template_error(e, item))?;
        let dest = templates
            .render_str_deep(&self.file.dest, vars, &origin)
            .map_err(|e| self.template_error(e, item))?;
        check_dest(&dest)
            .map_err(|reason| self.invalid(format!("dest {dest:?} {reason}"), item))?;
        let mode = match &self.file.mode {
            None => None,
            Some(mode) => {
                let mode = templates
                    .render_value(mode, vars, &origin)
                    .map_err(|e| self.template_error(e, item))?;
                match crate::tasks::normalize_mode(Some(&mode)) {
                    Some(m) if m.len() == 4 && m.chars().all(|c| ('0'..='7').contains(&c)) => {
                        Some(m)
                    }
                    _ => {
                        return Err(self.invalid(
                            format!("mode {mode} is not an octal mode like \"0644\""),
                            item,
                        ));
                    }
                }
            }
        };
        let content = templates
            .render_file(&template, vars)
            .map_err(|e| self.template_error(e, item))?;
        Ok(RenderedFile {
            dest,
            content,
            mode,
            template,
        })
    }

    fn what(&self, item: Option<&Value>) -> String {
        match item {
            None => format!("proxy file {}", self.file.template),
            Some(item) => format!("proxy file {} (item {})", self.file.template, label(item)),
        }
    }

    fn template_error(&self, error: TemplateError, item: Option<&Value>) -> ProxyError {
        ProxyError::Template {
            error,
            what: self.what(item),
            host: self.host.to_owned(),
            span: self.file.span.clone(),
        }
    }

    fn invalid(&self, message: String, item: Option<&Value>) -> ProxyError {
        ProxyError::Invalid {
            message,
            what: self.what(item),
            host: self.host.to_owned(),
            span: self.file.span.clone(),
        }
    }
}

/// Why `dest` cannot be installed, if it cannot. The install works in
/// `.convoy-new/` and `.convoy-old/` beside each file and the manifest is
/// one path per line, so dests are plain absolute file paths.
fn check_dest(dest: &str) -> Result<(), &'static str> {
    if !dest.starts_with('/') {
        return Err("is not an absolute path");
    }
    if dest.chars().any(|c| c.is_control() || c == '\\') {
        return Err("contains a control character or a backslash");
    }
    let name = dest.rsplit('/').next().unwrap_or_default();
    if name.is_empty() || dest.rfind('/') == Some(0) {
        return Err("must name a file inside a directory");
    }
    let parts: Vec<&str> = dest.split('/').skip(1).collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err("must be a plain path (no `//`, `.` or `..`)");
    }
    if parts
        .iter()
        .any(|p| *p == ".convoy-new" || *p == ".convoy-old")
    {
        return Err("goes through a directory convoy keeps for installing");
    }
    Ok(())
}

/// An item as errors name it: its `name` when it has one.
fn label(item: &Value) -> String {
    match item.get("name") {
        Some(Value::String(name)) => name.clone(),
        _ => match item {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::Playbook;
    use crate::proxy::AppHost;

    /// The proxy section of a one-play playbook, with the repository's templates.
    fn section(proxy: &str) -> (tempfile::TempDir, ProxySpec, Templates) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("play.yml");
        std::fs::write(&path, format!("- name: p\n  hosts: all\n  proxy:\n{proxy}")).unwrap();
        let spec = Playbook::load(&path)
            .unwrap()
            .plays
            .remove(0)
            .proxy
            .unwrap();
        (
            dir,
            spec,
            Templates::new(Path::new(env!("CARGO_MANIFEST_DIR"))),
        )
    }

    fn vars(extra: serde_json::Value) -> VarMap {
        let mut vars = VarMap::new();
        vars.insert("ansible_play_name".into(), "Deploy shop".into());
        vars.insert("app_name".into(), "shop".into());
        vars.insert("app_port".into(), 8080.into());
        if let Value::Object(extra) = extra {
            merge(&mut vars, &extra);
        }
        vars
    }

    fn fleet(hosts: &[(&str, bool, bool)]) -> FleetState {
        FleetState {
            hosts: hosts
                .iter()
                .map(|(name, in_service, draining)| {
                    let host = AppHost {
                        address: format!("{name}.internal"),
                        in_service: *in_service,
                        draining: *draining,
                        switched: false,
                        version: Some("2.0".into()),
                    };
                    (name.to_string(), host)
                })
                .collect(),
            maintenance: false,
            traffic: None,
            request_pools: Vec::new(),
        }
    }

    const UPSTREAM: &str = "    hosts: all\n    files:\n      - template: templates/nginx/upstream.conf.j2\n        dest: /etc/nginx/conf.d/{{ app_name }}.conf\n    validate: nginx -t\n    reload: nginx -s reload\n";

    #[test]
    fn the_upstream_follows_the_fleet() {
        let (_dir, spec, templates) = section(UPSTREAM);
        let state = fleet(&[("a", true, false), ("b", true, true), ("c", false, false)]);
        let config =
            ProxyConfig::render(&spec, &templates, "lb", vars(Value::Null), &state).unwrap();
        let file = &config.files[0];
        assert_eq!(file.dest, "/etc/nginx/conf.d/shop.conf");
        assert!(
            file.content.contains("server a.internal:8080;  # a 2.0\n"),
            "{}",
            file.content
        );
        assert!(!file.content.contains("b.internal"), "{}", file.content);
        assert!(!file.content.contains("c.internal"), "{}", file.content);
        assert!(
            file.content.contains("proxy_pass http://shop;"),
            "{}",
            file.content
        );
        assert_eq!(config.validate.as_deref(), Some("nginx -t"));
        assert!(
            config
                .manifest
                .starts_with("/var/lib/convoy/proxy/deploy-shop-")
        );
    }

    #[test]
    fn maintenance_or_no_host_in_service_serves_the_maintenance_page() {
        let (_dir, spec, templates) = section(UPSTREAM);
        let mut state = fleet(&[("a", true, false)]);
        state.maintenance = true;
        let drained = fleet(&[("a", true, true)]);
        for state in [state, drained] {
            let config =
                ProxyConfig::render(&spec, &templates, "lb", vars(Value::Null), &state).unwrap();
            let content = &config.files[0].content;
            assert!(!content.contains("upstream shop"), "{content}");
            assert!(
                content.contains("error_page 503 /shop-maintenance.html;"),
                "{content}"
            );
        }
    }

    const SITES: &str = "    hosts: all\n    files:\n      - template: templates/nginx/site.conf.j2\n        dest: \"/etc/nginx/conf.d/{{ item.name }}.conf\"\n        loop: \"{{ domains }}\"\n        mode: 0640\n";

    #[test]
    fn a_looped_file_gives_one_file_per_item() {
        let (_dir, spec, templates) = section(SITES);
        let domains = serde_json::json!({"domains": [{"name": "a.example", "aliases": ["www.a.example"]}, {"name": "b.example", "redirect": "https://c.example/"}]});
        let config = ProxyConfig::render(
            &spec,
            &templates,
            "lb",
            vars(domains),
            &FleetState::default(),
        )
        .unwrap();
        let dests: Vec<_> = config
            .files
            .iter()
            .map(|f| (f.dest.as_str(), f.mode.as_deref()))
            .collect();
        assert_eq!(
            dests,
            [
                ("/etc/nginx/conf.d/a.example.conf", Some("0640")),
                ("/etc/nginx/conf.d/b.example.conf", Some("0640"))
            ]
        );
        assert!(
            config.files[0]
                .content
                .contains("server_name a.example www.a.example;")
        );
        assert!(
            config.files[1]
                .content
                .contains("return 301 https://c.example$request_uri;")
        );
    }

    #[test]
    fn two_items_with_one_dest_are_refused() {
        let (_dir, spec, templates) = section(SITES);
        let domains =
            serde_json::json!({"domains": [{"name": "a.example"}, {"name": "a.example"}]});
        let error = ProxyConfig::render(
            &spec,
            &templates,
            "lb",
            vars(domains),
            &FleetState::default(),
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("/etc/nginx/conf.d/a.example.conf is rendered twice"),
            "{message}"
        );
        assert_eq!(error.exit_code(), crate::error::EXIT_BAD_INPUT);
    }

    #[test]
    fn an_undefined_variable_names_the_template_line_item_and_host() {
        let (_dir, spec, templates) = section(UPSTREAM);
        let mut base = vars(Value::Null);
        base.remove("app_name");
        let error = ProxyConfig::render(&spec, &templates, "lb", base, &fleet(&[])).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("undefined variable `app_name` in "),
            "{message}"
        );
        let (_dir, spec, templates) = section(SITES);
        let domains = serde_json::json!({"domains": [{"name": "a.example"}, {"title": "no name"}]});
        let message = ProxyConfig::render(
            &spec,
            &templates,
            "lb",
            vars(domains),
            &FleetState::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            message.starts_with("undefined variable `item.name` in "),
            "{message}"
        );
        assert!(
            message.contains(r#"(proxy file templates/nginx/site.conf.j2 (item {"title":"no name"}) for proxy host lb)"#),
            "{message}"
        );
    }

    #[test]
    fn a_loop_that_is_not_a_list_is_refused() {
        let (_dir, spec, templates) = section(SITES);
        let error = ProxyConfig::render(
            &spec,
            &templates,
            "lb",
            vars(serde_json::json!({"domains": "a.example"})),
            &FleetState::default(),
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("`loop` must give a list, not a string"),
            "{error}"
        );
    }

    #[test]
    fn dests_must_be_plain_absolute_file_paths() {
        assert!(check_dest("/etc/nginx/conf.d/a.example.conf").is_ok());
        for bad in [
            "etc/nginx/a.conf",
            "/a.conf",
            "/etc/nginx/",
            "/etc//nginx/a.conf",
            "/etc/nginx/../a.conf",
            "/etc/nginx/a\n.conf",
            "/etc/nginx/a\\.conf",
            "/etc/nginx/.convoy-new/a.conf",
        ] {
            assert!(check_dest(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn items_are_named_by_their_name() {
        assert_eq!(
            label(&serde_json::json!({"name": "a.example"})),
            "a.example"
        );
        assert_eq!(label(&serde_json::json!("b.example")), "b.example");
        assert_eq!(label(&serde_json::json!(3)), "3");
    }
}
