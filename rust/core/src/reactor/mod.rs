//! The stepped runtime: one tokio runtime whose I/O worker thread does the
//! byte work (sockets, TLS, framing, building payloads), and a `LocalSet` of
//! main-thread tasks that the engine steps once per frame to move finished
//! messages into the engine and emit its signals.
//!
//! - The runtime is tokio's multi-thread flavour with **one** worker: it
//!   drives every socket and timer and runs the `Send` halves of the nodes
//!   ([`IoTask`]). The main thread never waits on epoll.
//! - The main-thread tasks ([`Reactor::spawn`]) may be `!Send` and call into
//!   the engine; each is owned, named and cancellable (see `registry`).
//! - A step is nearly free when nothing happened: whatever wakes a main-thread
//!   task (a message from the worker, a timer, a spawn) raises one atomic
//!   flag, and a step that finds it lowered returns without entering tokio.
//!   A busy step runs ready tasks until none is left or its budget is spent
//!   (see `step` for what a task can know of its step).
//!
//! Layout: this file (the runtime, spawning, stepping, shutdown), `registry`
//! (the tasks), `profile` (poll timing), `step` (budget and next step),
//! `io_task` (work on the worker).

mod io_task;
mod profile;
mod registry;
mod step;

use std::{
    any::Any,
    cell::Cell,
    fmt,
    future::Future,
    pin::pin,
    rc::Rc,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Wake, Waker},
    time::{Duration, Instant},
};

pub use io_task::{IoEnd, IoTask};
pub use profile::SlowPoll;
pub use registry::cancelled;
pub use step::{NextStep, next_step, over_budget, yield_if_over_budget};
use tokio::{runtime::Runtime, task::LocalSet};

use self::{profile::Profile, registry::Registry, step::StepContext};

/// Identifies one task for its whole life; never reused within a process run.
pub type TaskId = u64;

/// Who owns a task: an engine object id, or [`HUB_OWNER`].
pub type OwnerId = u64;

/// The owner of tasks started through the hub itself (timers, `AsyncTask`s).
pub const HUB_OWNER: OwnerId = 0;

/// What a task's future returns: `Err` is a failure that gets reported.
pub type TaskResult = Result<(), String>;

/// How a task ended; handed to the task's `on_end` hook exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEnd {
    /// The future returned `Ok(())`.
    Completed,
    /// The future returned `Err(message)` or panicked.
    Failed(String),
    /// [`Reactor::cancel`] and friends dropped it before it finished.
    Cancelled,
}

/// A failed task, as reported to the failure hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The task's id.
    pub id: TaskId,
    /// The task's name, as given to [`Reactor::spawn`].
    pub name: String,
    /// Who owned it.
    pub owner: OwnerId,
    /// The error message, or the panic payload.
    pub message: String,
}

/// A snapshot of one live task, for listings.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInfo {
    /// The task's id.
    pub id: TaskId,
    /// The task's name.
    pub name: String,
    /// Who owns it.
    pub owner: OwnerId,
    /// How long ago it was spawned.
    pub age: Duration,
}

/// What one [`Reactor::step`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Wall time spent in the step.
    pub elapsed: Duration,
    /// Rounds of "run the ready tasks" (0: nothing was woken, tokio was not entered).
    pub rounds: u32,
    /// Task polls made during the step.
    pub polls: u64,
    /// Time spent inside task polls; the rest of [`Self::elapsed`] is tokio's scheduler.
    pub busy: Duration,
    /// The step's longest task poll, if any task ran.
    pub slowest: Option<SlowPoll>,
    /// The step ended because the time budget ran out, not because work did.
    pub budget_exhausted: bool,
    /// The step was refused because a step was already running (re-entrant call).
    pub skipped: bool,
}

/// Raised by every wake of a main-thread task (the `LocalSet` wakes its own
/// waker when a task of it is scheduled from outside a step or from another
/// thread); lowered by the step that runs them.
#[derive(Debug)]
struct WakeFlag(AtomicBool);

impl Wake for WakeFlag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Release);
    }
}

