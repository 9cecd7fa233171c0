//! Counters the glue reads for `get_stats()`: written by the session on the
//! I/O worker, read on the main thread, without locks.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Live counters of one WebSocket client. Create with `Arc::default()`.
#[derive(Debug, Default)]
pub struct WsStats {
    connects: AtomicU64,
    connect_failures: AtomicU64,
    reconnects: AtomicU64,
    messages_sent: AtomicU64,
    messages_received: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    pings_sent: AtomicU64,
    pongs_received: AtomicU64,
    last_rtt_usec: AtomicU64,
    send_refused: AtomicU64,
}

/// A copy of [`WsStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WsStatsSnapshot {
    /// Successful connects (the first one and every reconnect).
    pub connects: u64,
    /// Connect attempts that failed.
    pub connect_failures: u64,
    /// Times a lost connection or a failed attempt was followed by another
    /// attempt (the state went RECONNECTING), as every node counts them.
    pub reconnects: u64,
    /// Text and binary messages handed to the socket.
    pub messages_sent: u64,
    /// Text and binary messages delivered.
    pub messages_received: u64,
    /// Payload bytes handed to the socket.
    pub bytes_sent: u64,
    /// Payload bytes delivered.
    pub bytes_received: u64,
    /// Heartbeat pings sent.
    pub pings_sent: u64,
    /// Heartbeat pongs received.
    pub pongs_received: u64,
    /// Round-trip time of the last answered heartbeat, in microseconds.
    pub last_rtt_usec: u64,
    /// Sends refused (queue full, too large, closing).
    pub send_refused: u64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Relaxed);
}

impl WsStats {
    /// Copies every counter.
    pub fn snapshot(&self) -> WsStatsSnapshot {
        WsStatsSnapshot {
            connects: self.connects.load(Relaxed),
            connect_failures: self.connect_failures.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            messages_sent: self.messages_sent.load(Relaxed),
            messages_received: self.messages_received.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
            pings_sent: self.pings_sent.load(Relaxed),
            pongs_received: self.pongs_received.load(Relaxed),
            last_rtt_usec: self.last_rtt_usec.load(Relaxed),
            send_refused: self.send_refused.load(Relaxed),
        }
    }

    /// Counts a send the node refused.
    pub fn send_refused(&self) {
        bump(&self.send_refused, 1);
    }

    pub(crate) fn connected(&self) {
        bump(&self.connects, 1);
    }
    pub(crate) fn connect_failed(&self) {
        bump(&self.connect_failures, 1);
    }
    pub(crate) fn reconnecting(&self) {
        bump(&self.reconnects, 1);
    }
    pub(crate) fn sent(&self, bytes: usize) {
        bump(&self.messages_sent, 1);
        bump(&self.bytes_sent, bytes as u64);
    }
    pub(crate) fn received(&self, bytes: usize) {
        bump(&self.messages_received, 1);
        bump(&self.bytes_received, bytes as u64);
    }
    pub(crate) fn ping_sent(&self) {
        bump(&self.pings_sent, 1);
    }
    pub(crate) fn pong_received(&self, rtt: Duration) {
        bump(&self.pongs_received, 1);
        self.last_rtt_usec.store(rtt.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }
}
