//! Flow control between the socket and the game: the connection's reader,
//! on the I/O worker, pushes each message into a bounded [`Inbox`] as it
//! arrives, made there into what the main thread will emit ([`Convert`]);
//! the main thread takes them, in order, from the inbox's [`Relay`].
//!
//! A flood therefore costs bounded memory. When the backlog is full the
//! oldest message is dropped and counted; the first drop of an overflow
//! episode (which lasts until every message received has been delivered or
//! dropped) is reported once. Nothing is dropped while the backlog is below
//! its bound. The session's own events (a few per connection) wait in the
//! same queue, in order with the messages, and take a place in it; they are
//! never dropped.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed},
};

use bytes::Bytes;
use redis::{PushInfo, PushKind, Value, aio::AsyncPushSender};

use crate::relay::{Bounds, Relay};

/// One pub/sub message, bytes exactly as published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The channel it was published to.
    pub channel: Bytes,
    /// The payload.
    pub payload: Bytes,
    /// The pattern that matched, for pattern subscriptions.
    pub pattern: Option<Bytes>,
}

impl Message {
    /// Reads a RESP3 `message` / `pmessage` / `smessage` push; `None` for other pushes.
    pub(super) fn from_push(info: PushInfo) -> Option<Self> {
        let bytes = |v: Value| match v {
            Value::BulkString(b) => Some(Bytes::from(b)),
            Value::SimpleString(s) => Some(Bytes::from(s)),
            _ => None,
        };
        let mut data = info.data.into_iter();
        match info.kind {
            PushKind::Message | PushKind::SMessage => {
                Some(Message { channel: bytes(data.next()?)?, payload: bytes(data.next()?)?, pattern: None })
            }
            PushKind::PMessage => {
                let pattern = bytes(data.next()?)?;
                Some(Message { channel: bytes(data.next()?)?, payload: bytes(data.next()?)?, pattern: Some(pattern) })
            }
            _ => None,
        }
    }
}

/// Default bound of an inbox: messages waiting for the game at most.
pub const DEFAULT_MAX_BACKLOG: usize = 100_000;

/// How messages become what the main thread emits; runs on the I/O worker,
/// as each message is pushed (so payload strings are made there).
pub trait Convert: Send + 'static {
    /// What the inbox holds: messages, and the session's events besides.
    type Item: Send + 'static;
    /// One message, made into an item.
    fn message(&mut self, message: Message) -> Self::Item;
    /// Whether an item is a message (only messages are dropped when the backlog is full).
    fn is_message(item: &Self::Item) -> bool;
}

/// Messages as they arrived: an inbox of plain [`Message`]s.
#[derive(Debug, Default)]
pub struct Unconverted;

impl Convert for Unconverted {
    type Item = Message;
    fn message(&mut self, message: Message) -> Message {
        message
    }
    fn is_message(_: &Message) -> bool {
        true
    }
}

/// Where a connection's reader puts messages: an [`Inbox`] of any conversion.
pub trait MessageSink: Send + Sync {
    /// Adds a message, dropping the oldest when the backlog is full.
    fn push(&self, message: Message);

    /// A push that is not a message (a subscription confirmation, or an `sunsubscribe` the
    /// server sent when a cluster slot moved away): ignored unless the session needs it.
    fn control(&self, _push: PushInfo) {}
}

/// A counter on a cache line of its own: written by the main thread while
/// the worker writes the others.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Apart(AtomicU64);

/// The bounded backlog between the reader and the game, with its counters.
pub struct Inbox<C: Convert = Unconverted> {
    relay: Arc<Relay<C::Item>>,
    convert: Mutex<C>,
    capacity: usize,
    received: AtomicU64,
    bytes_received: AtomicU64,
    dropped: AtomicU64,
    peak_backlog: AtomicUsize,
    overflowing: AtomicBool,
    overflow_unreported: AtomicBool,
    episodes: AtomicU64,
    delivered: Apart,
}

impl<C: Convert> std::fmt::Debug for Inbox<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").field("stats", &self.stats()).finish()
    }
}

/// A copy of the inbox counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InboxStats {
    /// Messages read from the server.
    pub received: u64,
    /// Payload bytes read from the server.
    pub bytes_received: u64,
    /// Messages handed to the game.
    pub delivered: u64,
    /// Messages dropped because the backlog was full.
    pub dropped: u64,
    /// Messages waiting now (received, neither delivered nor dropped yet).
    pub backlog: usize,
    /// Most messages ever waiting at once.
    pub peak_backlog: usize,
    /// Overflow episodes (each reported once).
    pub overflows: u64,
}

impl<C: Convert> Inbox<C> {
    /// An empty inbox holding at most `capacity` messages (at least 1),
    /// converting them with `convert`.
    pub fn new(capacity: usize, convert: C) -> Self {
        let capacity = capacity.max(1);
        Inbox {
            // The bound is in messages; bytes are bounded by max_message_bytes per message.
            relay: Arc::new(Relay::new(Bounds { messages: capacity, bytes: usize::MAX })),
            convert: Mutex::new(convert),
            capacity,
            received: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            peak_backlog: AtomicUsize::new(0),
            overflowing: AtomicBool::new(false),
            overflow_unreported: AtomicBool::new(false),
            episodes: AtomicU64::new(0),
            delivered: Apart::default(),
        }
    }

    /// The bound of the backlog.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Where the main thread takes the items from.
    pub fn relay(&self) -> Arc<Relay<C::Item>> {
        self.relay.clone()
    }

    /// Queues an event of the session (never dropped).
    pub fn push_event(&self, item: C::Item) {
        // Fails only once the node stopped, when nothing is to be reported.
        let _ = self.relay.push_now(item, 0);
    }

