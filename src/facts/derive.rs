//! The facts each collector derives from the script's raw sections.

use std::collections::BTreeMap;

use serde_json::json;

use super::distribution;
use crate::vars::{Value, VarMap};

/// Every fact name a collector here may set (without `ansible_`).
pub const NAMES: &[&str] = &[
    "hostname",
    "nodename",
    "fqdn",
    "domain",
    "system",
    "kernel",
    "kernel_version",
    "machine",
    "architecture",
    "distribution",
    "distribution_version",
    "distribution_major_version",
    "distribution_minor_version",
    "distribution_release",
    "os_family",
    "date_time",
    "env",
    "user_id",
    "user_uid",
    "user_gid",
    "user_dir",
    "user_shell",
    "user_gecos",
    "processor_vcpus",
    "processor_count",
    "processor_cores",
    "processor_threads_per_core",
    "processor_nproc",
    "memtotal_mb",
    "memfree_mb",
    "swaptotal_mb",
    "swapfree_mb",
    "default_ipv4",
    "all_ipv4_addresses",
    "interfaces",
];

type Raw<'a> = BTreeMap<&'a str, &'a str>;

fn first_line<'a>(raw: &Raw<'a>, section: &str) -> &'a str {
    raw.get(section)
        .and_then(|s| s.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("")
}

/// Adds what `collector` gathers to `facts`.
pub fn collect(collector: &str, raw: &Raw, facts: &mut VarMap) {
    let add = match collector {
        "platform" => platform(raw),
        "distribution" => distribution::facts(raw),
        "date_time" => date_time(raw),
        "env" => env(raw),
        "user" => user(raw),
        "hardware" => hardware(raw),
        "network" => network(raw),
        "interfaces" => interfaces(raw),
        // service_mgr and pkg_mgr: see the module's from_output.
        _ => VarMap::new(),
    };
    crate::vars::merge(facts, &add);
}

fn platform(raw: &Raw) -> VarMap {
    let nodename = first_line(raw, "nodename");
    // socket.getfqdn(): the first of the entry's names with a dot, else its
    // canonical name; the node name when it has no entry.
    let entry: Vec<&str> = first_line(raw, "fqdn").split_whitespace().skip(1).collect();
    let fqdn = entry
        .iter()
        .find(|n| n.contains('.'))
        .or(entry.first())
        .copied()
        .unwrap_or(nodename);
    let machine = first_line(raw, "machine");
    let mut f = VarMap::new();
    // Ansible: the node name up to its first dot; the domain after the fqdn's.
    f.insert(
        "hostname".into(),
        nodename.split('.').next().unwrap_or("").into(),
    );
    f.insert("nodename".into(), nodename.into());
    f.insert("fqdn".into(), fqdn.into());
    f.insert(
        "domain".into(),
        fqdn.split_once('.').map(|(_, d)| d).unwrap_or("").into(),
    );
    f.insert("system".into(), first_line(raw, "system").into());
    f.insert("kernel".into(), first_line(raw, "kernel").into());
    f.insert(
        "kernel_version".into(),
        first_line(raw, "kernel_version").into(),
    );
    f.insert("machine".into(), machine.into());
    // Ansible's `architecture`: i386 for 32-bit x86, else the machine.
    let arch = match machine {
        "i386" | "i486" | "i586" | "i686" => "i386",
        other => other,
    };
    f.insert("architecture".into(), arch.into());
    f
}

