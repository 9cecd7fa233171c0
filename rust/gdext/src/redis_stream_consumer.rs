//! `RedisStreamConsumer`: a Redis Stream read through a consumer group, each
//! entry a signal, delivered at least once: acknowledged after the handler
//! returns (or by hand), delivered again after a crash, claimed from dead
//! consumers, dead-lettered when it keeps failing; `add()` writes entries.
//! The consumer's loop lives in `async_net_core::streams` and runs on the
//! I/O worker; the main thread moves entries into signals.

use std::{
    cell::Cell,
    rc::Rc,
    sync::{Arc, atomic::Ordering::Relaxed},
};

use async_net_core::{
    pubsub::{self, RedisAddress},
    relay::{Bounds, Relay},
    state::NetState,
    streams::{self, AddRequest, AddStats, ConsumerConfig, ConsumerStats, Durability, EntryId},
};
use godot::{
    classes::{INode, Node},
    prelude::*,
};
use tokio::sync::{mpsc, oneshot};

use crate::{
    async_task::AsyncTask,
    net_node::{NetNode, NodeLink, unbound},
    redis_stream_delivery::{Emitter, Forwarder},
    runtime,
    settings::{self, positive, seconds},
};

/// Default of `add_wait_timeout_sec`.
const DEFAULT_ADD_WAIT_TIMEOUT_SEC: f64 = 5.0;
/// Most bytes of entries waiting for the main thread.
const MAX_WAITING_BYTES: usize = 64 * 1024 * 1024;

/// Reads a Redis Stream as a member of a consumer group: each entry arrives
/// as [signal entry_received], and is acknowledged when the handler returns.
///
/// [codeblock]
/// $RedisStreamConsumer.stream = "orders"
/// $RedisStreamConsumer.group = "shop"
/// $RedisStreamConsumer.entry_received.connect(func(id: String, fields: Dictionary):
///     print(id, ": ", fields["item"]))
/// var id: String = await $RedisStreamConsumer.add({"item": "sword"}).completed
/// [/codeblock]
/// Unlike pub/sub, nothing is lost while a game is down: entries wait in the
/// stream. The promise is [i]at least once[/i]: an entry handed to a handler
/// that never returned (the game crashed, or lost its connection) is handed
/// over again, first thing when this consumer starts again with the same
/// [member consumer] name, and otherwise claimed by any consumer of the group
/// once it has been idle [member claim_idle_sec]. So a handler may see an
/// entry twice: make it idempotent (remember the last id handled, or key your
/// writes by id). An entry delivered [member max_deliveries] times without
/// being acknowledged (a handler that fails on it every time) is moved to
/// [member dead_letter_stream] and reported with [signal dead_lettered].
///
/// At high rates connect [signal entries_received]: one emission carries
/// every entry the frame delivers.
#[derive(GodotClass)]
#[class(base = Node)]
pub struct RedisStreamConsumer {
    /// Connect when the node is ready (in a running game).
    #[export]
    autostart: bool,

    /// Where Redis is: [code]redis://[user:password@]host[:port][/db][/code], or
    /// [code]rediss://...[/code] for TLS. With [member cluster], any node of the cluster.
    /// Passwords are never shown in errors or logs.
    #[export_group(name = "Connection")]
    #[export]
    url: GString,
    /// Talk to a Redis Cluster: [member url] (and [member cluster_urls]) name seed nodes; the
    /// consumer follows slot moves and failovers.
    #[export]
    cluster: bool,
    /// More seed nodes of the cluster, tried when [member url]'s is down.
    #[export]
    cluster_urls: PackedStringArray,
    /// Reconnect when the connection is lost or an attempt fails.
    #[export]
    reconnect: bool,
    /// Shortest wait before reconnecting.
    #[export(range = (0.01, 60.0, 0.01, or_greater, suffix = "s"))]
    reconnect_min_sec: f64,
    /// Longest wait before reconnecting (the wait doubles up to this, with jitter).
    #[export(range = (0.01, 3600.0, 0.01, or_greater, suffix = "s"))]
    reconnect_max_sec: f64,
    /// Limit of one connection attempt, TLS and authentication included, and of one reply.
    #[export(range = (0.1, 120.0, 0.1, or_greater, suffix = "s"))]
    connect_timeout_sec: f64,

