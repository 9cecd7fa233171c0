//! TcpSpawnerServer's engine-free half: a TCP line server whose every
//! non-empty line asks a handler to spawn a node, with the limits a server
//! facing hostile clients needs.
//!
//! Protocol: UTF-8 lines ending in `\n` (`\r\n` accepted). Each non-empty
//! line is handed to [`SpawnHandler::line_received`] and answered
//! `OK <final_name>\n` or `ERR <reason>\n`. Fatal errors (`bad token`,
//! `line too long`, `too many clients`, `idle timeout`) close the client
//! after the reply; others (`invalid utf-8`, `rate limited`, the handler's
//! own reasons) keep it. With a token configured, the first non-empty line
//! must be the token and is answered `OK authenticated\n`.
//!
//! Layout, one concern per file: [`config`] (limits), [`codec`] (bounded
//! line reader), [`descriptors`] (descriptor table sizing), [`name`] (node-name sanitizing), [`cap`] (live node cap), [`auth`] (constant-time
//! compare), [`rate`] (token bucket), [`reply`] (bounded reply queue),
//! [`stats`], [`handler`] (the glue's callbacks), `client` (one
//! connection) and `server` (the accept loop, [`serve`]).
//!
//! ```no_run
//! use std::rc::Rc;
//! use async_net_core::spawner::{self, SpawnHandler, SpawnerConfig, SpawnerStats};
//!
//! #[derive(Default)]
//! struct Names(std::collections::HashSet<String>, spawner::UniqueNames);
//!
//! impl SpawnHandler for Names {
//!     fn line_received(&mut self, _peer: &str, line: &str) -> Result<String, String> {
//!         let base = spawner::sanitize_node_name(line, 64).map_err(|e| e.to_string())?;
//!         let name = self.1.name(&base, |n| self.0.contains(n));
//!         self.0.insert(name.clone());
//!         Ok(name)
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8885").await?;
//! let stats = Rc::new(SpawnerStats::default());
//! spawner::serve(listener, SpawnerConfig::default(), Names::default(), stats.clone()).await
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
pub use handler::SpawnHandler;
pub use name::{NameError, UniqueNames, sanitize_node_name};
pub use rate::TokenBucket;
pub use server::serve;
pub use stats::{SpawnerStats, StatsSnapshot};
