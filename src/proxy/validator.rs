//! `convoy lint`'s check of rendered proxy files with the proxy's own
//! validator (`nginx -t`, `haproxy -c`) installed on this machine.
//!
//! The proxy host's whole config is not here, so the rendered files are
//! validated in a scratch directory inside a minimal config: `.conf` files
//! are included in nginx's `http {}` block, `.cfg` files are loaded after a
//! `defaults` section for haproxy. A rendered `nginx.conf` or `haproxy.cfg`
//! is the main config itself. Paths of rendered files named in the configs
//! (an `include`, a maintenance page) point into the scratch directory, and
//! the validator's output is translated back to the files' real paths.
//!
//! What only the proxy host has (a certificate, a log directory this user
//! cannot write, a port below 1024 when not root: `nginx -t` binds the
//! ports it listens on) makes the validator fail here for reasons that say
//! nothing about the files: such a failure is reported as "not validated",
//! not as a problem.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::ProxyError;
use super::config::{ProxyConfig, RenderedFile};
use super::error::{RejectedFile, validator_output};
use crate::playbook::ProxySpec;

/// Validates each proxy host's files (`configs`, from
/// [`ProxyTier::check`](super::ProxyTier::check)) with the validator the
/// section's `validate` command runs, when it is installed here; hosts with
/// the same files are validated once. The answer says what was validated,
/// or why nothing was.
pub fn validate_here(
    spec: &ProxySpec,
    configs: &[(String, ProxyConfig)],
) -> Result<String, ProxyError> {
    let Some((_, first)) = configs.first() else {
        return Ok("no proxy host".into());
    };
    let Some(command) = &first.validate else {
        return Ok("not validated: the section has no `validate` command".into());
    };
    let Some(kind) = Kind::of_command(command) else {
        return Ok(format!(
            "not validated here: convoy validates nginx and haproxy configs, and `validate` runs `{command}`"
        ));
    };
    let Some(validator) = Validator::find(kind) else {
        return Ok(format!(
            "not validated here: {} is not installed on this machine",
            kind.program()
        ));
    };
    // Distinct sets of files, each with the hosts that render it.
    let mut distinct: Vec<(&[RenderedFile], Vec<&str>)> = Vec::new();
    for (host, config) in configs {
        match distinct
            .iter_mut()
            .find(|(files, _)| *files == config.files.as_slice())
        {
            Some((_, hosts)) => hosts.push(host),
            None => distinct.push((&config.files, vec![host])),
        }
    }
    let mut unverified = Vec::new();
    for (files, hosts) in &distinct {
        let verdict = validator.check(files).map_err(|e| ProxyError::Invalid {
            message: format!("cannot run `{}` on this machine: {e}", validator.describe()),
            what: "proxy validation".into(),
            host: hosts[0].to_owned(),
            span: spec.span.clone(),
        })?;
        match verdict {
            Verdict::Valid => {}
            Verdict::Invalid { output, rejected } => {
                // The entry of `files:` that rendered the (first) rejected file.
                let span = rejected
                    .first()
                    .and_then(|r| spec.files.iter().find(|f| f.template == r.template))
                    .map_or(&spec.span, |f| &f.span);
                return Err(ProxyError::LocallyRejected {
                    validator: validator.describe(),
                    host: hosts[0].to_owned(),
                    others: hosts.len() - 1,
                    output,
                    rejected,
                    span: span.clone(),
                });
            }
            Verdict::Unverifiable { reason } => unverified.push(format!("{} ({reason})", hosts[0])),
        }
    }
    let checked = format!(
        "{} proxy host(s), {} distinct set(s) of files",
        configs.len(),
        distinct.len()
    );
    Ok(if unverified.is_empty() {
        format!(
            "validated with `{}` on this machine: {checked}",
            validator.describe()
        )
    } else {
        format!(
            "not fully validated with `{}` on this machine ({checked}): it stopped on what only the proxy host has: {}",
            validator.describe(),
            unverified.join("; ")
        )
    })
}

/// A proxy validator installed on this machine.
#[derive(Debug, Clone)]
pub struct Validator {
    kind: Kind,
    program: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Nginx,
    Haproxy,
}

/// What the validator made of a set of rendered files.
#[derive(Debug)]
pub enum Verdict {
    Valid,
    Invalid {
        /// The validator's output, with scratch paths shown as real ones.
        output: String,
        rejected: Vec<RejectedFile>,
    },
    /// The validator stopped on something only the proxy host has.
    Unverifiable {
        reason: String,
    },
}

