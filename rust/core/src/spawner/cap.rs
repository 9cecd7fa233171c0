//! The cap on nodes a spawner keeps alive, so clients (each within its own
//! line rate) cannot fill the game with nodes over time.

/// Remembers the ids of the nodes spawned that may still exist.
#[derive(Debug)]
pub struct NodeCap {
    max: usize,
    ids: Vec<u64>,
}

impl NodeCap {
    /// At most `max` spawned nodes alive at once; 0 means unlimited.
    pub fn new(max: usize) -> Self {
        NodeCap { max, ids: Vec::new() }
    }

    /// Whether one more node may be spawned. When full, first forgets the nodes `alive` says
    /// are gone (freed by the game), so the check costs O(1) until the cap is reached.
    pub fn has_room(&mut self, alive: impl Fn(u64) -> bool) -> bool {
        if self.max == 0 {
            return true;
        }
        if self.ids.len() >= self.max {
            self.ids.retain(|&id| alive(id));
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
    fn zero_is_unlimited_and_remembers_nothing() {
        let mut cap = NodeCap::new(0);
        for id in 0..10_000 {
            assert!(cap.has_room(|_| true));
            cap.spawned(id);
        }
        assert!(cap.ids.is_empty());
    }
}
