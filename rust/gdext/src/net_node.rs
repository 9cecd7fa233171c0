//! What every network node shares: the tasks it owns, its `state`, and how
//! it reports `state_changed` and `error` — so each node's file is about its
//! protocol only.
//!
//! A node's work has two halves. Its protocol runs on the runtime's I/O
//! worker (sockets, TLS, framing, payload strings) and hands finished
//! messages to a [`Relay`]; the node's task on the main thread takes them
//! from there and emits them ([`NetNode::start`]). Each node's file names the
//! two adapters the same way: a `Forwarder` (the core's handler trait, on the
//! worker: events into messages) and an `Emitter` (on the main thread:
//! messages into signals).
//!
//! A task never binds its node (a signal handler may be calling into it);
//! it talks to the node through a [`NodeLink`], which emits signals on the
//! node's object and keeps the state in a shared cell.

use std::{
    cell::{Cell, RefCell},
    collections::VecDeque,
    future::{Future, poll_fn},
    pin::pin,
    rc::Rc,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::Instant,
};

use async_net_core::{
    log_throttle::LogThrottle,
    reactor::{IoEnd, IoTask, OwnerId, TaskEnd, TaskResult, cancelled, next_step, over_budget},
    relay::Relay,
    state::NetState,
};
use godot::{classes::Node, obj::WithBaseField, prelude::*};

use crate::runtime;

/// Held by a network node: its tasks and its state.
pub struct NetNode {
    state: Rc<Cell<NetState>>,
    /// Which `error` messages get logged (all are emitted).
    log: Rc<RefCell<LogThrottle>>,
    /// Cleared when the node is freed (its Rust half drops): a liveness check
    /// without a call into the engine.
    alive: Rc<Cell<bool>>,
}

impl Default for NetNode {
    fn default() -> Self {
        NetNode { state: Rc::default(), log: Rc::default(), alive: Rc::new(Cell::new(true)) }
    }
}

impl Drop for NetNode {
    fn drop(&mut self) {
        self.alive.set(false);
    }
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
        NodeLink {
            owner: runtime::owner_of(&node),
            node,
            state: self.state.clone(),
            log: self.log.clone(),
            alive: self.alive.clone(),
        }
    }

    /// Starts the node's work: `io` (its protocol) on the I/O worker, and, as
    /// the node's task on the main thread, the delivery of what `io` relays:
    /// each message goes to `emit`, in order, within the step's time budget.
    /// The task ends when `io` does (its error or panic fails the node: see
    /// [`spawn`](Self::spawn)) or when `emit` says [`Flow::Stop`].
    pub fn start<E: 'static>(
        &self,
        link: &NodeLink,
        name: &str,
        relay: Arc<Relay<E>>,
        io: impl Future<Output = TaskResult> + Send + 'static,
        emit: impl Emit<E> + 'static,
    ) {
        let Some(io) = runtime::with_reactor(|r| r.spawn_io(io)) else {
            return; // The engine is quitting.
        };
        self.spawn(link, name, deliver(relay, io, emit));
    }

    /// Starts `future` as a main-thread task of the node. If it fails, the
    /// node reports it as every failure is reported: `error(message)` (and
    /// the hub's `task_failed`), then the state FAILED.
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
    alive: Rc<Cell<bool>>,
}

impl NodeLink {
    /// Whether the node still exists (a handler may have freed it).
    pub fn is_alive(&self) -> bool {
        self.alive.get()
    }

    /// Changes the state and emits `state_changed(state)` if it changed.
    pub fn set_state(&self, state: NetState) {
        if self.state.replace(state) != state && self.is_alive() {
            self.node.clone().emit_signal("state_changed", &[state.code().to_variant()]);
        }
    }

