//! Counters of a session, shared with the glue.

use std::cell::Cell;

/// Network-side counters (the glue adds playback's own).
#[derive(Debug, Default)]
pub struct RadioStats {
    pub bytes_received: Cell<u64>,
    pub reconnects: Cell<u64>,
    pub connects: Cell<u64>,
}

/// A copy of [`RadioStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RadioStatsSnapshot {
    pub bytes_received: u64,
    pub reconnects: u64,
    pub connects: u64,
}

impl RadioStats {
    pub fn snapshot(&self) -> RadioStatsSnapshot {
        RadioStatsSnapshot {
            bytes_received: self.bytes_received.get(),
            reconnects: self.reconnects.get(),
            connects: self.connects.get(),
        }
    }
}
