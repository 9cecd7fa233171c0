//! The connection state every network node reports, shared so that all nodes
//! use the same numbers for the same meaning.

use std::fmt;

/// A network node's state, exposed to GDScript as class constants and
/// `state_changed(state)`. The numbers are public API: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(i32)]
pub enum NetState {
    /// Not started, or stopped.
    #[default]
    Stopped = 0,
    /// Connecting (clients) or binding (servers) for the first time.
    Connecting = 1,
    /// A client's connection is up.
    Connected = 2,
    /// A server is accepting connections.
    Listening = 3,
    /// A client lost its connection and waits to try again.
    Reconnecting = 4,
    /// Gave up: a configuration error, or reconnecting is off.
    Failed = 5,
}

impl NetState {
    /// The state's number, as GDScript sees it.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The constant's name, e.g. `"LISTENING"`.
    pub fn name(self) -> &'static str {
        match self {
            NetState::Stopped => "STOPPED",
            NetState::Connecting => "CONNECTING",
            NetState::Connected => "CONNECTED",
            NetState::Listening => "LISTENING",
            NetState::Reconnecting => "RECONNECTING",
            NetState::Failed => "FAILED",
        }
    }
}

impl fmt::Display for NetState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_stable() {
        let states = [
            (NetState::Stopped, "STOPPED"),
            (NetState::Connecting, "CONNECTING"),
            (NetState::Connected, "CONNECTED"),
            (NetState::Listening, "LISTENING"),
            (NetState::Reconnecting, "RECONNECTING"),
            (NetState::Failed, "FAILED"),
        ];
        for (code, (state, name)) in states.into_iter().enumerate() {
            assert_eq!(state.code(), code as i32);
            assert_eq!(state.to_string(), name);
        }
    }
}
