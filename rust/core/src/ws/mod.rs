//! WsEcho's engine-free half: a WebSocket client session (tokio-tungstenite
//! over rustls) that connects with subprotocols and headers, keeps the
//! connection alive with heartbeats, reconnects with backoff, and queues
//! sends (bounded) while offline, flushing them in order once back.
//!
//! Limits and hostile input: a message over `max_message_bytes` closes with
//! 1009, invalid UTF-8 in a text message with 1007, protocol violations with
//! 1002; each also reports an error. Unknown hosts, refused ports, TLS
//! failures and HTTP errors on upgrade get messages that say which.
//!
//! Layout: [`config`] (settings and the upgrade request), [`tls`] (crypto
//! provider, verifying client configs), `connect` (one connection),
//! [`control`] (the node's send queue, close and stop), [`handler`] (the
//! glue's callbacks), [`stats`] and `session` (the loop, [`run`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use async_net_core::{state::NetState, ws::{self, WsConfig, WsControl, WsHandler, WsStats}};
//!
//! struct Printer;
//! impl WsHandler for Printer {
//!     fn state_changed(&mut self, state: NetState) { println!("state {state}"); }
//!     fn connected(&mut self, protocol: &str) { println!("connected ({protocol})"); }
//!     fn text_received(&mut self, text: &str) { println!("echo: {text}"); }
//!     fn binary_received(&mut self, data: bytes::Bytes) { println!("{} bytes", data.len()); }
//!     fn closed(&mut self, code: u16, reason: &str) { println!("closed {code} {reason}"); }
//!     fn error(&mut self, message: &str) { eprintln!("{message}"); }
//! }
//!
//! # async fn demo() {
//! let config = WsConfig { url: "ws://127.0.0.1:8765".into(), ..WsConfig::default() };
//! let control = Arc::new(WsControl::<String>::new(&config));
//! control.send_text("hello".into()).unwrap(); // queued until connected
//! ws::run(config, control.clone(), Printer, Arc::new(WsStats::default())).await;
//! # }
//! ```

pub mod config;
mod connect;
pub mod control;
pub mod handler;
mod session;
pub mod stats;
pub mod tls;

#[cfg(test)]
mod tests;

pub use config::WsConfig;
pub use control::{MAX_CLOSE_REASON_BYTES, OutgoingText, SendError, WsControl};
pub use handler::WsHandler;
pub use session::{CLOSE_ABNORMAL, CLOSE_NO_STATUS, run};
pub use stats::{WsStats, WsStatsSnapshot};
