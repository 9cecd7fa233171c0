//! The one queue between a node's byte work on the I/O worker and its task on
//! the main thread: bounded, ordered, and waking the main thread only when it
//! goes from empty to non-empty. The main thread takes everything waiting
//! with one lock, so a message costs it a move.
//!
//! Written here rather than taken from tokio: `tokio::sync::mpsc` hands
//! messages over one at a time (an atomic slot read each), cannot drop its
//! oldest message when full (what Redis pub/sub needs), and bounds messages,
//! not bytes. This is a mutex around a `VecDeque` and the wakers waiting on it.
//!
//! When full, a sender either waits ([`Relay::send`], [`Relay::poll_ready`]:
//! a WebSocket stops reading, so TCP pushes back on the server) or drops the
//! oldest message ([`Relay::push_dropping_oldest`]: pub/sub, where the server
//! would not wait). Bounds are in messages and in bytes; one message larger
//! than the byte bound still passes when the queue is empty.

use std::{
    collections::VecDeque,
    sync::{Mutex, MutexGuard},
    task::{Context, Poll, Waker},
};

/// Why a send failed: the receiving side closed (the node stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// The bounds of a [`Relay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Most messages waiting.
    pub messages: usize,
    /// Most bytes waiting (as the senders count them).
    pub bytes: usize,
}

struct State<T> {
    queue: VecDeque<(T, usize)>,
    bytes: usize,
    /// The receiver, when it found the queue empty and waits.
    receiver: Option<Waker>,
    /// Senders waiting for room.
    senders: Vec<Waker>,
    closed: bool,
}

/// A bounded, ordered queue from the I/O worker to the main thread. Share it
/// in an `Arc`; any thread may send, one task receives.
pub struct Relay<T> {
    state: Mutex<State<T>>,
    bounds: Bounds,
}

impl<T> std::fmt::Debug for Relay<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Relay").field("waiting", &state.queue.len()).field("bytes", &state.bytes).finish()
    }
}

/// What [`Relay::push_dropping_oldest`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Oldest messages dropped to make room.
    pub dropped: usize,
    /// Messages waiting after the push.
    pub waiting: usize,
}

impl<T> Relay<T> {
    /// An empty relay with `bounds` (each at least 1).
    pub fn new(bounds: Bounds) -> Self {
        Relay {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                bytes: 0,
                receiver: None,
                senders: Vec::new(),
                closed: false,
            }),
            bounds: Bounds { messages: bounds.messages.max(1), bytes: bounds.bytes.max(1) },
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding the lock leaves a consistent queue behind.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn has_room(&self, state: &State<T>) -> bool {
        state.queue.is_empty() || (state.queue.len() < self.bounds.messages && state.bytes < self.bounds.bytes)
    }

    /// Adds `message` (`bytes` long) and wakes the receiver if it waits.
    fn push(&self, mut state: MutexGuard<'_, State<T>>, message: T, bytes: usize) {
        state.queue.push_back((message, bytes));
        state.bytes += bytes;
        let receiver = state.receiver.take();
        drop(state);
        if let Some(waker) = receiver {
            waker.wake();
        }
    }

