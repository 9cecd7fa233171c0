//! The one reactor of the process, who steps it each frame, and where task
//! failures are reported. Main thread only.
//!
//! The `AsyncHub` autoload steps the reactor in its `_process`; gdext's
//! per-frame main-loop hook steps it when no hub did this frame (the plugin
//! is not enabled, or we are in the editor), so nodes always work.

use std::{
    cell::Cell,
    time::{Duration, Instant},
};

use async_net_core::reactor::{
    Failure, HUB_OWNER, OwnerId, Reactor, SlowPoll, StepReport, TaskEnd, TaskId, TaskResult,
};
use godot::{
    classes::{Engine, Node, Object, Performance},
    prelude::*,
};

use crate::async_hub::AsyncHub;

/// The budget of a step made by the main-loop hook (no hub to configure it).
pub const DEFAULT_STEP_BUDGET: Duration = Duration::from_micros(2000);

/// A task poll this long is a hitch a player can see (a 60 Hz frame); it is
/// logged with the task's name and owner.
const SLOW_POLL_WARNING: Duration = Duration::from_millis(16);

/// How long quitting waits for blocking work (a DNS lookup) to finish.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(500);

/// The engine singleton's name, the same as the class's and the autoload's.
const HUB_SINGLETON: &str = "AsyncHub";

const MONITOR_TASKS: &str = "async_net/tasks";
const MONITOR_STEP_USEC: &str = "async_net/step_usec";

