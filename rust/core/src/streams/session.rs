//! The consumer's loop: connect, make sure the group exists, deliver this
//! consumer's own pending entries first (what it was handed before a crash
//! or a lost connection and never acknowledged), then new entries, while
//! acknowledging what the game handled and claiming the entries that other
//! (dead) consumers left idle; on a lost connection, wait with backoff and
//! start over.
//!
//! Two connections per attempt: a blocking XREADGROUP holds its connection
//! until entries arrive, so acknowledgements, claims and dead-lettering go
//! over a second one. A read is never cancelled while its reply is on the way
//! (the entries it returns would only come back after `claim_idle`): the two
//! loops run side by side and only a lost connection or a stop ends them.

use std::{
    collections::HashSet,
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use redis::{Cmd, RedisError, Value, streams::StreamPendingCountReply};
use tokio::sync::mpsc::UnboundedReceiver;

use super::{
    ConsumerConfig,
    entry::{Entry, EntryId, Read, parse_autoclaim_reply, parse_read_reply},
    link::{Link, open},
};
use crate::{
    backoff::Backoff,
    pubsub::{ConnectError, connect::describe},
    relay::Closed,
    state::NetState,
};

/// What the consumer tells the game, from the I/O worker.
pub trait ConsumerEvents: Sync {
    /// The connection state changed.
    fn state_changed(&self, state: NetState);
    /// A problem the consumer recovers from (it reconnects).
    fn error(&self, message: &str);
    /// Waits for room in the queue to the game, then hands over an entry to
    /// handle. Fails when the game stopped the consumer.
    fn entry(&self, entry: Entry) -> impl Future<Output = Result<(), Closed>> + Send;
    /// An entry was moved to the dead-letter stream (and acknowledged).
    fn dead_lettered(&self, entry: Entry) -> impl Future<Output = Result<(), Closed>> + Send;
}

/// Counters of a consumer, written on the I/O worker and read anywhere.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Connections made (the first one included).
    pub connects: AtomicU64,
    /// Connections lost or attempts failed, each followed by a retry.
    pub reconnects: AtomicU64,
    /// Entries handed to the game.
    pub received: AtomicU64,
    /// Of those, entries delivered before (this consumer's pending ones, or claimed).
    pub redelivered: AtomicU64,
    /// Entries claimed from idle consumers (this one's included).
    pub claimed: AtomicU64,
    /// Entries acknowledged (XACK said so).
    pub acked: AtomicU64,
    /// Entries moved to the dead-letter stream.
    pub dead_lettered: AtomicU64,
    /// Pending entries found deleted from the stream, and acknowledged.
    pub deleted: AtomicU64,
}

/// Most ids in one XACK.
const MAX_ACK_BATCH: usize = 1000;
/// Most XAUTOCLAIM calls in one round of claiming: the rest waits for the next round.
const MAX_CLAIM_CALLS: usize = 10;
/// Past this many entries handed over and not yet acknowledged, the consumer
/// stops remembering them (they would be delivered again after a reconnect:
/// a duplicate, never a loss), so a game that never acknowledges cannot make
/// it hold unbounded memory.
const MAX_REMEMBERED: usize = 1_000_000;

/// How a connection ended.
enum Ended {
    /// The game stopped the consumer.
    Stopped,
    /// The connection failed; the message says how.
    Lost(ConnectError),
}

impl From<Closed> for Ended {
    fn from(_: Closed) -> Self {
        Ended::Stopped
    }
}

/// What the two loops of a connection share.
struct Shared {
    /// Entries handed to the game and not acknowledged yet: a re-read of this
    /// consumer's pending entries after a reconnect skips them (they are
    /// still in the game's queue or its handler).
    handed: Mutex<HashSet<EntryId>>,
}

impl Shared {
    fn handed(&self) -> std::sync::MutexGuard<'_, HashSet<EntryId>> {
        self.handed.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn remember(&self, id: EntryId) {
        let mut handed = self.handed();
        if handed.len() >= MAX_REMEMBERED {
            handed.clear();
        }
        handed.insert(id);
    }
}

