//! Questions asked on the terminal: vault passwords, `vars_prompt`. Only
//! ever on a terminal: a run from cron or CI must fail at once rather than
//! wait for an answer nobody will type.

use std::io::{BufRead, Write};

/// One line from stdin after `question` on stderr; with `hidden`, typed
/// without echo (`stty -echo` on our own stdin, from before the question
/// until the answer, restored after).
pub fn ask(question: &str, hidden: bool) -> std::io::Result<String> {
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    // Echo goes off before the question shows: an answer typed (or
    // pasted) the moment it appears is never echoed.
    let quiet = hidden && stty("-echo");
    let mut stderr = std::io::stderr();
    write!(stderr, "{question}")?;
    stderr.flush()?;
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if quiet {
        stty("echo");
        writeln!(stderr)?;
    }
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
