//! The work queue: LoadTest names due at an instant. A name is handed out to one worker at a
//! time; a change that arrives while it is being reconciled marks it dirty, and it is queued
//! again as soon as that reconcile ends. Pure (the caller passes the clock).

use std::collections::{BTreeMap, HashMap, HashSet};

use tokio::time::Instant;

/// LoadTest names waiting to be reconciled.
#[derive(Debug, Default)]
pub struct WorkQueue {
    due: BTreeMap<String, Instant>,
    active: HashSet<String>,
    dirty: HashMap<String, Instant>,
}

impl WorkQueue {
    /// An empty queue.
    pub fn new() -> WorkQueue {
        WorkQueue::default()
    }

    /// Asks for `key` to be reconciled at `at` (or earlier, if it is already due earlier).
    pub fn add(&mut self, key: &str, at: Instant) {
        if self.active.contains(key) {
            let e = self.dirty.entry(key.to_string()).or_insert(at);
            *e = (*e).min(at);
            return;
        }
        let e = self.due.entry(key.to_string()).or_insert(at);
        *e = (*e).min(at);
    }

    /// Takes the earliest key due at `now` that nobody is reconciling, and marks it active.
    pub fn pop(&mut self, now: Instant) -> Option<String> {
        let key = self
            .due
            .iter()
            .filter(|(_, at)| **at <= now)
            .min_by_key(|(k, at)| (**at, (*k).clone()))
            .map(|(k, _)| k.clone())?;
        self.due.remove(&key);
        self.active.insert(key.clone());
        Some(key)
    }

    /// The reconcile of `key` ended; queue it again at `requeue` (if any) or at once if a
    /// change arrived meanwhile.
    pub fn done(&mut self, key: &str, requeue: Option<Instant>) {
        self.active.remove(key);
        let dirty = self.dirty.remove(key);
        for at in [dirty, requeue].into_iter().flatten() {
            self.add(key, at);
        }
    }

    /// When the next key is due (None: nothing queued).
    pub fn next_due(&self) -> Option<Instant> {
        self.due.values().min().copied()
    }

    /// Keys queued or being reconciled.
    pub fn len(&self) -> usize {
        self.due.len() + self.active.len()
    }

    /// Nothing queued and nothing being reconciled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `key` is being reconciled now.
    pub fn is_active(&self, key: &str) -> bool {
        self.active.contains(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_key_is_never_handed_out_twice_at_once_and_a_change_meanwhile_requeues_it() {
        let t0 = Instant::now();
        let mut q = WorkQueue::new();
        q.add("a", t0);
        assert_eq!(q.pop(t0).as_deref(), Some("a"));
        q.add("a", t0);
        assert_eq!(q.pop(t0), None, "a is being reconciled");
        q.done("a", Some(t0 + Duration::from_secs(30)));
        assert_eq!(
            q.pop(t0).as_deref(),
            Some("a"),
            "the change meanwhile runs at once"
        );
        q.done("a", None);
        assert!(q.is_empty());
    }

    #[test]
    fn the_earliest_due_key_goes_first_and_nothing_before_its_time() {
        let t0 = Instant::now();
        let mut q = WorkQueue::new();
        q.add("late", t0 + Duration::from_secs(5));
        q.add("soon", t0 + Duration::from_secs(1));
        assert_eq!(q.pop(t0), None);
        assert_eq!(q.next_due(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(q.pop(t0 + Duration::from_secs(2)).as_deref(), Some("soon"));
        assert_eq!(q.pop(t0 + Duration::from_secs(2)), None);
        assert_eq!(q.pop(t0 + Duration::from_secs(5)).as_deref(), Some("late"));
    }

    #[test]
    fn adding_again_keeps_the_earlier_time() {
        let t0 = Instant::now();
        let mut q = WorkQueue::new();
        q.add("a", t0 + Duration::from_secs(10));
        q.add("a", t0 + Duration::from_secs(1));
        q.add("a", t0 + Duration::from_secs(20));
        assert_eq!(q.next_due(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(q.len(), 1);
    }
}