    /// The stream's key.
    #[export_group(name = "Stream")]
    #[export]
    stream: GString,
    /// The consumer group: the consumers of one group share the entries (each
    /// entry goes to one of them); every group gets every entry.
    #[export]
    group: GString,
    /// This consumer's name in the group. The default is unique per machine
    /// and process ([code]<host>-<pid>[/code]); set a name of your own to have
    /// a restarted game take back the entries it had not acknowledged.
    #[export]
    consumer: GString,
    /// Create the group (and the stream) when it does not exist, starting at [member start_id].
    #[export]
    create_group: bool,
    /// Where a group created by [member create_group] starts: [code]$[/code]
    /// (entries added from now on) or an entry id ([code]0[/code]: the whole stream).
    #[export]
    start_id: GString,
    /// Acknowledge each entry when the handler of [signal entry_received] (or
    /// [signal entries_received]) returns. Off: call [method ack] yourself.
    #[export]
    auto_ack: bool,
    /// Most entries asked for at once.
    #[export(range = (1.0, 10000.0, 1.0, or_greater))]
    batch_size: i32,
    /// Entries pending (delivered, not acknowledged) for this long are
    /// claimed and delivered again: those of a consumer that died, and this
    /// one's own that its handler never acknowledged.
    #[export(range = (0.01, 3600.0, 0.01, or_greater, suffix = "s"))]
    claim_idle_sec: f64,
    /// An entry about to be delivered more often than this goes to
    /// [member dead_letter_stream] instead ([signal dead_lettered]).
    #[export(range = (1.0, 1000.0, 1.0, or_greater))]
    max_deliveries: i32,
    /// Where dead entries go; empty: [code]<stream>:dead[/code].
    #[export]
    dead_letter_stream: GString,
    /// Field values as [PackedByteArray] (exact bytes) instead of [String].
    #[export]
    binary: bool,
    /// [method add] completes only once this many replicas hold the entry
    /// (Redis WAIT); 0 does not wait. Replication is asynchronous: across a
    /// failover only entries added with 1 or more are promised.
    #[export(range = (0.0, 10.0, 1.0, or_greater))]
    add_wait_replicas: i32,
    /// How long [method add] waits for those replicas; then it fails (the
    /// entry may well be in the stream: the message gives its id).
    #[export(range = (0.01, 60.0, 0.01, or_greater, suffix = "s"))]
    add_wait_timeout_sec: f64,

    /// Largest reply accepted from the server, in bytes (one read of up to
    /// [member batch_size] entries). A larger one closes the connection with
    /// [signal error] (then the node reconnects).
    #[export_group(name = "Limits")]
    #[export(range = (1.0, 536870912.0, 1.0, or_greater, suffix = "bytes"))]
    max_message_bytes: i64,

    /// PEM file of the certificate authority that signed the server's
    /// certificate, for [code]rediss://[/code] with a private CA; empty trusts
    /// the usual public CAs.
    #[export_group(name = "TLS")]
    #[export(file = "*.pem,*.crt")]
    ca_file: GString,

    /// The connection's state: one of the STOPPED, CONNECTING, CONNECTED, RECONNECTING, FAILED constants.
    #[var(get = get_state, no_set)]
    state: PhantomVar<i32>,

    net: NetNode,
    running: Option<Running>,
    base: Base<Node>,
}

/// What exists while the node is started.
struct Running {
    acks: mpsc::UnboundedSender<Vec<EntryId>>,
    adds: mpsc::UnboundedSender<AddRequest>,
    consumer: Arc<ConsumerStats>,
    added: Arc<AddStats>,
    delivered: Rc<Cell<u64>>,
    stream: String,
}

