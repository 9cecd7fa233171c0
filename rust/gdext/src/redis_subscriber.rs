//! `RedisSubscriber`: Redis pub/sub as Godot signals, with `publish`,
//! reconnection that restores every subscription, and per-frame delivery.
//! The protocol, the reconnect loop and the backlog live in
//! `async_net_core::pubsub`.

use std::{cell::Cell, rc::Rc, sync::Arc};

use async_net_core::{
    pubsub::{
        self, Command, Delivery, FrameGate, Inbox, Kind, Message, PublishRequest, PublishStats, RedisAddress,
        SessionConfig, SessionEvents, SessionStats,
    },
    state::NetState,
};
use bytes::Bytes;
use godot::{
    classes::{Engine, INode, Node, SceneTree},
    prelude::*,
};
use tokio::sync::{mpsc, oneshot};

use crate::{
    async_task::AsyncTask,
    net_node::{NetNode, NodeLink, unbound},
    signals::{BatchSignal, Burst, HotSignal},
    runtime,
    settings::{self, positive, seconds},
};

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

/// What exists while the node is started.
struct Running {
    commands: mpsc::UnboundedSender<Command>,
    publisher: mpsc::UnboundedSender<PublishRequest>,
    inbox: Arc<Inbox>,
    session: Rc<SessionStats>,
    published: Rc<PublishStats>,
    frame_tick: Callable,
    /// Set by `stop()`: a batch begun before is not emitted after it.
    stopped: Rc<Cell<bool>>,
}

