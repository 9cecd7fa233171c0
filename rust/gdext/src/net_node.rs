//! What every network node shares: the tasks it owns, its `state`, and how
//! it reports `state_changed` and `error` — so each node's file is about its
//! protocol only.
//!
//! A task never binds its node (a signal handler may be calling into it);
//! it talks to the node through a [`NodeLink`], which emits signals on the
//! node's object and keeps the state in a shared cell.

use std::{
    cell::{Cell, RefCell},
    future::Future,
    rc::Rc,
    time::Instant,
};

use async_net_core::{
    log_throttle::LogThrottle,
    reactor::{OwnerId, TaskEnd, TaskResult},
    state::NetState,
};
use godot::{
    classes::{Node, Object},
    obj::WithBaseField,
    prelude::*,
};

use crate::runtime;

/// Held by a network node: its tasks and its state.
#[derive(Default)]
pub struct NetNode {
    state: Rc<Cell<NetState>>,
    /// Which `error` messages get logged (all are emitted).
    log: Rc<RefCell<LogThrottle>>,
}

impl NetNode {
    /// The current state.
    pub fn state(&self) -> NetState {
        self.state.get()
    }

    /// Whether `ready()` should start the node: when `autostart` is on, in a
    /// running game only. In the editor a node opened in a scene stays quiet
    /// (it would bind ports just because a scene is being edited); editor
    /// tools start nodes themselves.
    pub fn autostarts(autostart: bool) -> bool {
        autostart && !godot::classes::Engine::singleton().is_editor_hint()
    }

    /// A handle for tasks to report through. `node` is the node owning this.
    pub fn link(&self, node: Gd<Node>) -> NodeLink {
        NodeLink { owner: runtime::owner_of(&node), node, state: self.state.clone(), log: self.log.clone() }
    }

    /// Starts `future` as a task of the node. If it fails, the node goes
    /// `FAILED` (its `error` signal and the hub's `task_failed` follow).
    pub fn spawn(&self, link: &NodeLink, name: &str, future: impl Future<Output = TaskResult> + 'static) {
        let on_end_link = link.clone();
        let on_end = move |end: TaskEnd| {
            if matches!(end, TaskEnd::Failed(_)) {
                on_end_link.set_state(NetState::Failed);
            }
        };
        runtime::spawn(name, link.owner, future, on_end);
    }

    /// Cancels every task of the node, closing its sockets at once. Returns
    /// how many were cancelled. The caller then reports `STOPPED` through
    /// [`unbound`], since that emits `state_changed`.
    pub fn cancel_tasks(&self, link: &NodeLink) -> usize {
        runtime::with_reactor(|r| r.cancel_owner(link.owner)).unwrap_or(0)
    }
}

/// Runs `emit` (code that emits the node's signals) with the node's bind
/// released, so a GDScript handler may call straight back into the node.
/// Use it for every emission made from inside a `#[func]` or engine callback.
pub fn unbound<T: WithBaseField>(node: &mut T, emit: impl FnOnce()) {
    let _guard = node.base_mut();
    emit();
}

/// What a node's tasks use to report: cheap to clone, never binds the node.
#[derive(Clone)]
pub struct NodeLink {
    owner: OwnerId,
    node: Gd<Node>,
    state: Rc<Cell<NetState>>,
    log: Rc<RefCell<LogThrottle>>,
}

impl NodeLink {
    /// Whether the node still exists (a handler may have freed it).
    pub fn is_alive(&self) -> bool {
        self.node.is_instance_valid()
    }

    /// Changes the state and emits `state_changed(state)` if it changed.
    pub fn set_state(&self, state: NetState) {
        if self.state.replace(state) != state && self.is_alive() {
            self.node.clone().emit_signal("state_changed", &[state.code().to_variant()]);
        }
    }