/// Where validators are looked for besides `PATH`: they live in sbin,
/// which a user's `PATH` often lacks.
const SBIN: [&str; 3] = ["/usr/sbin", "/usr/local/sbin", "/sbin"];

impl Kind {
    /// The validator a `validate` command runs (`nginx -t`,
    /// `sudo /usr/sbin/haproxy -c -f ...`), if convoy knows it.
    pub fn of_command(validate: &str) -> Option<Kind> {
        let words = shlex::split(validate)?;
        let program = words
            .iter()
            .find(|w| !matches!(w.as_str(), "sudo" | "env" | "exec") && !w.contains('='))?;
        match Path::new(program).file_name()?.to_str()? {
            "nginx" => Some(Kind::Nginx),
            "haproxy" => Some(Kind::Haproxy),
            _ => None,
        }
    }

    pub fn program(self) -> &'static str {
        match self {
            Kind::Nginx => "nginx",
            Kind::Haproxy => "haproxy",
        }
    }
}

impl Validator {
    /// The validator of `kind`, if it is installed here.
    pub fn find(kind: Kind) -> Option<Validator> {
        find_program(kind.program()).map(|program| Validator { kind, program })
    }

    /// Validates `files` (those that are not config files only serve as
    /// what configs refer to).
    pub fn check(&self, files: &[RenderedFile]) -> std::io::Result<Verdict> {
        let scratch = tempfile::Builder::new().prefix("convoy-lint-").tempdir()?;
        let dir = scratch.path();
        let root = dir.join("root");
        let in_scratch = |dest: &str| format!("{}{dest}", root.display());
        let configs: Vec<&RenderedFile> = files.iter().filter(|f| self.is_config(f)).collect();
        // A traffic gate's log, which the proxy writes beside the traffic
        // record, points into the scratch directory too (`nginx -t` opens it).
        let gate_logs: Vec<String> = files
            .iter()
            .filter_map(|f| f.dest.strip_suffix(".traffic"))
            .map(|stem| crate::traffic::gate::log_path(&format!("{stem}.manifest")))
            .collect();
        for file in files {
            let mut content = file.content.clone();
            if configs.iter().any(|c| c.dest == file.dest) {
                // Longest first, so that /a/b.conf is not rewritten inside /a/b.conf.d/x.
                let mut dests: Vec<&str> = files.iter().map(|f| f.dest.as_str()).collect();
                dests.extend(gate_logs.iter().map(String::as_str));
                dests.sort_by_key(|d| std::cmp::Reverse(d.len()));
                for dest in dests {
                    content = content.replace(dest, &in_scratch(dest));
                }
            }
            let path = PathBuf::from(in_scratch(&file.dest));
            std::fs::create_dir_all(path.parent().unwrap_or(&root))?;
            std::fs::write(&path, content)?;
        }
        let main = configs
            .iter()
            .find(|f| file_name(&f.dest) == self.main_name())
            .map(|f| PathBuf::from(in_scratch(&f.dest)));
        let mut args: Vec<std::ffi::OsString> = Vec::new();
        let wrapped = main.is_none();
        match self.kind {
            Kind::Nginx => {
                let conf = match &main {
                    Some(main) => main.clone(),
                    None => nginx_wrapper(dir, configs.iter().map(|f| in_scratch(&f.dest)))?,
                };
                args.extend(["-t".into(), "-e".into(), "stderr".into()]);
                args.extend(["-p".into(), dir.into(), "-c".into(), conf.into()]);
            }
            Kind::Haproxy => {
                args.push("-c".into());
                if wrapped {
                    args.extend(["-f".into(), haproxy_wrapper(dir)?.into()]);
                } else if let Some(main) = &main {
                    args.extend(["-f".into(), main.into()]);
                }
                for file in &configs {
                    if file_name(&file.dest) != self.main_name() {
                        args.extend(["-f".into(), in_scratch(&file.dest).into()]);
                    }
                }
            }
        }
        let out = self.run(&args, dir)?;
        let output = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let output = validator_output(
            &output
                .replace(&root.display().to_string(), "")
                .replace(&dir.display().to_string(), "<lint>"),
        );
        // haproxy exits 2 for a valid config that would not start for want
        // of a listener: the usual state of a backend checked on its own.
        let valid = out.status.success()
            || (self.kind == Kind::Haproxy && wrapped && out.status.code() == Some(2));
        if valid {
            return Ok(Verdict::Valid);
        }
        if let Some(reason) = environment_failure(&output, files) {
            return Ok(Verdict::Unverifiable { reason });
        }
        Ok(Verdict::Invalid {
            rejected: RejectedFile::shown(&configs, &output),
            output,
        })
    }