#[godot_api]
impl INode for RedisStreamConsumer {
    fn init(base: Base<Node>) -> Self {
        let address = RedisAddress::parse(pubsub::DEFAULT_URL).expect("the default url parses");
        let defaults = ConsumerConfig::new(address, "", "");
        Self {
            autostart: true,
            url: pubsub::DEFAULT_URL.into(),
            cluster: false,
            cluster_urls: PackedStringArray::new(),
            reconnect: defaults.reconnect,
            reconnect_min_sec: defaults.reconnect_min.as_secs_f64(),
            reconnect_max_sec: defaults.reconnect_max.as_secs_f64(),
            connect_timeout_sec: defaults.connect_timeout.as_secs_f64(),
            stream: GString::new(),
            group: GString::new(),
            consumer: defaults.consumer.as_str().into(),
            create_group: defaults.create_group,
            start_id: defaults.start_id.as_str().into(),
            auto_ack: true,
            batch_size: defaults.batch_size as i32,
            claim_idle_sec: defaults.claim_idle.as_secs_f64(),
            max_deliveries: defaults.max_deliveries as i32,
            dead_letter_stream: GString::new(),
            binary: false,
            add_wait_replicas: 0,
            add_wait_timeout_sec: DEFAULT_ADD_WAIT_TIMEOUT_SEC,
            max_message_bytes: pubsub::DEFAULT_MAX_MESSAGE_BYTES as i64,
            ca_file: GString::new(),
            state: PhantomVar::default(),
            net: NetNode::default(),
            running: None,
            base,
        }
    }

    fn ready(&mut self) {
        if NetNode::autostarts(self.autostart) {
            self.start();
        }
    }

    fn exit_tree(&mut self) {
        self.stop();
    }
}

#[godot_api]
impl RedisStreamConsumer {
    /// An entry arrived: its [param id] ([code]<milliseconds>-<sequence>[/code])
    /// and its [param fields] (names to [String]s, or to [PackedByteArray]s with
    /// [member binary]). With [member auto_ack] it is acknowledged when the handler returns.
    #[signal]
    pub fn entry_received(id: GString, fields: VarDictionary);
    /// Entries arrived: the batched sibling of [signal entry_received]; entry
    /// [code]i[/code] is [code]ids[i][/code] with [code]fields[i][/code], in
    /// stream order. One batch is what one frame's delivery hands over (at most
    /// 4096). For high rates: one signal per batch costs far less than one per
    /// entry. Connect it alongside [signal entry_received] and both fire.
    #[signal]
    pub fn entries_received(ids: PackedStringArray, fields: Array<VarDictionary>);
    /// An entry was delivered [member max_deliveries] times without being
    /// acknowledged, and has been moved to [member dead_letter_stream] (and
    /// acknowledged here).
    #[signal]
    pub fn dead_lettered(id: GString, fields: VarDictionary);
    /// [member state] changed.
    #[signal]
    pub fn state_changed(state: i64);
    /// Something went wrong: a refused or lost connection (retried), a wrong
    /// password, a bad setting or a missing group without [member create_group] (FAILED).
    #[signal]
    pub fn error(message: GString);

