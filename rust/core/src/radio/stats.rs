//! Counters of a session: written by the session on the I/O worker, read by
//! the glue on the main thread, without locks.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One counter that any thread may read while the session counts.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// The count now.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }

    pub(crate) fn add(&self, by: u64) {
        self.0.fetch_add(by, Relaxed);
    }
}

/// Network-side counters (the glue adds playback's own). Share it in an `Arc`.
#[derive(Debug, Default)]
pub struct RadioStats {
    /// Body bytes received (audio and metadata), over every connection.
    pub bytes_received: Counter,
    /// Retries: each lost stream or failed attempt that is followed by a wait
    /// and a new attempt. The first connect is not one.
    pub reconnects: Counter,
    /// Streams that answered with audio (the first one and every reconnect).
    pub connects: Counter,
}

/// A copy of [`RadioStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RadioStatsSnapshot {
    pub bytes_received: u64,
    pub reconnects: u64,
    pub connects: u64,
}

impl RadioStats {
    /// Copies every counter.
    pub fn snapshot(&self) -> RadioStatsSnapshot {
        RadioStatsSnapshot {
            bytes_received: self.bytes_received.get(),
            reconnects: self.reconnects.get(),
            connects: self.connects.get(),
        }
    }
}
