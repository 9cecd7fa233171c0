//! What the node's methods hand to a running session: the bounded send
//! queue, a close request and a stop flag. Shared through an `Arc` between
//! the main thread (which queues) and the I/O worker (which sends); the
//! refusals (queue full, too large, closing) are decided at once, on the
//! caller's thread.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::Context;

use futures_util::task::AtomicWaker;
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

use super::config::WsConfig;

/// Longest close reason the protocol allows (a control frame carries at most
/// 125 bytes, two of which are the code).
pub const MAX_CLOSE_REASON_BYTES: usize = 123;

/// Why a send was refused. Nothing is ever dropped silently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The message is larger than `max_message_bytes`.
    TooLarge {
        /// Size of the refused message.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// `max_queued_messages` are already waiting.
    QueueFull {
        /// The limit.
        max: usize,
    },
    /// The session is closing or stopped.
    Closed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::TooLarge { bytes, max } => {
                write!(f, "message of {bytes} bytes refused: larger than max_message_bytes ({max})")
            }
            SendError::QueueFull { max } => {
                write!(f, "message refused: {max} messages are already queued (max_queued_messages)")
            }
            SendError::Closed => f.write_str("message refused: the connection is closing"),
        }
    }
}

/// Text as a node queues it: `String`, or the engine's own string type,
/// which the glue keeps as it is so that making its UTF-8 happens on the I/O
/// worker, when the message is sent.
pub trait OutgoingText: Send + 'static {
    /// An upper bound of the UTF-8 length, found without converting.
    fn max_utf8_len(&self) -> usize;
    /// The exact UTF-8 length (may convert; asked only near the size limit).
    fn utf8_len(&self) -> usize;
    /// The text as UTF-8.
    fn into_string(self) -> String;
}

impl OutgoingText for String {
    fn max_utf8_len(&self) -> usize {
        self.len()
    }
    fn utf8_len(&self) -> usize {
        self.len()
    }
    fn into_string(self) -> String {
        self
    }
}

/// A queued message, in the form the node gave it.
#[derive(Debug)]
enum Outgoing<T> {
    Text(T),
    Binary(Vec<u8>),
}

#[derive(Debug)]
struct Queue<T> {
    messages: VecDeque<Outgoing<T>>,
    close: Option<(u16, String)>,
}

/// The node's side of a session. Create with [`WsControl::new`], keep one
/// `Arc` in the node and pass another to [`run`](super::run).
#[derive(Debug)]
pub struct WsControl<T = String> {
    queue: Mutex<Queue<T>>,
    max_queued: usize,
    max_message_bytes: usize,
    stopped: AtomicBool,
    /// The session's writer, waiting for something to send or do.
    wake: AtomicWaker,
}

