//! Counters the glue reads for `get_stats()`: written by the server on the
//! I/O worker, read on the main thread, without locks.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Live counters of one spawner server. Create it with `Arc::default()`,
/// keep a clone, pass the other to [`serve`](super::serve).
#[derive(Debug, Default)]
pub struct SpawnerStats {
    clients: AtomicUsize,
    accepted: AtomicU64,
    lines: AtomicU64,
    spawned: AtomicU64,
    errors: AtomicU64,
    rejected: AtomicU64,
    bytes_in: AtomicU64,
    peak_line_buffer: AtomicUsize,
    peak_reply_backlog: AtomicUsize,
    client_polls: AtomicU64,
}

/// A copy of [`SpawnerStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Clients connected now (including ones being closed).
    pub clients: usize,
    /// Connections accepted since start, rejected ones included.
    pub accepted: u64,
    /// Non-empty lines received: token, rate-limited, invalid and overlong
    /// ones included.
    pub lines: u64,
    /// Lines the handler answered `Ok` (`OK <name>` replies).
    pub spawned: u64,
    /// `ERR` replies of any kind.
    pub errors: u64,
    /// Clients closed or refused for a protocol reason.
    pub rejected: u64,
    /// Bytes read from all clients.
    pub bytes_in: u64,
    /// Most bytes any one client's line reader held at once.
    pub peak_line_buffer: usize,
    /// Most reply bytes queued for any one client at once.
    pub peak_reply_backlog: usize,
    /// Times a client future was polled: stays flat while clients are idle,
    /// which is what makes 1000 idle clients cost nothing.
    pub client_polls: u64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

/// Raises a peak; a plain load first, since the peak is rarely passed.
fn raise(peak: &AtomicUsize, value: usize) {
    if value > peak.load(Relaxed) {
        peak.fetch_max(value, Relaxed);
    }
}

impl SpawnerStats {
    /// Copies every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            clients: self.clients.load(Relaxed),
            accepted: self.accepted.load(Relaxed),
            lines: self.lines.load(Relaxed),
            spawned: self.spawned.load(Relaxed),
            errors: self.errors.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            peak_line_buffer: self.peak_line_buffer.load(Relaxed),
            peak_reply_backlog: self.peak_reply_backlog.load(Relaxed),
            client_polls: self.client_polls.load(Relaxed),
        }
    }

    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.clients.load(Relaxed)
    }

    pub(crate) fn client_opened(&self) {
        self.clients.fetch_add(1, Relaxed);
    }
    pub(crate) fn client_closed(&self) {
        // Never below zero: every close follows its open.
        let _ = self.clients.fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
    }
    pub(crate) fn accepted(&self) {
        bump(&self.accepted);
    }
    pub(crate) fn line(&self) {
        bump(&self.lines);
    }
    pub(crate) fn spawned(&self) {
        bump(&self.spawned);
    }
    pub(crate) fn error_reply(&self) {
        bump(&self.errors);
    }
    pub(crate) fn rejected(&self) {
        bump(&self.rejected);
    }
    pub(crate) fn bytes_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Relaxed);
    }
    pub(crate) fn line_buffer(&self, bytes: usize) {
        raise(&self.peak_line_buffer, bytes);
    }
    pub(crate) fn reply_backlog(&self, bytes: usize) {
        raise(&self.peak_reply_backlog, bytes);
    }
    pub(crate) fn client_polled(&self) {
        bump(&self.client_polls);
    }
}
