//! Ansible's list-combining filters: `product`, `zip`, `zip_longest`,
//! `permutations`, `combinations` (Python's itertools, as ansible-core's
//! `mathstuff` and core filters expose them), each giving a list of lists.

use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error, Value};

use super::filters::{defined, invalid};

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("product", product);
    env.add_filter("zip", zip);
    env.add_filter("zip_longest", zip_longest);
    env.add_filter("permutations", permutations);
    env.add_filter("combinations", combinations);
}

fn items(value: &Value, filter: &str) -> Result<Vec<Value>, Error> {
    defined(value)?;
    value
        .try_iter()
        .map(Iterator::collect)
        .map_err(|_| invalid(format!("{filter}: {value} is not a list")))
}

/// `a | product(b, c)`: every combination of one item from each, in order.
fn product(first: &Value, others: Rest<Value>) -> Result<Value, Error> {
    let mut rows: Vec<Vec<Value>> = vec![Vec::new()];
    for list in std::iter::once(first).chain(others.iter()) {
        let list = items(list, "product")?;
        rows = rows
            .into_iter()
            .flat_map(|row| {
                list.iter().map(move |item| {
                    let mut next = row.clone();
                    next.push(item.clone());
                    next
                })
            })
            .collect();
    }
    Ok(Value::from(
        rows.into_iter().map(Value::from).collect::<Vec<_>>(),
    ))
}

fn columns(first: &Value, others: &[Value], filter: &str) -> Result<Vec<Vec<Value>>, Error> {
    std::iter::once(first)
        .chain(others.iter())
        .map(|l| items(l, filter))
        .collect()
}

/// `a | zip(b)`: pairs up to the shortest list.
fn zip(first: &Value, others: Rest<Value>) -> Result<Value, Error> {
    let lists = columns(first, &others, "zip")?;
    let len = lists.iter().map(Vec::len).min().unwrap_or(0);
    Ok(Value::from(
        (0..len)
            .map(|i| Value::from(lists.iter().map(|l| l[i].clone()).collect::<Vec<_>>()))
            .collect::<Vec<_>>(),
    ))
}

/// `a | zip_longest(b, fillvalue=x)`: up to the longest, gaps filled (none by default).
fn zip_longest(first: &Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let fill = kwargs
        .get::<Option<Value>>("fillvalue")?
        .unwrap_or(Value::from(()));
    kwargs.assert_all_used()?;
    let lists = columns(first, &others, "zip_longest")?;
    let len = lists.iter().map(Vec::len).max().unwrap_or(0);
    Ok(Value::from(
        (0..len)
            .map(|i| {
                Value::from(
                    lists
                        .iter()
                        .map(|l| l.get(i).cloned().unwrap_or_else(|| fill.clone()))
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>(),
    ))
}

/// `a | permutations(r)`: ordered arrangements of r items (all of them by default).
fn permutations(value: &Value, r: Option<usize>) -> Result<Value, Error> {
    let pool = items(value, "permutations")?;
    let r = r.unwrap_or(pool.len());
    let mut out = Vec::new();
    let mut used = vec![false; pool.len()];
    let mut row = Vec::new();
    fn walk(
        pool: &[Value],
        r: usize,
        used: &mut [bool],
        row: &mut Vec<Value>,
        out: &mut Vec<Value>,
    ) {
        if row.len() == r {
            out.push(Value::from(row.clone()));
            return;
        }
        for i in 0..pool.len() {
            if !used[i] {
                used[i] = true;
                row.push(pool[i].clone());
                walk(pool, r, used, row, out);
                row.pop();
                used[i] = false;
            }
        }
    }
    if r <= pool.len() {
        walk(&pool, r, &mut used, &mut row, &mut out);
    }
    Ok(Value::from(out))
}

/// `a | combinations(r)`: r items in their list order, each set once.
fn combinations(value: &Value, r: usize) -> Result<Value, Error> {
    let pool = items(value, "combinations")?;
    let mut out = Vec::new();
    fn walk(pool: &[Value], start: usize, r: usize, row: &mut Vec<Value>, out: &mut Vec<Value>) {
        if row.len() == r {
            out.push(Value::from(row.clone()));
            return;
        }
        for i in start..pool.len() {
            row.push(pool[i].clone());
            walk(pool, i + 1, r, row, out);
            row.pop();
        }
    }
    walk(&pool, 0, r, &mut Vec::new(), &mut out);
    Ok(Value::from(out))
}