    /// Reports a problem that ends the node's work: emits `error(message)`,
    /// then the state FAILED. The one way a node fails.
    pub fn fail(&self, message: impl AsRef<str>) {
        self.error(message);
        self.set_state(NetState::Failed);
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

/// What an `Emitter` tells the delivery after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// The node is gone or stopped: deliver nothing more.
    Stop,
}

/// The main-thread side of a node: turns the messages its I/O work relays
/// into signals.
pub trait Emit<E> {
    /// Emits one message.
    fn emit(&mut self, message: E) -> Flow;

    /// Whether another message may be emitted this frame (a per-frame cap);
    /// when not, the rest waits for the next frame. The default is yes.
    fn ready(&mut self) -> bool {
        true
    }

    /// Most messages taken from the relay at once (what is taken is no
    /// longer the relay's to drop when it is full). The default is all.
    fn take_limit(&self) -> usize {
        usize::MAX
    }

    /// The messages taken together are emitted, or the rest waits for the
    /// next frame: what a batch signal collected goes out now.
    fn batch_done(&mut self) {}
}

/// How many messages are emitted between two looks at the step's clock.
const MESSAGES_PER_BUDGET_CHECK: u32 = 16;

/// Most messages between two `batch_done` calls: a batch signal's arrays are
/// built when it is emitted, after the budget checks of the messages it
/// collected, so a batch of this many costs at most a few hundred
/// microseconds past the budget (unbounded, a 2 ms step that collected
/// 35 000 messages took 4 ms).
const MESSAGES_PER_BATCH: u32 = 4096;

/// The main-thread half of a node's work: hands what `io` relays to `emit`
/// until `io` ends, then what it relayed before ending, then its result.
/// (Also the main-thread half of an `HttpStream` and of a download.)
pub(crate) async fn deliver<E>(relay: Arc<Relay<E>>, io: IoTask<TaskResult>, mut emit: impl Emit<E>) -> TaskResult {
    let mut io = pin!(io);
    let mut batch = VecDeque::new();
    loop {
        let ended = poll_fn(|cx| {
            match relay.poll_take(cx, &mut batch, emit.take_limit()) {
                Poll::Ready(true) => return Poll::Ready(None),
                Poll::Ready(false) => return Poll::Ready(Some(Ok(()))),
                Poll::Pending => {}
            }
            io.as_mut().poll(cx).map(|end| Some(io_result(end)))
        })
        .await;
        if let Some(result) = ended {
            // Whatever `io` relayed before it ended is still waiting.
            let _ = relay.poll_take(&mut Context::from_waker(Waker::noop()), &mut batch, usize::MAX);
            emit_batch(&mut batch, &mut emit).await;
            return result;
        }
        if emit_batch(&mut batch, &mut emit).await == Flow::Stop {
            return Ok(());
        }
    }
}

/// Emits a batch in order. Past the step's budget or the emitter's
/// per-frame cap, the rest waits for the next step.
async fn emit_batch<E>(batch: &mut VecDeque<(E, usize)>, emit: &mut impl Emit<E>) -> Flow {
    let mut until_check = MESSAGES_PER_BUDGET_CHECK;
    let mut in_batch = 0;
    while !batch.is_empty() {
        if in_batch == MESSAGES_PER_BATCH {
            emit.batch_done();
            in_batch = 0;
        }
        until_check -= 1;
        let budget_spent = until_check == 0 && {
            until_check = MESSAGES_PER_BUDGET_CHECK;
            over_budget()
        };
        if budget_spent || !emit.ready() {
            emit.batch_done();
            in_batch = 0;
            next_step().await;
            continue;
        }
        let Some((message, _)) = batch.pop_front() else { break };
        in_batch += 1;
        // A handler may have stopped the node: this task is then cancelled.
        if emit.emit(message) == Flow::Stop || cancelled() {
            batch.clear();
            return Flow::Stop;
        }
    }
    emit.batch_done();
    Flow::Continue
}

fn io_result(end: Result<TaskResult, IoEnd>) -> TaskResult {
    match end {
        Ok(result) => result,
        Err(IoEnd::Panicked(message)) => Err(format!("panicked: {message}")),
        Err(IoEnd::Cancelled) => Ok(()),
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
