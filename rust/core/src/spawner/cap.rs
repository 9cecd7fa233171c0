//! The cap on nodes a spawner keeps alive, so clients (each within its own
//! line rate) cannot fill the game with nodes over time.

/// Remembered ids checked per call once the cap is reached: a refusal costs
/// at most this many liveness checks, not one per node alive (10 000 by
/// default), and a node the game freed is noticed within
/// `max / CHECKS_PER_CALL` calls.
const CHECKS_PER_CALL: usize = 64;

/// Remembers the ids of the nodes spawned that may still exist.
#[derive(Debug)]
pub struct NodeCap {
    max: usize,
    ids: Vec<u64>,
    /// Where the next check resumes, so repeated refusals walk the whole list.
    cursor: usize,
}

impl NodeCap {
    /// At most `max` spawned nodes alive at once; 0 means unlimited.
    pub fn new(max: usize) -> Self {
        NodeCap { max, ids: Vec::new(), cursor: 0 }
    }

    /// Whether one more node may be spawned. Below the cap this costs O(1);
    /// at the cap it forgets nodes `alive` says are gone (freed by the game),
    /// checking at most [`CHECKS_PER_CALL`] of them.
    pub fn has_room(&mut self, alive: impl Fn(u64) -> bool) -> bool {
        if self.max == 0 {
            return true;
        }
        let mut checks = CHECKS_PER_CALL;
        while self.ids.len() >= self.max && checks > 0 {
            if self.cursor >= self.ids.len() {
                self.cursor = 0;
            }
            if alive(self.ids[self.cursor]) {
                self.cursor += 1;
            } else {
                self.ids.swap_remove(self.cursor);
            }
            checks -= 1;
        }
        self.ids.len() < self.max
    }

    /// Records a node just spawned.
    pub fn spawned(&mut self, id: u64) {
        if self.max != 0 {
            self.ids.push(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{cell::RefCell, collections::HashSet};

    #[test]
    fn full_until_the_game_frees_a_node() {
        let alive = RefCell::new(HashSet::new());
        let mut cap = NodeCap::new(3);
        for id in 0..3 {
            assert!(cap.has_room(|id| alive.borrow().contains(&id)));
            alive.borrow_mut().insert(id);
            cap.spawned(id);
        }
        assert!(!cap.has_room(|id| alive.borrow().contains(&id)));
        alive.borrow_mut().remove(&1);
        assert!(cap.has_room(|id| alive.borrow().contains(&id)));
        cap.spawned(7);
        assert!(!cap.has_room(|_| true));
    }

    #[test]
    fn a_refusal_checks_a_bounded_number_of_nodes_and_a_free_one_is_found() {
        let max = 10_000;
        let alive = RefCell::new((0..max as u64).collect::<HashSet<_>>());
        let checks = std::cell::Cell::new(0);
        let is_alive = |id| {
            checks.set(checks.get() + 1);
            alive.borrow().contains(&id)
        };
        let mut cap = NodeCap::new(max);
        for id in 0..max as u64 {
            cap.spawned(id);
        }
        for _ in 0..10 {
            checks.set(0);
            assert!(!cap.has_room(is_alive));
            assert!(checks.get() <= CHECKS_PER_CALL, "{} checks for one refusal", checks.get());
        }
        alive.borrow_mut().remove(&7_777);
        let calls = (1..=max / CHECKS_PER_CALL + 1).find(|_| cap.has_room(is_alive));
        assert!(calls.is_some(), "the freed node was noticed within a walk of the whole list");
    }

    #[test]
    fn zero_is_unlimited_and_remembers_nothing() {
        let mut cap = NodeCap::new(0);
        for id in 0..10_000 {
            assert!(cap.has_room(|_| true));
            cap.spawned(id);
        }
        assert!(cap.ids.is_empty());
    }
}