/// Makes a write to a socket whose peer has left fail with `EPIPE` instead of
/// ending the process, unless the host installed a handler of its own. A Rust
/// program gets this before `main`; a library loaded by the engine does not,
/// and Godot leaves SIGPIPE at its default (it sends with `MSG_NOSIGNAL`
/// itself). Vectored writes (`writev`, as hyper sends a response's head and
/// body) take no such flag, so a browser that closed a download mid-file
/// killed the game: seen as SIGPIPE in `cargo xtask bench --scene http_server
/// -- --only=file` (2 runs of 4), where wrk closes its connections mid-file.
#[cfg(unix)]
fn ignore_sigpipe() {
    // SAFETY: reads the current action into a zeroed struct, and replaces it
    // only when it is the default; no handler of ours is installed.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut current) == 0 && current.sa_sigaction == libc::SIG_DFL
        {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    }
}

/// The runtime every node shares. Create one per main thread.
pub struct Reactor {
    // Field order is drop order: main-thread tasks go before the runtime they use.
    local: LocalSet,
    runtime: Runtime,
    registry: Rc<Registry>,
    profile: Rc<Profile>,
    step: StepContext,
    woken: Arc<WakeFlag>,
    waker: Waker,
    stepping: Cell<bool>,
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor").field("tasks", &self.task_count()).field("stepping", &self.stepping.get()).finish()
    }
}

