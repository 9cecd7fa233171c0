//! Counters the glue reads for `get_stats()`, shared without locks (main
//! thread only, like the spawner's).

use std::cell::Cell;
use std::time::Duration;

/// Live counters of one WebSocket client. Create with `Rc::default()`.
#[derive(Debug, Default)]
pub struct WsStats {
    connects: Cell<u64>,
    connect_failures: Cell<u64>,
    messages_sent: Cell<u64>,
    messages_received: Cell<u64>,
    bytes_sent: Cell<u64>,
    bytes_received: Cell<u64>,
    pings_sent: Cell<u64>,
    pongs_received: Cell<u64>,
    last_rtt_usec: Cell<u64>,
    send_refused: Cell<u64>,
}

/// A copy of [`WsStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WsStatsSnapshot {
    /// Successful connects (the first one and every reconnect).
    pub connects: u64,
    /// Connect attempts that failed.
    pub connect_failures: u64,
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

fn bump(cell: &Cell<u64>, by: u64) {
    cell.set(cell.get().wrapping_add(by));
}

impl WsStats {
    /// Copies every counter.
    pub fn snapshot(&self) -> WsStatsSnapshot {
        WsStatsSnapshot {
            connects: self.connects.get(),
            connect_failures: self.connect_failures.get(),
            messages_sent: self.messages_sent.get(),
            messages_received: self.messages_received.get(),
            bytes_sent: self.bytes_sent.get(),
            bytes_received: self.bytes_received.get(),
            pings_sent: self.pings_sent.get(),
            pongs_received: self.pongs_received.get(),
            last_rtt_usec: self.last_rtt_usec.get(),
            send_refused: self.send_refused.get(),
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
        self.last_rtt_usec.set(rtt.as_micros().min(u64::MAX as u128) as u64);
    }
}
