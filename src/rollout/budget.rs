//! The failure budget over the whole rollout (not per batch): once more
//! hosts have failed than it allows, no new batch starts.

use crate::playbook::Size;

#[derive(Debug, Clone)]
pub struct FailureBudget {
    allowed: usize,
    failed: Vec<String>,
}

impl FailureBudget {
    pub fn new(max_fail: Size, total_hosts: usize) -> Self {
        Self {
            allowed: max_fail.budget(total_hosts),
            failed: Vec::new(),
        }
    }

    pub fn fail(&mut self, host: &str) {
        if !self.failed.iter().any(|h| h == host) {
            self.failed.push(host.to_owned());
        }
    }

    pub fn exceeded(&self) -> bool {
        self.failed.len() > self.allowed
    }

    pub fn failed(&self) -> &[String] {
        &self.failed
    }

    pub fn allowed(&self) -> usize {
        self.allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_over_the_whole_rollout() {
        let mut b = FailureBudget::new(Size::Count(1), 10);
        b.fail("h1");
        b.fail("h1");
        assert!(!b.exceeded());
        b.fail("h2");
        assert!(b.exceeded());
        let mut p = FailureBudget::new(Size::Percent(10.0), 20);
        assert_eq!(p.allowed(), 2);
        p.fail("a");
        p.fail("b");
        assert!(!p.exceeded());
    }
}
