//! `RedisSubscriber`: Redis pub/sub as Godot signals, with `publish`,
//! reconnection that restores every subscription, and per-frame delivery.
//! The protocol, the reconnect loop and the backlog live in
//! `async_net_core::pubsub` and run on the I/O worker, where each message's
//! strings are made as it arrives; the main thread moves them into signals.

use std::sync::{Arc, atomic::Ordering::Relaxed};

use async_net_core::{
    pubsub::{
        self, ClusterPublish, ClusterSettings, Command, Inbox, Kind, PublishRequest, PublishStats, RedisAddress,
        SessionConfig, SessionStats,
    },
    state::NetState,
};
use godot::{
    classes::{INode, Node},
    prelude::*,
};
use tokio::sync::{mpsc, oneshot};

use crate::{
    async_task::AsyncTask,
    net_node::{NetNode, NodeLink, unbound},
    redis_delivery::{Converter, Emitter, Forwarder},
    runtime,
    settings::{self, positive, seconds},
};

/// Default of `max_messages_per_frame`.
const DEFAULT_MAX_MESSAGES_PER_FRAME: i32 = 1000;

/// Listens to Redis pub/sub channels and patterns and turns each message into
/// a signal; publishes too.
///
/// [codeblock]
/// $RedisSubscriber.url = "redis://:password@127.0.0.1:6379"
/// $RedisSubscriber.channels = PackedStringArray(["chat"])
/// $RedisSubscriber.message_received.connect(func(channel, payload, pattern):
///     print(channel, ": ", payload))
/// var receivers = await $RedisSubscriber.publish("chat", "hello").completed
/// [/codeblock]
/// When the server goes away the node reconnects with backoff and restores
/// every channel and pattern, including ones added with [method subscribe],
/// exactly once. Messages are delivered in order, at most
/// [member max_messages_per_frame] per frame; up to [member max_backlog] wait
/// for later frames, and past that the oldest are dropped, counted in
/// [method get_stats] ([code]dropped[/code]) and reported once per overflow
/// with [signal error].
///
/// With [member cluster] on, [member url] and [member cluster_urls] name
/// nodes of a Redis Cluster (Redis 7+ or Valkey): plain channels and patterns
/// work as on one server, and sharded channels ([member shard_channels],
/// [method ssubscribe], [method spublish]) are held on the master that owns
/// each channel's slot, so their traffic spreads over the masters. After a
/// slot moves or a master fails over, each channel is subscribed again exactly
/// once; messages published while a shard had no master are lost (pub/sub is
/// at most once).
/// [codeblock]
/// $RedisSubscriber.cluster = true
/// $RedisSubscriber.url = "redis://10.0.0.5:7000"
/// $RedisSubscriber.cluster_urls = PackedStringArray(["redis://10.0.0.6:7000"])
/// $RedisSubscriber.shard_channels = PackedStringArray(["match:42"])
/// await $RedisSubscriber.spublish("match:42", "ready").completed
/// [/codeblock]
///
/// At high message rates, connect [signal messages_received] (or
/// [signal binary_messages_received]) instead of (or besides) the
/// per-message signal: one emission carries every message of a frame's
/// delivery, which costs the main thread far less per message.
/// [codeblock]
/// $RedisSubscriber.messages_received.connect(func(channels, payloads, patterns):
///     for i in payloads.size():
///         print(channels[i], ": ", payloads[i]))
/// [/codeblock]
#[derive(GodotClass)]
#[class(base = Node)]
pub struct RedisSubscriber {
    /// Connect when the node is ready (in a running game).
    #[export]
    autostart: bool,

