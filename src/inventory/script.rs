//! Executable ("dynamic") inventories.
//!
//! Ansible runs an executable inventory with `--list` and reads JSON: each
//! key is a group holding `hosts`, `children` and `vars` (or, in the old
//! form, just a list of hosts), and `_meta.hostvars` holds every host's
//! variables. Scripts without `_meta` are asked `--host NAME` once per host.
//! Cloud inventory scripts written for Ansible therefore work unchanged.
//!
//! The script runs synchronously: this happens once at startup, before any
//! connection is opened, so there is nothing to overlap it with.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Inventory, InventoryError};
use crate::vars::{Value, VarMap};

/// Runs the inventory script at `path` and adds what it reports.
pub(super) fn load(inventory: &mut Inventory, path: &Path) -> Result<(), InventoryError> {
    let script = Script { path };
    let list = match script.run(&["--list"])? {
        Value::Object(map) => map,
        other => {
            return Err(script.data_error(
                "--list",
                format!("printed {}, not a JSON object", kind(&other)),
            ));
        }
    };

    // Hosts the groups named, in order; only these get `_meta` variables, as in Ansible.
    let mut seen = Seen::default();
    let mut meta_hostvars: Option<VarMap> = None;
    for (group, data) in list {
        if group == "_meta" {
            match data.get("hostvars") {
                None => {}
                Some(Value::Object(hostvars)) => meta_hostvars = Some(hostvars.clone()),
                Some(Value::Null) => meta_hostvars = Some(VarMap::new()),
                Some(other) => {
                    let message = format!("`_meta.hostvars` is {}, not an object", kind(other));
                    return Err(script.data_error("--list", message));
                }
            }
            continue;
        }
        script.add_group(inventory, &group, data, &mut seen)?;
    }

    for host in seen.order {
        let name = inventory.hosts[host].name.clone();
        let vars = match &meta_hostvars {
            Some(hostvars) => match hostvars.get(&name) {
                None | Some(Value::Null) => continue,
                Some(Value::Object(vars)) => vars.clone(),
                Some(other) => {
                    let message =
                        format!("`_meta.hostvars.{name}` is {}, not an object", kind(other));
                    return Err(script.data_error("--list", message));
                }
            },
            None => match script.run(&["--host", &name])? {
                Value::Object(vars) => vars,
                Value::Null => continue,
                other => {
                    let message = format!("printed {}, not a JSON object", kind(&other));
                    return Err(script.data_error(&format!("--host {name}"), message));
                }
            },
        };
        for (key, value) in vars {
            inventory.set_host_var(host, key, value);
        }
    }
    Ok(())
}

/// Hosts named by the groups, in first-seen order, without repeats.
#[derive(Default)]
struct Seen {
    order: Vec<usize>,
    set: HashSet<usize>,
}

struct Script<'a> {
    path: &'a Path,
}

