//! RedisSubscriber's engine-free half: Redis pub/sub on the `redis` crate,
//! with reconnection that restores every subscription exactly once, a
//! separate connection for `publish`, and a bounded backlog toward the game.
//! All of it runs on the I/O worker; the glue takes the messages from the
//! [`Inbox`]'s relay on the main thread.
//!
//! Layout: [`address`] (url parsing), [`connect`] (one RESP3
//! connection whose driver the caller owns), [`limit`] (the reply size bound
//! under everything that parses), [`tap`] (the messages' fast lane past the
//! crate's parser), [`inbox`] (the bounded backlog, converting messages as
//! they arrive), [`session`] (the reconnect loop, [`run`]),
//! [`publisher`] ([`run_publisher`]) and [`cluster`] (a Redis Cluster: the
//! sharded channels, [`run_sharded`], and [`run_cluster_publisher`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use async_net_core::{pubsub::*, state::NetState};
//!
//! struct Log;
//! impl SessionEvents for Log {
//!     fn state_changed(&mut self, state: NetState) { println!("{state}") }
//!     fn subscribed(&mut self, name: &str, _: Kind) { println!("subscribed {name}") }
//!     fn unsubscribed(&mut self, name: &str, _: Kind) { println!("unsubscribed {name}") }
//!     fn error(&mut self, message: &str) { eprintln!("{message}") }
//! }
//!
//! # async fn example() -> Result<(), String> {
//! let mut config = SessionConfig::new(RedisAddress::parse("redis://127.0.0.1:6379")?);
//! config.channels.push("news".into());
//! let inbox = Arc::new(Inbox::new(100_000, Unconverted));
//! let (_commands, receiver) = tokio::sync::mpsc::unbounded_channel();
//! let session = run(config, inbox.clone(), receiver, Log, Arc::default());
//! let relay = inbox.relay();
//! let printing = async {
//!     let mut batch = std::collections::VecDeque::new();
//!     while relay.take(&mut batch).await {
//!         batch.drain(..).for_each(|(message, _)| println!("{message:?}"));
//!     }
//! };
//! tokio::select! { r = session => r, () = printing => Ok(()) }
//! # }
//! ```

pub mod address;
pub mod cluster;
pub mod connect;
pub mod inbox;
pub mod limit;
pub mod publisher;
pub mod session;
pub mod tap;

#[cfg(test)]
pub(crate) mod tests;

pub use address::{DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_URL, RedisAddress};
pub use cluster::{ClusterPublish, ClusterSettings, run_cluster_publisher, run_sharded};
pub use connect::ConnectError;
pub use inbox::{Convert, DEFAULT_MAX_BACKLOG, Inbox, InboxStats, Message, MessageSink, Unconverted};
pub use publisher::{PublishRequest, PublishStats, run_publisher};
pub use session::{Command, Kind, SessionConfig, SessionEvents, SessionStats, run};