/// Ansible's `date_time`: every value a string, local time but for the
/// `iso8601` ones, which are UTC.
fn date_time(raw: &Raw) -> VarMap {
    let text = raw.get("date").copied().unwrap_or("");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut f = VarMap::new();
    let (Some(stamp), Some(local), Some(utc)) = (lines.first(), lines.get(1), lines.get(2)) else {
        return f;
    };
    let (epoch, nanos) = stamp.split_once('.').unwrap_or((stamp, "0"));
    let micro: String = format!("{nanos:0<6}").chars().take(6).collect();
    let p: Vec<&str> = local.split('|').collect();
    if p.len() < 11 {
        return f;
    }
    let (year, month, day, hour, minute, second) = (p[0], p[1], p[2], p[3], p[4], p[5]);
    // `time.tzname[1]`: the zone's summer name, the winter one where it has none.
    let zone = |l: Option<&&str>| {
        l.and_then(|l| l.split_once('|'))
            .map(|(n, o)| (n.to_owned(), o.parse::<i32>().unwrap_or(0)))
    };
    let dst = match (zone(lines.get(3)), zone(lines.get(4))) {
        (Some(jan), Some(jul)) if jul.1 > jan.1 => jul.0,
        (Some(jan), Some(jul)) if jan.1 > jul.1 => jan.0,
        (Some(jan), _) => jan.0,
        _ => p[9].to_owned(),
    };
    let entries = [
        ("year", year.to_owned()),
        ("month", month.to_owned()),
        ("weekday", p[6].to_owned()),
        ("weekday_number", p[7].to_owned()),
        ("weeknumber", p[8].to_owned()),
        ("day", day.to_owned()),
        ("hour", hour.to_owned()),
        ("minute", minute.to_owned()),
        ("second", second.to_owned()),
        ("epoch", epoch.to_owned()),
        ("epoch_int", epoch.to_owned()),
        ("date", format!("{year}-{month}-{day}")),
        ("time", format!("{hour}:{minute}:{second}")),
        ("iso8601_micro", format!("{utc}.{micro}Z")),
        ("iso8601", format!("{utc}Z")),
        (
            "iso8601_basic",
            format!("{year}{month}{day}T{hour}{minute}{second}{micro}"),
        ),
        (
            "iso8601_basic_short",
            format!("{year}{month}{day}T{hour}{minute}{second}"),
        ),
        ("tz", p[9].to_owned()),
        ("tz_dst", dst),
        ("tz_offset", p[10].to_owned()),
    ];
    let mut map = serde_json::Map::new();
    for (k, v) in entries {
        map.insert(k.into(), Value::String(v));
    }
    f.insert("date_time".into(), Value::Object(map));
    f
}

/// The environment the facts were gathered in (NUL-separated, so that a
/// value may hold a newline).
fn env(raw: &Raw) -> VarMap {
    let text = raw.get("env").copied().unwrap_or("");
    let mut vars: Vec<(&str, &str)> = text
        .split('\0')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| !k.trim().is_empty())
        .map(|(k, v)| (k.trim_start_matches('\n'), v.trim_end_matches('\n')))
        .collect();
    vars.sort();
    let map: serde_json::Map<String, Value> = vars
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
    let mut f = VarMap::new();
    f.insert("env".into(), Value::Object(map));
    f
}

fn user(raw: &Raw) -> VarMap {
    let ids: Vec<&str> = raw
        .get("user")
        .map(|s| s.lines().map(str::trim).filter(|l| !l.is_empty()).collect())
        .unwrap_or_default();
    let number = |s: Option<&&str>| s.and_then(|v| v.parse::<u64>().ok()).map(Value::from);
    let passwd: Vec<&str> = first_line(raw, "passwd").split(':').collect();
    let mut f = VarMap::new();
    if let Some(name) = ids.first() {
        f.insert("user_id".into(), (*name).into());
    }
    if let Some(uid) = number(ids.get(1)) {
        f.insert("user_uid".into(), uid);
    }
    if let Some(gid) = number(ids.get(2)) {
        f.insert("user_gid".into(), gid);
    }
    if passwd.len() >= 7 {
        f.insert("user_gecos".into(), passwd[4].into());
        f.insert("user_dir".into(), passwd[5].into());
        f.insert("user_shell".into(), passwd[6].into());
    }
    f
}

