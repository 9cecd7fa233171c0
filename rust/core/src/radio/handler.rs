//! The glue's side of a session: what happens on the network, told synchronously.

use crate::state::NetState;

use super::{Codec, http::StreamHead};

/// What a connected stream says about itself (from the response head).
#[derive(Clone, Debug, PartialEq)]
pub struct StationInfo {
    pub head: StreamHead,
    pub codec: Codec,
}

/// Receives a session's events, in order, on the thread that polls it.
pub trait RadioHandler {
    /// CONNECTING, CONNECTED, RECONNECTING, STOPPED or FAILED.
    fn state_changed(&mut self, state: NetState);
    /// A stream answered; audio follows (its format arrives as a [`super::PcmEvent::Format`]).
    fn connected(&mut self, info: &StationInfo);
    /// The ICY `StreamTitle` changed.
    fn title_changed(&mut self, title: &str);
    /// Something went wrong; the session goes on (reconnecting) unless its state says otherwise.
    fn error(&mut self, message: &str);
}