impl<T: OutgoingText> WsControl<T> {
    /// A control with `config`'s limits.
    pub fn new(config: &WsConfig) -> Self {
        WsControl {
            queue: Mutex::new(Queue { messages: VecDeque::new(), close: None }),
            max_queued: config.max_queued_messages,
            max_message_bytes: config.max_message_bytes,
            stopped: AtomicBool::new(false),
            wake: AtomicWaker::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue<T>> {
        // A panic while holding the lock leaves a consistent queue behind.
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a text message; it is sent as soon as the connection can take it.
    pub fn send_text(&self, text: T) -> Result<(), SendError> {
        let bytes = if text.max_utf8_len() <= self.max_message_bytes { 0 } else { text.utf8_len() };
        self.push(bytes, Outgoing::Text(text))
    }

    /// Queues a binary message.
    pub fn send_binary(&self, data: Vec<u8>) -> Result<(), SendError> {
        self.push(data.len(), Outgoing::Binary(data))
    }

    fn push(&self, bytes: usize, message: Outgoing<T>) -> Result<(), SendError> {
        let mut queue = self.lock();
        if self.is_stopped() || queue.close.is_some() {
            return Err(SendError::Closed);
        }
        if bytes > self.max_message_bytes {
            return Err(SendError::TooLarge { bytes, max: self.max_message_bytes });
        }
        if queue.messages.len() >= self.max_queued {
            return Err(SendError::QueueFull { max: self.max_queued });
        }
        queue.messages.push_back(message);
        drop(queue);
        self.wake.wake();
        Ok(())
    }

    /// Asks the session to send what is queued, then close with `code` and
    /// `reason`, and not reconnect. Refuses codes an endpoint may not send.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), String> {
        let sendable = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999) && CloseCode::from(code).is_allowed();
        if !sendable {
            return Err(format!("close code {code} cannot be sent: use 1000 or an application code 3000-4999"));
        }
        if reason.len() > MAX_CLOSE_REASON_BYTES {
            return Err(format!("close reason is {} bytes; at most {MAX_CLOSE_REASON_BYTES} fit", reason.len()));
        }
        self.lock().close = Some((code, reason.to_string()));
        self.wake.wake();
        Ok(())
    }

    /// Makes the session return at its next check without reporting
    /// anything more (the node is stopping or going away).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.lock().messages.clear();
        self.wake.wake();
    }

    /// Messages waiting to be sent.
    pub fn queued(&self) -> usize {
        self.lock().messages.len()
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    pub(crate) fn close_request(&self) -> Option<(u16, String)> {
        self.lock().close.clone()
    }

    pub(crate) fn close_requested(&self) -> bool {
        self.lock().close.is_some()
    }

    /// The next message to send, made into a WebSocket message here (on the
    /// worker); its payload length goes to `sent`.
    pub(crate) fn pop(&self, sent: impl FnOnce(usize)) -> Option<Message> {
        let message = self.lock().messages.pop_front()?;
        let message = match message {
            Outgoing::Text(text) => Message::text(text.into_string()),
            Outgoing::Binary(data) => Message::binary(data),
        };
        sent(message.len());
        Some(message)
    }

    pub(crate) fn has_queued(&self) -> bool {
        !self.lock().messages.is_empty()
    }

    /// Drops what is queued (a close was requested while not connected).
    pub(crate) fn discard_queue(&self) -> usize {
        let mut queue = self.lock();
        let n = queue.messages.len();
        queue.messages.clear();
        n
    }

    /// Registers the session's writer to be woken by the next send, close or stop.
    pub(crate) fn register(&self, cx: &Context<'_>) {
        self.wake.register(cx.waker());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(max_queued: usize, max_bytes: usize) -> WsControl {
        WsControl::new(&WsConfig {
            max_queued_messages: max_queued,
            max_message_bytes: max_bytes,
            ..Default::default()
        })
    }

    #[test]
    fn the_queue_is_bounded_and_keeps_order() {
        let c = control(2, 10);
        c.send_text("a".into()).unwrap();
        c.send_binary(vec![1]).unwrap();
        assert_eq!(c.send_text("c".into()), Err(SendError::QueueFull { max: 2 }));
        assert_eq!(c.pop(|_| {}), Some(Message::text("a")));
        c.send_text("d".into()).unwrap();
        assert_eq!(c.pop(|_| {}), Some(Message::binary(vec![1])));
        assert_eq!(c.pop(|_| {}), Some(Message::text("d")));
        assert_eq!(c.send_text("x".repeat(11)), Err(SendError::TooLarge { bytes: 11, max: 10 }));
    }

    #[test]
    fn close_codes_and_reasons_are_checked() {
        let c = control(1, 1);
        assert!(c.close(1005, "").is_err());
        assert!(c.close(2000, "").is_err());
        assert!(c.close(1000, &"r".repeat(124)).is_err());
        c.close(4001, "bye").unwrap();
        assert_eq!(c.close_request(), Some((4001, "bye".into())));
        assert_eq!(c.send_text("late".into()), Err(SendError::Closed));
    }
}