    /// Runs the validator in a network namespace of its own when it can
    /// (`unshare --net`, root only): `nginx -t` binds the ports it would
    /// listen on, and must neither collide with a proxy running here nor
    /// hold this machine's ports, even for a moment.
    fn run(&self, args: &[std::ffi::OsString], dir: &Path) -> std::io::Result<Output> {
        if let Some(unshare) = find_program("unshare") {
            let out = Command::new(unshare)
                .arg("--net")
                .arg(&self.program)
                .args(args)
                .current_dir(dir)
                .output()?;
            // Not root, or not allowed here (a container): run it plainly.
            if !String::from_utf8_lossy(&out.stderr).starts_with("unshare: ") {
                return Ok(out);
            }
        }
        Command::new(&self.program)
            .args(args)
            .current_dir(dir)
            .output()
    }

    /// The command line shown in messages.
    pub fn describe(&self) -> String {
        match self.kind {
            Kind::Nginx => format!("{} -t", self.program.display()),
            Kind::Haproxy => format!("{} -c", self.program.display()),
        }
    }

    fn is_config(&self, file: &RenderedFile) -> bool {
        let suffix = match self.kind {
            Kind::Nginx => ".conf",
            Kind::Haproxy => ".cfg",
        };
        file.dest.ends_with(suffix)
    }

    fn main_name(&self) -> &'static str {
        match self.kind {
            Kind::Nginx => "nginx.conf",
            Kind::Haproxy => "haproxy.cfg",
        }
    }
}

/// The main config around `includes`: nginx's compiled-in pid and temp
/// paths are redirected into the scratch directory and the default access
/// log is off, so that the check works without root and writes nothing
/// else (log files the included files name are opened, as `nginx -t`
/// always does).
fn nginx_wrapper(dir: &Path, includes: impl Iterator<Item = String>) -> std::io::Result<PathBuf> {
    let temp = dir.join("temp");
    std::fs::create_dir_all(&temp)?;
    let temp = temp.display();
    let mut conf = format!(
        "pid {dir}/nginx.pid;\nevents {{}}\nhttp {{\n    access_log off;\n    client_body_temp_path {temp}/body;\n    proxy_temp_path {temp}/proxy;\n    fastcgi_temp_path {temp}/fastcgi;\n    uwsgi_temp_path {temp}/uwsgi;\n    scgi_temp_path {temp}/scgi;\n",
        dir = dir.display()
    );
    for include in includes {
        conf.push_str(&format!("    include {include};\n"));
    }
    conf.push_str("}\n");
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf)?;
    Ok(path)
}

/// What a backend or frontend needs before it: a mode and the timeouts
/// haproxy warns about.
fn haproxy_wrapper(dir: &Path) -> std::io::Result<PathBuf> {
    let path = dir.join("haproxy.cfg");
    std::fs::write(
        &path,
        "defaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n",
    )?;
    Ok(path)
}

/// The reason, when every error the validator reports is about a file that
/// exists only on the proxy host (or that this user may not open), and
/// none about what convoy rendered.
fn environment_failure(output: &str, files: &[RenderedFile]) -> Option<String> {
    const SUMMARIES: [&str; 3] = [
        "test failed",
        "Error(s) found in configuration file",
        "Fatal errors found",
    ];
    const NOT_HERE: [&str; 7] = [
        "No such file or directory",
        "Permission denied",
        "error opening file",
        "cannot load certificate",
        "unable to load",
        // `nginx -t` binds the ports it would listen on (after parsing).
        "Address already in use",
        "Cannot assign requested address",
    ];
    let errors: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("[emerg]") || l.contains("[ALERT]"))
        .filter(|l| !SUMMARIES.iter().any(|s| l.contains(s)))
        .collect();
    let rendered = |line: &str| files.iter().any(|f| line.contains(&f.dest));
    let about_host = |line: &&str| {
        NOT_HERE.iter().any(|n| line.contains(n))
            && !rendered(line.split(" in /").next().unwrap_or(line))
    };
    if !errors.is_empty() && errors.iter().all(about_host) {
        Some(errors[0].trim().to_owned())
    } else {
        None
    }
}

fn file_name(dest: &str) -> &str {
    dest.rsplit('/').next().unwrap_or(dest)
}