impl Script<'_> {
    /// Adds one group of the `--list` output, in Ansible's accepted forms.
    fn add_group(
        &self,
        inventory: &mut Inventory,
        name: &str,
        data: Value,
        seen: &mut Seen,
    ) -> Result<(), InventoryError> {
        let group = inventory.add_group(name);
        let invalid = |what: &str, value: &Value| {
            let message = format!("group \"{name}\": {what} is {}, not a list", kind(value));
            self.data_error("--list", message)
        };
        let mut data = match data {
            Value::Object(map) => map,
            // The old form: a group is just its list of hosts.
            hosts @ Value::Array(_) => VarMap::from_iter([("hosts".to_owned(), hosts)]),
            other => return Err(invalid("its value", &other)),
        };
        // Ansible's other shorthand: an object without any known key is the
        // variables of a host named like the group.
        if !data.is_empty()
            && !["hosts", "children", "vars"]
                .iter()
                .any(|k| data.contains_key(*k))
        {
            let vars = std::mem::take(&mut data);
            data.insert(
                "hosts".into(),
                Value::Array(vec![Value::String(name.to_owned())]),
            );
            data.insert("vars".into(), Value::Object(vars));
        }

        match data.remove("hosts").unwrap_or(Value::Null) {
            Value::Null => {}
            Value::Array(hosts) => {
                for host in hosts {
                    let Value::String(host) = host else {
                        return Err(invalid("a host name", &host));
                    };
                    let index = inventory.add_host(&host, group, self.path);
                    if seen.set.insert(index) {
                        seen.order.push(index);
                    }
                }
            }
            other => return Err(invalid("`hosts`", &other)),
        }
        match data.remove("vars").unwrap_or(Value::Null) {
            Value::Null => {}
            Value::Object(vars) => {
                for (key, value) in vars {
                    inventory.set_group_var(group, key, value);
                }
            }
            other => {
                let message = format!(
                    "group \"{name}\": `vars` is {}, not an object",
                    kind(&other)
                );
                return Err(self.data_error("--list", message));
            }
        }
        match data.remove("children").unwrap_or(Value::Null) {
            Value::Null => {}
            Value::Array(children) => {
                for child in children {
                    let Value::String(child) = child else {
                        return Err(invalid("a child group name", &child));
                    };
                    let child = inventory.add_group(&child);
                    inventory.add_child(group, child);
                }
            }
            other => return Err(invalid("`children`", &other)),
        }
        Ok(())
    }

    /// Runs the script with `args` and parses its stdout as JSON.
    fn run(&self, args: &[&str]) -> Result<Value, InventoryError> {
        let output = spawn(&self.program(), args).map_err(|error| InventoryError::ScriptRun {
            path: self.path.to_owned(),
            error,
        })?;
        if !output.status.success() {
            return Err(InventoryError::ScriptFailed {
                path: self.path.to_owned(),
                args: args.join(" "),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        serde_json::from_slice(&output.stdout).map_err(|e| {
            let message = e.to_string();
            // serde_json appends " at line L column C"; we place it ourselves.
            let message = match message.rfind(" at line ") {
                Some(at) => message[..at].to_owned(),
                None => message,
            };
            InventoryError::ScriptJson {
                path: self.path.to_owned(),
                args: args.join(" "),
                line: e.line(),
                column: e.column(),
                message,
            }
        })
    }

    /// The path to execute: a bare file name would be searched in `$PATH`,
    /// so it is made explicitly relative.
    fn program(&self) -> PathBuf {
        if self.path.is_relative() && self.path.components().count() == 1 {
            Path::new(".").join(self.path)
        } else {
            self.path.to_owned()
        }
    }

    fn data_error(&self, args: &str, message: String) -> InventoryError {
        InventoryError::ScriptData {
            path: self.path.to_owned(),
            args: args.to_owned(),
            message,
        }
    }
}

/// Runs the program, retrying briefly on "text file busy": a script that was
/// just written can still be open for writing in a process forked meanwhile.
fn spawn(program: &Path, args: &[&str]) -> io::Result<std::process::Output> {
    let mut attempts = 0;
    loop {
        let result = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output();
        match result {
            Err(e) if e.kind() == io::ErrorKind::ExecutableFileBusy && attempts < 10 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            result => return result,
        }
    }
}

/// A JSON value's kind, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::super::Inventory;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    /// Writes an executable shell script into `dir`.
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn error(path: &Path) -> String {
        let message = Inventory::load(&[path.to_owned()]).unwrap_err().to_string();
        message.replace(&path.display().to_string(), "SCRIPT")
    }

    #[test]
    fn list_with_meta() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(
            dir.path(),
            "inv.sh",
            r#"[ "$1" = --list ] || exit 3
cat <<'EOF'
{
  "web": {"hosts": ["web1", "web2"], "vars": {"tier": "front"}},
  "db": ["db1"],
  "prod": {"children": ["web", "db"], "vars": {"env": "prod"}},
  "_meta": {"hostvars": {"web1": {"ansible_host": "10.0.0.1"}, "stray": {"x": 1}}}
}
EOF
"#,
        );
        let inv = Inventory::load(&[path]).unwrap();
        let names: Vec<&str> = inv.hosts().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["web1", "web2", "db1"]);
        assert_eq!(inv.groups()["prod"], ["web1", "web2", "db1"]);
        let web1 = inv.host_vars("web1");
        assert_eq!(web1["ansible_host"], "10.0.0.1");
        assert_eq!(
            (&web1["tier"], &web1["env"]),
            (&"front".into(), &"prod".into())
        );
        assert!(inv.host("stray").is_none());
        assert_eq!(inv.group_names("db1"), ["db", "prod"]);
    }

    #[test]
    fn without_meta_asks_each_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(
            dir.path(),
            "inv",
            r#"case "$1" in
  --list) echo '{"web": {"hosts": ["a", "b"]}}' ;;
  --host) echo "{\"who\": \"$2\"}" ;;
  *) exit 2 ;;
