//! `RedisSubscriber`'s delivery: on the I/O worker, each message made into an
//! event with its Godot strings as the connection reads it ([`Converter`]) and
//! the session's reports queued in order with the messages ([`Forwarder`]);
//! on the main thread, those events emitted as the node's per-message and
//! batch signals, at most `max_messages_per_frame` a frame ([`Emitter`]).
//! Not a class of its own: `RedisSubscriber` makes one of each per `start()`.

use std::sync::Arc;

use async_net_core::{
    pubsub::{Convert, Inbox, Kind, Message, SessionEvents},
    state::NetState,
};
use bytes::Bytes;
use godot::prelude::*;

use crate::{
    net_node::{Emit, Flow, NodeLink},
    runtime,
    signals::{BatchSignal, Burst, HotSignal},
};

/// What the session reports, as the main thread will emit it. Each message's
/// strings are made on the I/O worker as it arrives.
pub(crate) enum RedisEvent {
    Message { channel: Name, payload: Payload, pattern: Name },
    State(NetState),
    Subscribed(GString),
    Unsubscribed(GString),
    Error(String),
}

/// A channel or pattern name, and the version of the [`NameCache`] that made
/// it (a run of messages on one channel shares one).
pub(crate) struct Name {
    text: GString,
    version: u64,
}

pub(crate) enum Payload {
    Text(GString),
    Bytes(Bytes),
}

/// On the I/O worker: makes each message an event as the connection reads it.
pub(crate) struct Converter {
    binary: bool,
    channel: NameCache,
    pattern: NameCache,
}

impl Converter {
    /// Payloads as [PackedByteArray] when `binary`, else as Strings.
    pub(crate) fn new(binary: bool) -> Self {
        Converter { binary, channel: NameCache::default(), pattern: NameCache::default() }
    }
}

impl Convert for Converter {
    type Item = RedisEvent;

    fn message(&mut self, message: Message) -> RedisEvent {
        let payload = if self.binary { Payload::Bytes(message.payload) } else { Payload::Text(text(&message.payload)) };
        RedisEvent::Message {
            channel: self.channel.get(message.channel),
            payload,
            pattern: self.pattern.get(message.pattern.unwrap_or_default()),
        }
    }

    fn is_message(item: &RedisEvent) -> bool {
        matches!(item, RedisEvent::Message { .. })
    }
}

/// On the I/O worker: the session's reports, queued in order with the messages.
pub(crate) struct Forwarder {
    inbox: Arc<Inbox<Converter>>,
}

impl Forwarder {
    pub(crate) fn new(inbox: Arc<Inbox<Converter>>) -> Self {
        Forwarder { inbox }
    }
}

impl SessionEvents for Forwarder {
    fn state_changed(&mut self, state: NetState) {
        self.inbox.push_event(RedisEvent::State(state));
    }

    fn subscribed(&mut self, name: &str, _kind: Kind) {
        self.inbox.push_event(RedisEvent::Subscribed(name.into()));
    }

    fn unsubscribed(&mut self, name: &str, _kind: Kind) {
        self.inbox.push_event(RedisEvent::Unsubscribed(name.into()));
    }

    fn error(&mut self, message: &str) {
        self.inbox.push_event(RedisEvent::Error(message.into()));
    }
}

