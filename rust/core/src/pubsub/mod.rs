//! RedisSubscriber's engine-free half: Redis pub/sub on the `redis` crate,
//! with reconnection that restores every subscription exactly once, a
//! separate connection for `publish`, and bounded, per-frame delivery.
//!
//! Layout: [`address`] (url parsing), [`connect`] (one RESP3
//! connection whose driver the caller owns), [`limit`] (the reply size bound
//! under everything that parses), [`tap`] (the messages' fast lane past the
//! crate's parser), [`inbox`] (the bounded backlog
//! and per-frame [`deliver`]), [`session`] (the reconnect loop, [`run`]) and
//! [`publisher`] ([`run_publisher`]).
//!
//! ```no_run
//! use std::{rc::Rc, sync::Arc};
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
//! let inbox = Arc::new(Inbox::new(100_000));
//! let (_commands, receiver) = tokio::sync::mpsc::unbounded_channel();
//! let frames = FrameGate::default();
//! let session = run(config, inbox.clone(), receiver, Log, Rc::default());
//! let delivery = deliver(&inbox, &frames, || 1000, |d| println!("{d:?}"));
//! tokio::select! { r = session => r, () = delivery => Ok(()) }
//! # }
//! ```

pub mod address;
pub mod connect;
pub mod inbox;
pub mod limit;
pub mod publisher;
pub mod session;
pub mod tap;

#[cfg(test)]
mod tests;

pub use address::{DEFAULT_MAX_MESSAGE_BYTES, RedisAddress};
pub use connect::ConnectError;
pub use inbox::{Delivery, FrameGate, Inbox, InboxStats, Message, deliver};
pub use publisher::{PublishRequest, PublishStats, run_publisher};
pub use session::{Command, Kind, SessionConfig, SessionEvents, SessionStats, run};
