//! What the node's methods hand to a running session: the bounded send
//! queue, a close request and a stop flag. Shared through an `Rc` on the main
//! thread; no borrow is held while the session calls the handler, so a
//! signal handler may send, close or stop re-entrantly.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;

use tokio::sync::Notify;
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

/// The node's side of a session. Create with [`WsControl::new`], keep one
/// `Rc` in the node and pass another to [`run`](super::run).
#[derive(Debug)]
pub struct WsControl {
    queue: RefCell<VecDeque<Message>>,
    max_queued: usize,
    max_message_bytes: usize,
    close: RefCell<Option<(u16, String)>>,
    stopped: Cell<bool>,
    wake: Notify,
}

impl WsControl {
    /// A control with `config`'s limits.
    pub fn new(config: &WsConfig) -> Self {
        WsControl {
            queue: RefCell::new(VecDeque::new()),
            max_queued: config.max_queued_messages,
            max_message_bytes: config.max_message_bytes,
            close: RefCell::new(None),
            stopped: Cell::new(false),
            wake: Notify::new(),
        }
    }

    /// Queues a text message; it is sent as soon as the connection can take it.
    pub fn send_text(&self, text: String) -> Result<(), SendError> {
        self.push(text.len(), || Message::text(text))
    }

    /// Queues a binary message.
    pub fn send_binary(&self, data: Vec<u8>) -> Result<(), SendError> {
        self.push(data.len(), || Message::binary(data))
    }

    fn push(&self, bytes: usize, message: impl FnOnce() -> Message) -> Result<(), SendError> {
        if self.stopped.get() || self.close.borrow().is_some() {
            return Err(SendError::Closed);
        }
        if bytes > self.max_message_bytes {
            return Err(SendError::TooLarge { bytes, max: self.max_message_bytes });
        }
        let mut queue = self.queue.borrow_mut();
        if queue.len() >= self.max_queued {
            return Err(SendError::QueueFull { max: self.max_queued });
        }
        queue.push_back(message());
        drop(queue);
        self.wake.notify_one();
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
        *self.close.borrow_mut() = Some((code, reason.to_string()));
        self.wake.notify_one();
        Ok(())
    }

    /// Makes the session return at its next check without calling the handler
    /// again (the node is stopping or going away).
    pub fn stop(&self) {
        self.stopped.set(true);
        self.queue.borrow_mut().clear();
        self.wake.notify_one();
    }

    /// Messages waiting to be sent.
    pub fn queued(&self) -> usize {
        self.queue.borrow().len()
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.get()
    }

    pub(crate) fn close_request(&self) -> Option<(u16, String)> {
        self.close.borrow().clone()
    }

    pub(crate) fn close_requested(&self) -> bool {
        self.close.borrow().is_some()
    }

    pub(crate) fn pop(&self) -> Option<Message> {
        self.queue.borrow_mut().pop_front()
    }

    pub(crate) fn has_queued(&self) -> bool {
        !self.queue.borrow().is_empty()
    }

    /// Drops what is queued (a close was requested while not connected).
    pub(crate) fn discard_queue(&self) -> usize {
        let mut queue = self.queue.borrow_mut();
        let n = queue.len();
        queue.clear();
        n
    }

    /// Resolves after the next send, close or stop.
    pub(crate) async fn changed(&self) {
        self.wake.notified().await
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
        assert_eq!(c.pop(), Some(Message::text("a")));
        c.send_text("d".into()).unwrap();
        assert_eq!(c.pop(), Some(Message::binary(vec![1])));
        assert_eq!(c.pop(), Some(Message::text("d")));
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
