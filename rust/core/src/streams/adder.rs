//! `add()`: XADD on a connection of its own (the consumer's connections
//! are busy with a blocking read and with acknowledgements), with WAIT when
//! the game asks for replicas to hold each entry before it counts as added.
//! Connected on the first add, kept open, reopened on the next add after a
//! failure; adds go out pipelined and in order.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use futures_util::FutureExt;
use redis::{Cmd, Value};
use tokio::sync::{mpsc::UnboundedReceiver, oneshot};

use super::{
    ConsumerConfig,
    entry::id,
    link::{Link, open},
};
use crate::pubsub::connect::{Driver, describe};

/// One XADD, answered with the new entry's id.
#[derive(Debug)]
pub struct AddRequest {
    /// The stream to add to.
    pub stream: String,
    /// The entry's field/value pairs (at least one).
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<String, String>>,
}

/// Counters of the adder, written on the I/O worker and read anywhere.
#[derive(Debug, Default)]
pub struct AddStats {
    /// Entries added (and, with `wait_replicas`, held by that many replicas).
    pub added: AtomicU64,
    /// Adds that failed.
    pub failed: AtomicU64,
}

/// How adds are confirmed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Durability {
    /// Replicas that must hold an entry before its add completes (WAIT); 0: do not wait.
    pub replicas: u32,
    /// How long WAIT waits for them.
    pub timeout: Duration,
}

/// Most adds sent in one pipeline.
const MAX_BATCH: usize = 1024;

/// Serves add requests until the sender is dropped.
pub async fn run_adder(
    config: ConsumerConfig,
    durability: Durability,
    mut requests: UnboundedReceiver<AddRequest>,
    stats: Arc<AddStats>,
) {
    let answer = |request: AddRequest, result: Result<String, String>| {
        let counter = if result.is_ok() { &stats.added } else { &stats.failed };
        counter.fetch_add(1, Relaxed);
        let _ = request.reply.send(result);
    };
    let mut connection: Option<(Link, Driver)> = None;
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
            let reply_limit = config.connect_timeout + durability.timeout;
            match open(&config, Some(reply_limit)).await {
                Ok(pair) => connection = Some(pair),
                Err(error) => {
                    let message = format!("add failed: {}", error.message);
                    batch.into_iter().for_each(|request| answer(request, Err(message.clone())));
                    continue;
                }
            }
        }
        let Some((link, driver)) = connection.as_mut() else { continue };
        let sent = tokio::select! {
            result = add_batch(link, &batch, durability) => result.map_err(|e| describe(&config.address, &e).message),
            reason = driver => Err(format!("{}: {}", config.address.shown(), reason.as_deref().unwrap_or("connection lost"))),
        };
        match sent {
            Ok(results) => batch.into_iter().zip(results).for_each(|(request, result)| answer(request, result)),
            Err(message) => {
                // The next add reconnects.
                connection = None;
                let message = format!("add failed: {message}");
                batch.into_iter().for_each(|request| answer(request, Err(message.clone())));
            }
        }
    }
}

/// Sends one pipeline of XADDs (and a WAIT after them); each add's id, or
/// why it failed (an error reply fails that add only).
async fn add_batch(
    link: &mut Link,
    batch: &[AddRequest],
    durability: Durability,
) -> redis::RedisResult<Vec<Result<String, String>>> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for request in batch {
        pipe.add_command(Cmd::xadd(&request.stream, "*", &request.fields));
    }
    if durability.replicas > 0 {
        pipe.cmd("WAIT").arg(durability.replicas).arg(durability.timeout.as_millis() as u64);
    }
    let mut replies: Vec<redis::RedisResult<Value>> = pipe.query_async(link).await?;
    let held = if durability.replicas > 0 {
        match replies.pop() {
            Some(Ok(Value::Int(n))) => Some(n.max(0) as u32),
            Some(Err(e)) => return Err(e),
            _ => Some(0),
        }
    } else {
        None
    };
    Ok(replies
        .into_iter()
        .zip(batch)
        .map(|(reply, request)| {
            let added = reply.map_err(|e| format!("add to '{}' failed: {e}", request.stream))?;
            let added = id(&added).map_err(|e| format!("add to '{}': {e}", request.stream))?;
            match held {
                Some(held) if held < durability.replicas => Err(format!(
                    "entry {added} was added to '{}' but only {held} of {} replicas held it within {:.1} s \
                     (a failover now could lose it)",
                    request.stream,
                    durability.replicas,
                    durability.timeout.as_secs_f64()
                )),
                _ => Ok(added.to_string()),
            }
        })
        .collect())
}
