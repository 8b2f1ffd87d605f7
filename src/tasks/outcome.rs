use crate::vars::{Value, VarMap};

/// What one action did on one host.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub changed: bool,
    pub failed: bool,
    pub skipped: bool,
    pub msg: Option<String>,
    /// Before/after of files, for `--diff`.
    pub diffs: Vec<FileDiff>,
    /// The fields a `register:` exposes (rc, stdout, stat, ...).
    pub result: VarMap,
    /// Variables to set on the host (`set_fact`).
    pub facts: VarMap,
    /// Facts gathered (`setup`): they rank below play variables, as in
    /// Ansible, where `facts` rank above them.
    pub gathered: VarMap,
    /// Where a delegated task ran, as ansible-core's output labels it
    /// (`h2`, or `h2(ADDRESS)` when the host's `ansible_host` differs):
    /// the result line reads `[h1 -> h2]`.
    pub delegated_to: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FileDiff {
    pub path: String,
    pub before: String,
    pub after: String,
}

impl Outcome {
    pub fn ok() -> Self {
        Self::default()
    }
    pub fn changed(changed: bool) -> Self {
        Self {
            changed,
            ..Self::default()
        }
    }
    pub fn failed(msg: impl Into<String>) -> Self {
        Self {
            failed: true,
            msg: Some(msg.into()),
            ..Self::default()
        }
    }
    pub fn with_msg(mut self, msg: impl Into<String>) -> Self {
        self.msg = Some(msg.into());
        self
    }
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.result.insert(key.to_owned(), value.into());
        self
    }

    /// The registered variable, as Ansible shapes it.
    pub fn to_registered(&self) -> Value {
        let mut map = self.result.clone();
        map.insert("changed".into(), self.changed.into());
        map.insert("failed".into(), self.failed.into());
        if self.skipped {
            map.insert("skipped".into(), true.into());
        }
        if let Some(msg) = &self.msg {
            map.entry("msg").or_insert_with(|| msg.clone().into());
        }
        Value::Object(map)
    }
}