    /// Where Redis is: [code]redis://[user:password@]host[:port][/db][/code], or
    /// [code]rediss://...[/code] for TLS, verified against the public CAs or
    /// [member ca_file] (add [code]#insecure[/code] to accept any certificate, for
    /// a development server only). Passwords are never shown in errors or logs.
    #[export_group(name = "Connection")]
    #[export]
    url: GString,
    /// Channels subscribed on [method start]; [method subscribe] and
    /// [method unsubscribe] keep this list up to date.
    #[export]
    channels: PackedStringArray,
    /// Glob-style patterns ([code]news.*[/code]) subscribed on [method start];
    /// [method psubscribe] and [method punsubscribe] keep it up to date.
    #[export]
    patterns: PackedStringArray,
    /// Emit [signal binary_message_received] with the exact bytes instead of
    /// [signal message_received] with text (invalid UTF-8 becomes U+FFFD there).
    #[export]
    binary: bool,
    /// Talk to a Redis Cluster: [member url] and [member cluster_urls] are seed
    /// nodes (any of them; the others are found from them). Needed for
    /// [member shard_channels], [method ssubscribe] and [method spublish].
    #[export]
    cluster: bool,
    /// More seed nodes of the cluster, tried when [member url] does not answer.
    #[export]
    cluster_urls: PackedStringArray,
    /// Sharded channels (Redis 7 SSUBSCRIBE) subscribed on [method start] when
    /// [member cluster] is on; [method ssubscribe] and [method sunsubscribe] keep
    /// this list up to date. Their messages arrive through the same signals as
    /// the others, with the pattern "".
    #[export]
    shard_channels: PackedStringArray,
    /// Reconnect when the connection is lost or an attempt fails.
    #[export]
    reconnect: bool,
    /// Shortest wait before reconnecting.
    #[export(range = (0.01, 60.0, 0.01, or_greater, suffix = "s"))]
    reconnect_min_sec: f64,
    /// Longest wait before reconnecting (the wait doubles up to this, with jitter).
    #[export(range = (0.01, 3600.0, 0.01, or_greater, suffix = "s"))]
    reconnect_max_sec: f64,
    /// Limit of one connection attempt, TLS and authentication included.
    #[export(range = (0.1, 120.0, 0.1, or_greater, suffix = "s"))]
    connect_timeout_sec: f64,

    /// Messages emitted per frame at most, so that a flood cannot stall a frame.
    #[export_group(name = "Limits")]
    #[export(range = (1.0, 100000.0, 1.0, or_greater))]
    max_messages_per_frame: i32,
    /// Messages waiting for later frames at most; past that the oldest are dropped.
    #[export(range = (1.0, 10000000.0, 1.0, or_greater))]
    max_backlog: i32,
    /// Largest reply accepted from the server, in bytes: one message, or any
    /// command reply. A larger one closes the connection with [signal error]
    /// (then the node reconnects), so a broken or hostile server cannot make the
    /// game hold unbounded memory.
    #[export(range = (1.0, 536870912.0, 1.0, or_greater, suffix = "bytes"))]
    max_message_bytes: i64,

