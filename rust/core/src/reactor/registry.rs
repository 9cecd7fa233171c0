//! The tasks of the main thread: each owned, named and cancellable at once,
//! and each ending exactly once (completed, failed or cancelled) through its
//! end hook. A failure (an error or a panic) also goes to the failure hook.
//!
//! Re-entrancy is the rule: a task may call into the engine, whose handlers
//! may spawn or cancel tasks (even the running one). No `RefCell` borrow is
//! held while user code runs.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
    time::Instant,
};

use super::{Failure, OwnerId, TaskEnd, TaskId, TaskInfo, TaskResult, panic_message, profile::Profile};

type BoxedTask = Pin<Box<dyn Future<Output = TaskResult>>>;

thread_local! {
    /// The cancel flag of the task being polled; null between polls. No
    /// destructor (the library may be unloaded for a hot reload).
    static POLLING: Cell<*const Cell<bool>> = const { Cell::new(std::ptr::null()) };
}

/// Whether the task being polled was cancelled during this poll (a signal
/// handler it called stopped its node). It is dropped when the poll returns;
/// until then it should deliver nothing more. False outside a task.
pub fn cancelled() -> bool {
    let flag = POLLING.get();
    // SAFETY: set by the driver to a flag of the task it polls, which lives
    // until the poll returns, when the driver clears it again.
    !flag.is_null() && unsafe { (*flag).get() }
}
type EndHook = Box<dyn FnOnce(TaskEnd)>;
type FailureHook = Rc<dyn Fn(&Failure)>;

/// One task's future and its end hook, shared by the registry and the tokio
/// task that drives it, so either side can end it.
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

    /// Drops the future now if it is not being polled (else flags it for the
    /// driver), tells tokio to forget it, and reports the cancellation.
    fn cancel(&self) {
        self.cancel_requested.set(true);
        let future = self.future.try_borrow_mut().ok().and_then(|mut slot| slot.take());
        drop_quietly(future);
        if let Some(abort) = self.abort.borrow_mut().take() {
            abort.abort();
        }
        self.end(TaskEnd::Cancelled);
    }
}

/// Drops a future, containing a panic from its destructor.
fn drop_quietly(future: Option<BoxedTask>) {
    if future.is_some() {
        let _ = catch_unwind(AssertUnwindSafe(move || drop(future)));
    }
}

/// The live tasks and what is told when one fails.
pub(super) struct Registry {
    tasks: RefCell<HashMap<TaskId, Rc<TaskCell>>>,
    next_id: Cell<TaskId>,
    failure_hook: RefCell<Option<FailureHook>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry { tasks: RefCell::default(), next_id: Cell::new(1), failure_hook: RefCell::default() }
    }
}

impl Registry {
    pub fn set_failure_hook(&self, hook: impl Fn(&Failure) + 'static) {
        *self.failure_hook.borrow_mut() = Some(Rc::new(hook));
    }

    /// Registers a task; the returned driver is what the `LocalSet` runs.
    pub fn register(
        self: &Rc<Self>,
        profile: &Rc<Profile>,
        name: String,
        owner: OwnerId,
        future: BoxedTask,
        on_end: EndHook,
    ) -> (TaskId, Driver) {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let cell = Rc::new(TaskCell {
            id,
            name: Rc::from(name),
            owner,
            started: Instant::now(),
            future: RefCell::new(Some(future)),
            on_end: Cell::new(Some(on_end)),
            cancel_requested: Cell::new(false),
            abort: RefCell::new(None),
        });
        self.tasks.borrow_mut().insert(id, cell.clone());
        (id, Driver { cell, registry: self.clone(), profile: profile.clone() })
    }

    /// Gives tokio's abort handle to the task `id`, so a cancel also drops the driver.
    pub fn set_abort(&self, id: TaskId, abort: tokio::task::AbortHandle) {
        if let Some(cell) = self.tasks.borrow().get(&id) {
            *cell.abort.borrow_mut() = Some(abort);
        }
    }

    fn unregister(&self, id: TaskId) -> Option<Rc<TaskCell>> {
        self.tasks.borrow_mut().remove(&id)
    }