/// `name` on `PATH`, else in an sbin directory.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dest: &str, content: &str) -> RenderedFile {
        RenderedFile {
            dest: dest.into(),
            content: content.into(),
            mode: None,
            template: format!("templates{dest}.j2"),
        }
    }

    #[test]
    fn the_validator_is_the_program_the_command_runs() {
        assert_eq!(Kind::of_command("nginx -t"), Some(Kind::Nginx));
        assert_eq!(
            Kind::of_command("sudo /usr/sbin/nginx -t -q"),
            Some(Kind::Nginx)
        );
        assert_eq!(
            Kind::of_command("env LANG=C haproxy -c -f /etc/haproxy"),
            Some(Kind::Haproxy)
        );
        assert_eq!(Kind::of_command("/usr/local/bin/check-proxy"), None);
        assert_eq!(Kind::of_command("nginx-wrapper -t"), None);
    }

    #[test]
    fn a_missing_file_of_the_proxy_host_is_not_a_problem_of_the_files() {
        let files = [file("/etc/nginx/conf.d/a.conf", "")];
        let missing_cert = "nginx: [emerg] cannot load certificate \"/etc/ssl/a.pem\": BIO_new_file() failed in /etc/nginx/conf.d/a.conf:4\nnginx: configuration file <lint>/nginx.conf test failed\n";
        assert!(environment_failure(missing_cert, &files).is_some());
        let log = "nginx: [emerg] open() \"/var/log/nginx/a.log\" failed (13: Permission denied)\n";
        assert!(environment_failure(log, &files).is_some());
        let port =
            "nginx: [emerg] bind() to 10.9.0.1:80 failed (99: Cannot assign requested address)\n";
        assert!(environment_failure(port, &files).is_some());
        let typo = "nginx: [emerg] unknown directive \"bogus\" in /etc/nginx/conf.d/a.conf:3\nnginx: configuration file <lint>/nginx.conf test failed\n";
        assert_eq!(environment_failure(typo, &files), None);
        // A file convoy rendered that cannot be opened is convoy's problem.
        let rendered = "nginx: [emerg] open() \"/etc/nginx/conf.d/a.conf\" failed (2: No such file or directory)\n";
        assert_eq!(environment_failure(rendered, &files), None);
    }

    /// The real validator: these tests need nginx and haproxy installed
    /// (.ci/run installs them, as the integration tests need them too).
    fn with(kind: Kind, test: impl FnOnce(Validator)) {
        let validator = Validator::find(kind)
            .unwrap_or_else(|| panic!("{} is not installed (.ci/run installs it)", kind.program()));
        test(validator);
    }

    #[test]
    fn nginx_checks_a_site_inside_http_and_names_the_real_file() {
        with(Kind::Nginx, |nginx| {
            let good = file(
                "/etc/nginx/conf.d/app.conf",
                "upstream app { server 10.1.2.3:8080; }\nserver {\n    listen 8081;\n    location / { proxy_pass http://app; }\n}\n",
            );
            assert!(matches!(
                nginx.check(std::slice::from_ref(&good)).unwrap(),
                Verdict::Valid
            ));
            let bad = file(
                "/etc/nginx/conf.d/b.conf",
                "server {\n    listen 8082;\n    bogus on;\n}\n",
            );
            match nginx.check(&[good, bad]).unwrap() {
                Verdict::Invalid { output, rejected } => {
                    assert!(
                        output
                            .contains("unknown directive \"bogus\" in /etc/nginx/conf.d/b.conf:3"),
                        "{output}"
                    );
                    assert_eq!(rejected.len(), 1);
                    assert_eq!(rejected[0].dest, "/etc/nginx/conf.d/b.conf");
                }
                other => panic!("{other:?}"),
            }
        });
    }

    #[test]
    fn haproxy_checks_a_backend_on_its_own_and_finds_rendered_pages() {
        with(Kind::Haproxy, |haproxy| {
            let page = file("/etc/haproxy/app-maintenance.html", "<p>back soon</p>\n");
            let backend = file(
                "/etc/haproxy/conf.d/app.cfg",
                "backend app\n    http-request return status 503 content-type text/html file /etc/haproxy/app-maintenance.html\n    server a 10.1.2.3:8080 check disabled\n",
            );
            let verdict = haproxy.check(&[page, backend]).unwrap();
            assert!(matches!(verdict, Verdict::Valid), "{verdict:?}");
            let typo = file(
                "/etc/haproxy/conf.d/app.cfg",
                "backend app\n    server a 10.1.2.3:8080 chek\n",
            );
            match haproxy.check(&[typo]).unwrap() {
                Verdict::Invalid { output, rejected } => {
                    assert!(output.contains("/etc/haproxy/conf.d/app.cfg:2"), "{output}");
                    assert_eq!(rejected[0].dest, "/etc/haproxy/conf.d/app.cfg");
                }
                other => panic!("{other:?}"),
            }
        });
    }
}