thread_local! {
    // A raw pointer rather than `RefCell<Option<Reactor>>`: a thread-local
    // with a destructor pins the library in memory (glibc), which would break
    // hot reload. The reactor is created on first use and freed in `shutdown`.
    static REACTOR: Cell<*mut Reactor> = const { Cell::new(std::ptr::null_mut()) };
    static SHUT_DOWN: Cell<bool> = const { Cell::new(false) };
    static HUB: Cell<Option<InstanceId>> = const { Cell::new(None) };
    static LAST_STEPPED_FRAME: Cell<u64> = const { Cell::new(u64::MAX) };
    static LAST_STEP_USEC: Cell<f64> = const { Cell::new(0.0) };
    /// Step time not yet reported: extra steps since the last frame step.
    static PENDING_STEP_USEC: Cell<f64> = const { Cell::new(0.0) };
    static FLUSH_WANTED: Cell<bool> = const { Cell::new(false) };
    static WARNED_NO_HUB: Cell<bool> = const { Cell::new(false) };
    static MONITORS: Cell<bool> = const { Cell::new(false) };
    static LAST_SLOW_WARNING: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` with the reactor, creating it on first use. Returns `None` after
/// shutdown (the engine is quitting) or if the runtime cannot be built.
pub fn with_reactor<R>(f: impl FnOnce(&Reactor) -> R) -> Option<R> {
    if SHUT_DOWN.get() {
        return None;
    }
    let mut ptr = REACTOR.get();
    if ptr.is_null() {
        match Reactor::new() {
            Ok(reactor) => {
                reactor.set_failure_hook(report_failure);
                ptr = Box::into_raw(Box::new(reactor));
                REACTOR.set(ptr);
            }
            Err(e) => {
                godot_error!("async_net: cannot start the tokio runtime: {e}");
                return None;
            }
        }
    }
    // SAFETY: the pointer came from `Box::into_raw`, is only touched on this
    // thread, and is freed only by `shutdown`, which no `f` can reach while
    // borrowed here (`shutdown` runs at library deinit, outside any task).
    Some(f(unsafe { &*ptr }))
}

/// Spawns a task owned by `owner` (an object, or [`HUB_OWNER`]).
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
    let frame = Engine::singleton().get_process_frames();
    if LAST_STEPPED_FRAME.get() == frame {
        return None;
    }
    LAST_STEPPED_FRAME.set(frame);
    let report = step_now(budget)?;
    // The frame's figures: this step plus the extra steps made since the last one.
    LAST_STEP_USEC.set(PENDING_STEP_USEC.replace(0.0));
    with_reactor(Reactor::end_window);
    Some(report)
}

/// Steps now, whatever the frame (a manual `AsyncHub.step()`, a flush).
pub fn step_now(budget: Duration) -> Option<StepReport> {
    FLUSH_WANTED.set(false);
    let report = with_reactor(|r| r.step(budget))?;
    if !report.skipped {
        PENDING_STEP_USEC.set(PENDING_STEP_USEC.get() + report.elapsed.as_secs_f64() * 1e6);
    }
    if let Some(slow) = report.slowest.as_ref().filter(|s| s.duration >= SLOW_POLL_WARNING) {
        warn_slow_poll(slow, budget);
    }
    Some(report)
}

/// Logs a task poll long enough to be a visible hitch, at most once a second.
fn warn_slow_poll(slow: &SlowPoll, budget: Duration) {
    let now = Instant::now();
    if LAST_SLOW_WARNING.get().is_some_and(|last| now.duration_since(last) < Duration::from_secs(1)) {
        return;
    }
    LAST_SLOW_WARNING.set(Some(now));
    godot_warn!(
        "async_net: task '{}' of {} held the main thread for {:.1} ms in one poll, past the step budget of {:.1} ms \
         (wall time, so time the OS gave to other threads counts too)",
        slow.name,
        owner_label(slow.owner),
        slow.duration.as_secs_f64() * 1e3,
        budget.as_secs_f64() * 1e3,
    );
}

/// The task that held the main thread longest in one poll during the last
/// frame (its steps since the frame step before), if any task ran.
pub fn last_frame_slowest() -> Option<SlowPoll> {
    with_reactor(Reactor::last_window_slowest).flatten()
}

/// Asks for one more step at the end of this frame, after every `_process`:
/// what a node method queued (a WebSocket send, a publish) then goes out this
/// frame instead of at the next frame's step, so a reply can arrive a frame
/// sooner. Frames that ask for nothing pay nothing.
pub fn flush_at_frame_end() {
    FLUSH_WANTED.set(true);
}

/// The main-loop hook: steps when no hub did, and says once, in a game, that
/// the autoload is missing.
pub fn on_main_loop_frame() {
    if REACTOR.get().is_null() {
        return; // Nothing ever used the runtime: stay free.
    }
    if step_once_per_frame(DEFAULT_STEP_BUDGET).is_none() {
        // The hub stepped during `_process`; send what scripts queued since.
        if FLUSH_WANTED.get() {
            step_now(DEFAULT_STEP_BUDGET);
        }
        return;
    }
    if HUB.get().is_none()
        && !WARNED_NO_HUB.get()
        && !Engine::singleton().is_editor_hint()
        && with_reactor(|r| r.task_count()).unwrap_or(0) > 0
    {
        WARNED_NO_HUB.set(true);
        godot_warn!(
            "async_net: no AsyncHub autoload is in the tree, so the extension steps the runtime itself. \
             Enable the Async Net plugin (Project > Project Settings > Plugins) so that the hub's settings (max_step_usec) apply."
        );
    }
}

/// Records the hub that steps the runtime; the first one in the tree wins.
pub fn hub_entered(id: InstanceId) -> bool {
    if HUB.get().is_some_and(|h| h != id) {
        return false;
    }
    HUB.set(Some(id));
    true
}

/// Forgets the hub when it leaves the tree.
pub fn hub_exited(id: InstanceId) {
    if HUB.get() == Some(id) {
        HUB.set(None);
    }
}

/// The hub GDScript sees as `AsyncHub`: the autoload in the tree, or else
/// the engine singleton of that name (which is never in the tree).
pub fn hub() -> Option<Gd<AsyncHub>> {
    if let Some(hub) = HUB.get().and_then(|id| Gd::try_from_instance_id(id).ok()) {
        return Some(hub);
    }
    let engine = Engine::singleton();
    if !engine.has_singleton(HUB_SINGLETON) {
        return None;
    }
    engine.get_singleton(HUB_SINGLETON)?.try_cast().ok()
}

/// Main-thread time of the runtime in the last frame, in microseconds: its
/// frame step plus any extra steps (flushes, manual steps) since the one before.
pub fn last_step_usec() -> f64 {
    LAST_STEP_USEC.get()
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
            Ok(node) => node.get_name().to_string(),
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
        if REACTOR.get().is_null() { 0 } else { with_reactor(|r| r.task_count() as i64).unwrap_or(0) }
    });
    let step = Callable::from_fn("async_net_step_usec", |_| last_step_usec());
    performance.add_custom_monitor(MONITOR_TASKS, &tasks);
    performance.add_custom_monitor(MONITOR_STEP_USEC, &step);
    MONITORS.set(true);
}

/// Allows the reactor to be created (again, after a hot reload) and
/// registers the `AsyncHub` engine singleton.
pub fn startup() {
    SHUT_DOWN.set(false);
    WARNED_NO_HUB.set(false);
    let mut engine = Engine::singleton();
    if !engine.has_singleton(HUB_SINGLETON) {
        engine.register_singleton(HUB_SINGLETON, &AsyncHub::new_alloc());
    }
}

/// Cancels everything, joins the runtime's threads and frees it: the engine
/// is quitting, or the extension is being unloaded for a hot reload.
pub fn shutdown() {
    if MONITORS.replace(false) {
        let mut performance = Performance::singleton();
        for id in [MONITOR_TASKS, MONITOR_STEP_USEC] {
            if performance.has_custom_monitor(id) {
                performance.remove_custom_monitor(id);
            }
        }
    }
    SHUT_DOWN.set(true);
    let ptr = REACTOR.replace(std::ptr::null_mut());
    if !ptr.is_null() {
        // SAFETY: created by `Box::into_raw` in `with_reactor`; the pointer
        // was just cleared, so no later call can reach it.
        let reactor = unsafe { Box::from_raw(ptr) };
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
