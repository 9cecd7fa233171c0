//! Flow control between the socket and the game: the connection's reader
//! fills a bounded [`Inbox`] as fast as messages arrive; [`deliver`] hands
//! them to the engine at most `per_frame` per frame, in order.
//!
//! A flood therefore costs a bounded frame and bounded memory. When the
//! backlog is full the oldest message is dropped and counted; the first drop
//! of an overflow episode (which lasts until the backlog drains empty) is
//! reported once. Nothing is dropped while the backlog is below its bound.

use std::{
    cell::Cell,
    collections::VecDeque,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
};

use bytes::Bytes;
use redis::{PushInfo, PushKind, Value, aio::AsyncPushSender};
use tokio::sync::Notify;

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
    /// Reads a RESP3 `message` / `pmessage` push; `None` for other pushes.
    fn from_push(info: PushInfo) -> Option<Self> {
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

/// The bounded backlog between the reader and the game, with its counters.
/// `Send + Sync` because the redis crate requires that of a push sender; in
/// practice one thread uses it and the lock is never contended.
#[derive(Debug)]
pub struct Inbox {
    queue: Mutex<VecDeque<Message>>,
    capacity: AtomicUsize,
    arrived: Notify,
    received: AtomicU64,
    bytes_received: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
    peak_backlog: AtomicUsize,
    overflowing: AtomicBool,
    overflow_unreported: AtomicBool,
    episodes: AtomicU64,
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
    /// Messages waiting now.
    pub backlog: usize,
    /// Most messages ever waiting at once.
    pub peak_backlog: usize,
    /// Overflow episodes (each reported once).
    pub overflows: u64,
}

impl Inbox {
    /// An empty inbox holding at most `capacity` messages (at least 1).
    pub fn new(capacity: usize) -> Self {
        Inbox {
            queue: Mutex::new(VecDeque::new()),
            capacity: AtomicUsize::new(capacity.max(1)),
            arrived: Notify::new(),
            received: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            peak_backlog: AtomicUsize::new(0),
            overflowing: AtomicBool::new(false),
            overflow_unreported: AtomicBool::new(false),
            episodes: AtomicU64::new(0),
        }
    }

    /// The bound of the backlog.
    pub fn capacity(&self) -> usize {
        self.capacity.load(Relaxed)
    }

    /// Queues a message, dropping the oldest when full.
    pub fn push(&self, message: Message) {
        self.received.fetch_add(1, Relaxed);
        self.bytes_received.fetch_add(message.payload.len() as u64, Relaxed);
        let len = {
            let mut queue = self.lock();
            while queue.len() >= self.capacity() {
                queue.pop_front();
                self.dropped.fetch_add(1, Relaxed);
                if !self.overflowing.swap(true, Relaxed) {
                    self.episodes.fetch_add(1, Relaxed);
                    self.overflow_unreported.store(true, Relaxed);
                }
            }
            queue.push_back(message);
            queue.len()
        };
        self.peak_backlog.fetch_max(len, Relaxed);
        self.arrived.notify_one();
    }

    /// Takes the oldest message.
    pub fn pop(&self) -> Option<Message> {
        let mut queue = self.lock();
        let message = queue.pop_front();
        if queue.is_empty() {
            self.overflowing.store(false, Relaxed);
        }
        if message.is_some() {
            self.delivered.fetch_add(1, Relaxed);
        }
        message
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets waiting messages (they are neither delivered nor counted as dropped).
    pub fn clear(&self) {
        self.lock().clear();
        self.overflowing.store(false, Relaxed);
        self.overflow_unreported.store(false, Relaxed);
    }

    /// If an overflow episode began since the last call: how many messages
    /// have been dropped in all so far.
    pub fn take_overflow_report(&self) -> Option<u64> {
        self.overflow_unreported.swap(false, Relaxed).then(|| self.dropped.load(Relaxed))
    }

    /// Copies the counters.
    pub fn stats(&self) -> InboxStats {
        InboxStats {
            received: self.received.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            backlog: self.len(),
            peak_backlog: self.peak_backlog.load(Relaxed),
            overflows: self.episodes.load(Relaxed),
        }
    }

    /// Waits until a message may be waiting (returns at once if one arrived
    /// since the last wait).
    async fn arrived(&self) {
        self.arrived.notified().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Message>> {
        // A panic while holding the lock leaves a consistent queue behind.
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The connection's push sender: messages that reach the crate (the
/// [`tap`](super::tap) takes nearly all of them first) go to the inbox;
/// subscription confirmations and disconnect notices are left to the session.
#[derive(Debug)]
pub struct InboxSender(pub std::sync::Arc<Inbox>);

impl AsyncPushSender for InboxSender {
    fn send(&self, info: PushInfo) -> Result<(), redis::aio::SendError> {
        if let Some(message) = Message::from_push(info) {
            self.0.push(message);
        }
        Ok(())
    }
}

/// The engine's frames, as far as delivery cares: the glue calls [`tick`]
/// once per frame; [`deliver`] waits on it once a frame's quota is spent.
///
/// [`tick`]: FrameGate::tick
#[derive(Debug, Default)]
pub struct FrameGate {
    frame: Cell<u64>,
    next: Notify,
}

impl FrameGate {
    /// A new frame began.
    pub fn tick(&self) {
        self.frame.set(self.frame.get().wrapping_add(1));
        self.next.notify_waiters();
    }

    /// The current frame's number.
    pub fn frame(&self) -> u64 {
        self.frame.get()
    }

    /// Waits for the next [`tick`](Self::tick).
    pub async fn next_frame(&self) {
        let frame = self.frame.get();
        while self.frame.get() == frame {
            self.next.notified().await;
        }
    }
}

/// What [`deliver`] hands to the game.
#[derive(Debug)]
pub enum Delivery {
    /// The next message, in arrival order.
    Message(Message),
    /// The messages handed over since the previous `BatchEnd` form one batch:
    /// the delivery round that handed them over ended, because the inbox ran
    /// empty or the frame's quota is spent, and [`deliver`] is about to wait.
    /// Comes once after every round that delivered at least one message, and
    /// before an [`Overflow`](Delivery::Overflow) report, so reports keep
    /// their place among the messages.
    BatchEnd,
    /// An overflow episode began: the oldest messages are being dropped;
    /// `dropped_total` have been dropped since the start.
    Overflow {
        /// Messages dropped since the subscriber started.
        dropped_total: u64,
    },
}

/// Hands messages from `inbox` to `sink`, at most `per_frame()` per frame of
/// `frames`, forever, each delivery round followed by
/// [`Delivery::BatchEnd`]. `sink` runs with no borrow held, so it may call
/// back into whatever owns the inbox.
pub async fn deliver(inbox: &Inbox, frames: &FrameGate, per_frame: impl Fn() -> usize, mut sink: impl FnMut(Delivery)) {
    let mut frame = frames.frame();
    let mut in_frame = 0usize;
    // Whether messages were delivered since the last `BatchEnd`.
    let mut in_batch = false;
    loop {
        if let Some(dropped_total) = inbox.take_overflow_report() {
            end_batch(&mut in_batch, &mut sink);
            sink(Delivery::Overflow { dropped_total });
        }
        if frames.frame() != frame {
            frame = frames.frame();
            in_frame = 0;
        }
        if in_frame >= per_frame().max(1) {
            end_batch(&mut in_batch, &mut sink);
            frames.next_frame().await;
            continue;
        }
        match inbox.pop() {
            Some(message) => {
                in_frame += 1;
                in_batch = true;
                sink(Delivery::Message(message));
            }
            None => {
                end_batch(&mut in_batch, &mut sink);
                inbox.arrived().await
            }
        }
    }
}

/// Tells `sink` the batch ended if messages were delivered since the last time.
fn end_batch(in_batch: &mut bool, sink: &mut impl FnMut(Delivery)) {
    if std::mem::take(in_batch) {
        sink(Delivery::BatchEnd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: usize) -> Message {
        Message { channel: "c".into(), payload: i.to_string().into(), pattern: None }
    }

    #[test]
    fn nothing_is_dropped_below_the_bound_and_overflow_drops_the_oldest_once_per_episode() {
        let inbox = Inbox::new(3);
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
        let left: Vec<_> = std::iter::from_fn(|| inbox.pop()).map(|m| m.payload).collect();
        assert_eq!(left, ["3", "4", "5"], "newest kept, in order");
        for i in 0..4 {
            inbox.push(msg(i));
        }
        assert_eq!(inbox.take_overflow_report(), Some(4), "drained empty, so a new episode");
        let stats = inbox.stats();
        assert_eq!((stats.received, stats.delivered, stats.dropped, stats.backlog, stats.overflows), (10, 3, 4, 3, 2));
        assert_eq!(stats.peak_backlog, 3);
    }

    #[test]
    fn delivery_is_capped_per_frame_and_keeps_order() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let local = tokio::task::LocalSet::new();
        let inbox = std::rc::Rc::new(Inbox::new(100));
        let frames = std::rc::Rc::new(FrameGate::default());
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        for i in 0..10 {
            inbox.push(msg(i));
        }
        let (i2, f2, s2) = (inbox.clone(), frames.clone(), seen.clone());
        local.spawn_local(async move {
            deliver(
                &i2,
                &f2,
                || 4,
                |d| {
                    if let Delivery::Message(m) = d {
                        s2.borrow_mut().push(String::from_utf8(m.payload.to_vec()).unwrap());
                    }
                },
            )
            .await
        });
        let settle = || settle(&local, &rt);
        let mut per_frame = Vec::new();
        for _ in 0..4 {
            settle();
            per_frame.push(seen.borrow().len());
            frames.tick();
        }
        assert_eq!(per_frame, [4, 8, 10, 10]);
        assert_eq!(*seen.borrow(), (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
        inbox.push(msg(10));
        settle();
        assert_eq!(seen.borrow().len(), 11, "a message arriving mid-frame is delivered in that frame");
    }

    /// Lets the spawned delivery task run until it waits.
    fn settle(local: &tokio::task::LocalSet, rt: &tokio::runtime::Runtime) {
        local.block_on(rt, async {
            for _ in 0..10 {
                tokio::task::yield_now().await
            }
        })
    }

    /// What `deliver` handed over, as text: "m<payload>", "end", "overflow <total>".
    fn recorded(d: &Delivery) -> String {
        match d {
            Delivery::Message(m) => format!("m{}", String::from_utf8_lossy(&m.payload)),
            Delivery::BatchEnd => "end".into(),
            Delivery::Overflow { dropped_total } => format!("overflow {dropped_total}"),
        }
    }

    #[test]
    fn each_delivery_round_ends_with_one_batch_end() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let local = tokio::task::LocalSet::new();
        let inbox = std::rc::Rc::new(Inbox::new(100));
        let frames = std::rc::Rc::new(FrameGate::default());
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::<String>::new()));
        for i in 0..10 {
            inbox.push(msg(i));
        }
        let (i2, f2, s2) = (inbox.clone(), frames.clone(), seen.clone());
        local.spawn_local(async move { deliver(&i2, &f2, || 4, |d| s2.borrow_mut().push(recorded(&d))).await });
        let settle = || settle(&local, &rt);
        let mut per_frame = Vec::new();
        for _ in 0..4 {
            settle();
            per_frame.push(seen.borrow_mut().drain(..).collect::<Vec<_>>().join(" "));
            frames.tick();
        }
        assert_eq!(
            per_frame,
            ["m0 m1 m2 m3 end", "m4 m5 m6 m7 end", "m8 m9 end", ""],
            "a round ends at the quota or when the inbox runs empty; no empty batches"
        );
        inbox.push(msg(10));
        inbox.push(msg(11));
        settle();
        assert_eq!(seen.borrow().join(" "), "m10 m11 end", "messages arriving later form a batch of their own");
    }

    #[test]
    fn a_batch_ends_before_an_overflow_report() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let local = tokio::task::LocalSet::new();
        let inbox = std::rc::Rc::new(Inbox::new(2));
        let frames = std::rc::Rc::new(FrameGate::default());
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::<String>::new()));
        inbox.push(msg(0));
        inbox.push(msg(1));
        let (i2, f2, s2) = (inbox.clone(), frames.clone(), seen.clone());
        local.spawn_local(async move {
            deliver(
                &i2,
                &f2,
                || 10,
                |d| {
                    // Two arrivals while message 0 is handled: 1 is dropped to make room.
                    if matches!(&d, Delivery::Message(m) if m.payload == b"0"[..]) {
                        i2.push(msg(2));
                        i2.push(msg(3));
                    }
                    s2.borrow_mut().push(recorded(&d));
                },
            )
            .await
        });
        settle(&local, &rt);
        assert_eq!(seen.borrow().join(" "), "m0 end overflow 1 m2 m3 end");
    }
}
