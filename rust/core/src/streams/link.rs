//! One connection of the consumer, to a single Redis server (whose driver
//! future the consumer owns, so stopping closes the socket at once) or to a
//! Redis Cluster (the crate's cluster client, which follows slot moves and
//! failovers by itself). The consumer's code is the same for both.

use std::time::Duration;

use redis::{
    Cmd, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, MultiplexedConnection},
};

use super::ConsumerConfig;
use crate::pubsub::{
    ConnectError,
    connect::{Driver, connect_commands},
};

/// A connection that sends commands and reads their replies.
#[derive(Clone)]
pub enum Link {
    /// A single server.
    Single(MultiplexedConnection),
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::Single(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Single(connection) => connection.get_db(),
        }
    }
}

/// Opens a connection whose replies may take up to `response_timeout`
/// (`None`: no limit), and the future that drives it (it ends when the
/// connection is lost).
pub async fn open(config: &ConsumerConfig, response_timeout: Option<Duration>) -> Result<(Link, Driver), ConnectError> {
    let (connection, driver) = connect_commands(&config.address, config.connect_timeout, response_timeout).await?;
    Ok((Link::Single(connection), driver))
}
