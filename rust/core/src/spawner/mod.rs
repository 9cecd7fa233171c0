//! TcpSpawnerServer's engine-free half: a TCP line server whose every
//! non-empty line asks a handler to spawn a node, with the limits a server
//! facing hostile clients needs. It runs on the runtime's I/O worker; only
//! the spawning itself needs the engine, and its answer comes back later.
//!
//! Protocol: UTF-8 lines ending in `\n` (`\r\n` accepted). Each non-empty
//! line is handed to [`SpawnHandler::line_received`] and answered, through
//! its [`Reply`], `OK <final_name>\n` or `ERR <reason>\n`; a client reads
//! its replies in the order of its lines. Fatal errors (`bad token`, `line
//! too long`, `too many clients`, `idle timeout`) close the client after the
//! reply; others (`invalid utf-8`, `rate limited`, the handler's own
//! reasons) keep it. With a token configured, the first non-empty line must
//! be the token and is answered `OK authenticated\n`.
//!
//! Layout, one concern per file: [`config`] (limits), [`codec`] (bounded
//! line reader), [`descriptors`] (descriptor table sizing), [`name`]
//! (node-name sanitizing), [`cap`] (live node cap), [`auth`] (constant-time
//! compare), [`rate`] (token bucket), [`reply`] (the reply queue, in line
//! order), [`stats`], [`handler`] (the glue's callbacks and [`Reply`]),
//! `client` (one connection) and `server` (the accept loop, [`serve`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use async_net_core::spawner::{self, Reply, SpawnHandler, SpawnerConfig};
//!
//! /// Answers each line at once with the node name it would make.
//! struct Names;
//!
//! impl SpawnHandler for Names {
//!     type Client = ();
//!     fn client_connected(&self, _peer: &str) {}
//!     fn line_received(&self, _client: &(), line: String, reply: Reply) {
//!         reply.send(spawner::into_node_name(line, 64).map_err(|e| e.to_string()));
//!     }
//!     fn client_disconnected(&self, _client: ()) {}
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8885").await?;
//! spawner::serve(listener, SpawnerConfig::default(), Names, Arc::default()).await
//! # }
//! ```

pub mod auth;
pub mod cap;
mod client;
pub mod codec;
pub mod config;
pub mod descriptors;
pub mod handler;
pub mod name;
pub mod rate;
pub mod reply;
mod server;
pub mod stats;

#[cfg(test)]
mod tests;

pub use auth::ct_eq;
pub use cap::NodeCap;
pub use codec::{LineEvent, LineReader, READ_CHUNK};
pub use config::SpawnerConfig;
pub use handler::{Reply, Reported, SpawnHandler};
pub use name::{NameError, UniqueNames, into_node_name, sanitize_node_name};
pub use rate::TokenBucket;
pub use server::serve;
pub use stats::{SpawnerStats, StatsSnapshot};
