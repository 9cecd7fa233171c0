//! `publish` on a connection of its own: a subscribed connection is busy
//! with pushes, and a publish must not wait behind a flood. Connected on the
//! first publish, kept open, reopened on the next publish after a failure;
//! publishes go out pipelined and in order ([`crate::pipelined`]).

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering::Relaxed},
};

use redis::aio::MultiplexedConnection;
use tokio::sync::{mpsc::UnboundedReceiver, oneshot};

use super::{
    address::RedisAddress,
    connect::{Driver, connect, describe},
};
use crate::pipelined;

/// One `PUBLISH`, answered with the number of clients that received it.
#[derive(Debug)]
pub struct PublishRequest {
    /// The channel.
    pub channel: Vec<u8>,
    /// The payload, sent byte for byte.
    pub payload: Vec<u8>,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<i64, String>>,
}

/// Counters of the publisher, written on the I/O worker and read anywhere.
#[derive(Debug, Default)]
pub struct PublishStats {
    /// Publishes answered by the server.
    pub published: AtomicU64,
    /// Publishes that failed.
    pub failed: AtomicU64,
}

/// Serves publish requests until the sender is dropped, pipelined and in
/// order ([`crate::pipelined`]).
pub async fn run_publisher(
    address: RedisAddress,
    connect_timeout: std::time::Duration,
    requests: UnboundedReceiver<PublishRequest>,
    stats: Arc<PublishStats>,
) {
    pipelined::serve(Publisher { address, connect_timeout, stats }, requests, "publish failed").await;
}

struct Publisher {
    address: RedisAddress,
    connect_timeout: std::time::Duration,
    stats: Arc<PublishStats>,
}

impl pipelined::Pipeline for Publisher {
    type Request = PublishRequest;
    type Connection = MultiplexedConnection;
    type Answer = i64;

    async fn connect(&mut self) -> Result<(MultiplexedConnection, Driver), String> {
        connect(&self.address, self.connect_timeout, None).await.map_err(|error| error.message)
    }

    async fn send(
        &mut self,
        connection: &mut MultiplexedConnection,
        batch: &[PublishRequest],
    ) -> Result<Vec<Result<i64, String>>, String> {
        let mut pipe = redis::pipe();
        for request in batch {
            pipe.cmd("PUBLISH").arg(&request.channel).arg(&request.payload);
        }
        let counts: Vec<i64> = pipe.query_async(connection).await.map_err(|e| describe(&self.address, &e).message)?;
        Ok(counts.into_iter().map(Ok).collect())
    }

    fn lost(&self, reason: Option<String>) -> String {
        format!("{}: {}", self.address.shown(), reason.as_deref().unwrap_or("connection lost"))
    }

    fn answer(&mut self, request: PublishRequest, result: Result<i64, String>) {
        let counter = if result.is_ok() { &self.stats.published } else { &self.stats.failed };
        counter.fetch_add(1, Relaxed);
        let _ = request.reply.send(result);
    }
}