/// CPU and memory, as Ansible's Linux hardware collector counts them.
fn hardware(raw: &Raw) -> VarMap {
    let cpuinfo = raw.get("cpuinfo").copied().unwrap_or("");
    let mut processors = 0u64;
    let mut sockets = std::collections::BTreeSet::new();
    let mut cores = 0u64;
    let mut siblings = 0u64;
    for line in cpuinfo.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "processor" => processors += 1,
            "physical id" => {
                sockets.insert(value.to_owned());
            }
            "cpu cores" => cores = value.parse().unwrap_or(cores),
            "siblings" => siblings = value.parse().unwrap_or(siblings),
            _ => {}
        }
    }
    let mut f = VarMap::new();
    if processors > 0 {
        let count = if sockets.is_empty() {
            processors
        } else {
            sockets.len() as u64
        };
        let cores = if cores == 0 { 1 } else { cores };
        let threads = if siblings == 0 {
            1
        } else {
            (siblings / cores).max(1)
        };
        let vcpus = if sockets.is_empty() {
            processors
        } else {
            threads * cores * count
        };
        f.insert("processor_count".into(), count.into());
        f.insert("processor_cores".into(), cores.into());
        f.insert("processor_threads_per_core".into(), threads.into());
        f.insert("processor_vcpus".into(), vcpus.into());
        f.insert("processor_nproc".into(), processors.into());
    }
    let meminfo = raw.get("meminfo").copied().unwrap_or("");
    for line in meminfo.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let kb: u64 = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let name = match key.trim() {
            "MemTotal" => "memtotal_mb",
            "MemFree" => "memfree_mb",
            "SwapTotal" => "swaptotal_mb",
            "SwapFree" => "swapfree_mb",
            _ => continue,
        };
        f.insert(name.into(), (kb / 1024).into());
    }
    f
}

/// `ip -4 -o addr show` lines: (interface, address, prefix, broadcast).
fn addresses(raw: &Raw) -> Vec<(String, String, u32, String)> {
    let text = raw.get("addrs").copied().unwrap_or("");
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let iface = words.get(1)?.trim_end_matches(':').to_owned();
            let at = words.iter().position(|w| *w == "inet")?;
            let (addr, prefix) = words.get(at + 1)?.split_once('/')?;
            let broadcast = words
                .iter()
                .position(|w| *w == "brd")
                .and_then(|i| words.get(i + 1))
                .map(|s| s.to_string())
                .unwrap_or_default();
            Some((iface, addr.to_owned(), prefix.parse().ok()?, broadcast))
        })
        .collect()
}

/// `default_ipv4` (the route to a public address, as Ansible asks `ip`;
/// empty without a default route) and `all_ipv4_addresses`.
fn network(raw: &Raw) -> VarMap {
    let addrs = addresses(raw);
    let mut f = VarMap::new();
    let all: Vec<Value> = addrs
        .iter()
        .filter(|(_, a, _, _)| !a.starts_with("127."))
        .map(|(_, a, _, _)| Value::String(a.clone()))
        .collect();
    f.insert("all_ipv4_addresses".into(), Value::Array(all));
    let route: Vec<&str> = first_line(raw, "route").split_whitespace().collect();
    let after = |key: &str| {
        route
            .iter()
            .position(|w| *w == key)
            .and_then(|i| route.get(i + 1))
            .map(|s| s.to_string())
    };
    let mut default = serde_json::Map::new();
    if let (Some(iface), Some(src)) = (after("dev"), after("src")) {
        default.insert("address".into(), json!(src));
        default.insert("interface".into(), json!(iface));
        default.insert("alias".into(), json!(iface));
        if let Some(gw) = after("via") {
            default.insert("gateway".into(), json!(gw));
        }
        if let Some((_, _, prefix, brd)) =
            addrs.iter().find(|(i, a, _, _)| *i == iface && *a == src)
        {
            let mask = if *prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            let ip: u32 = src
                .parse::<std::net::Ipv4Addr>()
                .map(u32::from)
                .unwrap_or(0);
            default.insert("broadcast".into(), json!(brd));
            default.insert(
                "netmask".into(),
                json!(std::net::Ipv4Addr::from(mask).to_string()),
            );
            default.insert(
                "network".into(),
                json!(std::net::Ipv4Addr::from(ip & mask).to_string()),
            );
            default.insert("prefix".into(), json!(prefix.to_string()));
        }
        if let Some((mac, mtu, kind)) = link(raw, &iface) {
            default.insert("macaddress".into(), json!(mac));
            default.insert("mtu".into(), json!(mtu));
            default.insert("type".into(), json!(kind));
        }
    }
    f.insert("default_ipv4".into(), Value::Object(default));
    f
}

