//! Hosts into batches: order them (inventory, sorted, seeded shuffle, or
//! group by group), take the canary, then batches of the ramp's sizes
//! (the last size repeats).

use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::playbook::{Order, RolloutSpec};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Batch {
    pub hosts: Vec<String>,
    pub canary: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RolloutPlan {
    pub batches: Vec<Batch>,
    /// The shuffle's seed, printed so that a run can be repeated.
    pub seed: Option<u64>,
}

impl RolloutPlan {
    /// `hosts` in inventory order; `groups` maps a group name to its hosts
    /// (for `order: groups`). Hosts in none of the listed groups come last.
    pub fn build(
        spec: &RolloutSpec,
        hosts: &[String],
        groups: &dyn Fn(&str) -> Vec<String>,
    ) -> RolloutPlan {
        let mut seed = None;
        let ordered: Vec<String> = match &spec.order {
            crate::playbook::Order::Inventory => hosts.to_vec(),
            Order::Sorted => {
                let mut v = hosts.to_vec();
                v.sort();
                v
            }
            Order::Shuffle { seed: given } => {
                let s = given.unwrap_or_else(rand::random);
                seed = Some(s);
                let mut v = hosts.to_vec();
                v.shuffle(&mut rand::rngs::StdRng::seed_from_u64(s));
                v
            }
            Order::Groups(names) => {
                let mut v: Vec<String> = Vec::new();
                for g in names {
                    for h in groups(g) {
                        if hosts.contains(&h) && !v.contains(&h) {
                            v.push(h);
                        }
                    }
                }
                v.extend(
                    hosts
                        .iter()
                        .filter(|h| !v.contains(h))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
                v
            }
        };
        let total = ordered.len();
        let mut batches = Vec::new();
        let mut rest = ordered.as_slice();
        if let Some(canary) = spec.canary {
            let n = canary.of(total).max(1).min(rest.len());
            if n > 0 {
                batches.push(Batch {
                    hosts: rest[..n].to_vec(),
                    canary: true,
                });
                rest = &rest[n..];
            }
        }
        let mut step = 0;
        while !rest.is_empty() {
            let size = spec.batch[step.min(spec.batch.len() - 1)];
            let n = size.of(total).max(1).min(rest.len());
            batches.push(Batch {
                hosts: rest[..n].to_vec(),
                canary: false,
            });
            rest = &rest[n..];
            step += 1;
        }
        RolloutPlan { batches, seed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::Size;

    fn hosts(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("h{i}")).collect()
    }

    fn sizes(plan: &RolloutPlan) -> Vec<usize> {
        plan.batches.iter().map(|b| b.hosts.len()).collect()
    }

    fn spec(canary: Option<Size>, batch: Vec<Size>) -> RolloutSpec {
        RolloutSpec {
            canary,
            batch,
            ..RolloutSpec::default()
        }
    }

    #[test]
    fn canary_then_halves() {
        let plan = RolloutPlan::build(
            &spec(Some(Size::Count(1)), vec![Size::Percent(50.0)]),
            &hosts(7),
            &|_| vec![],
        );
        assert_eq!(sizes(&plan), [1, 4, 2]);
        assert!(plan.batches[0].canary);
    }

    #[test]
    fn ramp_repeats_its_last_size() {
        let plan = RolloutPlan::build(
            &spec(
                None,
                vec![Size::Count(1), Size::Percent(10.0), Size::Percent(50.0)],
            ),
            &hosts(20),
            &|_| vec![],
        );
        assert_eq!(sizes(&plan), [1, 2, 10, 7]);
    }

    #[test]
    fn shuffle_is_repeatable_with_its_seed() {
        let mut s = spec(None, vec![Size::Count(5)]);
        s.order = Order::Shuffle { seed: Some(42) };
        let a = RolloutPlan::build(&s, &hosts(20), &|_| vec![]);
        let b = RolloutPlan::build(&s, &hosts(20), &|_| vec![]);
        assert_eq!(a, b);
        assert_ne!(a.batches[0].hosts, hosts(5));
        assert_eq!(a.seed, Some(42));
    }

    #[test]
    fn groups_go_one_after_another() {
        let mut s = spec(None, vec![Size::Count(2)]);
        s.order = Order::Groups(vec!["dc2".into(), "dc1".into()]);
        let groups = |g: &str| match g {
            "dc1" => vec!["h1".to_owned(), "h2".to_owned()],
            _ => vec!["h3".to_owned(), "h4".to_owned()],
        };
        let plan = RolloutPlan::build(&s, &hosts(5), &groups);
        assert_eq!(plan.batches[0].hosts, ["h3", "h4"]);
        assert_eq!(plan.batches[1].hosts, ["h1", "h2"]);
        assert_eq!(plan.batches[2].hosts, ["h5"]);
    }
}
