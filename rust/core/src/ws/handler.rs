//! The glue's side of a session: what happens, told synchronously on the
//! thread that polls the session (the I/O worker, in the game).

use std::task::{Context, Poll};

use crate::state::NetState;

/// Receives a session's events, in order. The glue's handler turns each into
/// a message for the main thread (building payload strings there and then).
///
/// Calls are synchronous and may use the session's [`WsControl`] (send,
/// close or stop); the session holds no lock across a call and checks for a
/// stop after each one.
///
/// [`WsControl`]: super::WsControl
pub trait WsHandler {
    /// Whether the handler can take another message now; when not, it wakes
    /// `cx` once it can. The session reads no message before this is ready,
    /// so a slow consumer makes the server wait (TCP flow control) instead of
    /// filling memory. The default is always ready.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let _ = cx;
        Poll::Ready(())
    }
    /// The session's state changed (CONNECTING, CONNECTED, RECONNECTING,
    /// STOPPED or FAILED).
    fn state_changed(&mut self, state: NetState);
    /// The upgrade completed; `protocol` is the chosen subprotocol or "".
    fn connected(&mut self, protocol: &str);
    /// A text message arrived (valid UTF-8, within the size limit).
    fn text_received(&mut self, text: &str);
    /// A binary message arrived (within the size limit).
    fn binary_received(&mut self, data: bytes::Bytes);
    /// The burst of messages just passed to [`text_received`] and
    /// [`binary_received`] is complete: the session took every message that
    /// was ready without waiting (a burst is bounded by tokio's cooperative
    /// budget, and ends early when a handler asks to close) and is about to
    /// wait for the network again. Glue that batches messages emits its batch
    /// here.
    ///
    /// Called once after each burst that delivered at least one message,
    /// before anything else is reported (`closed`, `error`, a state change);
    /// never for a burst of control frames only, and not after a stop (the
    /// session returns without another call). The default does nothing.
    ///
    /// [`text_received`]: Self::text_received
    /// [`binary_received`]: Self::binary_received
    fn batch_end(&mut self) {}
    /// The connection closed: the server's code and reason, ours when we
    /// closed, or 1006 when it was lost without a closing handshake.
    fn closed(&mut self, code: u16, reason: &str);
    /// Something went wrong (a failed connect, a lost connection, a limit);
    /// the session goes on (reconnecting) unless its state says otherwise.
    fn error(&mut self, message: &str);
}
