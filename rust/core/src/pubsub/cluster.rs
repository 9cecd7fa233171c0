//! RedisSubscriber in a Redis Cluster (Redis 7+ / Valkey): plain and pattern subscriptions,
//! sharded channels, and publishing, given any nodes of the cluster as seeds.
//!
//! - **Plain and pattern subscriptions** use the single-node session ([`super::session::run`])
//!   on one node at a time, the seeds in turn ([`SessionConfig::more_addresses`](super::SessionConfig)):
//!   a cluster forwards every PUBLISH to every node, so one connection to any node receives
//!   them all, and one connection holds each subscription exactly once by construction. The
//!   redis crate's cluster connection would subscribe each channel on the master of the
//!   channel's slot and, after its slot map changed, on the new owner, without unsubscribing
//!   it on an old owner that is still up: after a slot migration every message would arrive
//!   twice.
//! - **Sharded channels** ([`run_sharded`]) are held on one connection per master, each made
//!   like the single-node session's (the [`tap`](super::tap) reads their messages, and
//!   `max_message_bytes` bounds them), with the slot map read from CLUSTER SLOTS. The redis
//!   crate's cluster connection (`cluster-async`, RESP3, a push sender, its automatic
//!   resubscription) was the first choice, and was tried: in one run of four of the failover
//!   test (tests/cases/test_redis_cluster.gd) it held the killed master's channel twice, so
//!   its last 39 messages arrived twice while PUBSUB SHARDNUMSUB on the new master said 1. The
//!   second subscription was on another node: most likely the killed master, back as a replica
//!   of the new one (a replica serves the sharded subscribers of its master's slots, and gets
//!   every SPUBLISH by replication). The crate resubscribes a node it reconnects to with the
//!   channels its own slot map gives that node, and that map can be older than the failover.
//!   Its tracker also takes the `sunsubscribe` a master sends when a slot moves away as if the
//!   client had asked for it, and forgets the channel. Here the session decides where each
//!   channel is:
//!   - it holds a channel on exactly one connection, to the master that CLUSTER SLOTS names
//!     for its slot and that answers ROLE with `master` when connected;
//!   - when a slot moves, its old master drops the channel and says so (`sunsubscribe`): the
//!     channel is subscribed again where the slot map now puts it;
//!   - when a master's connection ends (it died), its channels wait until the slot map names
//!     another master (its replica, after the failover), retried with backoff; nothing is
//!     subscribed on a node that is not a master, and a connection whose answers no longer
//!     match its requests is closed, which ends whatever it held.
//!
//!   PUBSUB SHARDNUMSUB on the owning master then says 1, and no other node holds the channel
//!   (tests/cases/test_redis_cluster.gd checks both after a slot migration and a failover).
//! - **Publishing** ([`run_cluster_publisher`]) uses the crate's cluster connection, which
//!   holds no subscription: PUBLISH and SPUBLISH (routed to the channel's master; MOVED,
//!   reconnects and slot-map refreshes are the crate's), many in flight, answered in order.
//!   A PUBLISH in a cluster answers with the subscribers of the node that took it only.
//!
//! Messages published while a shard has no master (the seconds of a failover) are not
//! delivered: pub/sub is at most once.

use std::{
    collections::{BTreeSet, HashMap},
    future::Future,
    sync::{Arc, atomic::Ordering::Relaxed},
    time::Duration,
};

use futures_util::{
    StreamExt,
    stream::{FuturesOrdered, FuturesUnordered},
};
use redis::{
    PushInfo, PushKind, RedisError, Value,
    aio::MultiplexedConnection,
    cluster::{ClusterClient, ClusterClientBuilder},
    cluster_async::ClusterConnection,
};
use tokio::{
    sync::mpsc::{self, UnboundedReceiver, UnboundedSender},
    time::Instant,
};

