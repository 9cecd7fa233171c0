//! The stepped runtime: one tokio current-thread runtime and `LocalSet`,
//! advanced one bounded step per frame by the engine, plus a registry of the
//! tasks it runs, each owned, named and cancellable at once.
//!
//! Nothing blocks: a step runs what is ready, polls sockets and timers with a
//! zero timeout, and returns. Tasks run on the calling (main) thread, so they
//! may be `!Send` and call into the engine directly.
//!
//! Re-entrancy is the rule, not the exception: a task may call back into the
//! engine, whose handlers may spawn or cancel tasks (even the running one) or
//! ask for a step. No `RefCell` borrow is ever held while user code runs.

use std::{
    any::Any,
    cell::{Cell, RefCell},
    collections::HashMap,
    fmt,
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use tokio::{runtime::Runtime, task::LocalSet};

thread_local! {
    /// When the running step's time budget ends; `None` outside a step.
    static STEP_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Whether the running step has spent its time budget (false outside a
/// step). A step can only end between task polls, so a task that handles
/// many items in one poll (a flood of lines, a burst of connections) checks
/// this per item and yields ([`yield_if_over_budget`]); the rest of its work
/// then waits for the next frame instead of stretching this one.
pub fn over_budget() -> bool {
    STEP_DEADLINE.with(|deadline| deadline.get().is_some_and(|d| Instant::now() >= d))
}

/// Yields to the step (which then ends) if its time budget is spent.
pub async fn yield_if_over_budget() {
    if over_budget() {
        tokio::task::yield_now().await;
    }
}

/// Identifies one task for its whole life; never reused within a process run.
pub type TaskId = u64;

/// Who owns a task: an engine object id, or [`HUB_OWNER`].
pub type OwnerId = u64;

/// The owner of tasks started through the hub itself (timers, `AsyncTask`s).
pub const HUB_OWNER: OwnerId = 0;

/// What a task's future returns: `Err` is a failure that gets reported.
pub type TaskResult = Result<(), String>;

type BoxedTask = Pin<Box<dyn Future<Output = TaskResult>>>;

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

/// The longest single task poll of a step: how long one task held the main
/// thread without yielding. The step budget can only end a step between
/// polls, so this is what a step's time can exceed its budget by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowPoll {
    /// The task's id.
    pub id: TaskId,
    /// The task's name.
    pub name: Rc<str>,
    /// Who owns it.
    pub owner: OwnerId,
    /// How long the poll took.
    pub duration: Duration,
}

/// What one [`Reactor::step`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Wall time spent in the step.
    pub elapsed: Duration,
    /// Rounds of "run ready tasks, then poll I/O and timers".
    pub rounds: u32,
    /// Task polls made during the step.
    pub polls: u64,
    /// Time spent inside task polls; the rest of [`Self::elapsed`] is the
    /// scheduler and the I/O and timer drivers.
    pub busy: Duration,
    /// The step's longest task poll, if any task ran.
    pub slowest: Option<SlowPoll>,
    /// The step ended because the time budget ran out, not because work did.
    pub budget_exhausted: bool,
    /// The step was refused because a step was already running (re-entrant call).
    pub skipped: bool,
}

type EndHook = Box<dyn FnOnce(TaskEnd)>;
type FailureHook = Rc<dyn Fn(&Failure)>;

/// One task's future and its end hook, shared by the registry and the
/// tokio task that drives it, so either side can end it.
struct TaskCell {
    id: TaskId,
    name: Rc<str>,
    owner: OwnerId,
    started: Instant,
    future: RefCell<Option<BoxedTask>>,
    on_end: Cell<Option<EndHook>>,
    /// Set when a cancel arrives while the future is being polled (a task
    /// cancelling itself from a signal handler); the driver drops it after.
    cancel_requested: Cell<bool>,
    abort: RefCell<Option<tokio::task::AbortHandle>>,
}

impl TaskCell {
    /// Runs the end hook, if it has not run yet.
    fn end(&self, end: TaskEnd) {
        if let Some(hook) = self.on_end.take() {
            hook(end);
        }
    }
}

/// State shared between the reactor and the drivers of its tasks.
struct Shared {
    tasks: RefCell<HashMap<TaskId, Rc<TaskCell>>>,
    next_id: Cell<TaskId>,
    polls: Cell<u64>,
    /// Time inside task polls and the longest poll, since the step began.
    busy: Cell<Duration>,
    slowest: RefCell<Option<SlowPoll>>,
    /// The longest poll of the window in progress and of the last one ended
    /// (see [`Reactor::end_window`]).
    window_slowest: RefCell<Option<SlowPoll>>,
    last_window_slowest: RefCell<Option<SlowPoll>>,
    failure_hook: RefCell<Option<FailureHook>>,
}

impl Shared {
    fn unregister(&self, id: TaskId) -> Option<Rc<TaskCell>> {
        self.tasks.borrow_mut().remove(&id)
    }

    /// Accounts one task poll that took `took`.
    fn polled(&self, cell: &TaskCell, took: Duration) {
        self.busy.set(self.busy.get() + took);
        let mut slowest = self.slowest.borrow_mut();
        if slowest.as_ref().is_none_or(|s| took > s.duration) {
            *slowest = Some(SlowPoll { id: cell.id, name: cell.name.clone(), owner: cell.owner, duration: took });
        }
    }

    fn report_failure(&self, cell: &TaskCell, message: String) {
        let failure = Failure { id: cell.id, name: cell.name.to_string(), owner: cell.owner, message: message.clone() };
        cell.end(TaskEnd::Failed(message));
        let hook = self.failure_hook.borrow().clone();
        if let Some(hook) = hook {
            hook(&failure);
        }
    }
}

/// The runtime every node shares. Create one per main thread.
pub struct Reactor {
    // Field order is drop order: tasks go before the runtime they use.
    local: LocalSet,
    runtime: Runtime,
    shared: Rc<Shared>,
    stepping: Cell<bool>,
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor").field("tasks", &self.task_count()).field("stepping", &self.stepping.get()).finish()
    }
}