    /// Reports a problem that does not end the node's work: emits
    /// `error(message)` and logs it with the node's path. Every message is
    /// emitted; the log gets one line per kind of message per second, the
    /// next one saying how many were suppressed (a peer cannot flood it).
    pub fn error(&self, message: impl AsRef<str>) {
        let message = message.as_ref();
        if !self.is_alive() {
            return;
        }
        if let Some(line) = self.log.borrow_mut().check(message, Instant::now()) {
            godot_error!("{}: {}", runtime::owner_label(self.owner), line);
        }
        self.node.clone().emit_signal("error", &[message.to_variant()]);
    }
}

/// One signal of a node that fires per network message or line. The typed
/// `signals()` API builds a signal object and interns its name on every call,
/// which a flood makes the largest cost; this interns the name once, and builds
/// and emits nothing while no one is connected (an emission without
/// connections does nothing anyway).
pub struct HotSignal {
    object: Gd<Object>,
    name: StringName,
    /// The [`Burst`] generation in which nothing was found connected.
    unconnected_in: Option<u64>,
    /// The [`Burst`] round in which something was found connected.
    connected_in_round: Option<u64>,
}

impl HotSignal {
    /// `node`'s signal `name` (declared with `#[signal]` on its class).
    pub fn new(node: &Gd<Node>, name: &str) -> Self {
        Self {
            object: node.clone().upcast(),
            name: StringName::from(name),
            unconnected_in: None,
            connected_in_round: None,
        }
    }

    /// [`emit`](Self::emit) for a message of a burst: a signal found unconnected
    /// stays so, unchecked, until `burst` learns that GDScript ran; a signal
    /// found connected is emitted unchecked for the rest of the burst's round
    /// (a handler that disconnects mid-round costs at most that round's
    /// emissions to no one, which do nothing). Says whether it emitted (then it
    /// tells `burst`). The node must exist.
    pub fn emit_in<A: AsRef<[Variant]>>(&mut self, burst: &mut Burst, args: impl FnOnce() -> A) -> bool {
        if self.unconnected_in == Some(burst.generation) {
            return false;
        }
        if self.connected_in_round != Some(burst.round) {
            if !self.is_connected() {
                self.unconnected_in = Some(burst.generation);
                return false;
            }
            self.connected_in_round = Some(burst.round);
        }
        self.object.emit_signal(&self.name, args().as_ref());
        burst.script_ran();
        true
    }

    /// Emits the arguments `args` makes, if anything is connected (`args`
    /// only runs then), and says whether it did: only then can a handler have
    /// freed the node. The node must exist on entry ([`NodeLink::is_alive`]).
    pub fn emit<const N: usize>(&mut self, args: impl FnOnce() -> [Variant; N]) -> bool {
        let connected = self.is_connected();
        if connected {
            self.object.emit_signal(&self.name, &args());
        }
        connected
    }

    /// Whether anything is connected to the signal. The node must exist.
    pub fn is_connected(&self) -> bool {
        self.object.has_connections(&self.name)
    }
}

/// What a node's glue may trust from one message of a burst to the next. While
/// a burst is delivered (the messages a WebSocket session had ready at once, or
/// one Redis delivery round) GDScript runs only inside the glue's own
/// emissions, so a check that found the node alive or a signal unconnected
/// still holds until the glue emits something or the burst ends. This saves two
/// engine calls per message when only a batch signal is connected. The glue
/// must call [`script_ran`](Self::script_ran) after every emission of its own
/// that is not made through [`HotSignal::emit_in`], and
/// [`end_round`](Self::end_round) at every burst's end.
#[derive(Default)]
pub struct Burst {
    generation: u64,
    /// Counts bursts (delivery rounds).
    round: u64,
    alive_in: Option<u64>,
}

impl Burst {
    /// Whether the node exists, checked once per generation.
    pub fn alive(&mut self, link: &NodeLink) -> bool {
        if self.alive_in == Some(self.generation) {
            return true;
        }
        let alive = link.is_alive();
        if alive {
            self.alive_in = Some(self.generation);
        }
        alive
    }

