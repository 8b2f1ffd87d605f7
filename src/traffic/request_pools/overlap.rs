//! Whether two request pools can claim one request: refused at load, so
//! that each request goes to one class whichever proxy renders the rules
//! (nginx's maps and haproxy's ACLs do not order classes the same way).

use super::RequestPool;

/// Why `a` and `b` can claim one request, if they can.
pub(super) fn overlap(a: &RequestPool, b: &RequestPool) -> Option<String> {
    let methods = if a.methods.is_empty() || b.methods.is_empty() {
        "any method".to_owned()
    } else {
        let shared: Vec<&String> = a.methods.iter().filter(|m| b.methods.contains(m)).collect();
        match shared.first() {
            None => return None,
            Some(m) => m.to_string(),
        }
    };
    let routes = if a.routes.is_empty() || b.routes.is_empty() {
        "any path".to_owned()
    } else {
        let pair = a.routes.iter().find_map(|r| {
            b.routes
                .iter()
                .find(|s| routes_overlap(r, s))
                .map(|s| (r, s))
        })?;
        if pair.0 == pair.1 {
            format!("route {:?} in both", pair.0)
        } else {
            format!("routes {:?} and {:?}", pair.0, pair.1)
        }
    };
    Some(format!("{methods}, {routes}"))
}

/// Equal routes, or anchored literal prefixes where one starts the other
/// (`^/upload` and `^/upload/big`): both match some path. Regexes beyond
/// that are not compared; the first class in playbook order wins.
fn routes_overlap(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let literal = |r: &str| {
        let r = r.strip_prefix('^')?;
        let end = r
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_')))
            .unwrap_or(r.len());
        Some(r[..end].to_owned())
    };
    match (literal(a), literal(b)) {
        (Some(x), Some(y)) if !x.is_empty() && !y.is_empty() => {
            // A route that is all literal matches every path it starts.
            let whole = |r: &str, lit: &str| r.len() == lit.len() + 1;
            (whole(a, &x) && y.starts_with(&x)) || (whole(b, &y) && x.starts_with(&y))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceSpan;
    use std::time::Duration;

    fn pool(name: &str, routes: &[&str], methods: &[&str]) -> RequestPool {
        RequestPool {
            name: name.into(),
            routes: routes.iter().map(|s| s.to_string()).collect(),
            methods: methods.iter().map(|s| s.to_string()).collect(),
            hosts: "app".into(),
            max_conns: 1,
            timeout: Duration::from_secs(1),
            span: SourceSpan::new(std::path::Path::new("p.yml"), 1, 1),
        }
    }

    #[test]
    fn classes_that_can_claim_one_request_are_found() {
        let o = |a: RequestPool, b: RequestPool| overlap(&a, &b);
        assert_eq!(
            o(pool("a", &["^/up"], &[]), pool("b", &["^/up"], &[])).unwrap(),
            "any method, route \"^/up\" in both"
        );
        assert!(o(pool("a", &["^/up"], &[]), pool("b", &["^/upload"], &[])).is_some());
        assert!(o(pool("a", &["^/up$"], &[]), pool("b", &["^/upload"], &[])).is_none());
        assert!(
            o(
                pool("a", &["^/up"], &["POST"]),
                pool("b", &["^/up"], &["GET"])
            )
            .is_none()
        );
        assert_eq!(
            o(
                pool("a", &[], &["POST"]),
                pool("b", &["^/x"], &["PUT", "POST"])
            )
            .unwrap(),
            "POST, any path"
        );
        assert!(o(pool("a", &["^/a"], &[]), pool("b", &["^/b"], &[])).is_none());
    }
}
