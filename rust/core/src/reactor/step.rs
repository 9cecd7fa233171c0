//! What a task can know about the step that polls it: whether the step's time
//! budget is spent, and a way to wait for the next step (the next frame).
//!
//! The step in progress is published through one thread-local pointer, set
//! only while a step runs; it has no destructor, so the library can be
//! unloaded for a hot reload.

use std::{
    cell::{Cell, RefCell},
    future::Future,
    pin::Pin,
    task::{Context, Poll, Waker},
    time::Instant,
};

/// The step in progress: its deadline and the tasks waiting for the next one.
#[derive(Debug, Default)]
pub(super) struct StepContext {
    pub deadline: Cell<Option<Instant>>,
    /// Woken when the next step begins.
    pub next_step: RefCell<Vec<Waker>>,
}

thread_local! {
    static CURRENT: Cell<*const StepContext> = const { Cell::new(std::ptr::null()) };
}

/// Publishes `context` as the step in progress until the guard drops.
pub(super) fn enter(context: &StepContext) -> Entered {
    CURRENT.set(context as *const StepContext);
    Entered
}

/// Ends the publication made by [`enter`].
pub(super) struct Entered;

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.set(std::ptr::null());
    }
}

fn with_current<R>(f: impl FnOnce(Option<&StepContext>) -> R) -> R {
    let ptr = CURRENT.get();
    // SAFETY: the pointer is set by `enter` from a reference that outlives the
    // guard, and cleared when the guard drops, all on this thread.
    f(unsafe { ptr.as_ref() })
}

/// Whether the running step has spent its time budget (false outside a
/// step). A step can only end between task polls, so a task that handles
/// many items in one poll (a batch of messages, a burst of connections)
/// checks this per item and waits for the next step
/// ([`yield_if_over_budget`]); the rest of its work then waits for the next
/// frame instead of stretching this one.
pub fn over_budget() -> bool {
    with_current(|step| step.and_then(|s| s.deadline.get()).is_some_and(|d| Instant::now() >= d))
}

/// Waits for the next step if this one's time budget is spent.
pub async fn yield_if_over_budget() {
    if over_budget() {
        next_step().await;
    }
}

/// Resolves at the next step (outside a step: at once, after one yield).
/// Unlike `tokio::task::yield_now`, the task is not polled again in this step,
/// so a step whose budget is spent ends instead of polling it in a loop.
pub fn next_step() -> NextStep {
    NextStep { waited: false }
}

/// The future of [`next_step`].
#[derive(Debug)]
pub struct NextStep {
    waited: bool,
}

impl Future for NextStep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.waited {
            return Poll::Ready(());
        }
        self.waited = true;
        with_current(|step| match step {
            Some(step) => step.next_step.borrow_mut().push(cx.waker().clone()),
            None => cx.waker().wake_by_ref(),
        });
        Poll::Pending
    }
}
