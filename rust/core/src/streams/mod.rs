//! RedisStreamConsumer's engine-free half: Redis Streams read through a
//! consumer group, at least once. On the `redis` crate (its `streams`
//! commands), on the I/O worker; the glue hands each entry to the game and
//! sends back what it acknowledged.
//!
//! Layout: [`entry`] (ids and entries parsed from the crate's replies),
//! [`config`] (settings and defaults), [`link`] (a connection to one server
//! or to a cluster), [`session`] (the consumer's loop, [`run`]) and
//! [`adder`] (XADD with optional WAIT, [`run_adder`]).
//!
//! The promise: an entry is handed to the game until it is acknowledged.
//! This consumer's own pending entries are handed over again first when it
//! starts (they were handed before a crash or a lost connection), entries
//! idle longer than `claim_idle` in any consumer of the group are claimed and
//! handed over, and one about to be delivered more than `max_deliveries`
//! times goes to the dead-letter stream instead.

pub mod adder;
pub mod config;
pub mod entry;
pub mod link;
pub mod session;

#[cfg(test)]
mod tests;

pub use adder::{AddRequest, AddStats, Durability, run_adder};
pub use config::{ConsumerConfig, dead_letter_stream, default_consumer_name};
pub use entry::{Entry, EntryId};
pub use session::{ConsumerEvents, ConsumerStats, run};