/// Runs the consumer until the ack sender is dropped (`Ok`) or a fatal error
/// (`Err`: wrong password, a missing group without `create_group`, or any
/// error with `reconnect` off). Acknowledgements come from the game through
/// `acks`; one not sent when a connection is lost is sent on the next.
pub async fn run(
    config: ConsumerConfig,
    mut acks: UnboundedReceiver<Vec<EntryId>>,
    events: impl ConsumerEvents,
    stats: Arc<ConsumerStats>,
) -> Result<(), String> {
    config.check()?;
    let shared = Shared { handed: Mutex::default() };
    let mut unsent = Vec::new();
    let mut backoff = Backoff::new(config.reconnect_min, config.reconnect_max);
    events.state_changed(NetState::Connecting);
    loop {
        let ended = match offline(connect(&config), &mut acks, &mut unsent).await {
            None => Ended::Stopped,
            Some(Err(error)) => Ended::Lost(error),
            Some(Ok((reader, control))) => {
                stats.connects.fetch_add(1, Relaxed);
                let connection = Connection { config: &config, events: &events, stats: &stats, shared: &shared };
                connection.run(reader, control, &mut acks, &mut unsent, &mut backoff).await
            }
        };
        let error = match ended {
            Ended::Stopped => return Ok(()),
            Ended::Lost(error) if error.fatal || !config.reconnect => return Err(error.message),
            Ended::Lost(error) => error,
        };
        stats.reconnects.fetch_add(1, Relaxed);
        let delay = backoff.next_delay();
        events.state_changed(NetState::Reconnecting);
        events.error(&format!("{}; reconnecting in {:.1} s", error.message, delay.as_secs_f64()));
        if offline(tokio::time::sleep(delay), &mut acks, &mut unsent).await.is_none() {
            return Ok(());
        }
    }
}

type Pair = ((Link, crate::pubsub::connect::Driver), (Link, crate::pubsub::connect::Driver));

async fn connect(config: &ConsumerConfig) -> Result<Pair, ConnectError> {
    // The reader's reply may take the whole BLOCK; the control connection's never should.
    let reader = open(config, Some(config.block + config.connect_timeout)).await?;
    let control = open(config, Some(config.connect_timeout)).await?;
    Ok((reader, control))
}

/// Runs `work` while keeping the game's acknowledgements for the next
/// connection. `None`: the game stopped.
async fn offline<T>(
    work: impl Future<Output = T>,
    acks: &mut UnboundedReceiver<Vec<EntryId>>,
    unsent: &mut Vec<EntryId>,
) -> Option<T> {
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            result = &mut work => return Some(result),
            ids = acks.recv() => unsent.extend(ids?),
        }
    }
}

/// One connection attempt's view of the consumer.
struct Connection<'a, E> {
    config: &'a ConsumerConfig,
    events: &'a E,
    stats: &'a ConsumerStats,
    shared: &'a Shared,
}

