//! Counters the glue reads for `get_stats()`, shared without locks.
//!
//! Everything runs on the main thread, so plain `Cell`s behind an `Rc` are
//! enough: the server bumps them, the node reads a [`StatsSnapshot`].

use std::cell::Cell;

/// Live counters of one spawner server. Create it with `Rc::default()`, keep
/// a clone, pass the other to [`serve`](super::serve).
#[derive(Debug, Default)]
pub struct SpawnerStats {
    clients: Cell<usize>,
    accepted: Cell<u64>,
    lines: Cell<u64>,
    spawned: Cell<u64>,
    errors: Cell<u64>,
    rejected: Cell<u64>,
    bytes_in: Cell<u64>,
    peak_line_buffer: Cell<usize>,
    peak_reply_backlog: Cell<usize>,
    client_polls: Cell<u64>,
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
    /// Lines the handler accepted (`OK <name>` replies).
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
    /// which is what makes 1000 idle clients cost nothing per frame.
    pub client_polls: u64,
}

fn bump(cell: &Cell<u64>, by: u64) {
    cell.set(cell.get().wrapping_add(by));
}

fn raise(cell: &Cell<usize>, value: usize) {
    if value > cell.get() {
        cell.set(value);
    }
}

impl SpawnerStats {
    /// Copies every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            clients: self.clients.get(),
            accepted: self.accepted.get(),
            lines: self.lines.get(),
            spawned: self.spawned.get(),
            errors: self.errors.get(),
            rejected: self.rejected.get(),
            bytes_in: self.bytes_in.get(),
            peak_line_buffer: self.peak_line_buffer.get(),
            peak_reply_backlog: self.peak_reply_backlog.get(),
            client_polls: self.client_polls.get(),
        }
    }

    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.clients.get()
    }

    pub(crate) fn client_opened(&self) {
        self.clients.set(self.clients.get() + 1);
    }
    pub(crate) fn client_closed(&self) {
        self.clients.set(self.clients.get().saturating_sub(1));
    }
    pub(crate) fn accepted(&self) {
        bump(&self.accepted, 1);
    }
    pub(crate) fn line(&self) {
        bump(&self.lines, 1);
    }
    pub(crate) fn spawned(&self) {
        bump(&self.spawned, 1);
    }
    pub(crate) fn error_reply(&self) {
        bump(&self.errors, 1);
    }
    pub(crate) fn rejected(&self) {
        bump(&self.rejected, 1);
    }
    pub(crate) fn bytes_in(&self, n: u64) {
        bump(&self.bytes_in, n);
    }
    pub(crate) fn line_buffer(&self, bytes: usize) {
        raise(&self.peak_line_buffer, bytes);
    }
    pub(crate) fn reply_backlog(&self, bytes: usize) {
        raise(&self.peak_reply_backlog, bytes);
    }
    pub(crate) fn client_polled(&self) {
        bump(&self.client_polls, 1);
    }
}
