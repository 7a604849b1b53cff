//! What the janitor kill test prints about its kills: how many landed
//! mid-sweep, which cut a rule short between its store work and its record,
//! and the whole timeline. Printed, not asserted: the invariants hold
//! whatever the timing.

use std::collections::{BTreeMap, BTreeSet};

use super::support::{Effect, EXPIRE, TIER};
use crate::topic_log::Record;

/// Prints the kill report of a run with `seed`: `kills` SIGKILLs at
/// `killed_at_ms`, what each left `begun` in the stores, the retention
/// records `by_rule`, and the janitor's `timeline`.
pub(super) fn kills(
    by_rule: &BTreeMap<(String, String), Vec<&Record>>,
    killed_at_ms: &[i64],
    begun: &[(i64, Vec<Effect>)],
    mut timeline: Vec<(i64, String)>,
    kills: usize,
    seed: u64,
) {
    // How many kills landed mid-sweep: after the first retention record and
    // before every rule had been recorded once.
    let first = by_rule
        .values()
        .flatten()
        .map(|r| r.at_ms())
        .min()
        .unwrap_or(0);
    let all_once = by_rule
        .values()
        .map(|rs| rs.iter().map(|r| r.at_ms()).min().unwrap_or(0))
        .max()
        .unwrap_or(0);
    let mid = killed_at_ms
        .iter()
        .filter(|&&k| first < k && k < all_once)
        .count();
    let records: usize = by_rule.values().map(Vec::len).sum();
    // Kills between a rule's effects in the stores and its record: nothing
    // recorded for it (or, for a move, for the expiry that supersedes it)
    // before the kill.
    let recorded_by = |job: &str, rule: &str, at: i64| {
        by_rule
            .get(&(job.to_owned(), rule.to_owned()))
            .is_some_and(|rs| rs.iter().any(|r| r.at_ms() <= at))
    };
    let mut cut_kills = 0;
    let mut cut_rules = BTreeSet::new();
    for (k, (at, effects)) in begun.iter().enumerate() {
        let cut: Vec<String> = effects
            .iter()
            .filter(|(job, rule, _)| {
                let superseded = *rule == TIER && recorded_by(job, EXPIRE, *at);
                !recorded_by(job, rule, *at) && !superseded
            })
            .map(|(job, rule, what)| {
                cut_rules.insert((job.clone(), *rule));
                format!("{job} {rule} ({what})")
            })
            .collect();
        if !cut.is_empty() {
            cut_kills += 1;
            eprintln!(
                "[janitor-kill] SIGKILL {} cut short: {}",
                k + 1,
                cut.join("; ")
            );
        }
    }
    let zero = by_rule
        .values()
        .flatten()
        .filter(|r| r.value["data"]["bytes"].as_u64() == Some(0))
        .count();
    for rs in by_rule.values() {
        for r in rs {
            timeline.push((
                r.at_ms(),
                format!(
                    "recorded {} {} ({} bytes)",
                    r.job(),
                    r.value["data"]["rule"].as_str().unwrap_or_default(),
                    r.value["data"]["bytes"]
                ),
            ));
        }
    }
    timeline.sort();
    let start = timeline.first().map_or(0, |t| t.0);
    for (at, what) in &timeline {
        eprintln!("[janitor-kill] +{:>5} ms {what}", at - start);
    }
    eprintln!(
        "[janitor-kill] {mid} of {kills} kills landed mid-sweep; {cut_kills} kills found {} rules \
         begun in the stores but not yet recorded; {zero} records say 0 bytes (a killed run's \
         work is not counted); {} rules recorded once in the projections from {records} records on \
         sprocket.events (seed {seed})",
        cut_rules.len(),
        by_rule.len()
    );
}
