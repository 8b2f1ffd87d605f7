//! Targeted steps by request content: a header or a cookie holding one of
//! the chosen values sends the request to the new pool (`X-Canary: 1` from
//! testers, a `canary=yes` cookie set by the app for opted-in users).
//!
//! ```yaml
//! steps: [{header: {X-Canary: [1, "yes"]}}, {cookie: {canary: beta}}, 100%]
//! ```
//!
//! The name and the values go into the proxy's config unquoted (nginx's
//! `map $http_x_canary` / `map $cookie_canary`, haproxy's `req.hdr()` /
//! `req.cook()` ACLs), so both keep to a strict charset checked at load:
//! a header name is letters, digits and `-` (nginx drops headers with `_`
//! by default), a cookie name letters, digits and `_` (nginx's
//! `$cookie_NAME` cannot carry `-`), a value letters, digits and `.`, `_`,
//! `-`. Values match ignoring case on both proxies, so two values that
//! differ only in case are one value given twice.

use super::target::Target;
use crate::vars::Value;

/// The longest name or value accepted: a canary marker, not a token.
const MAX_LEN: usize = 64;

/// `{NAME: VALUE}` or `{NAME: [VALUE, ...]}` under `kind` (`header` or
/// `cookie`), checked.
pub fn parse(kind: &str, v: &Value) -> Result<Target, String> {
    let shape = || {
        format!(
            "`{kind}` takes one {kind} name and its values, like {{{kind}: {{{}: [1]}}}}",
            if kind == "header" {
                "X-Canary"
            } else {
                "canary"
            }
        )
    };
    let Value::Object(map) = v else {
        return Err(shape());
    };
    if map.len() != 1 {
        return Err(shape());
    }
    let (name, values) = map.iter().next().expect("one key");
    check_name(kind, name)?;
    let values = match values {
        Value::Array(items) => items.as_slice(),
        one => std::slice::from_ref(one),
    };
    if values.iter().any(|v| matches!(v, Value::Bool(_))) {
        // YAML reads yes, no, on, off as booleans: the proxy would match
        // "true", which no client sends.
        return Err(format!(
            "{kind} {name}: a value reads as a boolean (YAML's yes, no, on, off, true, false); quote it, like \"yes\""
        ));
    }
    let values: Vec<String> = values
        .iter()
        .map(scalar)
        .collect::<Option<Vec<_>>>()
        .filter(|v| !v.is_empty())
        .ok_or_else(shape)?;
    let mut seen: Vec<String> = Vec::new();
    for value in &values {
        check_value(kind, name, value)?;
        if let Some(other) = seen.iter().find(|s| s.eq_ignore_ascii_case(value)) {
            return Err(format!(
                "{kind} {name} value {value:?} is given twice{}",
                if other == value {
                    String::new()
                } else {
                    format!(" (as {other:?}: values match ignoring case)")
                }
            ));
        }
        seen.push(value.clone());
    }
    let name = name.clone();
    Ok(match kind {
        "header" => Target::Header { name, values },
        _ => Target::Cookie { name, values },
    })
}

/// A string, or a number as YAML wrote it (`X-Canary: [1]`).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn check_name(kind: &str, name: &str) -> Result<(), String> {
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || if kind == "header" { c == '-' } else { c == '_' };
    let charset = if kind == "header" {
        "letters, digits and -"
    } else {
        "letters, digits and _"
    };
    if name.is_empty() || name.len() > MAX_LEN || !name.chars().all(allowed) {
        return Err(format!(
            "{kind} name {name:?} must be 1 to {MAX_LEN} {charset}, which the proxy's config carries as they are"
        ));
    }
    Ok(())
}

fn check_value(kind: &str, name: &str, value: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if value.is_empty() || value.len() > MAX_LEN || !value.chars().all(allowed) {
        return Err(format!(
            "{kind} {name} value {value:?} must be 1 to {MAX_LEN} letters, digits, ., _ or -, which the proxy's config carries as they are"
        ));
    }
    Ok(())
}

/// The variable nginx reads the header or cookie from: `$http_x_canary`,
/// `$cookie_canary`.
pub fn nginx_variable(target: &Target) -> Option<String> {
    match target {
        Target::Header { name, .. } => Some(format!(
            "$http_{}",
            name.to_ascii_lowercase().replace('-', "_")
        )),
        Target::Cookie { name, .. } => Some(format!("$cookie_{name}")),
        _ => None,
    }
}

/// haproxy's sample fetch for it: `req.hdr(X-Canary)`, `req.cook(canary)`.
pub fn haproxy_fetch(target: &Target) -> Option<String> {
    match target {
        Target::Header { name, .. } => Some(format!("req.hdr({name})")),
        Target::Cookie { name, .. } => Some(format!("req.cook({name})")),
        _ => None,
    }
}

/// `traffic.request` for the proxy templates: `{kind, name, values,
/// nginx, haproxy}` (`nginx` the variable, `haproxy` the sample fetch);
/// none for a target that is not a header or a cookie.
pub fn template_value(target: &Target) -> Option<Value> {
    let (Target::Header { name, values } | Target::Cookie { name, values }) = target else {
        return None;
    };
    Some(serde_json::json!({
        "kind": target.kind(),
        "name": name,
        "values": values,
        "nginx": nginx_variable(target),
        "haproxy": haproxy_fetch(target),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn header_and_cookie_values_parse_and_render_their_proxy_names() {
        let t = parse("header", &json!({"X-Canary": [1, "yes"]})).unwrap();
        assert_eq!(
            t,
            Target::Header {
                name: "X-Canary".into(),
                values: vec!["1".into(), "yes".into()]
            }
        );
        assert_eq!(nginx_variable(&t).unwrap(), "$http_x_canary");
        assert_eq!(haproxy_fetch(&t).unwrap(), "req.hdr(X-Canary)");
        let c = parse("cookie", &json!({"canary_group": "beta"})).unwrap();
        assert_eq!(nginx_variable(&c).unwrap(), "$cookie_canary_group");
        assert_eq!(haproxy_fetch(&c).unwrap(), "req.cook(canary_group)");
    }

    #[test]
    fn names_and_values_outside_the_charset_or_twice_are_refused() {
        let e = |kind: &str, v: serde_json::Value| parse(kind, &v).unwrap_err();
        assert!(e("header", json!({"X_Canary": 1})).contains("letters, digits and -"));
        assert!(e("cookie", json!({"can-ary": 1})).contains("letters, digits and _"));
        assert!(e("header", json!({"X-Canary": "a;b"})).contains("\"a;b\""));
        assert!(e("header", json!({"X-Canary": "a b"})).contains("letters, digits"));
        assert!(e("header", json!({"X-Canary": "\"1\""})).contains("letters, digits"));
        assert!(e("header", json!({"X-Canary": ["1", "1"]})).contains("given twice"));
        assert!(e("cookie", json!({"c": ["Yes", "yes"]})).contains("ignoring case"));
        assert!(e("header", json!({"X-Canary": []})).contains("takes one header name"));
        assert!(e("header", json!({"A": 1, "B": 2})).contains("takes one header name"));
        assert!(e("header", json!("X-Canary")).contains("takes one header name"));
        assert!(e("header", json!({"X-Canary": [{"a": 1}]})).contains("takes one"));
        assert!(e("cookie", json!({"canary": [true]})).contains("quote it"));
    }
}
