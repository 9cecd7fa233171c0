//! The one reactor of the process, who steps it each frame, and where task
//! failures are reported. Main thread only.
//!
//! The `AsyncHub` autoload steps the reactor in its `_process`; gdext's
//! per-frame main-loop hook steps it when no hub did this frame (the plugin
//! is not enabled, or we are in the editor), so nodes always work.
//!
//! Everything kept here lives in one [`MainThread`] value, made on first use
//! and freed by [`shutdown`] (the engine quits or the library is unloaded
//! for a hot reload). It is reached through one thread-local raw pointer:
//! a thread-local with a destructor would pin the library in memory (glibc)
//! and break hot reload.

use std::{
    cell::{Cell, OnceCell},
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use async_net_core::reactor::{
    Failure, HUB_OWNER, OwnerId, Reactor, SlowPoll, StepReport, TaskEnd, TaskId, TaskResult,
};
use godot::{
    classes::{Engine, Node, Object, Performance},
    prelude::*,
};

use crate::{async_hub::AsyncHub, profiling::FrameProfile};

/// The budget of a step made by the main-loop hook (no hub to configure it).
pub const DEFAULT_STEP_BUDGET: Duration = Duration::from_micros(2000);

/// How long quitting waits for blocking work (a DNS lookup) to finish.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(500);

/// The engine singleton's name, the same as the class's and the autoload's.
const HUB_SINGLETON: &str = "AsyncHub";

const MONITOR_TASKS: &str = "async_net/tasks";
const MONITOR_STEP_USEC: &str = "async_net/step_usec";

/// What the extension keeps on the main thread.
struct MainThread {
    /// Made on first use: a project that never uses a node starts no thread.
    reactor: OnceCell<Reactor>,
    /// Calls inside [`with_main`] in progress; [`shutdown`] refuses while any is.
    in_use: Cell<u32>,
    /// The hub in the tree that steps the runtime, if any.
    hub: Cell<Option<InstanceId>>,
    /// Frames ended so far (the main-loop hook counts them): what a per-frame
    /// cap counts in, without an engine call each frame.
    frame: Cell<u64>,
    /// Whether this frame's step ran (the hub's, or the hook's).
    stepped: Cell<bool>,
    warned_no_hub: Cell<bool>,
    monitors: Cell<bool>,
    frames: FrameProfile,
}

thread_local! {
    static MAIN: Cell<*mut MainThread> = const { Cell::new(std::ptr::null_mut()) };
}

/// Set by [`shutdown`]; cleared by [`startup`] (a hot reload loads us again).
static SHUT_DOWN: AtomicBool = AtomicBool::new(false);

/// Runs `f` with the main-thread state, making it on first use. `None` after
/// shutdown (the engine is quitting).
fn with_main<R>(f: impl FnOnce(&MainThread) -> R) -> Option<R> {
    if SHUT_DOWN.load(Ordering::Relaxed) {
        return None;
    }
    let mut ptr = MAIN.get();
    if ptr.is_null() {
        ptr = Box::into_raw(Box::new(MainThread {
            reactor: OnceCell::new(),
            in_use: Cell::new(0),
            hub: Cell::new(None),
            frame: Cell::new(0),
            stepped: Cell::new(false),
            warned_no_hub: Cell::new(false),
            monitors: Cell::new(false),
            frames: FrameProfile::default(),
        }));
        MAIN.set(ptr);
    }
    // SAFETY: the pointer came from `Box::into_raw` and is only used on this
    // thread. `shutdown`, the only place that frees it, refuses while
    // `in_use` is above zero, so it stays valid for the whole call.
    let main = unsafe { &*ptr };
    struct InUse<'a>(&'a Cell<u32>);
    impl Drop for InUse<'_> {
        fn drop(&mut self) {
            self.0.set(self.0.get() - 1);
        }
    }
    main.in_use.set(main.in_use.get() + 1);
    let _in_use = InUse(&main.in_use);
    Some(f(main))
}

impl MainThread {
    /// The reactor, created on first use; `None` if the runtime cannot start.
    fn reactor(&self) -> Option<&Reactor> {
        if self.reactor.get().is_none() {
            match Reactor::new() {
                Ok(reactor) => {
                    reactor.set_failure_hook(report_failure);
                    let _ = self.reactor.set(reactor);
                }
                Err(e) => {
                    godot_error!("async_net: cannot start the tokio runtime: {e}");
                    return None;
                }
            }
        }
        self.reactor.get()
    }
}

/// Runs `f` with the reactor, creating it on first use. Returns `None` after
/// shutdown (the engine is quitting) or if the runtime cannot be built.
pub fn with_reactor<R>(f: impl FnOnce(&Reactor) -> R) -> Option<R> {
    with_main(|main| main.reactor().map(f)).flatten()
}