    /// Whether a message may be pushed now without passing the bounds;
    /// otherwise registers `cx` to be woken when room is made. Ready also
    /// when closed (the push then fails).
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.lock();
        if state.closed || self.has_room(&state) {
            return Poll::Ready(());
        }
        if !state.senders.iter().any(|w| w.will_wake(cx.waker())) {
            state.senders.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Waits for room, then adds `message`. Fails when the receiver closed.
    pub async fn send(&self, message: T, bytes: usize) -> Result<(), Closed> {
        std::future::poll_fn(|cx| self.poll_ready(cx)).await;
        self.push_now(message, bytes)
    }

    /// Adds `message` whatever the bounds (after [`poll_ready`](Self::poll_ready)
    /// said there is room, or for a few control events that must not wait).
    pub fn push_now(&self, message: T, bytes: usize) -> Result<(), Closed> {
        let state = self.lock();
        if state.closed {
            return Err(Closed);
        }
        self.push(state, message, bytes);
        Ok(())
    }

    /// Adds `message`, dropping the oldest droppable ones while the bounds
    /// are passed (others, events that must arrive, keep their place).
    pub fn push_dropping_oldest(
        &self,
        message: T,
        bytes: usize,
        droppable: impl Fn(&T) -> bool,
    ) -> Result<Pushed, Closed> {
        let mut state = self.lock();
        if state.closed {
            return Err(Closed);
        }
        let mut dropped = 0;
        while state.queue.len() >= self.bounds.messages || state.bytes.saturating_add(bytes) > self.bounds.bytes {
            // Nearly always the first: events are few.
            let Some(oldest) = state.queue.iter().position(|(m, _)| droppable(m)) else { break };
            if let Some((_, size)) = state.queue.remove(oldest) {
                state.bytes -= size;
                dropped += 1;
            }
        }
        let waiting = state.queue.len() + 1;
        self.push(state, message, bytes);
        Ok(Pushed { dropped, waiting })
    }

    /// Takes what is waiting, in order and at most `limit` messages, into
    /// `into` (which is cleared first); or, with nothing waiting, registers
    /// `cx` to be woken by the next message. `Ready(false)` once closed.
    pub fn poll_take(&self, cx: &mut Context<'_>, into: &mut VecDeque<(T, usize)>, limit: usize) -> Poll<bool> {
        into.clear();
        let mut state = self.lock();
        if state.closed {
            return Poll::Ready(false);
        }
        if state.queue.is_empty() {
            match &mut state.receiver {
                Some(waker) => waker.clone_from(cx.waker()),
                None => state.receiver = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        if state.queue.len() <= limit {
            std::mem::swap(&mut state.queue, into);
            state.bytes = 0;
        } else {
            into.extend(state.queue.drain(..limit));
            state.bytes -= into.iter().map(|(_, bytes)| bytes).sum::<usize>();
        }
        let senders = std::mem::take(&mut state.senders);
        drop(state);
        senders.into_iter().for_each(Waker::wake);
        Poll::Ready(true)
    }

    /// Waits for messages and takes all of them into `into`; false once closed.
    pub async fn take(&self, into: &mut VecDeque<(T, usize)>) -> bool {
        std::future::poll_fn(|cx| self.poll_take(cx, into, usize::MAX)).await
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes the relay (the node stopped): what waits is dropped, senders
    /// fail from now on, and waiting senders wake.
    pub fn close(&self) {
        let (dropped, senders) = {
            let mut state = self.lock();
            state.closed = true;
            state.bytes = 0;
            state.receiver = None;
            (std::mem::take(&mut state.queue), std::mem::take(&mut state.senders))
        };
        drop(dropped);
        senders.into_iter().for_each(Waker::wake);
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
        task::Wake,
    };

    use super::*;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn bounds(messages: usize, bytes: usize) -> Bounds {
        Bounds { messages, bytes }
    }

    fn items(batch: &VecDeque<(u32, usize)>) -> Vec<u32> {
        batch.iter().map(|(m, _)| *m).collect()
    }

    #[test]
    fn the_receiver_is_woken_once_per_empty_to_non_empty_and_takes_all_in_order() {
        let relay = Relay::new(bounds(100, 1000));
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut batch = VecDeque::new();
        assert!(relay.poll_take(&mut cx, &mut batch, usize::MAX).is_pending());
        for i in 0..5 {
            relay.push_now(i, 1).unwrap();
        }
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "one wake for five messages");
        assert_eq!(relay.poll_take(&mut cx, &mut batch, usize::MAX), Poll::Ready(true));
        assert_eq!(items(&batch), [0, 1, 2, 3, 4]);
        assert!(relay.is_empty());
        assert!(relay.poll_take(&mut cx, &mut batch, usize::MAX).is_pending());
        relay.push_now(9, 1).unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn dropping_oldest_keeps_both_bounds_and_counts_what_it_dropped() {
        let relay = Relay::new(bounds(3, 10));
        for i in 0..3 {
            assert_eq!(relay.push_dropping_oldest(i, 2, |_| true).unwrap().dropped, 0);
        }
        assert_eq!(relay.push_dropping_oldest(3, 2, |_| true).unwrap(), Pushed { dropped: 1, waiting: 3 });
        assert_eq!(relay.push_dropping_oldest(4, 8, |_| true).unwrap(), Pushed { dropped: 2, waiting: 2 });
        assert_eq!(
            relay.push_dropping_oldest(5, 50, |_| true).unwrap(),
            Pushed { dropped: 2, waiting: 1 },
            "alone it passes"
        );
        let mut batch = VecDeque::new();
        let waker = Waker::noop();
        let _ = relay.poll_take(&mut Context::from_waker(waker), &mut batch, usize::MAX);
        assert_eq!(items(&batch), [5]);
    }

    #[tokio::test]
    async fn a_full_relay_makes_senders_wait_until_the_receiver_takes() {
        let relay = Arc::new(Relay::new(bounds(2, 1000)));
        relay.send(1, 1).await.unwrap();
        relay.send(2, 1).await.unwrap();
        let sender = {
            let relay = relay.clone();
            tokio::spawn(async move { relay.send(3, 1).await })
        };
        tokio::task::yield_now().await;
        assert!(!sender.is_finished());
        assert_eq!(relay.len(), 2);
        let mut batch = VecDeque::new();
        assert!(relay.take(&mut batch).await);
        sender.await.unwrap().unwrap();
        assert!(relay.take(&mut batch).await);
        assert_eq!(items(&batch), [3]);
    }

    #[tokio::test]
    async fn closing_fails_senders_and_ends_the_receiver() {
        let relay = Arc::new(Relay::new(bounds(1, 10)));
        relay.send(1u32, 1).await.unwrap();
        let sender = {
            let relay = relay.clone();
            tokio::spawn(async move { relay.send(2, 1).await })
        };
        tokio::task::yield_now().await;
        relay.close();
        assert_eq!(sender.await.unwrap(), Err(Closed));
        assert!(!relay.take(&mut VecDeque::new()).await);
        assert_eq!(relay.push_now(3, 1), Err(Closed));
    }

    #[test]
    fn a_limited_take_leaves_the_rest_in_order() {
        let relay = Relay::new(bounds(10, 100));
        for i in 0..5 {
            relay.push_now(i, 3).unwrap();
        }
        let mut batch = VecDeque::new();
        let mut cx = Context::from_waker(Waker::noop());
        assert_eq!(relay.poll_take(&mut cx, &mut batch, 2), Poll::Ready(true));
        assert_eq!(items(&batch), [0, 1]);
        assert_eq!(relay.poll_take(&mut cx, &mut batch, 10), Poll::Ready(true));
        assert_eq!(items(&batch), [2, 3, 4]);
    }

    #[test]
    fn only_droppable_messages_are_dropped() {
        let relay = Relay::new(bounds(2, 100));
        relay.push_now(100, 0).unwrap();
        relay.push_dropping_oldest(1, 1, |m| *m < 100).unwrap();
        assert_eq!(relay.push_dropping_oldest(2, 1, |m| *m < 100).unwrap().dropped, 1);
        let mut batch = VecDeque::new();
        let _ = relay.poll_take(&mut Context::from_waker(Waker::noop()), &mut batch, usize::MAX);
        assert_eq!(items(&batch), [100, 2]);
    }

    #[test]
    fn poll_ready_waits_for_room() {
        let relay = Relay::new(bounds(1, 10));
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(relay.poll_ready(&mut cx).is_ready());
        relay.push_now(1u32, 1).unwrap();
        assert!(relay.poll_ready(&mut cx).is_pending());
        let _ = relay.poll_take(&mut cx, &mut VecDeque::new(), usize::MAX);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "taking made room and woke the sender");
        assert!(relay.poll_ready(&mut cx).is_ready());
    }
}