    /// PEM file of the certificate authority that signed the server's
    /// certificate, for [code]rediss://[/code] with a private CA; empty trusts
    /// the usual public CAs. Must be a file on disk ([code]res://[/code] works
    /// when run from the editor; exported games use [code]user://[/code] or an
    /// absolute path).
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

/// Where publishes go: the single server's publisher, or the cluster's (which also SPUBLISHes).
enum Publisher {
    Single(mpsc::UnboundedSender<PublishRequest>),
    Cluster(mpsc::UnboundedSender<ClusterPublish>),
}

/// What exists while the node is started.
struct Running {
    commands: mpsc::UnboundedSender<Command>,
    /// The sharded channels' session, in a cluster.
    shard_commands: Option<mpsc::UnboundedSender<Command>>,
    publisher: Publisher,
    inbox: Arc<Inbox<Converter>>,
    session: Arc<SessionStats>,
    published: Arc<PublishStats>,
}

#[godot_api]
impl INode for RedisSubscriber {
    fn init(base: Base<Node>) -> Self {
        let defaults = SessionConfig::new(RedisAddress::parse(pubsub::DEFAULT_URL).expect("the default url parses"));
        Self {
            autostart: true,
            url: pubsub::DEFAULT_URL.into(),
            channels: PackedStringArray::new(),
            patterns: PackedStringArray::new(),
            binary: false,
            cluster: false,
            cluster_urls: PackedStringArray::new(),
            shard_channels: PackedStringArray::new(),
            reconnect: defaults.reconnect,
            reconnect_min_sec: defaults.reconnect_min.as_secs_f64(),
            reconnect_max_sec: defaults.reconnect_max.as_secs_f64(),
            connect_timeout_sec: defaults.connect_timeout.as_secs_f64(),
            max_messages_per_frame: DEFAULT_MAX_MESSAGES_PER_FRAME,
            max_backlog: pubsub::DEFAULT_MAX_BACKLOG as i32,
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
impl RedisSubscriber {
    /// A message arrived on [param channel] ([param pattern] is the matching
    /// pattern, or "" for a plain subscription). Emitted when [member binary] is off.
    #[signal]
    pub fn message_received(channel: GString, payload: GString, pattern: GString);
    /// A message arrived, as its exact bytes. Emitted instead of [signal message_received] when [member binary] is on.
    #[signal]
    pub fn binary_message_received(channel: GString, payload: PackedByteArray, pattern: GString);
    /// Messages arrived: the batched sibling of [signal message_received].
    /// Message [code]i[/code] of the batch is [code]payloads[i][/code] on
    /// [code]channels[i][/code], matched by [code]patterns[i][/code] ("" for a
    /// plain subscription), in arrival order. One batch is what one delivery
    /// round hands over: what was waiting, at most
    /// [member max_messages_per_frame] and at most 4096. For high message rates: one signal per
    /// batch costs far less than one per message. Built only while something
    /// is connected; connect it alongside [signal message_received] and both
    /// fire. Emitted when [member binary] is off.
    #[signal]
    pub fn messages_received(channels: PackedStringArray, payloads: PackedStringArray, patterns: PackedStringArray);
    /// Messages arrived, as their exact bytes: the batched sibling of
    /// [signal binary_message_received], laid out as [signal messages_received].
    /// Emitted instead of that one when [member binary] is on.
    #[signal]
    pub fn binary_messages_received(
        channels: PackedStringArray,
        payloads: Array<PackedByteArray>,
        patterns: PackedStringArray,
    );
    /// The server confirmed a channel, pattern or sharded channel subscription
    /// (again after each reconnect, slot move or failover).
    #[signal]
    pub fn subscribed(name: GString);
    /// A channel, pattern or sharded channel subscription ended at your request.
    #[signal]
    pub fn unsubscribed(name: GString);
    /// [member state] changed.
    #[signal]
    pub fn state_changed(state: i64);
    /// Something went wrong: a refused or lost connection (retried), a wrong
    /// password or bad [member url] (FAILED), or dropped messages.
    #[signal]
    pub fn error(message: GString);

    /// Connects and subscribes to [member channels], [member patterns] and, in a
    /// cluster, [member shard_channels] (restarting if already started).
    /// Properties are read now. On a bad [member url] or setting the state
    /// becomes FAILED and [signal error] says why.
    #[func]
    pub fn start(&mut self) {
        self.stop();
        let link = self.link();
        let (config, per_frame, backlog) = match self.config() {
            Ok(settings) => settings,
            Err(message) => return unbound(self, || link.fail(&message)),
        };
        if self.cluster {
            return self.start_cluster(link, config, per_frame, backlog);
        }
        let converter = Converter::new(self.binary);
        // What the main thread takes at once is still backlog until emitted:
        // the inbox keeps room for it, so the two together stay within max_backlog.
        let take = per_frame.min((backlog / 2).max(1));
        let inbox = Arc::new(Inbox::new((backlog - take).max(1), converter));
        let (commands, command_receiver) = mpsc::unbounded_channel();
        let (publisher, publish_receiver) = mpsc::unbounded_channel();
        let session = Arc::new(SessionStats::default());
        let published = Arc::new(PublishStats::default());
        let shown = config.address.shown().to_string();

        let emitter = Emitter::new(link.clone(), inbox.clone(), per_frame, take, &self.to_gd().upcast());
        let forwarder = Forwarder::new(inbox.clone());
        let (address, timeout) = (config.address.clone(), config.connect_timeout);
        let (session_inbox, session_stats, publish_stats) = (inbox.clone(), session.clone(), published.clone());
        let io = async move {
            let session = pubsub::run(config, session_inbox, command_receiver, forwarder, session_stats);
            // Publishing ends with the session (stop() drops both).
            let publishing = pubsub::run_publisher(address, timeout, publish_receiver, publish_stats);
            tokio::select! {
                result = session => result,
                () = publishing => Ok(()),
            }
        };
        self.net.start(&link, &format!("RedisSubscriber {shown}"), inbox.relay(), io, emitter);
        let publisher = Publisher::Single(publisher);
        self.running = Some(Running { commands, shard_commands: None, publisher, inbox, session, published });
    }

    /// Disconnects at once; messages not yet emitted are discarded and the
    /// [method publish] tasks still pending are cancelled.
    #[func]
    pub fn stop(&mut self) {
        let link = self.link();
        self.running = None;
        self.net.cancel_tasks(&link);
        unbound(self, || link.set_state(NetState::Stopped));
    }

    /// Subscribes to [param channel] (now if connected, else on connecting)
    /// and adds it to [member channels]. [signal subscribed] follows.
    #[func]
    pub fn subscribe(&mut self, channel: GString) {
        self.change(Kind::Channel, channel, true);
    }

    /// Unsubscribes from [param channel] and removes it from [member channels]. [signal unsubscribed] follows.
    #[func]
    pub fn unsubscribe(&mut self, channel: GString) {
        self.change(Kind::Channel, channel, false);
    }

    /// Subscribes to a glob-style [param pattern] and adds it to [member patterns].
    #[func]
    pub fn psubscribe(&mut self, pattern: GString) {
        self.change(Kind::Pattern, pattern, true);
    }

    /// Unsubscribes from [param pattern] and removes it from [member patterns].
    #[func]
    pub fn punsubscribe(&mut self, pattern: GString) {
        self.change(Kind::Pattern, pattern, false);
    }

    /// Subscribes to the sharded channel [param channel] (on the master of its
    /// slot) and adds it to [member shard_channels]. Needs [member cluster].
    #[func]
    pub fn ssubscribe(&mut self, channel: GString) {
        self.change(Kind::Shard, channel, true);
    }

    /// Unsubscribes from the sharded channel [param channel] and removes it from [member shard_channels].
    #[func]
    pub fn sunsubscribe(&mut self, channel: GString) {
        self.change(Kind::Shard, channel, false);
    }

    /// Publishes [param message] to the sharded channel [param channel]
    /// (SPUBLISH, on the master of its slot), as [method publish] does. Needs
    /// [member cluster]. The task completes with the number of clients that received it.
    /// [codeblock]
    /// var receivers: int = await $RedisSubscriber.spublish("match:42", "go").completed
    /// [/codeblock]
    #[func]
    pub fn spublish(&mut self, channel: GString, message: Variant) -> Gd<AsyncTask> {
        self.send_publish(channel, message, true)
    }

    /// Publishes [param message] (a [String], sent as UTF-8, or a
    /// [PackedByteArray], sent as is) to [param channel] on a connection of its
    /// own. The task completes with the number of clients that received it;
    /// stopping or freeing this node cancels the publishes still pending.
    /// [codeblock]
    /// var receivers: int = await $RedisSubscriber.publish("chat", "hi").completed
    /// [/codeblock]
    #[func]
    pub fn publish(&mut self, channel: GString, message: Variant) -> Gd<AsyncTask> {
        self.send_publish(channel, message, false)
    }

    /// The state as one of the class constants.
    #[func]
    pub fn get_state(&self) -> i32 {
        self.net.state().code()
    }

    /// Counters: received, delivered, dropped, backlog, peak_backlog,
    /// overflows, bytes_received, connects, reconnects, channels, patterns,
    /// shard_channels, published, publish_errors, state. [code]reconnects[/code] counts, as in
    /// every node, the times a lost connection or a failed attempt was
    /// followed by another attempt (the state went RECONNECTING).
    #[func]
    pub fn get_stats(&self) -> VarDictionary {
        let (inbox, session, published) = match &self.running {
            Some(r) => (
                r.inbox.stats(),
                (r.session.connects.load(Relaxed), r.session.reconnects.load(Relaxed)),
                (r.published.published.load(Relaxed), r.published.failed.load(Relaxed)),
            ),
            None => (Default::default(), (0, 0), (0, 0)),
        };
        vdict! {
            "received" => inbox.received as i64,
            "delivered" => inbox.delivered as i64,
            "dropped" => inbox.dropped as i64,
            "backlog" => inbox.backlog as i64,
            "peak_backlog" => inbox.peak_backlog as i64,
            "overflows" => inbox.overflows as i64,
            "bytes_received" => inbox.bytes_received as i64,
            "connects" => session.0 as i64,
            "reconnects" => session.1 as i64,
            "channels" => self.channels.len() as i64,
            "patterns" => self.patterns.len() as i64,
            "shard_channels" => self.shard_channels.len() as i64,
            "published" => published.0 as i64,
            "publish_errors" => published.1 as i64,
            "state" => self.net.state().code(),
        }
    }
}

crate::net_state_constants!(RedisSubscriber);

impl RedisSubscriber {
    fn link(&self) -> NodeLink {
        self.net.link(self.to_gd().upcast())
    }

    /// Sends a PUBLISH (or, `sharded`, an SPUBLISH) to the publisher; the task answers it.
    fn send_publish(&mut self, channel: GString, message: Variant, sharded: bool) -> Gd<AsyncTask> {
        let payload = if message.get_type() == VariantType::PACKED_BYTE_ARRAY {
            message.to::<PackedByteArray>().to_vec()
        } else {
            message.stringify().to_string().into_bytes()
        };
        let channel = channel.to_string().into_bytes();
        // Sent now: the I/O worker publishes it while the frame goes on.
        let (reply, answer) = oneshot::channel();
        let request = PublishRequest { channel, payload, reply };
        let sent = match (&self.running, sharded) {
            (None, _) => Err("cannot publish: the RedisSubscriber is not started"),
            (Some(Running { publisher: Publisher::Single(_), .. }), true) => {
                Err("cannot spublish: sharded channels need cluster = true")
            }
            (Some(Running { publisher: Publisher::Single(publisher), .. }), false) => {
                publisher.send(request).map_err(|_| "cannot publish: the RedisSubscriber stopped")
            }
            (Some(Running { publisher: Publisher::Cluster(publisher), .. }), _) => publisher
                .send(ClusterPublish { request, sharded })
                .map_err(|_| "cannot publish: the RedisSubscriber stopped"),
        };
        // Owned by this node: freeing or stopping it cancels the publishes still pending.
        let owner = runtime::owner_of(&self.to_gd());
        let name = if sharded { "RedisSubscriber.spublish" } else { "RedisSubscriber.publish" };
        AsyncTask::start_owned(name, owner, move |_task| async move {
            sent?;
            let receivers = answer.await.map_err(|_| {
                "publish failed: the connection to Redis was lost or the subscriber stopped".to_string()
            })??;
            Ok(receivers.to_variant())
        })
    }

    /// `url` parsed, with this node's CA file and message bound.
    fn address(&self, url: &str) -> Result<RedisAddress, String> {
        Ok(RedisAddress::parse(url)?
            .with_ca_file(settings::file_path(&self.ca_file.to_string()))
            .with_max_message_bytes(positive("max_message_bytes", self.max_message_bytes)?))
    }

    fn config(&self) -> Result<(SessionConfig, usize, usize), String> {
        let per_frame = positive("max_messages_per_frame", self.max_messages_per_frame.into())?;
        let backlog = positive("max_backlog", self.max_backlog.into())?;
        let mut config = SessionConfig::new(self.address(&self.url.to_string())?);
        config.channels = self.channels.as_slice().iter().map(|s| s.to_string()).collect();
        config.patterns = self.patterns.as_slice().iter().map(|s| s.to_string()).collect();
        config.reconnect = self.reconnect;
        config.reconnect_min = seconds("reconnect_min_sec", self.reconnect_min_sec, 0.0)?;
        config.reconnect_max = seconds("reconnect_max_sec", self.reconnect_max_sec, 0.0)?;
        config.connect_timeout = seconds("connect_timeout_sec", self.connect_timeout_sec, 0.001)?;
        Ok((config, per_frame, backlog))
    }

    /// Starts the cluster's three parts on the I/O worker: plain channels and patterns on one
    /// node at a time (the seeds in turn), the sharded channels on one connection per master,
    /// and the publisher on the redis crate's cluster connection (async_net_core::pubsub::cluster
    /// says why).
    fn start_cluster(&mut self, link: NodeLink, mut config: SessionConfig, per_frame: usize, backlog: usize) {
        let seeds: Result<Vec<RedisAddress>, String> =
            self.cluster_urls.as_slice().iter().map(|url| self.address(&url.to_string())).collect();
        config.more_addresses = match seeds {
            Ok(seeds) => seeds,
            Err(message) => return unbound(self, || link.fail(format!("cluster_urls: {message}"))),
        };
        let settings = ClusterSettings {
            seeds: std::iter::once(config.address.clone()).chain(config.more_addresses.iter().cloned()).collect(),
            connect_timeout: config.connect_timeout,
            reconnect_min: config.reconnect_min,
            reconnect_max: config.reconnect_max,
        };
        let shown = settings.shown();
        let take = per_frame.min((backlog / 2).max(1));
        let inbox = Arc::new(Inbox::new((backlog - take).max(1), Converter::new(self.binary)));
        let (commands, command_receiver) = mpsc::unbounded_channel();
        let (shard_commands, shard_receiver) = mpsc::unbounded_channel();
        let (publisher, publish_receiver) = mpsc::unbounded_channel();
        let session = Arc::new(SessionStats::default());
        let published = Arc::new(PublishStats::default());
        let shards: Vec<String> = self.shard_channels.as_slice().iter().map(|s| s.to_string()).collect();

        let emitter = Emitter::new(link.clone(), inbox.clone(), per_frame, take, &self.to_gd().upcast());
        let (plain, sharded) = (Forwarder::new(inbox.clone()), Forwarder::new(inbox.clone()));
        let (session_inbox, session_stats, publish_stats) = (inbox.clone(), session.clone(), published.clone());
        let io = async move {
            let shard_inbox = session_inbox.clone();
            let plain = pubsub::run(config, session_inbox, command_receiver, plain, session_stats.clone());
            let shards =
                pubsub::run_sharded(settings.clone(), shards, shard_inbox, shard_receiver, sharded, session_stats);
            let publishing = pubsub::run_cluster_publisher(settings, publish_receiver, publish_stats);
            tokio::select! {
                result = plain => result,
                result = shards => result,
                () = publishing => Ok(()),
            }
        };
        self.net.start(&link, &format!("RedisSubscriber cluster {shown}"), inbox.relay(), io, emitter);
        let publisher = Publisher::Cluster(publisher);
        self.running =
            Some(Running { commands, shard_commands: Some(shard_commands), publisher, inbox, session, published });
    }

    /// Records a (un)subscription in the exported list and tells the session.
    fn change(&mut self, kind: Kind, name: GString, subscribe: bool) {
        if kind == Kind::Shard && !self.cluster {
            let link = self.link();
            let what = if subscribe { "ssubscribe" } else { "sunsubscribe" };
            return unbound(self, || {
                link.error(format!("cannot {what} '{name}': sharded channels need cluster = true"))
            });
        }
        let list = match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard_channels,
        };
        let position = list.as_slice().iter().position(|n| *n == name);
        match (position, subscribe) {
            (None, true) => list.push(&name),
            (Some(i), false) => {
                list.remove(i);
            }
            _ => {}
        }
        if let Some(running) = &self.running {
            let name = name.to_string();
            let command = if subscribe { Command::Subscribe(kind, name) } else { Command::Unsubscribe(kind, name) };
            let session = if kind == Kind::Shard { running.shard_commands.as_ref() } else { Some(&running.commands) };
            if let Some(session) = session {
                let _ = session.send(command);
            }
        }
    }
}