/// Spawns a main-thread task owned by `owner` (an object, or [`HUB_OWNER`]).
pub fn spawn(
    name: impl Into<String>,
    owner: OwnerId,
    future: impl std::future::Future<Output = TaskResult> + 'static,
    on_end: impl FnOnce(TaskEnd) + 'static,
) -> Option<TaskId> {
    with_reactor(|r| r.spawn(name, owner, future, on_end))
}

/// The owner id of an object's tasks.
pub fn owner_of(object: &Gd<impl Inherits<Object>>) -> OwnerId {
    object.instance_id().to_i64() as u64
}

/// Steps once if nothing stepped during this frame yet. Called by the hub's
/// `_process` and by the main-loop hook, whichever comes first.
pub fn step_once_per_frame(budget: Duration) -> Option<StepReport> {
    with_main(|main| {
        if main.stepped.replace(true) {
            return None;
        }
        frame_step(main, budget)
    })
    .flatten()
}

/// The hub's `_process` when nothing is due: takes the frame's step as a
/// step that found nothing to do, and says true. An idle frame costs two
/// flag checks and the frame's bookkeeping, with no clock read, no engine
/// call and no borrow of the hub. False when the step must run.
pub fn idle_frame_step() -> bool {
    with_main(|main| {
        if main.stepped.get() {
            return true;
        }
        match main.reactor.get() {
            Some(reactor) if reactor.has_work() => false,
            _ => {
                main.stepped.set(true);
                end_frame(main);
                true
            }
        }
    })
    .unwrap_or(true)
}

/// The frame's step and the frame's bookkeeping.
fn frame_step(main: &MainThread, budget: Duration) -> Option<StepReport> {
    let report = step(main, budget)?;
    end_frame(main);
    Some(report)
}

/// The frame's bookkeeping: its figures become the last frame's.
fn end_frame(main: &MainThread) {
    main.frames.end_frame();
    if let Some(reactor) = main.reactor.get() {
        reactor.end_window();
    }
}

/// The frame a per-frame cap counts in (advanced at each frame's end).
pub fn current_frame() -> u64 {
    with_main(|main| main.frame.get()).unwrap_or(0)
}

/// Steps now, whatever the frame (a manual `AsyncHub.step()`, a flush).
pub fn step_now(budget: Duration) -> Option<StepReport> {
    with_main(|main| step(main, budget)).flatten()
}

/// Steps the reactor if one exists (stepping never creates it).
fn step(main: &MainThread, budget: Duration) -> Option<StepReport> {
    let report = main.reactor.get()?.step(budget);
    main.frames.add_step(&report, budget);
    Some(report)
}

/// The task that held the main thread longest in one poll during the last
/// frame (its steps since the frame step before), if any task ran.
pub fn last_frame_slowest() -> Option<SlowPoll> {
    with_reactor(Reactor::last_window_slowest).flatten()
}

/// Main-thread time of the runtime in the last frame, in microseconds: its
/// frame step plus any extra steps (flushes, manual steps) since the one before.
pub fn last_step_usec() -> f64 {
    with_main(|main| main.frames.last_step_usec()).unwrap_or(0.0)
}

/// The main-loop hook: steps when no hub did, and says once, in a game, that
/// the autoload is missing.
pub fn on_main_loop_frame() {
    let stepped_here = with_main(|main| {
        let hub_stepped = main.stepped.replace(false);
        main.frame.set(main.frame.get() + 1);
        // Nothing ever used the runtime: stay free.
        !hub_stepped && main.reactor.get().is_some() && frame_step(main, DEFAULT_STEP_BUDGET).is_some()
    });
    if stepped_here != Some(true) {
        return; // The hub stepped during `_process`, or there is nothing to step.
    }
    with_main(|main| {
        let busy = main.reactor.get().is_some_and(|r| r.task_count() > 0);
        if main.hub.get().is_none()
            && busy
            && !main.warned_no_hub.replace(true)
            && !Engine::singleton().is_editor_hint()
        {
            godot_warn!(
                "async_net: no AsyncHub autoload is in the tree, so the extension steps the runtime itself. \
                 Enable the Async Net plugin (Project > Project Settings > Plugins) so that the hub's settings (max_step_usec) apply."
            );
        }
    });
}

/// Records the hub that steps the runtime; the first one in the tree wins.
pub fn hub_entered(id: InstanceId) -> bool {
    with_main(|main| {
        if main.hub.get().is_some_and(|h| h != id) {
            return false;
        }
        main.hub.set(Some(id));
        true
    })
    .unwrap_or(false)
}

/// Forgets the hub when it leaves the tree.
pub fn hub_exited(id: InstanceId) {
    with_main(|main| {
        if main.hub.get() == Some(id) {
            main.hub.set(None);
        }
    });
}

