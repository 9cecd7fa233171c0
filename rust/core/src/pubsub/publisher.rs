//! `publish` on a connection of its own: a subscribed connection is busy
//! with pushes, and a publish must not wait behind a flood. Connected on the
//! first publish, kept open, reopened on the next publish after a failure;
//! publishes go out pipelined and in order.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering::Relaxed},
};

use futures_util::FutureExt;
use redis::aio::MultiplexedConnection;
use tokio::sync::{mpsc::UnboundedReceiver, oneshot};

use super::{
    address::RedisAddress,
    connect::{Driver, connect, describe},
};

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

/// Most publishes sent in one pipeline.
const MAX_BATCH: usize = 1024;

/// Serves publish requests until the sender is dropped. Requests are sent in
/// the order they were made: whatever queued up while one pipeline was in
/// flight goes out as the next pipeline.
pub async fn run_publisher(
    address: RedisAddress,
    connect_timeout: std::time::Duration,
    mut requests: UnboundedReceiver<PublishRequest>,
    stats: Arc<PublishStats>,
) {
    let answer = |request: PublishRequest, result: Result<i64, String>| {
        let counter = if result.is_ok() { &stats.published } else { &stats.failed };
        counter.fetch_add(1, Relaxed);
        let _ = request.reply.send(result);
    };
    let mut connection: Option<(MultiplexedConnection, Driver)> = None;
    while let Some(first) = requests.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH
            && let Ok(request) = requests.try_recv()
        {
            batch.push(request);
        }
        // An idle connection the server closed meanwhile: notice now, reconnect.
        if let Some((_, driver)) = connection.as_mut()
            && driver.as_mut().now_or_never().is_some()
        {
            connection = None;
        }
        if connection.is_none() {
            match connect(&address, connect_timeout, None).await {
                Ok(pair) => connection = Some(pair),
                Err(error) => {
                    batch.into_iter().for_each(|request| answer(request, Err(error.message.clone())));
                    continue;
                }
            }
        }
        let Some((link, driver)) = connection.as_mut() else { continue };
        let mut pipe = redis::pipe();
        for request in &batch {
            pipe.cmd("PUBLISH").arg(&request.channel).arg(&request.payload);
        }
        let sent = tokio::select! {
            result = pipe.query_async::<Vec<i64>>(link) => result.map_err(|e| describe(&address, &e).message),
            reason = driver => Err(format!("{}: {}", address.shown(), reason.as_deref().unwrap_or("connection lost"))),
        };
        match sent {
            Ok(counts) => batch.into_iter().zip(counts).for_each(|(request, count)| answer(request, Ok(count))),
            Err(message) => {
                // The next publish reconnects.
                connection = None;
                let message = format!("publish failed: {message}");
                batch.into_iter().for_each(|request| answer(request, Err(message.clone())));
            }
        }
    }
}
