//! Targeted steps: the new pool takes the requests of chosen clients (by
//! source subnet), of chosen routes (a regex on the path), or carrying a
//! chosen header or cookie value; everything else stays on the live pool.
//! Checked at load: each subnet is a valid CIDR and no two overlap; each
//! route compiles, carries nothing that would break out of the proxy's
//! config, and none is given twice; header and cookie names and values
//! keep to a strict charset ([`super::request_match`]).

use std::net::IpAddr;

/// Who a targeted step sends to the new pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Source subnets, as CIDRs (`10.1.0.5/32`, `10.1.0.0/24`).
    Clients(Vec<String>),
    /// Path regexes (`^/api`).
    Routes(Vec<String>),
    /// Requests whose header `name` holds one of `values` (ignoring case).
    Header { name: String, values: Vec<String> },
    /// Requests whose cookie `name` holds one of `values` (ignoring case).
    Cookie { name: String, values: Vec<String> },
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Clients(_) => "clients",
            Target::Routes(_) => "routes",
            Target::Header { .. } => "header",
            Target::Cookie { .. } => "cookie",
        }
    }

    /// The words after the kind, as the traffic record writes them: the
    /// subnets or routes, or the header's or cookie's name then its values.
    pub fn items(&self) -> Vec<&str> {
        match self {
            Target::Clients(v) | Target::Routes(v) => v.iter().map(String::as_str).collect(),
            Target::Header { name, values } | Target::Cookie { name, values } => {
                std::iter::once(name.as_str())
                    .chain(values.iter().map(String::as_str))
                    .collect()
            }
        }
    }

    /// Reads back what [`Target::items`] wrote after `kind`.
    pub fn from_items(kind: &str, mut items: Vec<String>) -> Option<Target> {
        let named = |items: &mut Vec<String>| {
            (items.len() >= 2).then(|| {
                let name = items.remove(0);
                (name, std::mem::take(items))
            })
        };
        match kind {
            "clients" => Some(Target::Clients(items)),
            "routes" => Some(Target::Routes(items)),
            "header" => named(&mut items).map(|(name, values)| Target::Header { name, values }),
            "cookie" => named(&mut items).map(|(name, values)| Target::Cookie { name, values }),
            _ => None,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind(), self.items().join(" "))
    }
}

/// A subnet: its network bits, as a 128-bit number (IPv4 mapped), and the
/// prefix length in that space.
#[derive(Debug, Clone, Copy)]
struct Net {
    bits: u128,
    prefix: u32,
}

impl Net {
    fn contains(&self, other: &Net) -> bool {
        self.prefix <= other.prefix && mask(self.bits, self.prefix) == mask(other.bits, self.prefix)
    }
}

fn mask(bits: u128, prefix: u32) -> u128 {
    if prefix == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - prefix))
    }
}

/// `10.1.0.0/24` (or an address alone: /32, /128) in canonical form;
/// `Err` says what is wrong.
pub fn parse_subnet(text: &str) -> Result<(String, u128, u32), String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let ip: IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not an IP address or subnet like 10.1.0.0/24"))?;
    let (bits, width, offset) = match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)) | (0xffff << 32), 32, 96),
        IpAddr::V6(v6) => (u128::from(v6), 128, 0),
    };
    let prefix = match prefix {
        None => width,
        Some(p) => p
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|p| *p <= width)
            .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {width}"))?,
    };
    if mask(bits, prefix + offset) != bits {
        return Err(format!(
            "{text:?} has host bits set below its /{prefix} prefix"
        ));
    }
    Ok((format!("{ip}/{prefix}"), bits, prefix + offset))
}

/// Subnets checked together: canonical forms, or the first overlap.
pub fn check_subnets(texts: &[String]) -> Result<Vec<String>, String> {
    let mut nets: Vec<(String, Net)> = Vec::new();
    for text in texts {
        let (canonical, bits, prefix) = parse_subnet(text)?;
        let net = Net { bits, prefix };
        if let Some((other, _)) = nets
            .iter()
            .find(|(_, n)| n.contains(&net) || net.contains(n))
        {
            return Err(format!(
                "subnets {other} and {canonical} overlap: each client must fall in one subnet"
            ));
        }
        nets.push((canonical, net));
    }
    Ok(nets.into_iter().map(|(c, _)| c).collect())
}

/// Routes checked together: each a regex that compiles, without quotes,
/// whitespace, `;` or braces (they would end the proxy's directive), none
/// twice.
pub fn check_routes(texts: &[String]) -> Result<Vec<String>, String> {
    let mut seen: Vec<String> = Vec::new();
    for route in texts {
        if route.is_empty() {
            return Err("a route is a regex on the path like ^/api, not empty".into());
        }
        if let Some(c) = route
            .chars()
            .find(|c| c.is_whitespace() || matches!(c, '"' | '\'' | ';' | '{' | '}' | '\\'))
        {
            return Err(format!(
                "route {route:?} has {c:?}, which a proxy config cannot carry unquoted"
            ));
        }
        regex::Regex::new(route).map_err(|e| format!("route {route:?} is not a regex: {e}"))?;
        if seen.contains(route) {
            return Err(format!("route {route:?} is given twice"));
        }
        seen.push(route.clone());
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_that_overlap_are_found() {
        let s = |v: &[&str]| check_subnets(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            s(&["10.1.0.5", "10.2.0.0/16"]).unwrap(),
            ["10.1.0.5/32", "10.2.0.0/16"]
        );
        assert!(
            s(&["10.1.0.0/16", "10.1.2.3/32"])
                .unwrap_err()
                .contains("overlap")
        );
        assert!(
            s(&["10.1.2.3", "10.1.2.3/32"])
                .unwrap_err()
                .contains("overlap")
        );
        assert!(s(&["10.1.0.1/24"]).unwrap_err().contains("host bits"));
        assert!(s(&["10.1.0.0/33"]).unwrap_err().contains("prefix length"));
        assert!(s(&["fd00::/64", "fd00:0:0:1::/64"]).is_ok());
        assert!(s(&["nowhere"]).is_err());
    }

    #[test]
    fn routes_are_regexes_a_config_can_carry() {
        let r = |v: &[&str]| check_routes(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(r(&["^/api", "^/profile(/|$)"]).is_ok());
        assert!(r(&["^/api", "^/api"]).unwrap_err().contains("twice"));
        assert!(r(&["^/a\"pi"]).is_err());
        assert!(r(&["^/a pi"]).is_err());
        assert!(r(&["^/(api"]).unwrap_err().contains("not a regex"));
    }
}