use super::{
    address::RedisAddress,
    connect::{ConnectError, Driver, connect, describe},
    inbox::{Message, MessageSink},
    publisher::{PublishRequest, PublishStats},
    session::{Command, Kind, SessionEvents, SessionStats},
};
use crate::backoff::Backoff;

/// Publishes in flight at once on the publisher's cluster connection.
const MAX_IN_FLIGHT: usize = 1024;

/// Where a cluster is and how to talk to it.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// Seed nodes (at least one); the others are found from them.
    pub seeds: Vec<RedisAddress>,
    /// Limit of one connection attempt and of one request.
    pub connect_timeout: Duration,
    /// First wait before retrying pending subscriptions (it doubles up to `reconnect_max`).
    pub reconnect_min: Duration,
    /// Longest wait before retrying.
    pub reconnect_max: Duration,
}

impl ClusterSettings {
    /// A client of the crate for these seeds.
    fn client(&self) -> Result<ClusterClient, ConnectError> {
        let infos = self.seeds.iter().map(|seed| seed.info().clone());
        let mut builder = ClusterClientBuilder::new(infos)
            .use_protocol(redis::ProtocolVersion::RESP3)
            .connection_timeout(self.connect_timeout)
            .response_timeout(self.connect_timeout)
            // Few retries inside the crate: the session retries pending work itself, with backoff.
            .retries(2)
            .min_retry_wait(50)
            .max_retry_wait(500);
        if let Some(ca_file) = self.seeds[0].ca_file() {
            let pem = std::fs::read(ca_file)
                .map_err(|e| self.error(&format!("cannot read ca_file {}: {e}", ca_file.display()), true))?;
            builder = builder.certs(redis::TlsCertificates { client_tls: None, root_cert: Some(pem) });
        }
        builder.build().map_err(|e| describe(&self.seeds[0], &e))
    }

    /// Connects to the cluster (the slot map from the first seed that answers).
    async fn connect(&self) -> Result<ClusterConnection, ConnectError> {
        let client = self.client()?;
        match tokio::time::timeout(self.connect_timeout * 2, client.get_async_connection()).await {
            Ok(result) => result.map_err(|e| self.describe(&e)),
            Err(_) => Err(self.error("no node of the cluster answered in time", false)),
        }
    }

    /// A crate error as a sentence naming the seeds.
    fn describe(&self, e: &RedisError) -> ConnectError {
        let mut error = describe(&self.seeds[0], e);
        error.message = format!("cluster {}", error.message.replacen(self.seeds[0].shown(), &self.shown(), 1));
        error
    }

    fn error(&self, what: &str, fatal: bool) -> ConnectError {
        ConnectError { message: format!("cluster {}: {what}", self.shown()), fatal }
    }

    /// The seeds, redacted, for messages.
    pub fn shown(&self) -> String {
        self.seeds.iter().map(RedisAddress::shown).collect::<Vec<_>>().join(",")
    }
}

/// One of the sharded session's connections: to a master, holding the wanted channels whose
/// slots it serves.
struct Link {
    /// Which connection of the session this is (a node may be reconnected to later).
    id: u64,
    /// `host:port`.
    node: String,
    connection: MultiplexedConnection,
    channels: BTreeSet<String>,
}

/// Where a sharded link's reader puts things: messages into the inbox (its fast lane, the
/// [`tap`](super::tap), does that before the crate sees them), and the other pushes, with the
/// link's id, to the session.
struct LinkSink {
    inbox: Arc<dyn MessageSink>,
    link: u64,
    control: UnboundedSender<(u64, PushInfo)>,
}

impl MessageSink for LinkSink {
    fn push(&self, message: Message) {
        self.inbox.push(message);
    }

    fn control(&self, push: PushInfo) {
        let _ = self.control.send((self.link, push));
    }
}

