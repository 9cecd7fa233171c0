//! `RedisStreamConsumer`'s delivery: on the I/O worker, each entry made into
//! an event with its id and field Strings ([`Forwarder`]); on the main
//! thread, those events emitted as the node's per-entry and batch signals,
//! and what was handled acknowledged ([`Emitter`]). Not a class of its own:
//! `RedisStreamConsumer` makes one of each per `start()`.

use std::{cell::Cell, rc::Rc, sync::Arc};

use async_net_core::{
    relay::{Closed, Relay},
    state::NetState,
    streams::{ConsumerEvents, Entry, EntryId},
};
use bytes::Bytes;
use godot::prelude::*;
use tokio::sync::mpsc::UnboundedSender;

use crate::{
    net_node::{Emit, Flow, NodeLink},
    signals::{BatchSignal, Burst, HotSignal},
};

/// What the consumer reports, as the main thread will emit it.
pub(crate) enum StreamEvent {
    Entry(Converted),
    DeadLettered(Converted),
    State(NetState),
    Error(String),
}

/// An entry with its Godot strings, made on the I/O worker.
pub(crate) struct Converted {
    id: EntryId,
    text_id: GString,
    fields: Vec<(GString, Field)>,
}

enum Field {
    Text(GString),
    Bytes(Bytes),
}

impl Converted {
    fn new(entry: Entry, binary: bool) -> Self {
        let fields = entry
            .fields
            .into_iter()
            .map(|(name, value)| (text(&name), if binary { Field::Bytes(value) } else { Field::Text(text(&value)) }))
            .collect();
        Converted { id: entry.id, text_id: GString::from(&*entry.id.to_string()), fields }
    }

    /// The fields as a Dictionary (main thread only). A repeated field keeps its last value.
    fn dictionary(&self) -> VarDictionary {
        let mut dictionary = VarDictionary::new();
        for (name, value) in &self.fields {
            match value {
                Field::Text(text) => dictionary.set(name, text),
                Field::Bytes(bytes) => dictionary.set(name, &PackedByteArray::from(&bytes[..])),
            }
        }
        dictionary
    }
}

/// `bytes` as a Godot string; invalid UTF-8 becomes U+FFFD.
fn text(bytes: &[u8]) -> GString {
    GString::from(&*String::from_utf8_lossy(bytes))
}

/// On the I/O worker: the consumer's reports, queued in order with the entries.
pub(crate) struct Forwarder {
    relay: Arc<Relay<StreamEvent>>,
    binary: bool,
}

impl Forwarder {
    pub(crate) fn new(relay: Arc<Relay<StreamEvent>>, binary: bool) -> Self {
        Forwarder { relay, binary }
    }

    fn report(&self, event: StreamEvent) {
        // Fails only once the node stopped, when nothing is to be reported.
        let _ = self.relay.push_now(event, 0);
    }
}

impl ConsumerEvents for Forwarder {
    fn state_changed(&self, state: NetState) {
        self.report(StreamEvent::State(state));
    }

    fn error(&self, message: &str) {
        self.report(StreamEvent::Error(message.into()));
    }

    async fn entry(&self, entry: Entry) -> Result<(), Closed> {
        let bytes = entry.byte_len();
        self.relay.send(StreamEvent::Entry(Converted::new(entry, self.binary)), bytes).await
    }

    async fn dead_lettered(&self, entry: Entry) -> Result<(), Closed> {
        let bytes = entry.byte_len();
        self.relay.send(StreamEvent::DeadLettered(Converted::new(entry, self.binary)), bytes).await
    }
}

/// The arguments of the batch signal, filled entry by entry.
#[derive(Default)]
struct Batch {
    ids: Vec<GString>,
    fields: Vec<VarDictionary>,
    /// Entries the per-entry handler did not take: the batch's handler takes
    /// them (and they are acknowledged) once it returns.
    unhandled: Vec<EntryId>,
}

/// On the main thread: the consumer's events as the node's signals, and the
/// acknowledgements of what a handler took (with `auto_ack`).
pub(crate) struct Emitter {
    link: NodeLink,
    acks: UnboundedSender<Vec<EntryId>>,
    auto_ack: bool,
    /// Entries handed to a handler (shown by `get_stats`).
    delivered: Rc<Cell<u64>>,
    /// Entries the per-entry handler returned from, to acknowledge with the batch.
    handled: Vec<EntryId>,
    entry_received: HotSignal,
    entries_received: BatchSignal<Batch>,
    dead_lettered: HotSignal,
    /// One taken batch is one burst.
    burst: Burst,
}

impl Emitter {
    pub(crate) fn new(
        link: NodeLink,
        acks: UnboundedSender<Vec<EntryId>>,
        auto_ack: bool,
        delivered: Rc<Cell<u64>>,
        node: &Gd<Node>,
    ) -> Self {
        Emitter {
            link,
            acks,
            auto_ack,
            delivered,
            handled: Vec::new(),
            entry_received: HotSignal::new(node, "entry_received"),
            entries_received: BatchSignal::new(node, "entries_received"),
            dead_lettered: HotSignal::new(node, "dead_lettered"),
            burst: Burst::default(),
        }
    }

    /// Emits one entry and adds it to its batch; says whether a script may have run.
    fn entry(&mut self, entry: Converted) -> bool {
        let mut made = None;
        let each = || [entry.text_id.to_variant(), made.insert(entry.dictionary()).to_variant()];
        let emitted = self.entry_received.emit_in(&mut self.burst, each);
        if emitted {
            self.delivered.set(self.delivered.get() + 1);
            self.handled.push(entry.id);
            if !self.link.is_alive() {
                return true;
            }
        }
        self.entries_received.push(Batch::default, |batch| {
            batch.ids.push(entry.text_id.clone());
            batch.fields.push(made.unwrap_or_else(|| entry.dictionary()));
            if !emitted {
                batch.unhandled.push(entry.id);
            }
        });
        emitted
    }

    /// Acknowledges what the handlers took (with `auto_ack`).
    fn acknowledge(&mut self) {
        if self.auto_ack && !self.handled.is_empty() {
            // Fails only once the node stopped: the entries stay pending and come again.
            let _ = self.acks.send(std::mem::take(&mut self.handled));
        }
        self.handled.clear();
    }
}

impl Emit<StreamEvent> for Emitter {
    fn emit(&mut self, event: StreamEvent) -> Flow {
        let ran_script = match event {
            StreamEvent::Entry(entry) => self.entry(entry),
            StreamEvent::DeadLettered(entry) => {
                self.dead_lettered.emit(|| [entry.text_id.to_variant(), entry.dictionary().to_variant()])
            }
            StreamEvent::State(state) => {
                self.link.set_state(state);
                true
            }
            StreamEvent::Error(message) => {
                self.link.error(message);
                true
            }
        };
        if ran_script {
            self.burst.script_ran();
            if !self.link.is_alive() {
                // What the handlers took before the node went away is still acknowledged.
                self.acknowledge();
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn batch_done(&mut self) {
        self.burst.end_round();
        if !self.link.is_alive() {
            self.entries_received.discard();
            self.acknowledge();
            return;
        }
        let mut unhandled = Vec::new();
        let emitted = self.entries_received.flush(&mut self.burst, |batch| {
            unhandled = batch.unhandled;
            [PackedStringArray::from(batch.ids).to_variant(), Array::from(&batch.fields[..]).to_variant()]
        });
        if emitted {
            self.delivered.set(self.delivered.get() + unhandled.len() as u64);
            self.handled.extend(unhandled);
        }
        self.acknowledge();
    }
}