/// On the main thread: the session's events and messages as the node's
/// signals, per message and in batches, at most `per_frame` messages a frame.
pub(crate) struct Emitter {
    link: NodeLink,
    inbox: Arc<Inbox<Converter>>,
    per_frame: usize,
    /// Most messages taken from the inbox at once.
    take: usize,
    /// The frame `in_frame` counts the messages of.
    frame: u64,
    in_frame: usize,
    /// Messages emitted since the inbox was last told.
    delivered: u64,
    message_received: HotSignal,
    binary_message_received: HotSignal,
    messages_received: BatchSignal<Batch<GString>>,
    binary_messages_received: BatchSignal<Batch<PackedByteArray>>,
    subscribed: HotSignal,
    unsubscribed: HotSignal,
    args: MessageArgs,
    /// One taken batch is one burst.
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
    fn fill(&mut self, channel: &Name, payload: Variant, pattern: &Name) -> &[Variant; 3] {
        for (slot, name) in [(0, channel), (2, pattern)] {
            let kept = &mut self.versions[slot / 2];
            if *kept != Some(name.version) {
                self.slots[slot] = name.text.to_variant();
                *kept = Some(name.version);
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
    fn push(&mut self, name: &Name) {
        match self.runs.last_mut() {
            Some((last, _, count)) if *last == name.version => *count += 1,
            _ => self.runs.push((name.version, name.text.clone(), 1)),
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
    fn get(&mut self, bytes: Bytes) -> Name {
        if !same_bytes(&bytes, &self.bytes) {
            self.name = text(&bytes);
            self.bytes = bytes;
            self.version += 1;
        }
        Name { text: self.name.clone(), version: self.version }
    }
}

/// Whether two (short) names are equal, compared byte by byte: for the few
/// bytes of a channel name this beats a call to libc's `memcmp`, whose AVX-512
/// variant cost about 0.1 µs a call on the benchmark machine.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// `bytes` as a Godot string; invalid UTF-8 becomes U+FFFD.
fn text(bytes: &[u8]) -> GString {
    GString::from(&*String::from_utf8_lossy(bytes))
}

impl Emit<RedisEvent> for Emitter {
    fn take_limit(&self) -> usize {
        self.take
    }

    fn ready(&mut self) -> bool {
        let frame = runtime::current_frame();
        if frame != self.frame {
            self.frame = frame;
            self.in_frame = 0;
        }
        self.in_frame < self.per_frame
    }

    fn emit(&mut self, event: RedisEvent) -> Flow {
        let ran_script = match event {
            RedisEvent::Message { channel, payload, pattern } => {
                self.in_frame += 1;
                self.delivered += 1;
                self.message(channel, payload, pattern)
            }
            RedisEvent::State(state) => {
                self.link.set_state(state);
                true
            }
            RedisEvent::Subscribed(name) => self.subscribed.emit(|| [name.to_variant()]),
            RedisEvent::Unsubscribed(name) => self.unsubscribed.emit(|| [name.to_variant()]),
            RedisEvent::Error(message) => {
                self.link.error(message);
                true
            }
        };
        if ran_script {
            self.burst.script_ran();
            if !self.link.is_alive() {
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn batch_done(&mut self) {
        self.inbox.delivered(std::mem::take(&mut self.delivered));
        // Whatever runs before the next batch, nothing checked in this one is trusted after it.
        self.burst.end_round();
        if !self.link.is_alive() {
            self.messages_received.discard();
            self.binary_messages_received.discard();
            return;
        }
        self.messages_received
            .flush(&mut self.burst, |batch| batch.into_args(|texts| PackedStringArray::from(texts).to_variant()));
        self.binary_messages_received
            .flush(&mut self.burst, |batch| batch.into_args(|data| Array::from(&data[..]).to_variant()));
        if self.link.is_alive()
            && let Some(dropped_total) = self.inbox.take_overflow_report()
        {
            self.link.error(format!(
                "message backlog full: dropping the oldest messages ({dropped_total} dropped so far); \
                 handle messages faster or raise max_messages_per_frame / max_backlog"
            ));
        }
    }
}

impl Emitter {
    /// `take`: most messages taken from the inbox at once (the inbox keeps room for them).
    pub(crate) fn new(
        link: NodeLink,
        inbox: Arc<Inbox<Converter>>,
        per_frame: usize,
        take: usize,
        node: &Gd<Node>,
    ) -> Self {
        Emitter {
            link,
            inbox,
            per_frame,
            take,
            frame: u64::MAX,
            in_frame: 0,
            delivered: 0,
            message_received: HotSignal::new(node, "message_received"),
            binary_message_received: HotSignal::new(node, "binary_message_received"),
            messages_received: BatchSignal::new(node, "messages_received"),
            binary_messages_received: BatchSignal::new(node, "binary_messages_received"),
            subscribed: HotSignal::new(node, "subscribed"),
            unsubscribed: HotSignal::new(node, "unsubscribed"),
            args: MessageArgs::default(),
            burst: Burst::default(),
        }
    }

    /// Emits one message per message and adds it to its batch; says whether a
    /// script may have run.
    fn message(&mut self, channel: Name, payload: Payload, pattern: Name) -> bool {
        match payload {
            Payload::Text(text) => {
                let (args, names, payload) = (&mut self.args, (&channel, &pattern), &text);
                let each = move || {
                    // Moved out of the capture, so the closure is `FnOnce` and may return the borrow.
                    let args = args;
                    args.fill(names.0, payload.to_variant(), names.1)
                };
                let emitted = self.message_received.emit_in(&mut self.burst, each);
                if emitted && !self.link.is_alive() {
                    return true;
                }
                self.messages_received.push(Batch::new, |batch| {
                    batch.channels.push(&channel);
                    batch.payloads.push(text);
                    batch.patterns.push(&pattern);
                });
                emitted
            }
            Payload::Bytes(bytes) => {
                let mut made = None;
                let (args, slot, names, data) = (&mut self.args, &mut made, (&channel, &pattern), &bytes);
                let each = move || {
                    let args = args;
                    args.fill(names.0, slot.insert(PackedByteArray::from(&data[..])).to_variant(), names.1)
                };
                let emitted = self.binary_message_received.emit_in(&mut self.burst, each);
                if emitted && !self.link.is_alive() {
                    return true;
                }
                self.binary_messages_received.push(Batch::new, |batch| {
                    batch.channels.push(&channel);
                    batch.payloads.push(made.unwrap_or_else(|| PackedByteArray::from(&bytes[..])));
                    batch.patterns.push(&pattern);
                });
                emitted
            }
        }
    }
}
