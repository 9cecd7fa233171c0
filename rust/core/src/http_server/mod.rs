//! `HttpServer`'s engine-free side: an HTTP/1.1 and HTTP/2 server (hyper
//! through hyper-util's auto connection, h2c prior knowledge on plain TCP,
//! ALPN under TLS) whose requests go to handlers on the main thread, with
//! WebSocket endpoints, server-sent events and served folders. It all runs
//! on the I/O worker: parsing, limits, TLS, the strings of each request and
//! the encoding of each answer; the glue ([`ServerHandler`]) moves finished
//! requests to the main thread and answers back through a [`Responder`].

mod answer;
mod cache;
mod config;
mod events;
pub(crate) mod files;
mod router;
mod server;
mod service;
mod slow_head;
mod stats;
mod tls;
mod websocket;

#[cfg(test)]
mod tests;

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;

pub use answer::{Answer, AnswerBody, Responder, valid_header};
pub use cache::{AnswerCache, CacheBounds, CacheUsage};
pub use config::{MIN_HEADER_BUFFER, ServerConfig};
pub use events::{Event, EventBody, EventSender, channel as event_channel};
pub use router::{Found, Mount, RouteId, Routes, translate};
pub use server::{Command, Server, serve};
pub use stats::{ServerStats, StatsSnapshot};
pub use tls::acceptor as tls_acceptor;
pub use websocket::{Outgoing, PeerControl, PeerInfo, Peers};

use crate::ws::OutgoingText;

/// A request for a handler, every part made ready on the I/O worker.
pub struct IncomingRequest {
    /// Which route matched.
    pub route: RouteId,
    /// Upper case, e.g. "GET".
    pub method: String,
    /// Percent-decoded.
    pub path: String,
    /// The pattern's parameters (percent-decoded).
    pub params: Vec<(String, String)>,
    /// The query string's pairs (decoded), in order.
    pub query: Vec<(String, String)>,
    /// Lower-case names; repeated headers joined with ", ".
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// `ip:port` of the client.
    pub peer: String,
}

/// How the server reports to its node; called on the I/O worker.
pub trait ServerHandler: Send + Sync + 'static {
    /// Text as the node hands it over (made UTF-8 on the worker).
    type Text: OutgoingText;

    /// Ready when the node can take another event; requests and WebSocket
    /// reads wait for it, so a flood waits in TCP, not in memory.
    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()>;
    /// The server accepts connections on `port`.
    fn listening(&self, port: u16);
    /// A request for a handler; its answer goes to `responder`.
    fn request(&self, request: IncomingRequest, responder: Responder<Self::Text>);
    /// A request was answered with `status` (routes, files, refusals, upgrades).
    fn answered(&self, method: &str, path: &str, status: u16);
    /// A WebSocket peer connected.
    fn websocket_connected(&self, peer: PeerInfo, control: Arc<PeerControl<Self::Text>>);
    /// A peer sent text.
    fn websocket_text(&self, peer: u64, text: &str);
    /// A peer sent bytes.
    fn websocket_binary(&self, peer: u64, data: Bytes);
    /// A peer is gone (its close code and reason; 1006 without a handshake).
    fn websocket_closed(&self, peer: u64, code: u16, reason: &str);
    /// Something the node's `error` signal should say (the server goes on).
    fn error(&self, message: &str);
}