/// The channel a subscription push is about.
fn push_channel(info: &PushInfo) -> Option<String> {
    match info.data.first()? {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

/// The sharded session's state: what is wanted, where each channel is held, the slot map.
struct Shards {
    settings: ClusterSettings,
    inbox: Arc<dyn MessageSink>,
    control: UnboundedSender<(u64, PushInfo)>,
    /// Wanted channels, in the order asked for.
    wanted: Vec<String>,
    /// Wanted channels that no link holds.
    pending: BTreeSet<String>,
    links: Vec<Link>,
    /// Where a new link's driver goes, to be polled beside the session ([`drive`]).
    drivers: UnboundedSender<(u64, Driver)>,
    next_id: u64,
    /// Slot ranges (first, last, `host:port` of the master), from CLUSTER SLOTS.
    slots: Vec<(u16, u16, String)>,
    /// CLUSTER KEYSLOT of each channel asked about.
    keyslots: HashMap<String, u16>,
}

impl Shards {
    /// Subscribes every pending channel on the master that serves its slot, after reading the
    /// slot map again; confirmed ones go to `events`. Stops at the first failure; one with an
    /// empty message is a slot that moved meanwhile (MOVED), to retry at once.
    async fn place_pending(&mut self, events: &mut impl SessionEvents) -> Result<(), ConnectError> {
        let linked = self.links.first().map(|link| link.connection.clone());
        let (mut map, driver) = any_connection(linked, &self.settings).await?;
        // A seed's connection is driven here, and closed when this returns.
        let mut driver = driver.unwrap_or_else(|| Box::pin(std::future::pending()));
        let lost = self.settings.error("the connection to a seed closed", false);
        tokio::select! {
            result = self.place_with(&mut map, events) => result,
            _ = &mut driver => Err(lost),
        }
    }

    async fn place_with(
        &mut self,
        map: &mut MultiplexedConnection,
        events: &mut impl SessionEvents,
    ) -> Result<(), ConnectError> {
        self.slots = read_slots(map, &self.settings).await?;
        for name in self.pending.clone() {
            let slot = match self.keyslots.get(&name) {
                Some(slot) => *slot,
                None => {
                    let slot =
                        within(&self.settings, words(&["CLUSTER", "KEYSLOT", &name]).query_async::<u16>(map)).await?;
                    *self.keyslots.entry(name.clone()).or_insert(slot)
                }
            };
            let owner = self.slots.iter().find(|(first, last, _)| (*first..=*last).contains(&slot));
            let Some((_, _, node)) = owner.cloned() else {
                return Err(self.settings.error(&format!("no master serves slot {slot} (of '{name}') yet"), false));
            };
            let index = self.link_to(&node).await?;
            let id = self.links[index].id;
            let subscribe = words(&["SSUBSCRIBE", &name]);
            let request = subscribe.query_async::<Value>(&mut self.links[index].connection);
            let answer = tokio::time::timeout(self.settings.connect_timeout, request).await;
            let confirmed = match &answer {
                Ok(Ok(Value::Push { kind: PushKind::SSubscribe, data })) => {
                    matches!(data.first(), Some(Value::BulkString(b)) if *b == name.as_bytes())
                }
                _ => false,
            };
            if confirmed {
                self.links[index].channels.insert(name.clone());
                self.pending.remove(&name);
                events.subscribed(&name, Kind::Shard);
                continue;
            }
            return Err(match answer {
                // The slot moved meanwhile: the map is read again at once, nothing to report.
                Ok(Err(e)) if matches!(e.code(), Some("MOVED" | "ASK")) => {
                    ConnectError { message: String::new(), fatal: false }
                }
                Ok(Err(e)) => self.settings.describe(&e),
                // Another answer in its place (a server's sunsubscribe taken as the reply), or
                // none: the link can no longer be trusted; closing it drops what it held.
                Ok(Ok(other)) => {
                    self.drop_link(id);
                    self.settings.error(&format!("{node}: unexpected answer to SSUBSCRIBE {name}: {other:?}"), false)
                }
                Err(_) => {
                    self.drop_link(id);
                    self.settings.error(&format!("{node}: no answer to SSUBSCRIBE {name}"), false)
                }
            });
        }
        Ok(())
    }

    /// The index of the link to `node`, connected now if there is none. A node that answers
    /// ROLE with anything but `master` is refused: the slot map was out of date.
    async fn link_to(&mut self, node: &str) -> Result<usize, ConnectError> {
        if let Some(index) = self.links.iter().position(|l| l.node == node) {
            return Ok(index);
        }
        let (host, port) = node.rsplit_once(':').and_then(|(h, p)| Some((h, p.parse().ok()?))).ok_or_else(|| {
            self.settings.error(&format!("CLUSTER SLOTS named a node without a port: '{node}'"), false)
        })?;
        let address = self.settings.seeds[0].at(host, port);
        let id = self.next_id;
        self.next_id += 1;
        let sink = LinkSink { inbox: self.inbox.clone(), link: id, control: self.control.clone() };
        let (mut connection, driver) = connect(&address, self.settings.connect_timeout, Some(Arc::new(sink))).await?;
        let _ = self.drivers.send((id, driver));
        let role = within(&self.settings, words(&["ROLE"]).query_async::<Vec<Value>>(&mut connection)).await?;
        if !matches!(role.first(), Some(Value::BulkString(b)) if b == b"master") {
            return Err(self.settings.error(&format!("{node} is no longer a master"), false));
        }
        self.links.push(Link { id, node: node.to_string(), connection, channels: BTreeSet::new() });
        Ok(self.links.len() - 1)
    }

    /// Closes the link `id` (its connection, so the server forgets its subscriptions); what it
    /// held becomes pending.
    fn drop_link(&mut self, id: u64) {
        if let Some(index) = self.links.iter().position(|l| l.id == id) {
            let link = self.links.swap_remove(index);
            self.pending.extend(link.channels.into_iter().filter(|c| self.wanted.contains(c)));
        }
    }
}

/// A connection to ask the cluster about itself: `linked` (a link's), else a seed's (in turn,
/// with its driver, which the caller polls).
async fn any_connection(
    linked: Option<MultiplexedConnection>,
    settings: &ClusterSettings,
) -> Result<(MultiplexedConnection, Option<Driver>), ConnectError> {
    if let Some(connection) = linked {
        return Ok((connection, None));
    }
    let mut last = None;
    for seed in &settings.seeds {
        match connect(seed, settings.connect_timeout, None).await {
            Ok((connection, driver)) => return Ok((connection, Some(driver))),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| settings.error("no seed", true)))
}

/// `request`'s answer within the connect timeout.
async fn within<T>(
    settings: &ClusterSettings,
    request: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, ConnectError> {
    match tokio::time::timeout(settings.connect_timeout, request).await {
        Ok(result) => result.map_err(|e| settings.describe(&e)),
        Err(_) => Err(settings.error("no answer in time", false)),
    }
}

/// A command from its words.
fn words(words: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd(words[0]);
    for word in &words[1..] {
        cmd.arg(*word);
    }
    cmd
}

/// CLUSTER SLOTS: (first, last, `host:port` of the master) for each slot range.
async fn read_slots(
    connection: &mut MultiplexedConnection,
    settings: &ClusterSettings,
) -> Result<Vec<(u16, u16, String)>, ConnectError> {
    let slots = words(&["CLUSTER", "SLOTS"]);
    let request = slots.query_async::<Vec<Vec<Value>>>(connection);
    let ranges = match tokio::time::timeout(settings.connect_timeout, request).await {
        Ok(result) => result.map_err(|e| settings.describe(&e))?,
        Err(_) => return Err(settings.error("no answer to CLUSTER SLOTS", false)),
    };
    let number = |v: &Value| match v {
        Value::Int(n) => u16::try_from(*n).ok(),
        _ => None,
    };
    let mut slots = Vec::new();
    for range in ranges {
        let (Some(first), Some(last), Some(Value::Array(master))) =
            (range.first().and_then(number), range.get(1).and_then(number), range.get(2))
        else {
            continue;
        };
        let host = match master.first() {
            Some(Value::BulkString(b)) if !b.is_empty() => String::from_utf8_lossy(b).into_owned(),
            _ => continue,
        };
        if let Some(port) = master.get(1).and_then(number) {
            slots.push((first, last, format!("{host}:{port}")));
        }
    }
    Ok(slots)
}

/// Runs the sharded half of a cluster subscriber until the command sender is dropped (`Ok`) or
/// a fatal error (`Err`: wrong password). Holds each of `shard_channels`, and of those the
/// commands add ([`Kind::Shard`]), with SSUBSCRIBE on the master that serves its slot, on one
/// connection per master, exactly once, through slot moves and failovers (see the module doc).
/// Reports subscriptions and problems to `events` (never the state: the plain session owns it).
pub async fn run_sharded(
    settings: ClusterSettings,
    shard_channels: Vec<String>,
    inbox: Arc<dyn MessageSink>,
    mut commands: UnboundedReceiver<Command>,
    mut events: impl SessionEvents,
    stats: Arc<SessionStats>,
) -> Result<(), String> {
    let (control, mut pushes) = mpsc::unbounded_channel();
    let (drivers, new_drivers) = mpsc::unbounded_channel();
    let (ended, mut lost) = mpsc::unbounded_channel();
    let mut backoff = Backoff::new(settings.reconnect_min, settings.reconnect_max);
    let mut shards = Shards {
        settings,
        inbox,
        control,
        wanted: Vec::new(),
        pending: BTreeSet::new(),
        links: Vec::new(),
        drivers,
        next_id: 0,
        slots: Vec::new(),
        keyslots: HashMap::new(),
    };
    for name in shard_channels {
        if !shards.wanted.contains(&name) {
            shards.pending.insert(name.clone());
            shards.wanted.push(name);
        }
    }
    // Whether the failures of this episode were reported.
    let mut reported = false;
    let retry = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(retry);
    let session = async move {
        loop {
            stats.shard_channels.store(shards.wanted.len(), Relaxed);
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else { return Ok(()) };
                    match command {
                        Command::Subscribe(_, name) if !shards.wanted.contains(&name) => {
                            shards.wanted.push(name.clone());
                            shards.pending.insert(name);
                            retry.as_mut().reset(Instant::now());
                        }
                        Command::Unsubscribe(_, name) if shards.wanted.contains(&name) => {
                            shards.wanted.retain(|n| *n != name);
                            shards.pending.remove(&name);
                            if let Some(link) = shards.links.iter_mut().find(|l| l.channels.contains(&name)) {
                                link.channels.remove(&name);
                                let unsubscribe = words(&["SUNSUBSCRIBE", &name]);
                                let request = unsubscribe.query_async::<Value>(&mut link.connection);
                                // Unanswered: closing the link is the sure way to end the subscription.
                                if !matches!(tokio::time::timeout(shards.settings.connect_timeout, request).await, Ok(Ok(_))) {
                                    let id = link.id;
                                    shards.drop_link(id);
                                    retry.as_mut().reset(Instant::now());
                                }
                            }
                            events.unsubscribed(&name, Kind::Shard);
                        }
                        _ => {}
                    }
                }
                Some((id, push)) = pushes.recv() => {
                    // The slot moved away from that master, which dropped the channel itself.
                    if push.kind == PushKind::SUnsubscribe
                        && let Some(name) = push_channel(&push)
                        && let Some(link) = shards.links.iter_mut().find(|l| l.id == id)
                        && link.channels.remove(&name)
                        && shards.wanted.contains(&name)
                    {
                        shards.pending.insert(name);
                        retry.as_mut().reset(Instant::now());
                    }
                }
                Some(id) = lost.recv() => {
                    // A link's connection ended (its master died, or the network): its channels go
                    // elsewhere once the slot map names the new master.
                    let held = shards.links.iter().any(|l| l.id == id && !l.channels.is_empty());
                    shards.drop_link(id);
                    if held {
                        retry.as_mut().reset(Instant::now() + shards.settings.reconnect_min);
                    }
                }
                () = &mut retry, if !shards.pending.is_empty() => {
                    match shards.place_pending(&mut events).await {
                        Ok(()) => {
                            backoff.reset();
                            reported = false;
                        }
                        Err(error) if error.fatal => return Err(error.message),
                        Err(error) if error.message.is_empty() => retry.as_mut().reset(Instant::now()),
                        Err(error) => {
                            let delay = backoff.next_delay();
                            if !reported {
                                reported = true;
                                events.error(&format!("sharded channels: {}; retrying in {:.1} s", error.message, delay.as_secs_f64()));
                            }
                            retry.as_mut().reset(Instant::now() + delay);
                        }
                    }
                }
            }
        }
    };
    // The links' drivers run beside the session, also while it waits on one of them.
    tokio::select! {
        result = session => result,
        () = drive(new_drivers, ended) => Ok(()),
    }
}

/// Polls every driver `new` hands over until its connection ends, then sends its id to
/// `ended`; returns when the session is gone.
async fn drive(mut new: UnboundedReceiver<(u64, Driver)>, ended: UnboundedSender<u64>) {
    let mut running = FuturesUnordered::new();
    loop {
        tokio::select! {
            Some((id, driver)) = new.recv() => running.push(async move {
                driver.await;
                id
            }),
            Some(id) = running.next(), if !running.is_empty() => {
                let _ = ended.send(id);
            }
            else => return,
        }
    }
}

/// A publish on a cluster: PUBLISH, or SPUBLISH to a sharded channel.
#[derive(Debug)]
pub struct ClusterPublish {
    /// Channel, payload and where the answer goes.
    pub request: PublishRequest,
    /// SPUBLISH: the channel is sharded (the request goes to its slot's master).
    pub sharded: bool,
}

/// Serves publish requests (PUBLISH, or SPUBLISH when [`ClusterPublish::sharded`]) on a
/// cluster connection of its own until the sender is dropped: up to [`MAX_IN_FLIGHT`] at once,
/// sent and answered in the order they were made. Connected on the first request; a failed
/// connection attempt fails the requests that waited for it, and the next one tries again.
pub async fn run_cluster_publisher(
    settings: ClusterSettings,
    mut requests: UnboundedReceiver<ClusterPublish>,
    stats: Arc<PublishStats>,
) {
    let answer = |request: PublishRequest, result: Result<i64, String>| {
        let counter = if result.is_ok() { &stats.published } else { &stats.failed };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = request.reply.send(result);
    };
    let mut connection: Option<ClusterConnection> = None;
    let mut in_flight = FuturesOrdered::new();
    loop {
        tokio::select! {
            request = requests.recv(), if in_flight.len() < MAX_IN_FLIGHT => {
                let Some(ClusterPublish { request, sharded }) = request else { break };
                if connection.is_none() {
                    match settings.connect().await {
                        Ok(made) => connection = Some(made),
                        Err(error) => {
                            answer(request, Err(format!("publish failed: {}", error.message)));
                            continue;
                        }
                    }
                }
                let Some(mut link) = connection.clone() else { continue };
                let settings = &settings;
                in_flight.push_back(async move {
                    let command = if sharded { "SPUBLISH" } else { "PUBLISH" };
                    let mut cmd = redis::cmd(command);
                    cmd.arg(&request.channel).arg(&request.payload);
                    let result = cmd.query_async::<i64>(&mut link).await;
                    let result = result.map_err(|e| format!("publish failed: {}", settings.describe(&e).message));
                    (request, result)
                });
            }
            Some((request, result)) = in_flight.next(), if !in_flight.is_empty() => answer(request, result),
        }
    }
    while let Some((request, result)) = in_flight.next().await {
        answer(request, result);
    }
}