impl<E: ConsumerEvents> Connection<'_, E> {
    async fn run(
        &self,
        (mut reader, reader_driver): (Link, crate::pubsub::connect::Driver),
        (mut control, control_driver): (Link, crate::pubsub::connect::Driver),
        acks: &mut UnboundedReceiver<Vec<EntryId>>,
        unsent: &mut Vec<EntryId>,
        backoff: &mut Backoff,
    ) -> Ended {
        let lost = |reason: Option<String>| {
            Ended::Lost(ConnectError {
                message: format!("{}: {}", self.config.address.shown(), reason.as_deref().unwrap_or("connection lost")),
                fatal: false,
            })
        };
        // Every command needs its connection's driver polled: the work runs beside both drivers.
        let work = async {
            self.ensure_group(&mut control).await?;
            backoff.reset();
            self.events.state_changed(NetState::Connected);
            tokio::select! {
                result = self.read(&mut reader) => result,
                result = self.control(&mut control, acks, unsent) => result,
            }
        };
        let result = tokio::select! {
            result = work => result,
            reason = reader_driver => Err(lost(reason)),
            reason = control_driver => Err(lost(reason)),
        };
        match result {
            Ok(()) => Ended::Stopped,
            Err(ended) => ended,
        }
    }

    /// A command error as the end of this connection, in the game developer's words.
    fn failed(&self, e: &RedisError) -> Ended {
        let config = self.config;
        if e.code() == Some("NOGROUP") {
            return Ended::Lost(ConnectError {
                message: format!(
                    "{}: stream '{}' has no consumer group '{}'{}",
                    config.address.shown(),
                    config.stream,
                    config.group,
                    if config.create_group {
                        " (deleted while in use: creating it again)"
                    } else {
                        "; turn create_group on, or create it with XGROUP CREATE"
                    }
                ),
                fatal: !config.create_group,
            });
        }
        Ended::Lost(describe(&config.address, e))
    }

    async fn ensure_group(&self, control: &mut Link) -> Result<(), Ended> {
        let config = self.config;
        if !config.create_group {
            return Ok(());
        }
        let create = Cmd::xgroup_create_mkstream(&config.stream, &config.group, &config.start_id);
        match create.query_async::<Value>(control).await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(self.failed(&e)),
        }
    }

    /// This consumer's pending entries (from the start of its pending list),
    /// then new ones, until the connection fails or the game stops.
    async fn read(&self, reader: &mut Link) -> Result<(), Ended> {
        let config = self.config;
        let mut cursor = EntryId::default();
        loop {
            let reads = self.read_group(reader, &cursor.to_string(), None).await?;
            let Some(last) = reads.last() else { break };
            cursor = match last {
                Read::Entry(entry) => entry.id,
                Read::Deleted(id) => *id,
            };
            self.redeliver(reader, reads, true).await?;
        }
        let block = Some(config.block.as_millis().max(1) as usize);
        loop {
            for read in self.read_group(reader, ">", block).await? {
                if let Read::Entry(entry) = read {
                    self.hand_over(entry).await?;
                }
            }
        }
    }

    async fn read_group(&self, reader: &mut Link, from: &str, block: Option<usize>) -> Result<Vec<Read>, Ended> {
        let config = self.config;
        let mut options = redis::streams::StreamReadOptions::default()
            .group(&config.group, &config.consumer)
            .count(config.batch_size);
        if let Some(ms) = block {
            options = options.block(ms);
        }
        let reply = Cmd::xread_options(&[&config.stream], &[from], &options)
            .query_async::<Value>(reader)
            .await
            .map_err(|e| self.failed(&e))?;
        parse_read_reply(reply).map_err(|e| self.bad_reply(e))
    }

    fn bad_reply(&self, message: String) -> Ended {
        Ended::Lost(ConnectError { message: format!("{}: {message}", self.config.address.shown()), fatal: false })
    }

    async fn hand_over(&self, entry: Entry) -> Result<(), Ended> {
        self.shared.remember(entry.id);
        self.stats.received.fetch_add(1, Relaxed);
        self.events.entry(entry).await?;
        Ok(())
    }

    /// Entries delivered before (own pending ones, or claimed): each is
    /// dead-lettered if this delivery is past `max_deliveries`, else handed
    /// over again. Deleted ones are acknowledged. `skip_handed`: leave out
    /// what this run already handed to the game (a re-read after a reconnect).
    async fn redeliver(&self, link: &mut Link, reads: Vec<Read>, skip_handed: bool) -> Result<(), Ended> {
        let config = self.config;
        let (mut entries, mut deleted) = (Vec::new(), Vec::new());
        for read in reads {
            match read {
                Read::Entry(entry) => entries.push(entry),
                Read::Deleted(id) => deleted.push(id),
            }
        }
        if !deleted.is_empty() {
            let acked: u64 = Cmd::xack(&config.stream, &config.group, &deleted)
                .query_async(link)
                .await
                .map_err(|e| self.failed(&e))?;
            self.stats.deleted.fetch_add(acked, Relaxed);
        }
        if skip_handed {
            let handed = self.shared.handed();
            entries.retain(|entry| !handed.contains(&entry.id));
        }
        if entries.is_empty() {
            return Ok(());
        }
        let mut counts = redis::pipe();
        for entry in &entries {
            counts.add_command(Cmd::xpending_count(&config.stream, &config.group, entry.id, entry.id, 1));
        }
        let counts: Vec<StreamPendingCountReply> = counts.query_async(link).await.map_err(|e| self.failed(&e))?;
        for (entry, count) in entries.into_iter().zip(counts) {
            // Missing from the pending list: acknowledged meanwhile (by a handler that was slow).
            let Some(pending) = count.ids.first() else { continue };
            if pending.times_delivered as u64 > config.max_deliveries {
                self.dead_letter(link, entry).await?;
            } else {
                self.stats.redelivered.fetch_add(1, Relaxed);
                self.hand_over(entry).await?;
            }
        }
        Ok(())
    }

    /// Copies `entry` to the dead-letter stream, then acknowledges it (a
    /// crash in between dead-letters it twice, never loses it).
    async fn dead_letter(&self, link: &mut Link, entry: Entry) -> Result<(), Ended> {
        let config = self.config;
        let fields: Vec<(&[u8], &[u8])> = entry.fields.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        let mut pipe = redis::pipe();
        pipe.add_command(Cmd::xadd(&config.dead_letter_stream, "*", &fields));
        pipe.add_command(Cmd::xack(&config.stream, &config.group, &[entry.id]));
        pipe.query_async::<()>(link).await.map_err(|e| self.failed(&e))?;
        self.stats.dead_lettered.fetch_add(1, Relaxed);
        self.events.dead_lettered(entry).await?;
        Ok(())
    }

    /// Sends the game's acknowledgements as they come, and claims idle
    /// entries every half `claim_idle` (at most every 5 s).
    async fn control(
        &self,
        control: &mut Link,
        acks: &mut UnboundedReceiver<Vec<EntryId>>,
        unsent: &mut Vec<EntryId>,
    ) -> Result<(), Ended> {
        let every = (self.config.claim_idle / 2).clamp(Duration::from_millis(50), Duration::from_secs(5));
        // The first claim comes one period in: this consumer's own pending entries are re-read
        // first (a claim at once would hand the idle ones over a second time).
        let mut claim = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        claim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.send_acks(control, unsent).await?;
            tokio::select! {
                ids = acks.recv() => {
                    let Some(ids) = ids else { return Ok(()) };
                    unsent.extend(ids);
                    while let Ok(ids) = acks.try_recv() {
                        unsent.extend(ids);
                    }
                }
                _ = claim.tick() => self.claim(control).await?,
            }
        }
    }

    async fn send_acks(&self, control: &mut Link, unsent: &mut Vec<EntryId>) -> Result<(), Ended> {
        let config = self.config;
        while !unsent.is_empty() {
            let chunk = unsent.len().min(MAX_ACK_BATCH);
            let ids = &unsent[..chunk];
            let acked: u64 = Cmd::xack(&config.stream, &config.group, ids)
                .query_async(control)
                .await
                .map_err(|e| self.failed(&e))?;
            self.stats.acked.fetch_add(acked, Relaxed);
            {
                let mut handed = self.shared.handed();
                ids.iter().for_each(|id| {
                    handed.remove(id);
                });
            }
            unsent.drain(..chunk);
        }
        Ok(())
    }

    /// Claims entries idle longer than `claim_idle` (any consumer's, this
    /// one's too: an entry its handler never acknowledged) and delivers them.
    async fn claim(&self, control: &mut Link) -> Result<(), Ended> {
        let config = self.config;
        let min_idle = config.claim_idle.as_millis() as usize;
        let mut cursor = EntryId::default();
        for _ in 0..MAX_CLAIM_CALLS {
            let options = redis::streams::StreamAutoClaimOptions::default().count(config.batch_size);
            let reply =
                Cmd::xautoclaim_options(&config.stream, &config.group, &config.consumer, min_idle, cursor, options)
                    .query_async::<Value>(control)
                    .await
                    .map_err(|e| self.failed(&e))?;
            let (next, reads, deleted) = parse_autoclaim_reply(reply).map_err(|e| self.bad_reply(e))?;
            self.stats.deleted.fetch_add(deleted.len() as u64, Relaxed);
            self.stats.claimed.fetch_add(reads.len() as u64, Relaxed);
            self.redeliver(control, reads, false).await?;
            if next == EntryId::default() {
                break;
            }
            cursor = next;
        }
        Ok(())
    }
}