    /// Connects, creates the group if asked, delivers this consumer's own
    /// pending entries, then new ones (restarting if already started).
    /// Properties are read now. On a bad setting the state becomes FAILED and
    /// [signal error] says why.
    #[func]
    pub fn start(&mut self) {
        self.stop();
        let link = self.link();
        let config = match self.config() {
            Ok(config) => config,
            Err(message) => return unbound(self, || link.fail(&message)),
        };
        let durability = match self.durability() {
            Ok(durability) => durability,
            Err(message) => return unbound(self, || link.fail(&message)),
        };
        let bounds = Bounds { messages: (config.batch_size * 4).max(256), bytes: MAX_WAITING_BYTES };
        let relay = Arc::new(Relay::new(bounds));
        let (acks, ack_receiver) = mpsc::unbounded_channel();
        let (adds, add_receiver) = mpsc::unbounded_channel();
        let consumer = Arc::new(ConsumerStats::default());
        let added = Arc::new(AddStats::default());
        let delivered = Rc::new(Cell::new(0));
        let name = format!("RedisStreamConsumer {} {}", config.address.shown(), config.stream);
        let stream = config.stream.clone();

        let node: Gd<Node> = self.to_gd().upcast();
        let emitter = Emitter::new(link.clone(), acks.clone(), self.auto_ack, delivered.clone(), &node);
        let forwarder = Forwarder::new(relay.clone(), self.binary);
        let (consumer_stats, add_stats) = (consumer.clone(), added.clone());
        let io = async move {
            let adding = streams::run_adder(config.clone(), durability, add_receiver, add_stats);
            // Adding ends with the consumer (stop() drops both).
            tokio::select! {
                result = streams::run(config, ack_receiver, forwarder, consumer_stats) => result,
                () = adding => Ok(()),
            }
        };
        self.net.start(&link, &name, relay, io, emitter);
        self.running = Some(Running { acks, adds, consumer, added, delivered, stream });
    }

    /// Disconnects at once. Entries not yet handled stay pending in Redis and
    /// come again on the next [method start]; [method add] tasks still pending are cancelled.
    #[func]
    pub fn stop(&mut self) {
        let link = self.link();
        self.running = None;
        self.net.cancel_tasks(&link);
        unbound(self, || link.set_state(NetState::Stopped));
    }

    /// Acknowledges the entry [param id] (with [member auto_ack] off): it will
    /// not be delivered again. False when the node is not started or
    /// [param id] is not an entry id.
    #[func]
    pub fn ack(&mut self, id: GString) -> bool {
        let Ok(id) = id.to_string().parse::<EntryId>() else {
            let link = self.link();
            unbound(self, || link.error(format!("ack: '{id}' is not a stream entry id")));
            return false;
        };
        self.running.as_ref().is_some_and(|running| running.acks.send(vec![id]).is_ok())
    }

    /// Adds an entry to [param stream] (empty: [member stream]) with XADD.
    /// [param fields] maps names to values: [String]s and [PackedByteArray]s
    /// are sent as they are, anything else as its text. The task completes
    /// with the new entry's id (once [member add_wait_replicas] replicas hold
    /// it), or fails saying why.
    /// [codeblock]
    /// var id: String = await $RedisStreamConsumer.add({"player": "ada", "score": 10}).completed
    /// [/codeblock]
    #[func]
    pub fn add(&mut self, fields: VarDictionary, #[opt(default = "")] stream: GString) -> Gd<AsyncTask> {
        let pairs: Vec<(Vec<u8>, Vec<u8>)> =
            fields.iter_shared().map(|(name, value)| (bytes(&name), bytes(&value))).collect();
        let (reply, answer) = oneshot::channel();
        let sent = match &self.running {
            None => Err("cannot add: the RedisStreamConsumer is not started".to_string()),
            Some(_) if pairs.is_empty() => Err("cannot add: an entry needs at least one field".to_string()),
            Some(running) => {
                let stream = if stream.is_empty() { running.stream.clone() } else { stream.to_string() };
                running
                    .adds
                    .send(AddRequest { stream, fields: pairs, reply })
                    .map_err(|_| "cannot add: the RedisStreamConsumer stopped".to_string())
            }
        };
        // Owned by this node: freeing or stopping it cancels the adds still pending.
        let owner = runtime::owner_of(&self.to_gd());
        AsyncTask::start_owned("RedisStreamConsumer.add", owner, move |_task| async move {
            sent?;
            let id = answer
                .await
                .map_err(|_| "add failed: the connection to Redis was lost or the consumer stopped".to_string())??;
            Ok(id.to_variant())
        })
    }

    /// The state as one of the class constants.
    #[func]
    pub fn get_state(&self) -> i32 {
        self.net.state().code()
    }

