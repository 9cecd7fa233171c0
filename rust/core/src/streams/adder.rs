//! `add()`: XADD on a connection of its own (the consumer's connections
//! are busy with a blocking read and with acknowledgements), with WAIT when
//! the game asks for replicas to hold each entry before it counts as added.
//! Connected on the first add, kept open, reopened on the next add after a
//! failure; adds go out pipelined and in order ([`crate::pipelined`]).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use redis::{Cmd, Value};
use tokio::sync::{mpsc::UnboundedReceiver, oneshot};

use super::{
    ConsumerConfig,
    entry::id,
    link::{Link, open},
};
use crate::{
    pipelined,
    pubsub::connect::{Driver, describe},
};

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

/// Serves add requests until the sender is dropped, pipelined and in order
/// ([`crate::pipelined`]).
pub async fn run_adder(
    config: ConsumerConfig,
    durability: Durability,
    requests: UnboundedReceiver<AddRequest>,
    stats: Arc<AddStats>,
) {
    pipelined::serve(Adder { config, durability, stats }, requests, "add failed").await;
}

struct Adder {
    config: ConsumerConfig,
    durability: Durability,
    stats: Arc<AddStats>,
}

impl pipelined::Pipeline for Adder {
    type Request = AddRequest;
    type Connection = Link;
    type Answer = String;

    async fn connect(&mut self) -> Result<(Link, Driver), String> {
        let reply_limit = self.config.connect_timeout + self.durability.timeout;
        open(&self.config, Some(reply_limit)).await.map_err(|error| format!("add failed: {}", error.message))
    }

    async fn send(&mut self, link: &mut Link, batch: &[AddRequest]) -> Result<Vec<Result<String, String>>, String> {
        add_batch(link, batch, self.durability).await.map_err(|e| describe(&self.config.address, &e).message)
    }

    fn lost(&self, reason: Option<String>) -> String {
        format!("{}: {}", self.config.address.shown(), reason.as_deref().unwrap_or("connection lost"))
    }

    fn answer(&mut self, request: AddRequest, result: Result<String, String>) {
        let counter = if result.is_ok() { &self.stats.added } else { &self.stats.failed };
        counter.fetch_add(1, Relaxed);
        let _ = request.reply.send(result);
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
