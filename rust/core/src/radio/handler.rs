//! The glue's side of a session: what happens on the network, told
//! synchronously on the thread that polls the session (the I/O worker, in the game).

use std::task::{Context, Poll};

use crate::state::NetState;

use super::{Codec, http::StreamHead};

/// What a connected stream says about itself (from the response head).
#[derive(Clone, Debug, PartialEq)]
pub struct StationInfo {
    pub head: StreamHead,
    pub codec: Codec,
    /// Which of the session's streams this is: 1 for the first that answered,
    /// then one more for each reconnect that answered (the session's
    /// [`connects`](super::RadioStats::connects) at this point). The audio of
    /// this stream follows in the PCM queue; glue that reports the station
    /// beside the audio's format uses it to pair the two.
    pub connection: u64,
}

/// Receives a session's events, in order. The glue's handler turns each into
/// a message for the main thread.
pub trait RadioHandler {
    /// Whether the handler can take another title now; when not, it wakes `cx`
    /// once it can. The session reads nothing more before this is ready, so a
    /// station that sends titles faster than the game takes them is held back
    /// by TCP instead of filling memory. The default is always ready.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let _ = cx;
        Poll::Ready(())
    }
    /// CONNECTING, CONNECTED, RECONNECTING, STOPPED or FAILED.
    fn state_changed(&mut self, state: NetState);
    /// A stream answered; audio follows (its format arrives as a [`super::PcmEvent::Format`]).
    fn connected(&mut self, info: &StationInfo);
    /// The ICY `StreamTitle` changed.
    fn title_changed(&mut self, title: &str);
    /// Something went wrong; the session goes on (reconnecting) unless its state says otherwise.
    fn error(&mut self, message: &str);
}