    /// Counters: received (entries read from Redis), delivered (handed to a
    /// handler), redelivered (of the received: delivered before, as own
    /// pending or claimed entries), claimed, acked, dead_lettered, deleted
    /// (pending entries found deleted from the stream), added, add_errors,
    /// connects, reconnects, consumer, state. [code]reconnects[/code] counts,
    /// as in every node, the times the state went RECONNECTING.
    #[func]
    pub fn get_stats(&self) -> VarDictionary {
        let count = |value: &std::sync::atomic::AtomicU64| value.load(Relaxed) as i64;
        let mut stats = VarDictionary::new();
        stats.set("consumer", &self.consumer);
        stats.set("state", self.net.state().code());
        // Stopped: the same keys, all zero.
        let (consumer, added, delivered): (Arc<ConsumerStats>, Arc<AddStats>, u64) = match &self.running {
            Some(r) => (r.consumer.clone(), r.added.clone(), r.delivered.get()),
            None => Default::default(),
        };
        for (key, value) in [
            ("received", count(&consumer.received)),
            ("delivered", delivered as i64),
            ("redelivered", count(&consumer.redelivered)),
            ("claimed", count(&consumer.claimed)),
            ("acked", count(&consumer.acked)),
            ("dead_lettered", count(&consumer.dead_lettered)),
            ("deleted", count(&consumer.deleted)),
            ("added", count(&added.added)),
            ("add_errors", count(&added.failed)),
            ("connects", count(&consumer.connects)),
            ("reconnects", count(&consumer.reconnects)),
        ] {
            stats.set(key, value);
        }
        stats
    }
}

crate::net_state_constants!(RedisStreamConsumer);

/// A field name or value for XADD: the bytes of a [PackedByteArray] or a
/// [String], the text of anything else.
fn bytes(value: &Variant) -> Vec<u8> {
    match value.get_type() {
        VariantType::PACKED_BYTE_ARRAY => value.to::<PackedByteArray>().to_vec(),
        _ => value.stringify().to_string().into_bytes(),
    }
}

impl RedisStreamConsumer {
    fn link(&self) -> NodeLink {
        self.net.link(self.to_gd().upcast())
    }

    fn config(&self) -> Result<ConsumerConfig, String> {
        let address = |url: &str| -> Result<RedisAddress, String> {
            Ok(RedisAddress::parse(url)?
                .with_ca_file(settings::file_path(&self.ca_file.to_string()))
                .with_max_message_bytes(positive("max_message_bytes", self.max_message_bytes)?))
        };
        let stream = self.stream.to_string();
        let mut config = ConsumerConfig::new(address(&self.url.to_string())?, &stream, &self.group.to_string());
        config.cluster = self.cluster;
        config.seeds =
            self.cluster_urls.as_slice().iter().map(|url| address(&url.to_string())).collect::<Result<_, _>>()?;
        config.consumer = self.consumer.to_string();
        config.create_group = self.create_group;
        config.start_id = self.start_id.to_string();
        config.batch_size = positive("batch_size", self.batch_size.into())?;
        config.claim_idle = seconds("claim_idle_sec", self.claim_idle_sec, 0.001)?;
        config.max_deliveries = positive("max_deliveries", self.max_deliveries.into())? as u64;
        if !self.dead_letter_stream.is_empty() {
            config.dead_letter_stream = self.dead_letter_stream.to_string();
        }
        config.reconnect = self.reconnect;
        config.reconnect_min = seconds("reconnect_min_sec", self.reconnect_min_sec, 0.0)?;
        config.reconnect_max = seconds("reconnect_max_sec", self.reconnect_max_sec, 0.0)?;
        config.connect_timeout = seconds("connect_timeout_sec", self.connect_timeout_sec, 0.001)?;
        config.check()?;
        Ok(config)
    }

    fn durability(&self) -> Result<Durability, String> {
        let replicas = u32::try_from(self.add_wait_replicas)
            .map_err(|_| format!("add_wait_replicas must be 0 or more, got {}", self.add_wait_replicas))?;
        Ok(Durability { replicas, timeout: seconds("add_wait_timeout_sec", self.add_wait_timeout_sec, 0.001)? })
    }
}