/// The hub GDScript sees as `AsyncHub`: the autoload in the tree, or else
/// the engine singleton of that name (which is never in the tree).
pub fn hub() -> Option<Gd<AsyncHub>> {
    let in_tree = with_main(|main| main.hub.get()).flatten();
    if let Some(hub) = in_tree.and_then(|id| Gd::try_from_instance_id(id).ok()) {
        return Some(hub);
    }
    let engine = Engine::singleton();
    if !engine.has_singleton(HUB_SINGLETON) {
        return None;
    }
    engine.get_singleton(HUB_SINGLETON)?.try_cast().ok()
}

/// A readable label for a task owner: the hub, a node's path, or an object.
pub fn owner_label(owner: OwnerId) -> String {
    if owner == HUB_OWNER {
        return "AsyncHub".to_string();
    }
    let Some(id) = InstanceId::try_from_i64(owner as i64) else {
        return format!("object {owner}");
    };
    match Gd::<Object>::try_from_instance_id(id) {
        Ok(object) => match object.try_cast::<Node>() {
            Ok(node) if node.is_inside_tree() => node.get_path().to_string(),
            // A node out of the tree: its name, or its class when it has none yet.
            Ok(node) if !node.get_name().is_empty() => node.get_name().to_string(),
            Ok(node) => node.get_class().to_string(),
            Err(object) => object.get_class().to_string(),
        },
        Err(_) => format!("freed object {owner}"),
    }
}

/// A failed task: the owner emits `error(message)`, the hub emits
/// `task_failed(task_name, message)`, and the log shows it.
fn report_failure(failure: &Failure) {
    godot_error!("async_net: task '{}' of {} failed: {}", failure.name, owner_label(failure.owner), failure.message);
    if failure.owner != HUB_OWNER
        && let Some(id) = InstanceId::try_from_i64(failure.owner as i64)
        && let Ok(mut owner) = Gd::<Object>::try_from_instance_id(id)
        && owner.has_signal("error")
    {
        owner.emit_signal("error", &[failure.message.to_variant()]);
    }
    if let Some(hub) = hub() {
        hub.signals().task_failed().emit(&failure.name, &failure.message);
    }
}

/// Registers the Performance monitors (at main-loop start).
pub fn register_monitors() {
    let mut performance = Performance::singleton();
    if performance.has_custom_monitor(MONITOR_TASKS) {
        return;
    }
    let tasks = Callable::from_fn("async_net_tasks", |_| {
        with_main(|main| main.reactor.get().map_or(0, |r| r.task_count() as i64)).unwrap_or(0)
    });
    let step = Callable::from_fn("async_net_step_usec", |_| last_step_usec());
    performance.add_custom_monitor(MONITOR_TASKS, &tasks);
    performance.add_custom_monitor(MONITOR_STEP_USEC, &step);
    with_main(|main| main.monitors.set(true));
}

/// Allows the runtime to be created (again, after a hot reload) and
/// registers the `AsyncHub` engine singleton.
pub fn startup() {
    SHUT_DOWN.store(false, Ordering::Relaxed);
    let mut engine = Engine::singleton();
    if !engine.has_singleton(HUB_SINGLETON) {
        engine.register_singleton(HUB_SINGLETON, &AsyncHub::new_alloc());
    }
}

/// Cancels everything, joins the runtime's threads and frees the main-thread
/// state: the engine is quitting, or the extension is being unloaded for a
/// hot reload. Refused, with an error, when called from inside the runtime
/// (a step or any call holding the state): freeing it then would pull it
/// from under that call.
pub fn shutdown() {
    let ptr = MAIN.get();
    if ptr.is_null() {
        SHUT_DOWN.store(true, Ordering::Relaxed);
        return;
    }
    // SAFETY: see `with_main`; nothing else holds it when `in_use` is zero.
    let busy = unsafe { (*ptr).in_use.get() > 0 };
    if busy {
        godot_error!("async_net: the runtime cannot shut down from inside one of its own calls; it stays up");
        return;
    }
    SHUT_DOWN.store(true, Ordering::Relaxed);
    MAIN.set(std::ptr::null_mut());
    // SAFETY: created by `Box::into_raw` in `with_main`; the pointer was just
    // cleared and nothing holds the state, so this is its only owner.
    let main = unsafe { Box::from_raw(ptr) };
    if main.monitors.get() {
        let mut performance = Performance::singleton();
        for id in [MONITOR_TASKS, MONITOR_STEP_USEC] {
            if performance.has_custom_monitor(id) {
                performance.remove_custom_monitor(id);
            }
        }
    }
    if let Some(reactor) = main.reactor.into_inner() {
        reactor.shutdown(SHUTDOWN_TIMEOUT);
    }
}

/// Unregisters and frees the `AsyncHub` engine singleton when the engine
/// quits (after the main loop is gone, as gdext does for its own singletons).
pub fn unregister_singleton() {
    let mut engine = Engine::singleton();
    if engine.has_singleton(HUB_SINGLETON)
        && let Some(hub) = engine.get_singleton(HUB_SINGLETON)
    {
        engine.unregister_singleton(HUB_SINGLETON);
        hub.free();
    }
}