#[godot_api]
impl INode for RedisSubscriber {
    fn init(base: Base<Node>) -> Self {
        Self {
            autostart: true,
            url: "redis://127.0.0.1:6379".into(),
            channels: PackedStringArray::new(),
            patterns: PackedStringArray::new(),
            binary: false,
            reconnect: true,
            reconnect_min_sec: 0.5,
            reconnect_max_sec: 30.0,
            connect_timeout_sec: 10.0,
            max_messages_per_frame: 1000,
            max_backlog: 100_000,
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
    /// [member max_messages_per_frame]. For high message rates: one signal per
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
    /// The server confirmed a channel or pattern subscription (again after each reconnect).
    #[signal]
    pub fn subscribed(name: GString);
    /// A channel or pattern subscription ended at your request.
    #[signal]
    pub fn unsubscribed(name: GString);
    /// [member state] changed.
    #[signal]
    pub fn state_changed(state: i64);
    /// Something went wrong: a refused or lost connection (retried), a wrong
    /// password or bad [member url] (FAILED), or dropped messages.
    #[signal]
    pub fn error(message: GString);

    /// Connects and subscribes to [member channels] and [member patterns]
    /// (restarting if already started). Properties are read now. On a bad
    /// [member url] or setting the state becomes FAILED and [signal error] says why.
    #[func]
    pub fn start(&mut self) {
        self.stop();
        let link = self.link();
        let (config, per_frame, backlog) = match self.config() {
            Ok(settings) => settings,
            Err(message) => {
                return unbound(self, || {
                    link.error(&message);
                    link.set_state(NetState::Failed);
                });
            }
        };
        let inbox = Arc::new(Inbox::new(backlog));
        let frames = Rc::new(FrameGate::default());
        let frame_tick = {
            let frames = frames.clone();
            Callable::from_fn("RedisSubscriber.frame_tick", move |_| frames.tick())
        };
        if let Some(mut tree) = scene_tree() {
            tree.connect("process_frame", &frame_tick);
        }
        let (commands, command_receiver) = mpsc::unbounded_channel();
        let (publisher, publish_receiver) = mpsc::unbounded_channel();
        let session = Rc::new(SessionStats::default());
        let published = Rc::new(PublishStats::default());
        let shown = config.address.shown().to_string();

        let node = self.to_gd();
        let events = Events { node: node.clone(), link: link.clone() };
        let (session_inbox, session_stats) = (inbox.clone(), session.clone());
        let signals_of: Gd<Node> = node.upcast();
        let stopped = Rc::new(Cell::new(false));
        let mut delivery = Delivering {
            link: link.clone(),
            binary: self.binary,
            stopped: stopped.clone(),
            message_received: HotSignal::new(&signals_of, "message_received"),
            binary_message_received: HotSignal::new(&signals_of, "binary_message_received"),
            messages_received: BatchSignal::new(&signals_of, "messages_received"),
            binary_messages_received: BatchSignal::new(&signals_of, "binary_messages_received"),
            channel: NameCache::default(),
            pattern: NameCache::default(),
            args: MessageArgs::default(),
            burst: Burst::default(),
        };
        let delivery_inbox = inbox.clone();
        let (address, timeout) = (config.address.clone(), config.connect_timeout);
        self.net.spawn(&link, &format!("RedisSubscriber {shown}"), async move {
            let session = pubsub::run(config, session_inbox, command_receiver, events, session_stats);
            let delivery = pubsub::deliver(&delivery_inbox, &frames, || per_frame, |d| delivery.deliver(d));
            tokio::select! {
                result = session => result,
                () = delivery => Ok(()),
            }
        });
        let publish_stats = published.clone();
        self.net.spawn(&link, &format!("RedisSubscriber publish {shown}"), async move {
            pubsub::run_publisher(address, timeout, publish_receiver, publish_stats).await;
            Ok(())
        });
        self.running = Some(Running { commands, publisher, inbox, session, published, frame_tick, stopped });
    }

    /// Disconnects at once; messages not yet emitted are discarded. Pending
    /// [method publish] tasks fail.
    #[func]
    pub fn stop(&mut self) {
        let link = self.link();
        if let Some(running) = self.running.take() {
            if let Some(mut tree) = scene_tree()
                && tree.is_connected("process_frame", &running.frame_tick)
            {
                tree.disconnect("process_frame", &running.frame_tick);
            }
            running.inbox.clear();
            running.stopped.set(true);
        }
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

    /// Publishes [param message] (a [String], sent as UTF-8, or a
    /// [PackedByteArray], sent as is) to [param channel] on a connection of its
    /// own. The task completes with the number of clients that received it;
    /// stopping or freeing this node cancels the publishes still pending.
    /// [codeblock]
    /// var receivers: int = await $RedisSubscriber.publish("chat", "hi").completed
    /// [/codeblock]
    #[func]
    pub fn publish(&mut self, channel: GString, message: Variant) -> Gd<AsyncTask> {
        let payload = if message.get_type() == VariantType::PACKED_BYTE_ARRAY {
            message.to::<PackedByteArray>().to_vec()
        } else {
            message.stringify().to_string().into_bytes()
        };
        let channel = channel.to_string().into_bytes();
        let sender = self.running.as_ref().map(|r| r.publisher.clone());
        runtime::flush_at_frame_end();
        // Owned by this node: freeing or stopping it cancels the publishes still pending.
        let owner = runtime::owner_of(&self.to_gd());
        AsyncTask::start_owned("RedisSubscriber.publish", owner, move |_task| async move {
            let sender = sender.ok_or("cannot publish: the RedisSubscriber is not started")?;
            let (reply, answer) = oneshot::channel();
            sender
                .send(PublishRequest { channel, payload, reply })
                .map_err(|_| "cannot publish: the RedisSubscriber stopped".to_string())?;
            let receivers = answer.await.map_err(|_| {
                "publish failed: the connection to Redis was lost or the subscriber stopped".to_string()
            })??;
            Ok(receivers.to_variant())
        })
    }

    /// The state as one of the class constants.
    #[func]
    pub fn get_state(&self) -> i32 {
        self.net.state().code()
    }

    /// Counters: received, delivered, dropped, backlog, peak_backlog,
    /// overflows, bytes_received, connects, reconnects, channels, patterns,
    /// published, publish_errors, state.
    #[func]
    pub fn get_stats(&self) -> VarDictionary {
        let (inbox, session, published) = match &self.running {
            Some(r) => (r.inbox.stats(), (r.session.connects.get(), r.session.reconnects.get()), &*r.published),
            None => (Default::default(), (0, 0), &PublishStats::default()),
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
            "published" => published.published.get() as i64,
            "publish_errors" => published.failed.get() as i64,
            "state" => self.net.state().code(),
        }
    }
}

crate::net_state_constants!(RedisSubscriber);

impl RedisSubscriber {
    fn link(&self) -> NodeLink {
        self.net.link(self.to_gd().upcast())
    }

    fn config(&self) -> Result<(SessionConfig, usize, usize), String> {
        let per_frame = positive("max_messages_per_frame", self.max_messages_per_frame.into())?;
        let backlog = positive("max_backlog", self.max_backlog.into())?;
        let address = RedisAddress::parse(&self.url.to_string())?
            .with_ca_file(settings::file_path(&self.ca_file.to_string()))
            .with_max_message_bytes(positive("max_message_bytes", self.max_message_bytes)?);
        let mut config = SessionConfig::new(address);
        config.channels = self.channels.as_slice().iter().map(|s| s.to_string()).collect();
        config.patterns = self.patterns.as_slice().iter().map(|s| s.to_string()).collect();
        config.reconnect = self.reconnect;
        config.reconnect_min = seconds("reconnect_min_sec", self.reconnect_min_sec, 0.0)?;
        config.reconnect_max = seconds("reconnect_max_sec", self.reconnect_max_sec, 0.0)?;
        config.connect_timeout = seconds("connect_timeout_sec", self.connect_timeout_sec, 0.001)?;
        Ok((config, per_frame, backlog))
    }

    /// Records a (un)subscription in the exported list and tells the session.
    fn change(&mut self, kind: Kind, name: GString, subscribe: bool) {
        let list = match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
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
            let _ = running.commands.send(command);
        }
    }
}

fn scene_tree() -> Option<Gd<SceneTree>> {
    Engine::singleton().get_main_loop()?.try_cast::<SceneTree>().ok()
}

/// The session's reports, as the node's signals.
struct Events {
    node: Gd<RedisSubscriber>,
    link: NodeLink,
}

impl SessionEvents for Events {
    fn state_changed(&mut self, state: NetState) {
        self.link.set_state(state);
    }

    fn subscribed(&mut self, name: &str, _kind: Kind) {
        if self.link.is_alive() {
            self.node.signals().subscribed().emit(name);
        }
    }

    fn unsubscribed(&mut self, name: &str, _kind: Kind) {
        if self.link.is_alive() {
            self.node.signals().unsubscribed().emit(name);
        }
    }

    fn error(&mut self, message: &str) {
        self.link.error(message);
    }
}

/// Emits delivered messages as the node's signals, per message and in batches.
struct Delivering {
    link: NodeLink,
    binary: bool,
    stopped: Rc<Cell<bool>>,
    message_received: HotSignal,
    binary_message_received: HotSignal,
    messages_received: BatchSignal<Batch<GString>>,
    binary_messages_received: BatchSignal<Batch<PackedByteArray>>,
    channel: NameCache,
    pattern: NameCache,
    args: MessageArgs,
    /// One delivery round is one burst.
    burst: Burst,
}

/// The arguments of the per-message signal, kept from one message to the
/// next: a run of messages on one channel converts its channel and pattern
/// to variants once, and each message only sets its payload.
struct MessageArgs {
    slots: [Variant; 3],
    /// The [`NameCache`] versions of the channel and pattern in the slots.
    versions: [Option<u64>; 2],
}

impl Default for MessageArgs {
    fn default() -> Self {
        MessageArgs { slots: [Variant::nil(), Variant::nil(), Variant::nil()], versions: [None; 2] }
    }
}

impl MessageArgs {
    fn fill(&mut self, channel: (&GString, u64), payload: Variant, pattern: (&GString, u64)) -> &[Variant; 3] {
        for (slot, (name, version)) in [(0, channel), (2, pattern)] {
            let kept = &mut self.versions[slot / 2];
            if *kept != Some(version) {
                self.slots[slot] = name.to_variant();
                *kept = Some(version);
            }
        }
        self.slots[1] = payload;
        &self.slots
    }
}

/// The arguments of a batch signal, filled message by message; the payloads
/// become one Godot array at the end, with one engine call per batch.
struct Batch<P> {
    channels: Names,
    payloads: Vec<P>,
    patterns: Names,
}

impl<P> Batch<P> {
    fn new() -> Self {
        Batch { channels: Names::default(), payloads: Vec::new(), patterns: Names::default() }
    }

    fn into_args(self, payloads: impl FnOnce(Vec<P>) -> Variant) -> [Variant; 3] {
        [self.channels.into_array().to_variant(), payloads(self.payloads), self.patterns.into_array().to_variant()]
    }
}

/// A column of names (the channels or the patterns of a batch) as runs of one
/// name: a flood on one channel adds nothing per message, and its column is
/// made with two engine calls at the end instead of one per message.
#[derive(Default)]
struct Names {
    /// (the name's [`NameCache`] version, the name, how many in a row)
    runs: Vec<(u64, GString, usize)>,
}

impl Names {
    fn push(&mut self, (name, version): (&GString, u64)) {
        match self.runs.last_mut() {
            Some((last, _, count)) if *last == version => *count += 1,
            _ => self.runs.push((version, name.clone(), 1)),
        }
    }

    fn into_array(self) -> PackedStringArray {
        let mut array = PackedStringArray::new();
        if let [(_, name, count)] = self.runs.as_slice() {
            array.resize(*count);
            array.fill(name);
        } else {
            for (_, name, count) in &self.runs {
                for _ in 0..*count {
                    array.push(name);
                }
            }
        }
        array
    }
}

/// The Godot string of the last name seen in one position (channel or
/// pattern): a run of messages on one channel converts its name once.
#[derive(Default)]
struct NameCache {
    bytes: Bytes,
    name: GString,
    /// Changes with the name.
    version: u64,
}

impl NameCache {
    /// The name `bytes` spell (invalid UTF-8 becomes U+FFFD), made only when
    /// it changed, and its version.
    fn get(&mut self, bytes: Bytes) -> (&GString, u64) {
        if !same_bytes(&bytes, &self.bytes) {
            self.name = text(&bytes);
            self.bytes = bytes;
            self.version += 1;
        }
        (&self.name, self.version)
    }
}

/// Whether two (short) names are equal, compared byte by byte: for the few
/// bytes of a channel name this beats a call to libc's `memcmp`, whose AVX-512
/// variant cost about 0.1 µs a call on the benchmark machine (in a profile of
/// the message-rate bench, 9 % of the main thread).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// `bytes` as a Godot string; invalid UTF-8 becomes U+FFFD.
fn text(bytes: &[u8]) -> GString {
    GString::from(&*String::from_utf8_lossy(bytes))
}

impl Delivering {
    fn deliver(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Message(Message { channel, payload, pattern }) => {
                if !self.burst.alive(&self.link) {
                    return;
                }
                let channel = self.channel.get(channel);
                let pattern = self.pattern.get(pattern.unwrap_or_default());
                // Each payload is made once, whichever signals want it.
                if self.binary {
                    let mut bytes = None;
                    let made = || PackedByteArray::from(&payload[..]);
                    let (args, slot) = (&mut self.args, &mut bytes);
                    let each = move || {
                        // Moved out of the capture, so the closure is `FnOnce` and may return the borrow.
                        let args = args;
                        args.fill(channel, slot.insert(made()).to_variant(), pattern)
                    };
                    if self.binary_message_received.emit_in(&mut self.burst, each) && !self.link.is_alive() {
                        return;
                    }
                    self.binary_messages_received.push(Batch::new, |batch| {
                        batch.channels.push(channel);
                        batch.payloads.push(bytes.unwrap_or_else(made));
                        batch.patterns.push(pattern);
                    });
                } else {
                    let mut string = None;
                    let (args, slot, bytes) = (&mut self.args, &mut string, &payload);
                    let each = move || {
                        let args = args;
                        args.fill(channel, slot.insert(text(bytes)).to_variant(), pattern)
                    };
                    if self.message_received.emit_in(&mut self.burst, each) && !self.link.is_alive() {
                        return;
                    }
                    self.messages_received.push(Batch::new, |batch| {
                        batch.channels.push(channel);
                        batch.payloads.push(string.unwrap_or_else(|| text(&payload)));
                        batch.patterns.push(pattern);
                    });
                }
            }
            Delivery::BatchEnd => {
                // Whatever runs before the next round, nothing checked in this one is trusted after it.
                self.burst.end_round();
                if self.stopped.get() || !self.link.is_alive() {
                    self.messages_received.discard();
                    self.binary_messages_received.discard();
                } else if self.binary {
                    self.binary_messages_received
                        .flush(&mut self.burst, |batch| batch.into_args(|data| Array::from(&data[..]).to_variant()));
                } else {
                    self.messages_received.flush(&mut self.burst, |batch| {
                        batch.into_args(|texts| PackedStringArray::from(texts).to_variant())
                    });
                }
            }
            Delivery::Overflow { dropped_total } => {
                self.burst.script_ran();
                self.link.error(format!(
                    "message backlog full: dropping the oldest messages ({dropped_total} dropped so far); \
                     handle messages faster or raise max_messages_per_frame / max_backlog"
                ))
            }
        }
    }
}