    /// Counts `n` messages the game was handed.
    pub fn delivered(&self, n: u64) {
        self.delivered.0.fetch_add(n, Relaxed);
    }

    /// If an overflow episode began since the last call: how many messages
    /// have been dropped in all so far.
    pub fn take_overflow_report(&self) -> Option<u64> {
        self.overflow_unreported.swap(false, Relaxed).then(|| self.dropped.load(Relaxed))
    }

    /// Messages waiting: received, and neither delivered nor dropped yet.
    pub fn len(&self) -> usize {
        let gone = self.delivered.0.load(Relaxed) + self.dropped.load(Relaxed);
        self.received.load(Relaxed).saturating_sub(gone) as usize
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the counters.
    pub fn stats(&self) -> InboxStats {
        InboxStats {
            received: self.received.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
            delivered: self.delivered.0.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            backlog: self.len(),
            peak_backlog: self.peak_backlog.load(Relaxed),
            overflows: self.episodes.load(Relaxed),
        }
    }

    /// Takes every item waiting, as the main thread does, counting the
    /// messages among them as delivered (for tests and tools).
    pub fn take_all(&self) -> Vec<C::Item> {
        let mut batch = std::collections::VecDeque::new();
        let waker = std::task::Waker::noop();
        let _ = self.relay.poll_take(&mut std::task::Context::from_waker(waker), &mut batch, usize::MAX);
        let items: Vec<C::Item> = batch.into_iter().map(|(item, _)| item).collect();
        self.delivered(items.iter().filter(|item| C::is_message(item)).count() as u64);
        items
    }
}

impl<C: Convert> MessageSink for Inbox<C> {
    fn push(&self, message: Message) {
        let bytes = message.payload.len();
        // Every message before this one delivered or dropped: an overflow episode is over.
        if self.is_empty() {
            self.overflowing.store(false, Relaxed);
        }
        self.received.fetch_add(1, Relaxed);
        self.bytes_received.fetch_add(bytes as u64, Relaxed);
        let item = self.convert.lock().unwrap_or_else(|p| p.into_inner()).message(message);
        let Ok(pushed) = self.relay.push_dropping_oldest(item, bytes, C::is_message) else {
            return; // The node stopped.
        };
        if pushed.dropped > 0 {
            self.dropped.fetch_add(pushed.dropped as u64, Relaxed);
            if !self.overflowing.swap(true, Relaxed) {
                self.episodes.fetch_add(1, Relaxed);
                self.overflow_unreported.store(true, Relaxed);
            }
        }
        self.peak_backlog.fetch_max(self.len(), Relaxed);
    }
}

/// The connection's push sender: messages that reach the crate (the
/// [`tap`](super::tap) takes nearly all of them first) go to the inbox;
/// subscription confirmations and disconnect notices are left to the session.
pub struct InboxSender(pub Arc<dyn MessageSink>);

impl std::fmt::Debug for InboxSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InboxSender")
    }
}

impl AsyncPushSender for InboxSender {
    fn send(&self, info: PushInfo) -> Result<(), redis::aio::SendError> {
        match info.kind {
            PushKind::Message | PushKind::PMessage | PushKind::SMessage => {
                if let Some(message) = Message::from_push(info) {
                    self.0.push(message);
                }
            }
            _ => self.0.control(info),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: usize) -> Message {
        Message { channel: "c".into(), payload: i.to_string().into(), pattern: None }
    }

    fn payloads(items: Vec<Message>) -> Vec<String> {
        items.into_iter().map(|m| String::from_utf8(m.payload.to_vec()).unwrap()).collect()
    }

    #[test]
    fn nothing_is_dropped_below_the_bound_and_overflow_drops_the_oldest_once_per_episode() {
        let inbox = Inbox::new(3, Unconverted);
        for i in 0..3 {
            inbox.push(msg(i));
        }
        assert_eq!(inbox.stats().dropped, 0);
        assert_eq!(inbox.take_overflow_report(), None);
        inbox.push(msg(3));
        inbox.push(msg(4));
        assert_eq!(inbox.stats().dropped, 2);
        assert_eq!(inbox.take_overflow_report(), Some(2), "one report for the episode");
        inbox.push(msg(5));
        assert_eq!(inbox.take_overflow_report(), None, "still the same episode");
        assert_eq!(payloads(inbox.take_all()), ["3", "4", "5"], "newest kept, in order");
        for i in 0..4 {
            inbox.push(msg(i));
        }
        assert_eq!(inbox.take_overflow_report(), Some(4), "drained empty, so a new episode");
        let stats = inbox.stats();
        assert_eq!((stats.received, stats.delivered, stats.dropped, stats.backlog, stats.overflows), (10, 3, 4, 3, 2));
        assert_eq!(stats.peak_backlog, 3);
    }

    /// Items of a converted inbox: messages as text, and events.
    #[derive(Debug, PartialEq)]
    enum Item {
        Text(String),
        Event(&'static str),
    }

    struct ToText;

    impl Convert for ToText {
        type Item = Item;
        fn message(&mut self, message: Message) -> Item {
            Item::Text(String::from_utf8_lossy(&message.payload).into_owned())
        }
        fn is_message(item: &Item) -> bool {
            matches!(item, Item::Text(_))
        }
    }

    #[test]
    fn messages_are_converted_as_pushed_and_events_are_never_dropped() {
        let inbox = Inbox::new(3, ToText);
        inbox.push_event(Item::Event("subscribed"));
        inbox.push(msg(0));
        inbox.push(msg(1));
        inbox.push(msg(2));
        assert_eq!(
            inbox.take_all(),
            [Item::Event("subscribed"), Item::Text("1".into()), Item::Text("2".into())],
            "the oldest message made room, the event stayed in its place"
        );
        assert_eq!(inbox.stats().delivered, 2, "events are not counted as messages");
    }
}
