//! The counters of `HttpServer.get_stats()`, updated on the I/O worker.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters of one server.
#[derive(Debug, Default)]
pub struct ServerStats {
    connections: AtomicU64,
    accepted: AtomicU64,
    requests: AtomicU64,
    handled: AtomicU64,
    files: AtomicU64,
    refused: AtomicU64,
    server_errors: AtomicU64,
    bytes_received: AtomicU64,
    websocket_peers: AtomicU64,
    websocket_messages: AtomicU64,
    event_streams: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Connections open now.
    pub connections: u64,
    /// Connections accepted since the start.
    pub accepted: u64,
    /// Requests answered (any status).
    pub requests: u64,
    /// Requests a handler answered.
    pub handled: u64,
    /// Requests answered from a served folder.
    pub files: u64,
    /// Requests refused by a limit or a check (401, 403, 408, 413, 503 over max_connections; a
    /// 431 is hyper's own answer, made before the request reaches the server).
    pub refused: u64,
    /// 5xx answers.
    pub server_errors: u64,
    /// Request body bytes received.
    pub bytes_received: u64,
    /// WebSocket peers connected now.
    pub websocket_peers: u64,
    /// WebSocket messages received.
    pub websocket_messages: u64,
    /// Event streams open now.
    pub event_streams: u64,
}

/// What [`ServerStats::count`] counts.
#[derive(Debug, Clone, Copy)]
pub enum Count {
    Accepted,
    Handled,
    File,
    Refused,
    WebSocketMessage,
}

impl ServerStats {
    pub(super) fn count(&self, what: Count) {
        let counter = match what {
            Count::Accepted => &self.accepted,
            Count::Handled => &self.handled,
            Count::File => &self.files,
            Count::Refused => &self.refused,
            Count::WebSocketMessage => &self.websocket_messages,
        };
        counter.fetch_add(1, Relaxed);
    }

    pub(super) fn answered(&self, status: u16) {
        self.requests.fetch_add(1, Relaxed);
        if status >= 500 {
            self.server_errors.fetch_add(1, Relaxed);
        }
    }

    pub(super) fn received(&self, bytes: usize) {
        self.bytes_received.fetch_add(bytes as u64, Relaxed);
    }

    /// A gauge (connections, peers, streams) that goes up now and down when the guard drops.
    pub(super) fn open(self: &std::sync::Arc<Self>, gauge: Gauge) -> Open {
        self.gauge(gauge).fetch_add(1, Relaxed);
        Open(self.clone(), gauge)
    }

    fn gauge(&self, gauge: Gauge) -> &AtomicU64 {
        match gauge {
            Gauge::Connections => &self.connections,
            Gauge::WebSocketPeers => &self.websocket_peers,
            Gauge::EventStreams => &self.event_streams,
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            connections: self.connections.load(Relaxed),
            accepted: self.accepted.load(Relaxed),
            requests: self.requests.load(Relaxed),
            handled: self.handled.load(Relaxed),
            files: self.files.load(Relaxed),
            refused: self.refused.load(Relaxed),
            server_errors: self.server_errors.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
            websocket_peers: self.websocket_peers.load(Relaxed),
            websocket_messages: self.websocket_messages.load(Relaxed),
            event_streams: self.event_streams.load(Relaxed),
        }
    }
}

/// The gauges of [`ServerStats::open`].
#[derive(Debug, Clone, Copy)]
pub enum Gauge {
    Connections,
    WebSocketPeers,
    EventStreams,
}

/// Holds a gauge up while it lives.
pub struct Open(std::sync::Arc<ServerStats>, Gauge);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.gauge(self.1).fetch_sub(1, Relaxed);
    }
}