    /// GDScript may have run (an emission): forget every check.
    pub fn script_ran(&mut self) {
        self.generation += 1;
    }

    /// The burst ended: forget every check, including those kept for a round.
    pub fn end_round(&mut self) {
        self.script_ran();
        self.round += 1;
    }
}

/// The batched sibling of a [`HotSignal`]: one emission carries every message
/// of a burst (a WebSocket session's `batch_end`, a Redis delivery round's
/// `BatchEnd`). The first message of a burst checks for connections once;
/// with none, the burst is skipped and nothing is built. Otherwise the batch
/// `B` (packed arrays the signal's arguments are made of) is started then,
/// filled message by message and emitted by [`flush`](Self::flush).
pub struct BatchSignal<B> {
    signal: HotSignal,
    state: Collect<B>,
}

enum Collect<B> {
    /// No message since the last flush.
    Idle,
    /// Something was connected when the burst began: its messages so far.
    Collecting(B),
    /// Nothing was connected when the burst began: its messages are skipped.
    Skipping,
}

impl<B> BatchSignal<B> {
    /// `node`'s signal `name` (declared with `#[signal]` on its class).
    pub fn new(node: &Gd<Node>, name: &str) -> Self {
        Self { signal: HotSignal::new(node, name), state: Collect::Idle }
    }

    /// Adds one message: `add` puts it into the batch, which `start` makes at
    /// the burst's first message if something is connected then. Neither runs
    /// for a skipped burst. The node must exist.
    pub fn push(&mut self, start: impl FnOnce() -> B, add: impl FnOnce(&mut B)) {
        if let Collect::Idle = self.state {
            self.state = if self.signal.is_connected() { Collect::Collecting(start()) } else { Collect::Skipping };
        }
        if let Collect::Collecting(batch) = &mut self.state {
            add(batch);
        }
    }

    /// Ends the batch: emits it, as the arguments `args` makes of it, if one
    /// was collected and something is still connected. Says whether it emitted
    /// (then it tells `burst`): only then can a handler have freed the node.
    /// The node must exist if a batch was begun.
    pub fn flush<const N: usize>(&mut self, burst: &mut Burst, args: impl FnOnce(B) -> [Variant; N]) -> bool {
        let emitted = match std::mem::replace(&mut self.state, Collect::Idle) {
            Collect::Collecting(batch) => self.signal.emit(|| args(batch)),
            Collect::Idle | Collect::Skipping => false,
        };
        if emitted {
            burst.script_ran();
        }
        emitted
    }

    /// Ends the burst without emitting anything (the node stopped).
    pub fn discard(&mut self) {
        self.state = Collect::Idle;
    }
}

/// Declares the state constants (`STOPPED` ... `FAILED`) on a network node
/// class, so every node shows the same numbers under the same names.
#[macro_export]
macro_rules! net_state_constants {
    ($class:ty) => {
        #[godot::register::godot_api(secondary)]
        impl $class {
            /// Not started, or stopped.
            #[constant]
            pub const STOPPED: i32 = async_net_core::state::NetState::Stopped as i32;
            /// Connecting (clients) or binding (servers).
            #[constant]
            pub const CONNECTING: i32 = async_net_core::state::NetState::Connecting as i32;
            /// A client's connection is up.
            #[constant]
            pub const CONNECTED: i32 = async_net_core::state::NetState::Connected as i32;
            /// A server is accepting clients.
            #[constant]
            pub const LISTENING: i32 = async_net_core::state::NetState::Listening as i32;
            /// A client lost its connection and will try again.
            #[constant]
            pub const RECONNECTING: i32 = async_net_core::state::NetState::Reconnecting as i32;
            /// Gave up: see the `error` signal for why.
            #[constant]
            pub const FAILED: i32 = async_net_core::state::NetState::Failed as i32;
        }
    };
}
