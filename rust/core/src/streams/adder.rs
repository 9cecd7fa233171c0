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

/// Sends the adds, one pipeline per stream (with a WAIT after its XADDs, on
/// the connection to that stream's node); each add's id, or why it failed (an
/// error reply fails that add only).
async fn add_batch(
    link: &mut Link,
    batch: &[AddRequest],
    durability: Durability,
) -> redis::RedisResult<Vec<Result<String, String>>> {
    let mut results: Vec<Option<Result<String, String>>> = batch.iter().map(|_| None).collect();
    let mut streams: Vec<&str> = batch.iter().map(|request| request.stream.as_str()).collect();
    streams.sort_unstable();
    streams.dedup();
    for stream in streams {
        let members: Vec<usize> = (0..batch.len()).filter(|i| batch[*i].stream == stream).collect();
        let mut pipe = redis::pipe();
        for i in &members {
            pipe.add_command(Cmd::xadd(stream, "*", &batch[*i].fields));
        }
        if durability.replicas > 0 {
            pipe.cmd("WAIT").arg(durability.replicas).arg(durability.timeout.as_millis() as u64);
        }
        let mut replies = link.query_on_node_of(stream, &pipe).await?;
        let held = if durability.replicas > 0 {
            match replies.pop() {
                Some(Value::Int(n)) => Some(n.max(0) as u32),
                Some(Value::ServerError(e)) => return Err(e.into()),
                _ => Some(0),
            }
        } else {
            None
        };
        for (i, reply) in members.into_iter().zip(replies) {
            results[i] = Some(added(stream, reply, held, durability));
        }
    }
    Ok(results.into_iter().map(|r| r.unwrap_or_else(|| Err("add failed: no reply".into()))).collect())
}

/// One XADD's reply as the add's result.
fn added(stream: &str, reply: Value, held: Option<u32>, durability: Durability) -> Result<String, String> {
    if let Value::ServerError(e) = reply {
        return Err(format!("add to '{stream}' failed: {}", redis::RedisError::from(e)));
    }
    let added = id(&reply).map_err(|e| format!("add to '{stream}': {e}"))?;
    match held {
        Some(held) if held < durability.replicas => Err(format!(
            "entry {added} was added to '{stream}' but only {held} of {} replicas held it within {:.1} s \
             (a failover now could lose it)",
            durability.replicas,
            durability.timeout.as_secs_f64()
        )),
        _ => Ok(added.to_string()),
    }
}