impl Reactor {
    /// Builds the current-thread runtime (I/O and timers enabled).
    pub fn new() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("async-net-blocking")
            // DNS lookups use the blocking pool; a game needs a handful, not 512.
            .max_blocking_threads(8)
            .build()?;
        Ok(Self {
            local: LocalSet::new(),
            runtime,
            shared: Rc::new(Shared {
                tasks: RefCell::new(HashMap::new()),
                next_id: Cell::new(1),
                polls: Cell::new(0),
                busy: Cell::new(Duration::ZERO),
                slowest: RefCell::new(None),
                window_slowest: RefCell::new(None),
                last_window_slowest: RefCell::new(None),
                failure_hook: RefCell::new(None),
            }),
            stepping: Cell::new(false),
        })
    }

    /// Sets the function told about every failed task (after its own end hook).
    pub fn set_failure_hook(&self, hook: impl Fn(&Failure) + 'static) {
        *self.shared.failure_hook.borrow_mut() = Some(Rc::new(hook));
    }

    /// Starts `future` as a task named `name`, owned by `owner`. It first runs
    /// at the next step. `on_end` is called exactly once with how it ended —
    /// unless the reactor is shut down first, which ends tasks silently.
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
        let id = self.shared.next_id.get();
        self.shared.next_id.set(id + 1);
        let cell = Rc::new(TaskCell {
            id,
            name: Rc::from(name.into()),
            owner,
            started: Instant::now(),
            future: RefCell::new(Some(Box::pin(future))),
            on_end: Cell::new(Some(Box::new(on_end))),
            cancel_requested: Cell::new(false),
            abort: RefCell::new(None),
        });
        self.shared.tasks.borrow_mut().insert(id, cell.clone());
        let driver = Driver { cell: cell.clone(), shared: self.shared.clone() };
        let handle = self.local.spawn_local(driver);
        *cell.abort.borrow_mut() = Some(handle.abort_handle());
        id
    }

    /// Cancels one task: its future is dropped now (closing its sockets), or
    /// right after its current poll if it is cancelling itself. Returns false
    /// when no such task is alive.
    pub fn cancel(&self, id: TaskId) -> bool {
        let Some(cell) = self.shared.unregister(id) else {
            return false;
        };
        cancel_cell(&cell);
        true
    }

    /// Cancels every task `owner` owns; returns how many.
    pub fn cancel_owner(&self, owner: OwnerId) -> usize {
        self.cancel_where(|cell| cell.owner == owner)
    }

    /// Cancels every task; returns how many.
    pub fn cancel_all(&self) -> usize {
        self.cancel_where(|_| true)
    }

    fn cancel_where(&self, select: impl Fn(&TaskCell) -> bool) -> usize {
        // Take them out first: cancelling runs end hooks, which may spawn.
        let cells: Vec<Rc<TaskCell>> = {
            let mut tasks = self.shared.tasks.borrow_mut();
            let ids: Vec<TaskId> = tasks.values().filter(|c| select(c)).map(|c| c.id).collect();
            let mut cells: Vec<_> = ids.iter().filter_map(|id| tasks.remove(id)).collect();
            cells.sort_by_key(|c| c.id);
            cells
        };
        for cell in &cells {
            cancel_cell(cell);
        }
        cells.len()
    }

    /// Whether the task is still alive.
    pub fn is_alive(&self, id: TaskId) -> bool {
        self.shared.tasks.borrow().contains_key(&id)
    }

    /// How many tasks are alive.
    pub fn task_count(&self) -> usize {
        self.shared.tasks.borrow().len()
    }

    /// How many tasks `owner` owns.
    pub fn owner_task_count(&self, owner: OwnerId) -> usize {
        self.shared.tasks.borrow().values().filter(|c| c.owner == owner).count()
    }

    /// The live tasks, oldest first.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        let now = Instant::now();
        let mut list: Vec<TaskInfo> = self
            .shared
            .tasks
            .borrow()
            .values()
            .map(|c| TaskInfo {
                id: c.id,
                name: c.name.to_string(),
                owner: c.owner,
                age: now.saturating_duration_since(c.started),
            })
            .collect();
        list.sort_by_key(|t| t.id);
        list
    }

    /// Whether a step is running right now (so a nested one would be refused).
    pub fn is_stepping(&self) -> bool {
        self.stepping.get()
    }

    /// Runs one step: rounds of "run every ready task, then poll sockets and
    /// timers without blocking", until a round finds nothing to run (at least
    /// two rounds, so I/O that became ready is handled in the same step) or
    /// `budget` is spent. A nested call from inside a task is refused.
    pub fn step(&self, budget: Duration) -> StepReport {
        if self.stepping.replace(true) {
            return StepReport { skipped: true, ..StepReport::default() };
        }
        struct Reset<'a>(&'a Cell<bool>);
        impl Drop for Reset<'_> {
            fn drop(&mut self) {
                self.0.set(false);
                STEP_DEADLINE.with(|deadline| deadline.set(None));
            }
        }
        let _reset = Reset(&self.stepping);

        let start = Instant::now();
        let deadline = start + budget;
        STEP_DEADLINE.with(|d| d.set(Some(deadline)));
        let polls_at_start = self.shared.polls.get();
        let shared = &self.shared;
        shared.busy.set(Duration::ZERO);
        shared.slowest.borrow_mut().take();
        let (rounds, budget_exhausted) = self.runtime.block_on(self.local.run_until(async {
            let mut rounds = 0u32;
            loop {
                let before = shared.polls.get();
                // Deferred wake: the scheduler runs the ready tasks, then polls
                // the I/O and timer drivers with a zero timeout, then resumes us.
                tokio::task::yield_now().await;
                rounds += 1;
                let ran = shared.polls.get() != before;
                if rounds >= 2 && !ran {
                    return (rounds, false);
                }
                if Instant::now() >= deadline {
                    return (rounds, true);
                }
            }
        }));
        let slowest = self.shared.slowest.borrow_mut().take();
        if let Some(step) = &slowest {
            let mut window = self.shared.window_slowest.borrow_mut();
            if window.as_ref().is_none_or(|w| step.duration > w.duration) {
                *window = Some(step.clone());
            }
        }
        StepReport {
            elapsed: start.elapsed(),
            rounds,
            polls: self.shared.polls.get() - polls_at_start,
            busy: self.shared.busy.get(),
            slowest,
            budget_exhausted,
            skipped: false,
        }
    }

    /// Ends a window of steps (the engine ends one per frame): its longest
    /// task poll becomes [`Self::last_window_slowest`] and a new window starts.
    pub fn end_window(&self) {
        let ended = self.shared.window_slowest.borrow_mut().take();
        *self.shared.last_window_slowest.borrow_mut() = ended;
    }

    /// The longest task poll of the last window [`Self::end_window`] ended,
    /// if any task ran in it: which task held the main thread longest.
    pub fn last_window_slowest(&self) -> Option<SlowPoll> {
        self.shared.last_window_slowest.borrow().clone()
    }

    /// Runs `f` inside the runtime's context, for code that creates tokio
    /// resources outside a task (e.g. binding a listener synchronously).
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.runtime.enter();
        f()
    }

    /// Ends every task without calling end hooks (the engine may already be
    /// tearing down) and joins the runtime's threads, waiting at most `timeout`
    /// for blocking work such as a DNS lookup in flight.
    pub fn shutdown(self, timeout: Duration) {
        let cells: Vec<Rc<TaskCell>> = self.shared.tasks.borrow_mut().drain().map(|(_, c)| c).collect();
        for cell in &cells {
            cell.on_end.take();
            cancel_cell(cell);
        }
        *self.shared.failure_hook.borrow_mut() = None;
        let Reactor { local, runtime, .. } = self;
        {
            let _guard = runtime.enter();
            drop(local);
        }
        runtime.shutdown_timeout(timeout);
    }
}