impl Reactor {
    /// Builds the runtime: one I/O worker thread, timers, and a small
    /// blocking pool for DNS lookups and the radios' decoders.
    pub fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        ignore_sigpipe();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name("async-net")
            // DNS lookups use the blocking pool; a game needs a handful, not 512.
            .max_blocking_threads(8)
            // A stopped radio's decoder thread (its stack and malloc arena) goes within a
            // second, instead of tokio's 10 s; starting a thread again costs microseconds.
            .thread_keep_alive(std::time::Duration::from_secs(1))
            .build()?;
        // Raised: the first step must run.
        let woken = Arc::new(WakeFlag(AtomicBool::new(true)));
        Ok(Self {
            local: LocalSet::new(),
            runtime,
            registry: Rc::default(),
            profile: Rc::default(),
            step: StepContext::default(),
            waker: Waker::from(woken.clone()),
            woken,
            stepping: Cell::new(false),
        })
    }

    /// Sets the function told about every failed task (after its own end hook).
    pub fn set_failure_hook(&self, hook: impl Fn(&Failure) + 'static) {
        self.registry.set_failure_hook(hook);
    }

    /// Starts `future` as a main-thread task named `name`, owned by `owner`.
    /// It first runs at the next step. `on_end` is called exactly once with
    /// how it ended — unless the reactor is shut down first, which ends tasks
    /// silently.
    pub fn spawn<F>(
        &self,
        name: impl Into<String>,
        owner: OwnerId,
        future: F,
        on_end: impl FnOnce(TaskEnd) + 'static,
    ) -> TaskId
    where
        F: Future<Output = TaskResult> + 'static,
    {
        let (id, driver) =
            self.registry.register(&self.profile, name.into(), owner, Box::pin(future), Box::new(on_end));
        let handle = self.local.spawn_local(driver);
        self.registry.set_abort(id, handle.abort_handle());
        self.woken.wake_by_ref();
        id
    }

    /// Starts `work` on the I/O worker. The handle ties it to the
    /// main-thread task that keeps it: see [`IoTask`].
    pub fn spawn_io<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> IoTask<T> {
        IoTask::spawn(self.runtime.handle(), work)
    }

    /// Cancels one task: its future is dropped now (closing its sockets), or
    /// right after its current poll if it is cancelling itself. Returns false
    /// when no such task is alive.
    pub fn cancel(&self, id: TaskId) -> bool {
        self.registry.cancel(id)
    }

    /// Cancels every task `owner` owns; returns how many.
    pub fn cancel_owner(&self, owner: OwnerId) -> usize {
        self.registry.cancel_where(|o| o == owner)
    }

    /// Cancels every task; returns how many.
    pub fn cancel_all(&self) -> usize {
        self.registry.cancel_where(|_| true)
    }

    /// Whether the task is still alive.
    pub fn is_alive(&self, id: TaskId) -> bool {
        self.registry.is_alive(id)
    }

    /// How many tasks are alive.
    pub fn task_count(&self) -> usize {
        self.registry.count(|_| true)
    }

    /// How many tasks `owner` owns.
    pub fn owner_task_count(&self, owner: OwnerId) -> usize {
        self.registry.count(|o| o == owner)
    }

    /// The live tasks, oldest first.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.registry.list()
    }

    /// Whether a step is running right now (so a nested one would be refused).
    pub fn is_stepping(&self) -> bool {
        self.stepping.get()
    }

    /// Whether a step would find anything to do: a task was woken, or one
    /// waits for the next step. False means a step now only reads the clock.
    pub fn has_work(&self) -> bool {
        self.woken.0.load(Ordering::Acquire) || !self.step.next_step.borrow().is_empty()
    }

    /// Runs one step: when something woke a main-thread task since the last
    /// step, rounds of "run every ready task" until a round leaves nothing
    /// ready or `budget` is spent; otherwise nothing (an atomic load). A
    /// nested call from inside a task is refused.
    pub fn step(&self, budget: Duration) -> StepReport {
        if self.stepping.replace(true) {
            return StepReport { skipped: true, ..StepReport::default() };
        }
        let start = Instant::now();
        // Tasks that waited for this step go first.
        for waker in self.step.next_step.take() {
            waker.wake();
        }
        if !self.woken.0.swap(false, Ordering::Acquire) {
            self.stepping.set(false);
            return StepReport { elapsed: start.elapsed(), ..StepReport::default() };
        }
        let deadline = start + budget;
        self.step.deadline.set(Some(deadline));
        self.profile.begin_step();
        let (rounds, budget_exhausted) = {
            let _published = step::enter(&self.step);
            let _runtime = self.runtime.enter();
            let mut cx = Context::from_waker(&self.waker);
            let mut rounds = 0u32;
            loop {
                // One round: the `LocalSet` runs up to 61 ready tasks, then
                // wakes `self.waker` if more are ready. Anything that wakes a
                // task meanwhile raises the flag too.
                let round = pin!(self.local.run_until(std::future::pending::<()>()));
                let _ = round.poll(&mut cx);
                rounds += 1;
                if !self.woken.0.swap(false, Ordering::Acquire) {
                    break (rounds, false);
                }
                if Instant::now() >= deadline {
                    // What is still ready runs at the next step.
                    self.woken.wake_by_ref();
                    break (rounds, true);
                }
            }
        };
        self.step.deadline.set(None);
        self.stepping.set(false);
        let profile = self.profile.end_step();
        StepReport {
            elapsed: start.elapsed(),
            rounds,
            polls: profile.polls,
            busy: profile.busy,
            slowest: profile.slowest,
            budget_exhausted,
            skipped: false,
        }
    }

    /// Ends a window of steps (the engine ends one per frame): its longest
    /// task poll becomes [`Self::last_window_slowest`] and a new window starts.
    pub fn end_window(&self) {
        self.profile.end_window();
    }

    /// The longest task poll of the last window [`Self::end_window`] ended,
    /// if any task ran in it: which task held the main thread longest.
    pub fn last_window_slowest(&self) -> Option<SlowPoll> {
        self.profile.last_window_slowest()
    }

    /// Ends every task without calling end hooks (the engine may already be
    /// tearing down) and joins the runtime's threads, waiting at most `timeout`
    /// for blocking work such as a DNS lookup in flight. (It takes the
    /// reactor by value, so no step can be running.)
    pub fn shutdown(self, timeout: Duration) {
        self.registry.clear_silently();
        let Reactor { local, runtime, .. } = self;
        {
            let _guard = runtime.enter();
            drop(local);
        }
        runtime.shutdown_timeout(timeout);
    }
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

#[cfg(test)]
mod tests;
