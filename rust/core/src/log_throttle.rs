//! Rate limiting of repeated log lines, so a peer cannot flood the game's log
//! (a client reconnecting in a loop to be refused, say). Only logging is
//! throttled: nodes still emit every `error` signal.
//!
//! Messages are grouped by their text with every run of digits counted as one
//! (so `client 10.0.0.7:50312: bad token` and `client 10.0.0.9:50313: bad token`
//! are the same kind of line). The first line of a group is logged; repeats
//! within [`LogThrottle::WINDOW`] of the last logged one are counted, and the
//! next line logged for that group after the window says how many were
//! suppressed in between.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// Per-group state.
#[derive(Debug)]
struct Group {
    last_logged: Instant,
    suppressed: u64,
}

/// Decides which error lines get logged.
#[derive(Debug, Default)]
pub struct LogThrottle {
    groups: HashMap<String, Group>,
}

impl LogThrottle {
    /// One line per group per this long.
    pub const WINDOW: Duration = Duration::from_secs(1);
    /// Most groups remembered; past that, new kinds of lines share one group.
    pub const MAX_GROUPS: usize = 64;

    /// The line to log for `message` at `now`, or `None` to suppress it.
    pub fn check(&mut self, message: &str, now: Instant) -> Option<String> {
        let mut key = group_key(message);
        if self.groups.len() >= Self::MAX_GROUPS && !self.groups.contains_key(&key) {
            // Forget groups that are quiet, else pool the newcomer with every other overflow.
            self.groups.retain(|_, group| now.duration_since(group.last_logged) < Self::WINDOW);
            if self.groups.len() >= Self::MAX_GROUPS {
                key = String::new();
            }
        }
        match self.groups.get_mut(&key) {
            Some(group) if now.duration_since(group.last_logged) < Self::WINDOW => {
                group.suppressed += 1;
                None
            }
            Some(group) => {
                group.last_logged = now;
                let suppressed = std::mem::take(&mut group.suppressed);
                Some(if suppressed == 0 {
                    message.to_string()
                } else {
                    format!("{message} ({suppressed} more suppressed)")
                })
            }
            None => {
                self.groups.insert(key, Group { last_logged: now, suppressed: 0 });
                Some(message.to_string())
            }
        }
    }
}

/// `message` with each run of ASCII digits replaced by `#`.
fn group_key(message: &str) -> String {
    let mut key = String::with_capacity(message.len());
    for c in message.chars() {
        if !c.is_ascii_digit() {
            key.push(c);
        } else if !key.ends_with('#') {
            key.push('#');
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_a_second_are_counted_and_reported_with_the_next_line() {
        let mut log = LogThrottle::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(
            log.check("client 10.0.0.7:50312: bad token", at(0)).as_deref(),
            Some("client 10.0.0.7:50312: bad token")
        );
        for i in 1..=500 {
            assert_eq!(log.check(&format!("client 10.0.0.{}:{}: bad token", i % 250, 50000 + i), at(i)), None);
        }
        assert_eq!(
            log.check("client 10.0.0.9:1: bad token", at(1000)).as_deref(),
            Some("client 10.0.0.9:1: bad token (500 more suppressed)")
        );
        assert_eq!(log.check("client 10.0.0.9:2: bad token", at(1500)), None);
        assert_eq!(
            log.check("client 10.0.0.9:3: bad token", at(2600)).as_deref(),
            Some("client 10.0.0.9:3: bad token (1 more suppressed)")
        );
        assert_eq!(
            log.check("client 10.0.0.9:4: bad token", at(4000)).as_deref(),
            Some("client 10.0.0.9:4: bad token")
        );
    }

    #[test]
    fn different_kinds_of_lines_are_throttled_apart() {
        let mut log = LogThrottle::default();
        let now = Instant::now();
        assert!(log.check("client 1: line too long", now).is_some());
        assert!(log.check("client 2: bad token", now).is_some());
        assert!(log.check("client 3: line too long", now).is_none());
        assert!(log.check("accept failed (will retry): too many open files", now).is_some());
    }

    #[test]
    fn endless_new_kinds_of_lines_stay_bounded_and_throttled() {
        let mut log = LogThrottle::default();
        let now = Instant::now();
        let logged =
            (0..10_000).filter(|i| log.check(&format!("error {}", "x".repeat(i % 300)), now).is_some()).count();
        assert!(log.groups.len() <= LogThrottle::MAX_GROUPS + 1, "{} groups", log.groups.len());
        // The first MAX_GROUPS kinds, then one line for the shared overflow group.
        assert_eq!(logged, LogThrottle::MAX_GROUPS + 1);
        // Once they are quiet, new kinds get their own groups again.
        assert!(log.check("something new", now + LogThrottle::WINDOW).is_some());
    }
}