/// Drops a task's future now if it is not being polled (else flags it for the
/// driver), wakes its driver so tokio forgets it, and reports the cancellation.
fn cancel_cell(cell: &TaskCell) {
    cell.cancel_requested.set(true);
    let future = cell.future.try_borrow_mut().ok().and_then(|mut slot| slot.take());
    drop_quietly(future);
    if let Some(abort) = cell.abort.borrow_mut().take() {
        abort.abort();
    }
    cell.end(TaskEnd::Cancelled);
}

/// Drops a future, containing a panic from its destructor.
fn drop_quietly(future: Option<BoxedTask>) {
    if future.is_some() {
        let _ = catch_unwind(AssertUnwindSafe(move || drop(future)));
    }
}

/// The tokio task behind each registered task: polls the boxed future,
/// catches panics, counts polls and reports how the task ended.
struct Driver {
    cell: Rc<TaskCell>,
    shared: Rc<Shared>,
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Timed whole: the task's own poll, and on its end the drop of its
        // future (closing what it owned) and its end hook.
        let started = Instant::now();
        let poll = self.poll_task(cx);
        self.shared.polled(&self.cell, started.elapsed());
        poll
    }
}

impl Driver {
    fn poll_task(&self, cx: &mut Context<'_>) -> Poll<()> {
        let cell = &self.cell;
        let shared = &self.shared;
        shared.polls.set(shared.polls.get() + 1);
        if cell.cancel_requested.get() {
            return Poll::Ready(());
        }
        let outcome = {
            let mut slot = cell.future.borrow_mut();
            let Some(future) = slot.as_mut() else {
                return Poll::Ready(());
            };
            catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)))
        };
        if cell.cancel_requested.get() {
            // Cancelled from inside its own poll: the registry entry and the
            // end hook are already dealt with; only the future is left.
            drop_quietly(cell.future.borrow_mut().take());
            return Poll::Ready(());
        }
        match outcome {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => {
                drop_quietly(cell.future.borrow_mut().take());
                shared.unregister(cell.id);
                match result {
                    Ok(()) => cell.end(TaskEnd::Completed),
                    Err(message) => shared.report_failure(cell, message),
                }
                Poll::Ready(())
            }
            Err(payload) => {
                drop_quietly(cell.future.borrow_mut().take());
                shared.unregister(cell.id);
                shared.report_failure(cell, format!("panicked: {}", panic_message(&*payload)));
                Poll::Ready(())
            }
        }
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
