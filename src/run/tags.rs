//! `--tags` / `--skip-tags`, with Ansible's special `always` and `never`.

#[derive(Debug, Clone, Default)]
pub struct TagFilter {
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

impl TagFilter {
    /// Does a task with these (inherited + own) tags run?
    pub fn runs(&self, tags: &[String]) -> bool {
        let has = |t: &str| tags.iter().any(|x| x == t);
        let any_of = |list: &[String]| list.iter().any(|t| t == "all" || has(t));
        if any_of(&self.skip) {
            return false;
        }
        if has("never") && !self.only.iter().any(|t| has(t)) {
            return false;
        }
        self.only.is_empty() || has("always") || any_of(&self.only)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn filters_like_ansible() {
        let none = TagFilter::default();
        assert!(none.runs(&tags(&["web"])));
        assert!(!none.runs(&tags(&["never"])));
        let only = TagFilter {
            only: tags(&["web"]),
            skip: vec![],
        };
        assert!(only.runs(&tags(&["web", "db"])));
        assert!(!only.runs(&tags(&["db"])));
        assert!(only.runs(&tags(&["always"])));
        let skip = TagFilter {
            only: vec![],
            skip: tags(&["db"]),
        };
        assert!(!skip.runs(&tags(&["db"])));
        assert!(skip.runs(&tags(&[])));
    }
}
