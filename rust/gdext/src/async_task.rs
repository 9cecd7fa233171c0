//! `AsyncTask`: the GDScript handle of one piece of work on the hub's runtime.

use std::{cell::Cell, rc::Rc};

use async_net_core::reactor::{HUB_OWNER, OwnerId, TaskEnd, TaskId, TaskResult};
use godot::prelude::*;

use crate::runtime;

/// Where a task is in its life. Shared with the end hook, so that neither
/// needs to bind the object (a signal handler may be calling into it).
/// Also the state of an `HttpStream`, a task with signals of its own.
#[derive(Debug, Default)]
pub(crate) struct TaskProgress {
    id: Cell<Option<TaskId>>,
    done: Cell<bool>,
}

impl TaskProgress {
    /// Cancels the task unless it has ended; whether it was cancelled now.
    pub(crate) fn cancel(&self) -> bool {
        self.running_id().is_some_and(|id| runtime::with_reactor(|r| r.cancel(id)).unwrap_or(false))
    }

    /// Whether the task has ended (or never started).
    pub(crate) fn is_done(&self) -> bool {
        self.done.get()
    }

    /// The task's id while it runs.
    pub(crate) fn running_id(&self) -> Option<TaskId> {
        self.id.get().filter(|_| !self.done.get())
    }

    /// Records the outcome of `runtime::spawn`: the id, or ended at once when
    /// the engine is quitting (the task can never run).
    pub(crate) fn spawned(&self, id: Option<TaskId>) {
        match id {
            Some(id) => self.id.set(Some(id)),
            None => self.done.set(true),
        }
    }

    /// The task ended (its end hook runs).
    pub(crate) fn end(&self) {
        self.done.set(true);
    }
}

/// A handle to work running on the [AsyncHub]'s runtime, such as a timer from
/// [method AsyncHub.sleep] or [method AsyncHub.interval].
///
/// Await its signals from GDScript:
/// [codeblock]
/// await AsyncHub.sleep(1.0).completed
/// var ticker := AsyncHub.interval(0.5)
/// ticker.ticked.connect(func(count): print("tick ", count))
/// ticker.cancel()
/// [/codeblock]
/// Exactly one of [signal completed], [signal failed] or [signal cancelled] is
/// emitted, once. The task keeps itself alive while it runs, so you don't need
/// to hold a reference to it. Tasks come from the hub and the nodes;
/// [code]AsyncTask.new()[/code] is a handle that never runs.
#[derive(GodotClass)]
#[class(init, base = RefCounted)]
pub struct AsyncTask {
    name: GString,
    // A handle made by `new()` (or recreated by a hot reload, which ends
    // every task) has no id: it never runs and `cancel()` does nothing.
    progress: Rc<TaskProgress>,
    base: Base<RefCounted>,
}

#[godot_api]
impl AsyncTask {
    /// The work finished. [param result] is its value ([code]null[/code] for timers).
    #[signal]
    pub fn completed(result: Variant);

    /// The work failed; [param message] says why. [signal AsyncHub.task_failed] is emitted too.
    #[signal]
    pub fn failed(message: GString);

    /// The task was cancelled by [method cancel], [method AsyncHub.cancel_all], or its owner leaving the tree.
    #[signal]
    pub fn cancelled();

    /// A repeating task ([method AsyncHub.interval]) ticked; [param count] starts at 1.
    #[signal]
    pub fn ticked(count: i64);

    /// Stops the work now. Returns [code]false[/code] if it had already ended.
    #[func]
    pub fn cancel(&self) -> bool {
        self.progress.cancel()
    }

    /// Whether the task has ended (completed, failed or cancelled).
    #[func]
    pub fn is_done(&self) -> bool {
        self.progress.is_done()
    }

    /// The task's name, as listed by [method AsyncHub.tasks].
    #[func]
    pub fn get_task_name(&self) -> GString {
        self.name.clone()
    }

    /// The task's id, as listed by [method AsyncHub.tasks] (0 once ended or if it never started).
    #[func]
    pub fn get_id(&self) -> i64 {
        self.progress.running_id().map_or(0, |id| id as i64)
    }
}

impl AsyncTask {
    /// Starts `work` on the runtime, owned by the hub, and returns its handle.
    /// `work` gets the handle to emit progress (e.g. `ticked`) and returns the
    /// value for `completed`, or an error message for `failed`.
    pub fn start<F, Fut>(name: &str, work: F) -> Gd<AsyncTask>
    where
        F: FnOnce(Gd<AsyncTask>) -> Fut,
        Fut: std::future::Future<Output = Result<Variant, String>> + 'static,
    {
        Self::start_owned(name, HUB_OWNER, work)
    }

    /// Like [`AsyncTask::start`], owned by `owner` (see [`runtime::owner_of`]): when the
    /// owner stops or leaves the tree, the task is cancelled (`cancelled`, no error), and a
    /// failure is also reported through the owner's `error` signal.
    pub fn start_owned<F, Fut>(name: &str, owner: OwnerId, work: F) -> Gd<AsyncTask>
    where
        F: FnOnce(Gd<AsyncTask>) -> Fut,
        Fut: std::future::Future<Output = Result<Variant, String>> + 'static,
    {
        let progress = Rc::new(TaskProgress::default());
        let task = Gd::from_init_fn(|base| AsyncTask { name: name.into(), progress: progress.clone(), base });
        let value = Rc::new(Cell::new(Variant::nil()));
        let future = {
            let (value, work) = (value.clone(), work(task.clone()));
            async move {
                value.set(work.await?);
                TaskResult::Ok(())
            }
        };
        let (hook_task, hook_progress) = (task.clone(), progress.clone());
        let on_end = move |end: TaskEnd| {
            hook_progress.end();
            let mut signals = hook_task.signals();
            match end {
                TaskEnd::Completed => signals.completed().emit(&value.take()),
                TaskEnd::Failed(message) => signals.failed().emit(&message),
                TaskEnd::Cancelled => signals.cancelled().emit(),
            }
        };
        progress.spawned(runtime::spawn(name, owner, future, on_end));
        task
    }
}