/// An interface's MAC address, MTU and link type from `ip -o link show`.
fn link(raw: &Raw, iface: &str) -> Option<(String, u64, String)> {
    let text = raw.get("links").copied().unwrap_or("");
    text.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        let name = words.get(1)?.trim_end_matches(':');
        if name.split('@').next() != Some(iface) {
            return None;
        }
        let mtu = words
            .iter()
            .position(|w| *w == "mtu")
            .and_then(|i| words.get(i + 1))
            .and_then(|m| m.parse().ok())?;
        let at = words.iter().position(|w| w.starts_with("link/"))?;
        let kind = match words[at].trim_start_matches("link/") {
            "ether" => "ether",
            "loopback" => "loopback",
            _ => "unknown",
        };
        let mac = words.get(at + 1).unwrap_or(&"").to_string();
        Some((mac, mtu, kind.to_owned()))
    })
}

/// `interfaces`: every link's name, as `ip` lists them.
fn interfaces(raw: &Raw) -> VarMap {
    let text = raw.get("links").copied().unwrap_or("");
    let names: Vec<Value> = text
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .map(|n| {
            n.trim_end_matches(':')
                .split('@')
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .filter(|n| !n.is_empty())
        .map(Value::String)
        .collect();
    let mut f = VarMap::new();
    f.insert("interfaces".into(), Value::Array(names));
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ipv4_from_the_route_and_the_address() {
        let raw: Raw = BTreeMap::from([
            (
                "route",
                "8.8.8.8 via 10.0.0.1 dev eth0 src 10.0.0.5 uid 0\n    cache\n",
            ),
            (
                "addrs",
                "1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\n",
            ),
            (
                "links",
                "1: lo: <LOOPBACK,UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n2: eth0@if9: <BROADCAST> mtu 1500 qdisc noqueue state UP\\    link/ether 02:ab:cd:00:00:01 brd ff:ff:ff:ff:ff:ff\n",
            ),
        ]);
        let f = network(&raw);
        let d = &f["default_ipv4"];
        assert_eq!(d["address"], "10.0.0.5");
        assert_eq!(d["gateway"], "10.0.0.1");
        assert_eq!(d["interface"], "eth0");
        assert_eq!(d["netmask"], "255.255.255.0");
        assert_eq!(d["network"], "10.0.0.0");
        assert_eq!(d["prefix"], "24");
        assert_eq!(d["macaddress"], "02:ab:cd:00:00:01");
        assert_eq!(d["mtu"], 1500);
        assert_eq!(f["all_ipv4_addresses"], json!(["10.0.0.5"]));
        assert_eq!(interfaces(&raw)["interfaces"], json!(["lo", "eth0"]));
    }

    #[test]
    fn no_route_no_default_ipv4() {
        let raw: Raw = BTreeMap::from([("route", "")]);
        assert_eq!(network(&raw)["default_ipv4"], json!({}));
    }

    #[test]
    fn vcpus_as_ansible_counts_them() {
        let raw: Raw = BTreeMap::from([(
            "cpuinfo",
            "processor : 0\nphysical id : 0\nsiblings : 4\ncpu cores : 2\nprocessor : 1\nphysical id : 0\nsiblings : 4\ncpu cores : 2\nprocessor : 2\nphysical id : 0\nsiblings : 4\ncpu cores : 2\nprocessor : 3\nphysical id : 0\nsiblings : 4\ncpu cores : 2\n",
        )]);
        let f = hardware(&raw);
        assert_eq!(f["processor_vcpus"], 4);
        assert_eq!(f["processor_count"], 1);
        assert_eq!(f["processor_threads_per_core"], 2);
    }
}