esac
"#,
        );
        let inv = Inventory::load(&[path]).unwrap();
        assert_eq!(inv.host_vars("a")["who"], "a");
        assert_eq!(inv.host_vars("b")["who"], "b");
    }

    #[test]
    fn failing_script_names_program_status_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(
            dir.path(),
            "inv",
            "echo 'cannot reach the cloud API' >&2\nexit 4\n",
        );
        assert_eq!(
            error(&path),
            "inventory script SCRIPT --list failed (exit status: 4): cannot reach the cloud API"
        );
        let path = script(dir.path(), "quiet", "exit 1\n");
        assert_eq!(
            error(&path),
            "inventory script SCRIPT --list failed (exit status: 1): it printed nothing on stderr"
        );
    }

    #[test]
    fn invalid_json_names_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(dir.path(), "inv", "printf '{\\n  \"web\": [\"a\",]\\n}'\n");
        assert_eq!(
            error(&path),
            "inventory script SCRIPT --list printed invalid JSON at line 2 column 15: \
             trailing comma"
        );
    }

    #[test]
    fn wrong_shapes_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(dir.path(), "inv", "echo '[1]'\n");
        assert_eq!(
            error(&path),
            "inventory script SCRIPT --list: printed a list, not a JSON object"
        );
        let path = script(dir.path(), "inv2", "echo '{\"web\": {\"hosts\": \"a\"}}'\n");
        assert_eq!(
            error(&path),
            "inventory script SCRIPT --list: group \"web\": `hosts` is a string, not a list"
        );
        let path = script(dir.path(), "inv3", "echo '{\"web\": {\"vars\": [1]}}'\n");
        assert_eq!(
            error(&path),
            "inventory script SCRIPT --list: group \"web\": `vars` is a list, not an object"
        );
    }

    #[test]
    fn unrunnable_script_names_the_os_reason() {
        let dir = tempfile::tempdir().unwrap();
        // Executable bit set, but the interpreter does not exist.
        let path = dir.path().join("inv");
        std::fs::write(&path, "#!/nonexistent/interpreter\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            error(&path),
            "cannot run inventory script SCRIPT: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn legacy_group_shorthand_is_a_host_with_vars() {
        let dir = tempfile::tempdir().unwrap();
        let path = script(
            dir.path(),
            "inv",
            "[ \"$1\" = --list ] && echo '{\"solo\": {\"x\": 1}, \"_meta\": {}}' || echo '{}'\n",
        );
        let inv = Inventory::load(&[path]).unwrap();
        assert_eq!(inv.groups()["solo"], ["solo"]);
        assert_eq!(inv.host_vars("solo")["x"], 1);
    }

    #[test]
    fn executable_yaml_is_still_yaml() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.yml");
        std::fs::write(&path, "all:\n  hosts: {h:}\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let inv = Inventory::load(&[path]).unwrap();
        assert!(inv.host("h").is_some());
    }
}
