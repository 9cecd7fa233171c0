//! The signals a node emits per network message, made cheap: a per-message
//! signal whose name is interned once and which builds nothing while no one
//! is connected ([`HotSignal`]), its batched sibling ([`BatchSignal`]), and
//! what the glue may trust from one message of a burst to the next
//! ([`Burst`]). Each is made for a signal the node's class declares; naming
//! one it does not declare is a bug, caught when the node starts.

use godot::{classes::Object, prelude::*};

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
    /// `node`'s signal `name`, which its class declares with `#[signal]`.
    ///
    /// # Panics
    /// When the class declares no such signal (a typo in the glue).
    pub fn new(node: &Gd<Node>, name: &str) -> Self {
        Self::of_object(node.clone().upcast(), name)
    }

    /// `object`'s signal `name` (an object that is not a node, such as an `HttpStream`).
    ///
    /// # Panics
    /// When its class declares no such signal.
    pub fn of_object(object: Gd<Object>, name: &str) -> Self {
        assert!(object.has_signal(name), "{} declares no signal '{name}'", object.get_class());
        Self { object, name: StringName::from(name), unconnected_in: None, connected_in_round: None }
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
    /// freed the node. The node must exist on entry.
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
/// one batch a Redis subscriber took) GDScript runs only inside the glue's own
/// emissions, so a check that found a signal unconnected still holds until
/// the glue emits something or the burst ends. This saves an engine call per
/// message when only a batch signal is connected. The glue
/// must call [`script_ran`](Self::script_ran) after every emission of its own
/// that is not made through [`HotSignal::emit_in`], and
/// [`end_round`](Self::end_round) at every burst's end.
#[derive(Default)]
pub struct Burst {
    generation: u64,
    /// Counts bursts (delivery rounds).
    round: u64,
}

impl Burst {
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

/// Disconnects everything connected to `object`'s `signals`. For objects that will emit no
/// more (a WebSocket peer that closed, an event stream that ended): a GDScript lambda
/// connected to an object's signal often captures that object, a reference cycle that
/// would otherwise keep both alive for ever.
pub fn disconnect_all(object: &mut Gd<Object>, signals: &[&str]) {
    for name in signals {
        let name = StringName::from(*name);
        for connection in object.get_signal_connection_list(&name).iter_shared() {
            if let Some(callable) = connection.get("callable").and_then(|c| c.try_to::<Callable>().ok()) {
                object.disconnect(&name, &callable);
            }
        }
    }
}
