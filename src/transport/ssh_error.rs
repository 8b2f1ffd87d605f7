//! ssh's own words, made into one line an operator can act on.
//!
//! ssh prints whole banners for some failures (a changed host key is
//! fifteen lines of `@@@@` and advice); the run's output shows one line per
//! host, so the reason, the host and the fix are picked out here.

/// One line for what ssh printed.
pub fn summarize(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if text.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        return host_key_changed(&lines);
    }
    lines
        .iter()
        .rev()
        .find(|l| !l.starts_with('@'))
        .map(|l| l.trim_end_matches('.').to_owned())
        .unwrap_or_else(|| text.trim().to_owned())
}

fn host_key_changed(lines: &[&str]) -> String {
    let after = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|rest| rest.trim().trim_end_matches('.').to_owned())
    };
    let fingerprint = lines
        .iter()
        .position(|l| l.starts_with("The fingerprint for the"))
        .and_then(|i| {
            let kind = lines[i]
                .strip_prefix("The fingerprint for the ")?
                .split_whitespace()
                .next()?;
            let print = lines.get(i + 1)?.trim_end_matches('.');
            Some(format!(" ({kind} key {print})"))
        })
        .unwrap_or_default();
    let offending = lines
        .iter()
        .find_map(|l| {
            l.strip_prefix("Offending ")
                .and_then(|r| r.split_once(" in "))
        })
        .map(|(_, at)| format!("; known_hosts entry {at}"))
        .unwrap_or_default();
    let fix = after("ssh-keygen")
        .map(|rest| format!("; if the new key is expected: ssh-keygen {rest}"))
        .unwrap_or_default();
    format!("host key verification failed: the host's key has changed{fingerprint}{offending}{fix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANGED: &str = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Someone could be eavesdropping on you right now (man-in-the-middle attack)!
It is also possible that a host key has just been changed.
The fingerprint for the ED25519 key sent by the remote host is
SHA256:5diDPSAZLflgwiHZY+1nyozHLG3EnxEGslZlO9/yhBs.
Please contact your system administrator.
Add correct host key in /tmp/fk/known_hosts to get rid of this message.
Offending ED25519 key in /tmp/fk/known_hosts:1
  remove with:
  ssh-keygen -f \"/tmp/fk/known_hosts\" -R \"10.213.2.11\"
Host key for 10.213.2.11 has changed and you have requested strict checking.
Host key verification failed.
";

    #[test]
    fn a_changed_host_key_is_one_line_with_the_entry_and_the_fix() {
        assert_eq!(
            summarize(CHANGED),
            "host key verification failed: the host's key has changed (ED25519 key SHA256:5diDPSAZLflgwiHZY+1nyozHLG3EnxEGslZlO9/yhBs); known_hosts entry /tmp/fk/known_hosts:1; if the new key is expected: ssh-keygen -f \"/tmp/fk/known_hosts\" -R \"10.213.2.11\""
        );
    }

    #[test]
    fn other_failures_keep_their_last_line() {
        assert_eq!(
            summarize("ssh: connect to host 10.0.0.1 port 22: Connection refused\n"),
            "ssh: connect to host 10.0.0.1 port 22: Connection refused"
        );
    }
}