    /// Cancels one task; false when no such task is alive.
    pub fn cancel(&self, id: TaskId) -> bool {
        let Some(cell) = self.unregister(id) else {
            return false;
        };
        cell.cancel();
        true
    }

    /// Cancels the tasks `select` picks, oldest first; returns how many.
    pub fn cancel_where(&self, select: impl Fn(OwnerId) -> bool) -> usize {
        // Take them out first: cancelling runs end hooks, which may spawn.
        let cells: Vec<Rc<TaskCell>> = {
            let mut tasks = self.tasks.borrow_mut();
            let ids: Vec<TaskId> = tasks.values().filter(|c| select(c.owner)).map(|c| c.id).collect();
            let mut cells: Vec<_> = ids.iter().filter_map(|id| tasks.remove(id)).collect();
            cells.sort_by_key(|c| c.id);
            cells
        };
        for cell in &cells {
            cell.cancel();
        }
        cells.len()
    }

    /// Ends every task without calling end hooks or the failure hook (the
    /// engine may be tearing down).
    pub fn clear_silently(&self) {
        let cells: Vec<Rc<TaskCell>> = self.tasks.borrow_mut().drain().map(|(_, c)| c).collect();
        *self.failure_hook.borrow_mut() = None;
        for cell in &cells {
            cell.on_end.take();
            cell.cancel();
        }
    }

    pub fn is_alive(&self, id: TaskId) -> bool {
        self.tasks.borrow().contains_key(&id)
    }

    pub fn count(&self, select: impl Fn(OwnerId) -> bool) -> usize {
        self.tasks.borrow().values().filter(|c| select(c.owner)).count()
    }

    /// The live tasks, oldest first.
    pub fn list(&self) -> Vec<TaskInfo> {
        let now = Instant::now();
        let mut list: Vec<TaskInfo> = self
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

    /// Tells the failure hook (the owner says why), then the task's end hook
    /// (the owner's state changes): a failure reads "error, then FAILED".
    fn report_failure(&self, cell: &TaskCell, message: String) {
        let failure = Failure { id: cell.id, name: cell.name.to_string(), owner: cell.owner, message: message.clone() };
        let hook = self.failure_hook.borrow().clone();
        if let Some(hook) = hook {
            hook(&failure);
        }
        cell.end(TaskEnd::Failed(message));
    }
}

/// The tokio task behind each registered task: polls the boxed future,
/// catches panics, times the poll and reports how the task ended.
pub(super) struct Driver {
    cell: Rc<TaskCell>,
    registry: Rc<Registry>,
    profile: Rc<Profile>,
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Timed whole: the task's own poll, and on its end the drop of its
        // future (closing what it owned) and its end hook.
        let started = Instant::now();
        let poll = self.poll_task(cx);
        self.profile.polled(self.cell.id, &self.cell.name, self.cell.owner, started.elapsed());
        poll
    }
}

impl Driver {
    fn poll_task(&self, cx: &mut Context<'_>) -> Poll<()> {
        let cell = &self.cell;
        if cell.cancel_requested.get() {
            return Poll::Ready(());
        }
        let outcome = {
            let mut slot = cell.future.borrow_mut();
            let Some(future) = slot.as_mut() else {
                return Poll::Ready(());
            };
            let outer = POLLING.replace(&cell.cancel_requested as *const Cell<bool>);
            let outcome = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)));
            POLLING.set(outer);
            outcome
        };
        if cell.cancel_requested.get() {
            // Cancelled from inside its own poll: the registry entry and the
            // end hook are already dealt with; only the future is left.
            drop_quietly(cell.future.borrow_mut().take());
            return Poll::Ready(());
        }
        let result = match outcome {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(result)) => result,
            Err(payload) => Err(format!("panicked: {}", panic_message(&*payload))),
        };
        drop_quietly(cell.future.borrow_mut().take());
        self.registry.unregister(cell.id);
        match result {
            Ok(()) => cell.end(TaskEnd::Completed),
            Err(message) => self.registry.report_failure(cell, message),
        }
        Poll::Ready(())
    }
}
